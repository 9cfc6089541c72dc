//! kvd's own TLS metrics: when each certificate file a listener uses expires, and how many
//! TLS handshakes each listener refused, by reason. etcd has neither; expiring certificates
//! and clients failing mutual TLS are the two TLS problems operators need to see coming.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use prometheus::{GaugeVec, IntCounterVec, Registry};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{add, counter_vec, float_gauge_vec};
use crate::tls::RejectKind;

/// `kvd_tls_certificate_expiry_timestamp_seconds{listener,file}`.
pub static CERTIFICATE_EXPIRY: LazyLock<GaugeVec> = LazyLock::new(|| {
    float_gauge_vec(
        "kvd_tls_certificate_expiry_timestamp_seconds",
        "When the earliest-expiring certificate in a TLS file a listener uses expires (Unix time).",
        &["listener", "file"],
    )
});
/// `kvd_tls_handshake_refusals_total{listener,reason}`.
pub static HANDSHAKE_REFUSALS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter_vec(
        "kvd_tls_handshake_refusals_total",
        "TLS connections a listener refused during or right after the handshake, by reason.",
        &["listener", "reason"],
    )
});

pub(super) fn register(r: &Registry) {
    add(r, CERTIFICATE_EXPIRY.clone());
    add(r, HANDSHAKE_REFUSALS.clone());
}

/// The `reason` label of a refusal kind.
pub fn reason(kind: RejectKind) -> &'static str {
    match kind {
        RejectKind::NoCertificate => "no_certificate",
        RejectKind::UnknownAuthority => "unknown_authority",
        RejectKind::IncompatibleUsage => "incompatible_usage",
        RejectKind::Expired => "expired",
        RejectKind::NotYetValid => "not_yet_valid",
        RejectKind::Revoked => "revoked",
        RejectKind::BadCertificate => "bad_certificate",
        RejectKind::NotAllowed => "not_allowed",
        RejectKind::AddressMismatch => "address_mismatch",
        RejectKind::RemoteAlert => "remote_alert",
        RejectKind::NotTls => "not_tls",
        RejectKind::Eof => "eof",
        RejectKind::ClosedBeforeHandshake => "closed_before_handshake",
        RejectKind::Timeout => "timeout",
        RejectKind::Protocol => "protocol",
        RejectKind::Io => "io",
    }
}

/// A handshake on `listener` (`client` or `peer`) was refused.
pub fn refused(listener: &str, kind: RejectKind) {
    HANDSHAKE_REFUSALS
        .with_label_values(&[listener, reason(kind)])
        .inc();
}

/// Sets the expiry of every certificate file of `listener` from the files on disk (files
/// holding no certificate, such as keys and CRLs, are skipped). Called at each scrape, so a
/// renewed file shows its new date as soon as it is written.
pub fn record_expiry(listener: &str, files: &[PathBuf]) {
    for file in files {
        if let Some(not_after) = earliest_expiry(file) {
            #[allow(clippy::cast_precision_loss)]
            CERTIFICATE_EXPIRY
                .with_label_values(&[listener, &file.display().to_string()])
                .set(not_after as f64);
        }
    }
}

/// The earliest `notAfter` (Unix seconds) of the certificates in a PEM file.
fn earliest_expiry(file: &Path) -> Option<i64> {
    let bytes = std::fs::read(file).ok()?;
    CertificateDer::pem_slice_iter(&bytes)
        .filter_map(Result::ok)
        .filter_map(|der| {
            x509_parser::parse_x509_certificate(der.as_ref())
                .ok()
                .map(|(_, c)| c.validity().not_after.timestamp())
        })
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_reports_its_earliest_certificate_and_a_key_nothing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let make = |days: i64| {
            let mut p = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
            p.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
            let not_after = p.not_after.unix_timestamp();
            let key = rcgen::KeyPair::generate().expect("key");
            (p.self_signed(&key).expect("cert"), key, not_after)
        };
        let (soon, key, expected) = make(10);
        let (later, _, _) = make(100);
        let bundle = dir.path().join("ca.pem");
        std::fs::write(&bundle, format!("{}{}", later.pem(), soon.pem())).expect("write");
        let key_file = dir.path().join("key.pem");
        std::fs::write(&key_file, key.serialize_pem()).expect("write");
        assert_eq!(earliest_expiry(&bundle), Some(expected));
        assert_eq!(earliest_expiry(&key_file), None);
        assert_eq!(earliest_expiry(&dir.path().join("missing.pem")), None);
    }
}
