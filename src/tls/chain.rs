//! The trust store (a CA bundle plus CRLs) and certificate-chain verification.
//!
//! kvd verifies chains itself, because rustls' verifier (webpki) refuses X.509 v1
//! certificates, which `openssl x509 -req` makes without `-extfile` and which etcd (Go)
//! accepts as client certificates and as roots. The rules follow Go's `x509.Verify`:
//! - every certificate must be within its validity period (the leaf is checked first);
//! - each signature is verified with the issuer's public key (SHA-1 is refused);
//! - intermediates must be CAs (basicConstraints `CA:TRUE`); roots from the bundle need
//!   not be (v1 roots have no extensions); path-length constraints apply;
//! - unknown critical extensions are refused; name constraints are refused too, as kvd
//!   does not enforce them;
//! - every certificate in the chain that lists extended key usages must allow the wanted
//!   one (or `anyExtendedKeyUsage`);
//! - additionally (etcd checks this after the handshake), no certificate of the chain may
//!   be listed in a CRL issued by its issuer; the CRL's signature is verified.
//!
//! Errors read as Go's (`x509: certificate signed by unknown authority`, ...), since users
//! search for them.

use std::collections::HashSet;
use std::fmt;

use rustls::DistinguishedName;
use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::cert::{self, Usage};

/// Longest chain (leaf, intermediates, root) kvd tries to build.
const MAX_CHAIN: usize = 8;

/// Why a certificate chain was refused, in Go's words (see [`fmt::Display`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// A certificate cannot be parsed.
    Malformed(String),
    /// No chain to a trusted CA; `hint` says what went wrong with a candidate issuer.
    UnknownAuthority {
        /// `(problem, candidate name)` from the last candidate issuer that failed.
        hint: Option<(String, String)>,
    },
    /// Outside the validity period: `now` after `not_after`.
    Expired {
        /// Unix seconds.
        now: i64,
        /// Unix seconds.
        not_after: i64,
    },
    /// Outside the validity period: `now` before `not_before`.
    NotYetValid {
        /// Unix seconds.
        now: i64,
        /// Unix seconds.
        not_before: i64,
    },
    /// Extended key usage does not allow the wanted use.
    IncompatibleUsage,
    /// An intermediate that is not a CA.
    NotAuthorizedToSign,
    /// A path-length constraint is exceeded.
    TooManyIntermediates,
    /// A critical extension kvd does not handle.
    UnhandledCriticalExtension(String),
    /// Listed in a CRL issued by its issuer.
    Revoked {
        /// The serial number, colon-separated hex.
        serial: String,
        /// The CRL issuer.
        issuer: String,
    },
}

impl Failure {
    /// How telling an error is, to pick one when several candidate chains fail.
    fn rank(&self) -> u8 {
        match self {
            Failure::UnknownAuthority { hint: None } => 0,
            Failure::UnknownAuthority { hint: Some(_) } => 1,
            Failure::IncompatibleUsage => 2,
            Failure::Malformed(_) => 3,
            Failure::Expired { .. }
            | Failure::NotYetValid { .. }
            | Failure::NotAuthorizedToSign
            | Failure::TooManyIntermediates
            | Failure::UnhandledCriticalExtension(_) => 4,
            Failure::Revoked { .. } => 5,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Malformed(e) => write!(f, "x509: {e}"),
            Failure::UnknownAuthority { hint: None } => {
                f.write_str("x509: certificate signed by unknown authority")
            }
            Failure::UnknownAuthority {
                hint: Some((problem, name)),
            } => write!(
                f,
                "x509: certificate signed by unknown authority (possibly because of {problem:?} \
                 while trying to verify candidate authority certificate {name:?})"
            ),
            Failure::Expired { now, not_after } => write!(
                f,
                "x509: certificate has expired or is not yet valid: current time {} is after {}",
                cert::go_time(*now),
                cert::go_time(*not_after)
            ),
            Failure::NotYetValid { now, not_before } => write!(
                f,
                "x509: certificate has expired or is not yet valid: current time {} is before {}",
                cert::go_time(*now),
                cert::go_time(*not_before)
            ),
            Failure::IncompatibleUsage => {
                f.write_str("x509: certificate specifies an incompatible key usage")
            }
            Failure::NotAuthorizedToSign => {
                f.write_str("x509: certificate is not authorized to sign other certificates")
            }
            Failure::TooManyIntermediates => {
                f.write_str("x509: too many intermediates for path length constraint")
            }
            Failure::UnhandledCriticalExtension(what) => {
                write!(f, "x509: unhandled critical extension ({what})")
            }
            Failure::Revoked { serial, issuer } => write!(
                f,
                "x509: certificate revoked by CRL (serial {serial}, CRL issuer {issuer:?})"
            ),
        }
    }
}

/// A trusted CA certificate.
#[derive(Debug)]
struct Anchor {
    der: CertificateDer<'static>,
    subject_raw: Vec<u8>,
}

/// A certificate revocation list.
#[derive(Debug)]
struct Crl {
    der: Vec<u8>,
    issuer_raw: Vec<u8>,
    issuer: String,
    revoked: HashSet<Vec<u8>>,
}

/// Trusted CAs and CRLs: what client certificates (and, for kvd's own dials, servers'
/// certificates) must chain to.
#[derive(Debug, Default)]
pub(crate) struct TrustStore {
    anchors: Vec<Anchor>,
    crls: Vec<Crl>,
    hints: Vec<DistinguishedName>,
}

impl TrustStore {
    /// A store of these CA certificates (each must parse) and CRLs (DER).
    ///
    /// # Errors
    /// A CA certificate that does not parse (`Err((Some(index), reason))`, 0-based), or a
    /// CRL that does not parse or is not signed by the bundle's CA of its issuer name
    /// (`Err((None, reason))`).
    pub(crate) fn new(
        anchors: Vec<CertificateDer<'static>>,
        crls: Vec<Vec<u8>>,
    ) -> Result<TrustStore, (Option<usize>, String)> {
        let mut store = TrustStore::default();
        for (i, der) in anchors.into_iter().enumerate() {
            let subject_raw = cert::parse(&der)
                .map_err(|e| (Some(i), e))?
                .subject()
                .as_raw()
                .to_vec();
            store
                .hints
                .push(DistinguishedName::from(subject_raw.clone()));
            store.anchors.push(Anchor { der, subject_raw });
        }
        for (i, der) in crls.into_iter().enumerate() {
            let crl = store
                .parse_crl(der)
                .map_err(|e| (None, format!("CRL #{}: {e}", i + 1)))?;
            store.crls.push(crl);
        }
        Ok(store)
    }

    /// Parses a CRL and, when the bundle holds CAs of its issuer's name, checks that one of
    /// them signed it.
    fn parse_crl(&self, der: Vec<u8>) -> Result<Crl, String> {
        let (issuer_raw, issuer, revoked) = {
            let (rest, crl) = CertificateRevocationList::from_der(&der)
                .map_err(|e| format!("cannot parse: {e}"))?;
            if !rest.is_empty() {
                return Err("trailing bytes after the CRL".to_string());
            }
            let issuer_raw = crl.issuer().as_raw().to_vec();
            let issuer = cert::dn_string(crl.issuer());
            let mut candidates = 0;
            let mut signed = false;
            for anchor in self.anchors.iter().filter(|a| a.subject_raw == issuer_raw) {
                candidates += 1;
                if let Ok(ca) = cert::parse(&anchor.der) {
                    signed |= crl.verify_signature(ca.public_key()).is_ok();
                }
            }
            if candidates > 0 && !signed {
                return Err(format!(
                    "its signature does not verify with the trusted CA {issuer:?}: it was not issued by that CA"
                ));
            }
            let revoked = crl
                .iter_revoked_certificates()
                .map(|r| cert::serial_key(r.raw_serial()).to_vec())
                .collect();
            (issuer_raw, issuer, revoked)
        };
        Ok(Crl {
            der,
            issuer_raw,
            issuer,
            revoked,
        })
    }

    /// The subjects of the trusted CAs, sent to clients as hints.
    pub(crate) fn hints(&self) -> &[DistinguishedName] {
        &self.hints
    }

    /// How many CAs the store trusts.
    pub(crate) fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Issuers of CRLs that are not CAs of the bundle (their CRLs are checked against
    /// intermediates clients present), for a startup warning.
    pub(crate) fn foreign_crl_issuers(&self) -> Vec<String> {
        self.crls
            .iter()
            .filter(|c| !self.anchors.iter().any(|a| a.subject_raw == c.issuer_raw))
            .map(|c| c.issuer.clone())
            .collect()
    }

    /// Verifies that `end_entity` (with the `intermediates` the peer sent) chains to a
    /// trusted CA at Unix time `now` and may be used for `usage`.
    pub(crate) fn verify(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
        usage: Usage,
    ) -> Result<(), Failure> {
        let leaf = cert::parse(end_entity).map_err(Failure::Malformed)?;
        check_time(&leaf, now)?;
        check_extensions(&leaf, false)?;
        let inters: Vec<X509Certificate<'_>> = intermediates
            .iter()
            .filter_map(|d| cert::parse(d).ok())
            .collect();
        let mut search = Search {
            store: self,
            inters: &inters,
            now,
            usage,
            best: None,
        };
        // A certificate that is itself in the bundle is trusted as it is (as in Go).
        if let Some(i) = self
            .anchors
            .iter()
            .position(|a| a.der.as_ref() == end_entity)
        {
            if search.complete(&leaf, &[Node::Anchor(i)]) {
                return Ok(());
            }
        }
        let mut chain = Vec::new();
        if search.extend(&leaf, &mut chain) {
            return Ok(());
        }
        Err(search
            .best
            .unwrap_or(Failure::UnknownAuthority { hint: None }))
    }
}

/// A certificate above the leaf in a chain being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// `intermediates[i]`.
    Inter(usize),
    /// The store's anchor `i`.
    Anchor(usize),
}

/// One chain search (depth-first over candidate issuers).
struct Search<'s, 'c> {
    store: &'s TrustStore,
    inters: &'s [X509Certificate<'c>],
    now: i64,
    usage: Usage,
    best: Option<Failure>,
}

impl Search<'_, '_> {
    fn record(&mut self, failure: Failure) {
        if self
            .best
            .as_ref()
            .is_none_or(|b| failure.rank() >= b.rank())
        {
            self.best = Some(failure);
        }
    }

    /// Tries to finish the chain `leaf, chain...` at a trusted CA.
    fn extend(&mut self, leaf: &X509Certificate<'_>, chain: &mut Vec<Node>) -> bool {
        if chain.len() + 1 >= MAX_CHAIN {
            return false;
        }
        let store = self.store;
        let inters = self.inters;
        let child = match chain.last() {
            None => leaf,
            Some(Node::Inter(j)) => &inters[*j],
            Some(Node::Anchor(_)) => return false,
        };
        let issuer_raw = child.issuer().as_raw();
        // Trusted CAs first: the shortest chains.
        for (i, anchor) in store.anchors.iter().enumerate() {
            if anchor.subject_raw != issuer_raw {
                continue;
            }
            let Ok(ca) = cert::parse(&anchor.der) else {
                continue;
            };
            if let Err(f) = self.check_parent(child, &ca, chain.len() + 1, true) {
                self.record(f);
                continue;
            }
            chain.push(Node::Anchor(i));
            if self.complete(leaf, chain) {
                return true;
            }
            chain.pop();
        }
        for (j, ca) in inters.iter().enumerate() {
            if ca.subject().as_raw() != issuer_raw || chain.contains(&Node::Inter(j)) {
                continue;
            }
            if let Err(f) = self.check_parent(child, ca, chain.len() + 1, false) {
                self.record(f);
                continue;
            }
            chain.push(Node::Inter(j));
            if self.extend(leaf, chain) {
                return true;
            }
            chain.pop();
        }
        false
    }

    /// Checks a candidate issuer of `child` at position `depth` (the leaf is 0).
    fn check_parent(
        &self,
        child: &X509Certificate<'_>,
        parent: &X509Certificate<'_>,
        depth: usize,
        is_root: bool,
    ) -> Result<(), Failure> {
        check_signature(child, parent)?;
        check_time(parent, self.now)?;
        check_extensions(parent, true)?;
        let bc = parent
            .basic_constraints()
            .ok()
            .flatten()
            .map(|b| (b.value.ca, b.value.path_len_constraint));
        if !is_root && !bc.is_some_and(|(ca, _)| ca) {
            return Err(Failure::NotAuthorizedToSign);
        }
        if let Some(limit) = bc.and_then(|(_, limit)| limit) {
            let below = depth - 1;
            if below > limit as usize {
                return Err(Failure::TooManyIntermediates);
            }
        }
        Ok(())
    }

    /// A full chain: checks key usage along it and revocation; records why it fails.
    fn complete(&mut self, leaf: &X509Certificate<'_>, chain: &[Node]) -> bool {
        let store = self.store;
        let parsed: Vec<X509Certificate<'_>> = chain
            .iter()
            .filter_map(|n| match n {
                Node::Inter(j) => Some(self.inters[*j].clone()),
                Node::Anchor(i) => cert::parse(&store.anchors[*i].der).ok(),
            })
            .collect();
        let mut all: Vec<&X509Certificate<'_>> = vec![leaf];
        all.extend(parsed.iter());
        // A leaf that is itself the anchor is listed twice; that is harmless.
        if !all.iter().all(|c| cert::eku_allows(c, self.usage)) {
            self.record(Failure::IncompatibleUsage);
            return false;
        }
        for pair in all.windows(2) {
            if let Some(f) = store.revoked(pair[0], pair[1]) {
                self.record(f);
                return false;
            }
        }
        true
    }
}

impl TrustStore {
    /// `Some` when a CRL issued (and signed) by `issuer` lists `child`.
    fn revoked(
        &self,
        child: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
    ) -> Option<Failure> {
        let serial = cert::serial_key(child.raw_serial());
        for crl in self
            .crls
            .iter()
            .filter(|c| c.issuer_raw == child.issuer().as_raw() && c.revoked.contains(serial))
        {
            let signed = CertificateRevocationList::from_der(&crl.der)
                .map(|(_, parsed)| parsed.verify_signature(issuer.public_key()).is_ok())
                .unwrap_or(false);
            if signed {
                return Some(Failure::Revoked {
                    serial: colon_hex(serial),
                    issuer: crl.issuer.clone(),
                });
            }
        }
        None
    }
}

/// `0a:1b:2c`.
fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn check_time(c: &X509Certificate<'_>, now: i64) -> Result<(), Failure> {
    let (not_before, not_after) = cert::validity(c);
    if now < not_before {
        return Err(Failure::NotYetValid { now, not_before });
    }
    if now > not_after {
        return Err(Failure::Expired { now, not_after });
    }
    Ok(())
}

/// Refuses critical extensions kvd does not handle, and name constraints on CAs.
fn check_extensions(c: &X509Certificate<'_>, as_ca: bool) -> Result<(), Failure> {
    const HANDLED: &[&str] = &[
        "2.5.29.14", // subjectKeyIdentifier
        "2.5.29.15", // keyUsage (not enforced, as in Go)
        "2.5.29.17", // subjectAltName
        "2.5.29.19", // basicConstraints
        "2.5.29.31", // cRLDistributionPoints
        "2.5.29.32", // certificatePolicies
        "2.5.29.35", // authorityKeyIdentifier
        "2.5.29.37", // extKeyUsage
    ];
    for ext in c.extensions() {
        let oid = ext.oid.to_id_string();
        if oid == "2.5.29.30" && as_ca {
            return Err(Failure::UnhandledCriticalExtension(format!(
                "name constraints in CA {:?}: kvd does not enforce them",
                cert::dn_string(c.subject())
            )));
        }
        if ext.critical && !HANDLED.contains(&oid.as_str()) {
            return Err(Failure::UnhandledCriticalExtension(oid));
        }
    }
    Ok(())
}

/// Verifies `child`'s signature with `parent`'s key, refusing SHA-1 as Go does.
fn check_signature(
    child: &X509Certificate<'_>,
    parent: &X509Certificate<'_>,
) -> Result<(), Failure> {
    let name = candidate_name(parent);
    let alg = child.signature_algorithm.algorithm.to_id_string();
    let insecure = match alg.as_str() {
        "1.2.840.113549.1.1.5" => Some("SHA1-RSA"),
        "1.2.840.10045.4.1" => Some("ECDSA-SHA1"),
        "1.2.840.10040.4.3" => Some("DSA-SHA1"),
        "1.2.840.113549.1.1.4" => Some("MD5-RSA"),
        _ => None,
    };
    if let Some(insecure) = insecure {
        return Err(Failure::UnknownAuthority {
            hint: Some((
                format!("x509: cannot verify signature: insecure algorithm {insecure}"),
                name,
            )),
        });
    }
    child
        .verify_signature(Some(parent.public_key()))
        .map_err(|e| Failure::UnknownAuthority {
            hint: Some((format!("x509: {e}"), name)),
        })
}

/// How Go names a candidate issuer in hints: CN, else the first O, else the serial.
fn candidate_name(c: &X509Certificate<'_>) -> String {
    if let Some(cn) = cert::common_name(c).filter(|s| !s.is_empty()) {
        return cn;
    }
    if let Some(o) = c
        .subject()
        .iter_organization()
        .next()
        .and_then(|o| o.as_str().ok())
    {
        return o.to_string();
    }
    format!("serial:{}", c.serial)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams,
        SerialNumber,
    };
    use time::{Duration, OffsetDateTime};

    struct Ca {
        params: CertificateParams,
        key: KeyPair,
        der: CertificateDer<'static>,
    }

    fn ca(name: &str, is_ca: IsCa) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = is_ca;
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        Ca { params, key, der }
    }

    fn leaf(
        issuer: &Ca,
        cn: &str,
        ekus: Vec<ExtendedKeyUsagePurpose>,
        serial: u64,
    ) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.extended_key_usages = ekus;
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate().unwrap();
        let iss = Issuer::from_params(&issuer.params, &issuer.key);
        params.signed_by(&key, &iss).unwrap().der().clone()
    }

    fn now() -> i64 {
        OffsetDateTime::now_utc().unix_timestamp()
    }

    #[test]
    fn chains_to_the_bundle_and_checks_usage() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let other = ca("other", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let good = leaf(&root, "alice", vec![ExtendedKeyUsagePurpose::ClientAuth], 1);
        assert_eq!(store.verify(&good, &[], now(), Usage::ClientAuth), Ok(()));
        assert_eq!(
            store.verify(&good, &[], now(), Usage::ServerAuth),
            Err(Failure::IncompatibleUsage)
        );
        let none = leaf(&root, "bob", vec![], 2);
        assert_eq!(store.verify(&none, &[], now(), Usage::ServerAuth), Ok(()));
        let foreign = leaf(&other, "eve", vec![], 3);
        assert_eq!(
            store.verify(&foreign, &[], now(), Usage::ClientAuth),
            Err(Failure::UnknownAuthority { hint: None })
        );
    }

    #[test]
    fn a_same_named_impostor_ca_is_a_bad_signature() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let impostor = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let c = leaf(&impostor, "mallory", vec![], 1);
        let err = store.verify(&c, &[], now(), Usage::ClientAuth).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("x509: certificate signed by unknown authority (possibly because of"),
            "{err}"
        );
        assert!(err
            .to_string()
            .ends_with("candidate authority certificate \"root\")"));
    }

    #[test]
    fn intermediates_must_be_cas() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        for (is_ca, want) in [
            (IsCa::Ca(BasicConstraints::Unconstrained), Ok(())),
            (IsCa::ExplicitNoCa, Err(Failure::NotAuthorizedToSign)),
        ] {
            let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
            p.distinguished_name.push(DnType::CommonName, "inter");
            p.is_ca = is_ca;
            let key = KeyPair::generate().unwrap();
            let inter_der = p
                .signed_by(&key, &Issuer::from_params(&root.params, &root.key))
                .unwrap()
                .der()
                .clone();
            let inter = Ca {
                params: p,
                key,
                der: inter_der.clone(),
            };
            let c = leaf(&inter, "carol", vec![], 9);
            assert_eq!(
                store.verify(&c, &[inter_der], now(), Usage::ClientAuth),
                want
            );
        }
    }

    #[test]
    fn validity_periods_are_checked() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let c = leaf(&root, "dave", vec![], 4);
        let parsed = cert::parse(&c).unwrap();
        let (nb, na) = cert::validity(&parsed);
        assert!(matches!(
            store.verify(&c, &[], na + 10, Usage::ClientAuth),
            Err(Failure::Expired { .. })
        ));
        let err = store
            .verify(&c, &[], nb - 10, Usage::ClientAuth)
            .unwrap_err();
        assert!(err.to_string().contains("is before"), "{err}");
    }

    #[test]
    fn crls_revoke_by_serial_and_must_be_signed_by_the_issuer() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let bad = leaf(&root, "revoked", vec![], 77);
        let fine = leaf(&root, "fine", vec![], 78);
        let crl_params = |revoked: u64| CertificateRevocationListParams {
            this_update: OffsetDateTime::now_utc() - Duration::hours(1),
            next_update: OffsetDateTime::now_utc() + Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(revoked),
                revocation_time: OffsetDateTime::now_utc() - Duration::hours(1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = crl_params(77)
            .signed_by(&Issuer::from_params(&root.params, &root.key))
            .unwrap()
            .der()
            .to_vec();
        let store = TrustStore::new(vec![root.der.clone()], vec![crl]).unwrap();
        let err = store
            .verify(&bad, &[], now(), Usage::ClientAuth)
            .unwrap_err();
        assert!(matches!(err, Failure::Revoked { .. }), "{err}");
        assert!(err.to_string().contains("revoked by CRL"));
        assert_eq!(store.verify(&fine, &[], now(), Usage::ClientAuth), Ok(()));

        // A CRL with the CA's name but another key is refused when loading.
        let impostor = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let forged = crl_params(78)
            .signed_by(&Issuer::from_params(&impostor.params, &impostor.key))
            .unwrap()
            .der()
            .to_vec();
        let (_, reason) = TrustStore::new(vec![root.der.clone()], vec![forged]).unwrap_err();
        assert!(reason.contains("not issued by that CA"), "{reason}");
    }
}
