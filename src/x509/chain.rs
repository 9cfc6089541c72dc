//! The trust store (a CA bundle plus CRLs) and certificate-chain verification, as the TLS
//! listeners, kvd's own dials and `kvd pki check` all judge a chain.
//!
//! webpki (the verifier rustls uses) verifies v3 chains: signatures, validity, CA and
//! path-length constraints, name constraints, critical extensions, extended key usage.
//! webpki refuses X.509 v1 certificates, which `openssl x509 -req` makes without `-extfile`
//! and which etcd (Go) accepts as client certificates and as roots, and CA certificates
//! presented as the end entity, which Go accepts too: those chains take kvd's own path
//! ([`super::v1`]), with the same checks.
//!
//! On every verified chain kvd then checks, as Go does, that every certificate's extended
//! key usage allows the use and that the root is within its validity period (webpki checks
//! neither of those on the root), and, as etcd does after the handshake, that no
//! certificate is listed in a CRL issued (and signed) by its issuer.
//!
//! Errors read as Go's (`x509: certificate signed by unknown authority`, ...), since users
//! search for them.

use std::collections::HashSet;
use std::time::Duration;

use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, ServerName, TrustAnchor, UnixTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;
use x509_parser::revocation_list::CertificateRevocationList;

use super::cert::{self, Usage};
use super::failure::check_time;
pub(crate) use super::failure::Failure;
use super::v1::{self, Anchor};

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
    /// The anchors webpki can use (a CA certificate webpki cannot read is only used by
    /// the v1 path) ...
    webpki: Vec<TrustAnchor<'static>>,
    /// ... and the index of each in `anchors`.
    webpki_index: Vec<usize>,
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
            if let Ok(anchor) = webpki::anchor_from_trusted_cert(&der) {
                store.webpki.push(anchor.to_owned());
                store.webpki_index.push(store.anchors.len());
            }
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
    /// trusted CA at Unix time `now` and may be used for `usage`: webpki judges v3 chains,
    /// kvd's own path ([`super::v1`]) those with an X.509 v1 certificate or a CA certificate
    /// as the end entity.
    pub(crate) fn verify(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
        usage: Usage,
    ) -> Result<(), Failure> {
        let leaf = cert::parse(end_entity).map_err(Failure::Malformed)?;
        let v1_in_chain = !cert::is_v3(&leaf)
            || intermediates
                .iter()
                .any(|d| cert::parse(d).is_ok_and(|c| !cert::is_v3(&c)));
        if v1_in_chain {
            return self.verify_v1(end_entity, intermediates, now, usage);
        }
        match self.verify_v3(&leaf, end_entity, intermediates, now, usage) {
            Ok(()) => Ok(()),
            Err(Refusal::Checked(f)) => Err(f),
            // Go accepts a CA certificate as the end entity (a self-signed server
            // certificate made with `openssl req -x509` is one); webpki does not.
            Err(Refusal::Webpki(webpki::Error::CaUsedAsEndEntity)) => {
                self.verify_v1(end_entity, intermediates, now, usage)
            }
            Err(Refusal::Webpki(e)) => Err(self.explain(&e, end_entity, intermediates, now, usage)),
        }
    }

    /// [`TrustStore::verify`] for a server certificate dialed as `server_name` (a DNS name
    /// or an IP address): serverAuth, then Go's host-name rules on its SANs.
    pub(crate) fn verify_server(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        now: i64,
    ) -> Result<(), Failure> {
        self.verify(end_entity, intermediates, now, Usage::ServerAuth)?;
        let host = match server_name {
            ServerName::DnsName(d) => d.as_ref().to_string(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        let host = host.as_str();
        let leaf = cert::parse(end_entity).map_err(Failure::Malformed)?;
        let sans = cert::sans(&leaf);
        if cert::host_matches(&sans, host) {
            Ok(())
        } else {
            Err(Failure::Host(cert::host_mismatch_text(&sans, host)))
        }
    }

    /// kvd's own verification ([`super::v1`]) against this store.
    fn verify_v1(
        &self,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
        usage: Usage,
    ) -> Result<(), Failure> {
        let check_path = |chain: &[&X509Certificate<'_>], usage| self.check_path(chain, usage);
        v1::verify(
            &self.anchors,
            end_entity,
            intermediates,
            now,
            usage,
            &check_path,
        )
    }

    /// webpki's verification of a v3 chain (`leaf` is `end_entity` parsed), then the checks
    /// it leaves out.
    fn verify_v3(
        &self,
        leaf: &X509Certificate<'_>,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
        usage: Usage,
    ) -> Result<(), Refusal> {
        let ee_der = CertificateDer::from(end_entity);
        let ee = webpki::EndEntityCert::try_from(&ee_der).map_err(Refusal::Webpki)?;
        let time = UnixTime::since_unix_epoch(Duration::from_secs(u64::try_from(now).unwrap_or(0)));
        let eku = match usage {
            Usage::ServerAuth => webpki::KeyUsage::server_auth(),
            Usage::ClientAuth => webpki::KeyUsage::client_auth(),
        };
        let path = ee
            .verify_for_usage(
                webpki::ALL_VERIFICATION_ALGS,
                &self.webpki,
                intermediates,
                time,
                eku,
                None,
                None,
            )
            .map_err(Refusal::Webpki)?;
        let anchor = self
            .webpki
            .iter()
            .position(|a| std::ptr::eq(a, path.anchor()))
            .and_then(|i| self.webpki_index.get(i))
            .and_then(|index| self.anchors.get(*index));
        let inter_ders: Vec<CertificateDer<'_>> =
            path.intermediate_certificates().map(|c| c.der()).collect();
        let mut chain: Vec<X509Certificate<'_>> = Vec::new();
        for der in &inter_ders {
            chain.push(cert::parse(der).map_err(|e| Refusal::Checked(Failure::Malformed(e)))?);
        }
        if let Some(anchor) = anchor {
            let root =
                cert::parse(&anchor.der).map_err(|e| Refusal::Checked(Failure::Malformed(e)))?;
            check_time(&root, now).map_err(Refusal::Checked)?;
            chain.push(root);
        }
        let mut all = vec![leaf];
        all.extend(chain.iter());
        self.check_path(&all, usage).map_err(Refusal::Checked)
    }

    /// Why webpki refused a chain, in Go's words: the reason kvd's own search finds when it
    /// refuses the chain too (which candidate issuer failed and why), else webpki's reason.
    fn explain(
        &self,
        e: &webpki::Error,
        end_entity: &[u8],
        intermediates: &[CertificateDer<'_>],
        now: i64,
        usage: Usage,
    ) -> Failure {
        use webpki::Error as E;
        if matches!(e, E::NameConstraintViolation | E::MalformedNameConstraint) {
            return Failure::NameConstraints;
        }
        if let Err(f) = self.verify_v1(end_entity, intermediates, now, usage) {
            return f;
        }
        match e {
            E::CertExpired { time, not_after } => Failure::Expired {
                now: unix(*time),
                not_after: unix(*not_after),
            },
            E::CertNotValidYet { time, not_before } => Failure::NotYetValid {
                now: unix(*time),
                not_before: unix(*not_before),
            },
            E::RequiredEkuNotFoundContext(_) => Failure::IncompatibleUsage,
            E::EndEntityUsedAsCa => Failure::NotAuthorizedToSign,
            E::PathLenConstraintViolated => Failure::TooManyIntermediates,
            E::UnsupportedCriticalExtension => {
                Failure::UnhandledCriticalExtension("webpki does not handle it".to_string())
            }
            E::UnknownIssuer => Failure::UnknownAuthority { hint: None },
            other => Failure::Refused(format!("{other}")),
        }
    }

    /// Go's checks on a whole chain (leaf first, root last): every certificate's extended
    /// key usage allows `usage`, and no certificate is listed in a CRL issued (and signed)
    /// by the next one.
    pub(super) fn check_path(
        &self,
        chain: &[&X509Certificate<'_>],
        usage: Usage,
    ) -> Result<(), Failure> {
        if !chain.iter().all(|c| cert::eku_allows(c, usage)) {
            return Err(Failure::IncompatibleUsage);
        }
        for pair in chain.windows(2) {
            if let Some(f) = self.revoked(pair[0], pair[1]) {
                return Err(f);
            }
        }
        Ok(())
    }

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
                    serial: cert::serial_hex(serial),
                    issuer: crl.issuer.clone(),
                });
            }
        }
        None
    }
}

/// Why the webpki path refused a chain: webpki itself, or one of kvd's checks after it.
enum Refusal {
    Webpki(webpki::Error),
    Checked(Failure),
}

/// Unix seconds of a webpki time.
fn unix(t: UnixTime) -> i64 {
    i64::try_from(t.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
        ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod, KeyPair,
        NameConstraints, RevokedCertParams, SerialNumber,
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

    #[test]
    fn webpki_judges_v3_chains_and_enforces_name_constraints() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "constrained");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName("example.com".into())],
            excluded_subtrees: vec![],
        });
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        let root = Ca { params, key, der };
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let issue = |san: &str| {
            let mut p = CertificateParams::new(vec![san.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, "svc");
            let k = KeyPair::generate().unwrap();
            p.signed_by(&k, &Issuer::from_params(&root.params, &root.key))
                .unwrap()
                .der()
                .clone()
        };
        // kvd's own path refuses name-constrained CAs; webpki checks the constraint.
        let inside = issue("a.example.com");
        assert_eq!(store.verify(&inside, &[], now(), Usage::ServerAuth), Ok(()));
        assert!(store
            .verify_v1(&inside, &[], now(), Usage::ServerAuth)
            .is_err());
        let outside = issue("a.example.org");
        assert_eq!(
            store.verify(&outside, &[], now(), Usage::ServerAuth),
            Err(Failure::NameConstraints)
        );
    }

    #[test]
    fn a_trusted_ca_certificate_serves_as_its_own_end_entity() {
        // Go accepts it (webpki refuses a CA as the end entity).
        let root = ca("self-signed", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        assert_eq!(
            store.verify(&root.der, &[], now(), Usage::ServerAuth),
            Ok(())
        );
        let other = TrustStore::new(
            vec![ca("other", IsCa::Ca(BasicConstraints::Unconstrained)).der],
            vec![],
        )
        .unwrap();
        assert!(other
            .verify(&root.der, &[], now(), Usage::ServerAuth)
            .is_err());
    }

    #[test]
    fn an_expired_root_fails_the_chain_as_in_go() {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "old root");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = OffsetDateTime::now_utc() - Duration::days(30);
        params.not_after = OffsetDateTime::now_utc() - Duration::days(1);
        let key = KeyPair::generate().unwrap();
        let der = params.self_signed(&key).unwrap().der().clone();
        let root = Ca { params, key, der };
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let c = leaf(&root, "young", vec![], 5);
        let err = store.verify(&c, &[], now(), Usage::ClientAuth).unwrap_err();
        assert!(matches!(err, Failure::Expired { .. }), "{err}");
    }

    #[test]
    fn server_certificates_must_name_the_host() {
        let root = ca("root", IsCa::Ca(BasicConstraints::Unconstrained));
        let store = TrustStore::new(vec![root.der.clone()], vec![]).unwrap();
        let mut p = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "member");
        let k = KeyPair::generate().unwrap();
        let c = p
            .signed_by(&k, &Issuer::from_params(&root.params, &root.key))
            .unwrap()
            .der()
            .clone();
        let name = |s: &'static str| ServerName::try_from(s).unwrap();
        assert_eq!(
            store.verify_server(&c, &[], &name("127.0.0.1"), now()),
            Ok(())
        );
        assert_eq!(
            store.verify_server(&c, &[], &name("127.0.0.2"), now()),
            Err(Failure::Host(
                "x509: certificate is valid for 127.0.0.1, not 127.0.0.2".to_string()
            ))
        );
    }
}
