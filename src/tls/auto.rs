//! Auto TLS (`--auto-tls`, `--peer-auto-tls`): a self-signed ECDSA P-256 certificate
//! (subject `O=kvd`, SANs = the port's hosts, serverAuth, plus clientAuth on the peer port)
//! in `<data-dir>/fixtures/{client,peer}/{cert.pem,key.pem}`, the key readable only by
//! its owner. An existing pair is reused across restarts unless it has expired, names
//! other hosts, or cannot be used; then a new one replaces it.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use time::{Duration, OffsetDateTime};
use tracing::info;

use super::error::TlsError;
use super::load;
use super::setting::Setting;
use super::ListenerKind;
use crate::x509::cert::{self, Usage};

/// A certificate is replaced when it expires within this margin.
const RENEW_MARGIN_SECS: i64 = 3600;

/// The auto-TLS certificate and key files of a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AutoCert {
    /// `<dir>/cert.pem`.
    pub(crate) cert: PathBuf,
    /// `<dir>/key.pem`.
    pub(crate) key: PathBuf,
    /// When the certificate expires (Unix seconds).
    pub(crate) not_after: i64,
}

/// The SANs auto TLS puts in its certificate for `hosts` (host names or IPs, optionally
/// with a port as in listen URLs: `127.0.0.1:2379`, `[::1]:2380`, `node1:2379`).
pub(crate) fn san_set(hosts: &[String]) -> (BTreeSet<IpAddr>, BTreeSet<String>) {
    let mut ips = BTreeSet::new();
    let mut names = BTreeSet::new();
    for h in hosts {
        let host = strip_port(h.trim());
        if host.is_empty() {
            continue;
        }
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                ips.insert(ip);
            }
            Err(_) => {
                names.insert(host.to_ascii_lowercase());
            }
        }
    }
    (ips, names)
}

fn strip_port(h: &str) -> &str {
    if let Ok(sa) = h.parse::<SocketAddr>() {
        // Borrowing the IP's text from `h`: `[::1]:2380` or `1.2.3.4:5`.
        let ip_len = match sa {
            SocketAddr::V4(_) => h.rfind(':').unwrap_or(h.len()),
            SocketAddr::V6(_) => h.rfind(']').map_or(h.len(), |i| i + 1),
        };
        return h[..ip_len].trim_start_matches('[').trim_end_matches(']');
    }
    if let Some(inner) = h.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
        return inner;
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => h,
    }
}

/// Makes sure `<data_dir>/fixtures/<kind>` holds a usable self-signed certificate for
/// `hosts`, valid `years` years (0 means 1) when it is created.
///
/// # Errors
/// [`TlsError::AutoTls`] when the directory or files cannot be written or the key cannot
/// be generated.
pub(crate) fn ensure(
    kind: ListenerKind,
    data_dir: &Path,
    hosts: &[String],
    years: u32,
    provider: &CryptoProvider,
) -> Result<AutoCert, TlsError> {
    let dir = data_dir.join("fixtures").join(kind.name());
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    let fail = |problem: String| TlsError::AutoTls {
        setting: Setting::AutoTls.of(kind).to_string(),
        dir: dir.clone(),
        problem,
    };
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let reason = match reusable(kind, &cert_path, &key_path, hosts, now, provider) {
        Ok(not_after) => {
            return Ok(AutoCert {
                cert: cert_path,
                key: key_path,
                not_after,
            })
        }
        Err(reason) => reason,
    };
    std::fs::create_dir_all(&dir).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
    restrict(&dir, 0o700)
        .map_err(|e| fail(format!("cannot restrict the directory to its owner: {e}")))?;
    let (pem_cert, pem_key, not_after) = generate(kind, hosts, years).map_err(fail)?;
    write_atomically(&key_path, pem_key.as_bytes(), 0o600)
        .map_err(|e| fail(format!("cannot write {key_path:?}: {e}")))?;
    write_atomically(&cert_path, pem_cert.as_bytes(), 0o644)
        .map_err(|e| fail(format!("cannot write {cert_path:?}: {e}")))?;
    info!(
        listener = kind.name(),
        cert = %cert_path.display(),
        key = %key_path.display(),
        hosts = ?hosts,
        not_after = %cert::go_time(not_after),
        why = %reason,
        "generated a self-signed certificate for auto TLS"
    );
    Ok(AutoCert {
        cert: cert_path,
        key: key_path,
        not_after,
    })
}

/// `Ok(not_after)` when the existing pair can be kept; else why not.
fn reusable(
    kind: ListenerKind,
    cert_path: &Path,
    key_path: &Path,
    hosts: &[String],
    now: i64,
    provider: &CryptoProvider,
) -> Result<i64, String> {
    if !cert_path.exists() || !key_path.exists() {
        return Err("no certificate yet".to_string());
    }
    let setting = Setting::AutoTls.of(kind);
    let pair = load::certified_key(provider, setting, cert_path, setting, key_path)
        .map_err(|e| format!("the existing one is unusable: {e}"))?;
    let leaf =
        cert::parse(&pair.cert[0]).map_err(|e| format!("the existing one is unusable: {e}"))?;
    let (_, not_after) = cert::validity(&leaf);
    if not_after - RENEW_MARGIN_SECS <= now {
        return Err(format!(
            "the existing one expired at {}",
            cert::go_time(not_after)
        ));
    }
    let sans = cert::sans(&leaf);
    let have = (
        sans.ips.iter().copied().collect::<BTreeSet<_>>(),
        sans.dns
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .collect::<BTreeSet<_>>(),
    );
    if have != san_set(hosts) {
        return Err("the existing one names other hosts".to_string());
    }
    let usages_ok = cert::eku_allows(&leaf, Usage::ServerAuth)
        && (kind == ListenerKind::Client || cert::eku_allows(&leaf, Usage::ClientAuth));
    if !usages_ok {
        return Err("the existing one lacks a needed key usage".to_string());
    }
    Ok(not_after)
}

/// A new self-signed certificate and key (PEM), and its expiry.
fn generate(
    kind: ListenerKind,
    hosts: &[String],
    years: u32,
) -> Result<(String, String, i64), String> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| format!("cannot generate an ECDSA P-256 key: {e}"))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "kvd");
    params.distinguished_name = dn;
    let (ips, names) = san_set(hosts);
    for ip in ips {
        params.subject_alt_names.push(SanType::IpAddress(ip));
    }
    for name in names {
        let dns = name
            .clone()
            .try_into()
            .map_err(|e| format!("{name:?} cannot be a DNS name in a certificate: {e}"))?;
        params.subject_alt_names.push(SanType::DnsName(dns));
    }
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    if kind == ListenerKind::Peer {
        params
            .extended_key_usages
            .push(ExtendedKeyUsagePurpose::ClientAuth);
    }
    let mut serial = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| "the system random number generator failed".to_string())?;
    serial[0] = (serial[0] & 0x7f) | 0x40;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::minutes(5);
    params.not_after = now + Duration::days(365 * i64::from(years.max(1)));
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the certificate: {e}"))?;
    Ok((
        cert.pem(),
        key.serialize_pem(),
        params.not_after.unix_timestamp(),
    ))
}

/// Writes `path` through a temporary file and a rename, with Unix mode `mode`.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = path.with_extension("pem.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    let mut f = options.open(&tmp)?;
    restrict(&tmp, mode)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Sets Unix permissions (a no-op elsewhere).
fn restrict(path: &Path, mode: u32) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn hosts(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hosts_lose_their_ports() {
        let (ips, names) = san_set(&hosts(&[
            "127.0.0.1:2379",
            "[::1]:2380",
            "Node1:2379",
            "10.0.0.2",
            "::2",
            "[::3]",
        ]));
        let ips: Vec<String> = ips.iter().map(|i| i.to_string()).collect();
        assert_eq!(ips, ["10.0.0.2", "127.0.0.1", "::1", "::2", "::3"]);
        assert_eq!(names.into_iter().collect::<Vec<_>>(), ["node1"]);
    }

    #[test]
    fn reused_until_hosts_change() {
        let dir = tempfile::tempdir().unwrap();
        let p = rustls::crypto::ring::default_provider();
        let a = ensure(
            ListenerKind::Peer,
            dir.path(),
            &hosts(&["127.0.0.1:2380"]),
            1,
            &p,
        )
        .unwrap();
        let first = std::fs::read(&a.cert).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&a.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let text = String::from_utf8(first.clone()).unwrap();
        assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
        let b = ensure(
            ListenerKind::Peer,
            dir.path(),
            &hosts(&["127.0.0.1:2381"]),
            1,
            &p,
        )
        .unwrap();
        assert_eq!(std::fs::read(&b.cert).unwrap(), first, "same host: reused");
        let c = ensure(
            ListenerKind::Peer,
            dir.path(),
            &hosts(&["127.0.0.2"]),
            1,
            &p,
        )
        .unwrap();
        assert_ne!(
            std::fs::read(&c.cert).unwrap(),
            first,
            "new host: regenerated"
        );
        let der =
            rustls_pki_types::CertificateDer::from_pem_slice(&std::fs::read(&c.cert).unwrap())
                .unwrap();
        let leaf = cert::parse(&der).unwrap();
        assert_eq!(cert::dn_string(leaf.subject()), "O=kvd");
        assert!(cert::eku_allows(&leaf, Usage::ClientAuth));
        let (nb, na) = cert::validity(&leaf);
        assert!((na - nb) > 364 * 86400);
    }

    use rustls_pki_types::pem::PemObject;

    #[test]
    fn an_etcd_made_p521_pair_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures/client");
        std::fs::create_dir_all(&fixtures).unwrap();
        let run = |args: &[&str]| {
            std::process::Command::new("openssl")
                .args(args)
                .current_dir(&fixtures)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        // etcd writes an ECDSA P-521 key, which kvd's TLS library cannot sign with.
        if !run(&[
            "ecparam",
            "-name",
            "secp521r1",
            "-genkey",
            "-noout",
            "-out",
            "key.pem",
        ]) || !run(&[
            "req",
            "-x509",
            "-new",
            "-key",
            "key.pem",
            "-subj",
            "/O=etcd",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-days",
            "30",
            "-out",
            "cert.pem",
        ]) {
            eprintln!("SKIPPED: openssl is not installed");
            return;
        }
        let before = std::fs::read(fixtures.join("cert.pem")).unwrap();
        let p = rustls::crypto::ring::default_provider();
        ensure(
            ListenerKind::Client,
            dir.path(),
            &hosts(&["127.0.0.1"]),
            1,
            &p,
        )
        .unwrap();
        assert_ne!(std::fs::read(fixtures.join("cert.pem")).unwrap(), before);
    }
}
