//! Issuing server, peer and client certificates: the key usages and extended key usages each
//! role needs, SANs from `--hosts`, and the validity window.
//!
//! - server: serverAuth, SANs = the hosts clients connect to;
//! - peer: serverAuth + clientAuth (members connect to each other), SANs = the member's hosts;
//! - client: clientAuth, CN = the user name (etcd's CN-based authentication).

use std::net::IpAddr;

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SanType,
};

use super::ca::{self, Ca};
use super::certinfo::{CertInfo, Role};
use super::keys::{self, KeyType};
use super::times::{self, Window};
use super::PkiError;

/// A host a certificate is valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Host {
    /// A DNS name (`etcd1.example.com`, `localhost`, `*.example.com`).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl Host {
    /// Parses one `--hosts` item.
    ///
    /// # Errors
    /// A message saying what to give instead (a URL, a port, a bad character).
    pub fn parse(s: &str) -> Result<Host, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty host name".to_string());
        }
        if s.contains("://") {
            return Err(format!(
                "{s:?} is a URL: give only the host, e.g. 10.0.1.10"
            ));
        }
        let bare = s
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(s);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(Host::Ip(ip));
        }
        if let Some((h, p)) = s.rsplit_once(':') {
            if !h.is_empty() && p.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("{s:?} has a port: give only the host ({h})"));
            }
        }
        let name = s.trim_end_matches('.');
        let wildcard_body = name.strip_prefix("*.").unwrap_or(name);
        let ok_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.len() > 253 || !wildcard_body.split('.').all(ok_label) {
            return Err(format!(
                "{s:?} is neither an IP address nor a valid DNS name (letters, digits, '-', '.'; a leading '*.' for a wildcard)"
            ));
        }
        Ok(Host::Dns(name.to_ascii_lowercase()))
    }

    fn to_san(&self) -> Result<SanType, PkiError> {
        Ok(match self {
            Host::Ip(ip) => SanType::IpAddress(*ip),
            Host::Dns(d) => SanType::DnsName(
                d.as_str()
                    .try_into()
                    .map_err(|e| PkiError::bad_flag("--hosts", format!("{d:?}: {e}")))?,
            ),
        })
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Host::Dns(d) => write!(f, "DNS:{d}"),
            Host::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// Parses `--hosts` items (already split at commas), dropping duplicates; with
/// `with_localhost`, adds `localhost` and `127.0.0.1`.
///
/// # Errors
/// [`PkiError::BadFlag`] naming the bad item.
pub fn parse_hosts(items: &[String], with_localhost: bool) -> Result<Vec<Host>, PkiError> {
    let mut hosts = Vec::new();
    for item in items {
        let h = Host::parse(item).map_err(|e| PkiError::bad_flag("--hosts", e))?;
        push_unique(&mut hosts, h);
    }
    if with_localhost {
        add_localhost(&mut hosts);
    }
    Ok(hosts)
}

/// Adds `localhost` and `127.0.0.1` unless present.
pub fn add_localhost(hosts: &mut Vec<Host>) {
    push_unique(hosts, Host::Dns("localhost".to_string()));
    push_unique(hosts, Host::Ip(IpAddr::from([127, 0, 0, 1])));
}

/// Appends `h` unless already present.
pub fn push_unique(hosts: &mut Vec<Host>, h: Host) {
    if !hosts.contains(&h) {
        hosts.push(h);
    }
}

/// What to issue.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// The role, which fixes the extended key usages.
    pub role: Role,
    /// The subject common name (the user name for client certificates).
    pub common_name: String,
    /// The SANs.
    pub hosts: Vec<Host>,
    /// The new key's type.
    pub key_type: KeyType,
    /// Validity.
    pub window: Window,
}

/// An issued certificate and its new key.
#[derive(Debug)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, parsed.
    pub info: CertInfo,
    /// Things the user should know (e.g. the expiry was shortened to the CA's).
    pub notes: Vec<String>,
}

/// The certificate parameters for `spec`, valid within `window`.
///
/// # Errors
/// [`PkiError`] when a host cannot be encoded or randomness fails.
pub fn leaf_params(spec: &LeafSpec, window: &Window) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, spec.common_name.as_str());
    params.distinguished_name = dn;
    params.subject_alt_names = spec
        .hosts
        .iter()
        .map(Host::to_san)
        .collect::<Result<_, _>>()?;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if spec.key_type.is_rsa() {
        // TLS 1.2 RSA key exchange encrypts to the key.
        params.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    params.extended_key_usages = match spec.role {
        Role::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
        Role::Peer => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = window.not_before;
    params.not_after = window.not_after;
    params.serial_number = Some(ca::random_serial()?);
    Ok(params)
}

/// Issues a certificate for `spec` signed by `ca`, with a new key. A default expiry later
/// than the CA's is shortened to the CA's (a note says so); an explicit one is an error.
///
/// # Errors
/// [`PkiError`] for bad input or a signing failure.
pub fn issue(ca: &Ca, spec: &LeafSpec) -> Result<Issued, PkiError> {
    if spec.common_name.trim().is_empty() {
        return Err(PkiError::bad_flag("--name", "the name must not be empty"));
    }
    if matches!(spec.role, Role::Server | Role::Peer) && spec.hosts.is_empty() {
        return Err(PkiError::bad_flag(
            "--hosts",
            format!(
                "a {} certificate needs the host names or IP addresses clients connect to, e.g. --hosts 10.0.1.10,etcd1.example.com (add --with-localhost for localhost and 127.0.0.1)",
                spec.role.name()
            ),
        ));
    }
    let mut window = spec.window;
    let mut notes = Vec::new();
    if window.not_after > ca.cert.not_after {
        if window.explicit_end {
            return Err(PkiError::bad_flag(
                "--not-after",
                format!(
                    "{} is after the CA's own expiry ({}); nothing would trust the certificate then",
                    times::rfc3339(window.not_after),
                    times::rfc3339(ca.cert.not_after)
                ),
            ));
        }
        window.not_after = ca.cert.not_after;
        notes.push(format!(
            "expiry shortened to the CA's own expiry, {}",
            times::rfc3339(ca.cert.not_after)
        ));
    }
    let key = keys::generate(spec.key_type)?;
    let params = leaf_params(spec, &window)?;
    let cert_pem = ca.sign(&params, &key)?;
    let parsed = super::files::parse_pem(cert_pem.as_bytes()).map_err(PkiError::Crypto)?;
    let der = parsed
        .certs
        .into_iter()
        .next()
        .ok_or_else(|| PkiError::Crypto("signed certificate missing".to_string()))?;
    let info = CertInfo::parse(der).map_err(PkiError::Crypto)?;
    Ok(Issued {
        cert_pem,
        key_pem: key.serialize_pem(),
        info,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use time::{Duration, OffsetDateTime};

    fn window(now: OffsetDateTime, days: i64) -> Window {
        Window {
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(days),
            explicit_end: false,
        }
    }

    #[test]
    fn hosts_parse() {
        assert_eq!(
            Host::parse("10.0.0.1"),
            Ok(Host::Ip("10.0.0.1".parse().expect("ip")))
        );
        assert_eq!(
            Host::parse("[::1]"),
            Ok(Host::Ip("::1".parse().expect("ip")))
        );
        assert_eq!(
            Host::parse("Etcd1.Example.com"),
            Ok(Host::Dns("etcd1.example.com".into()))
        );
        assert_eq!(
            Host::parse("*.example.com"),
            Ok(Host::Dns("*.example.com".into()))
        );
        assert!(Host::parse("https://10.0.0.1:2379")
            .expect_err("url")
            .contains("URL"));
        assert!(Host::parse("10.0.0.1:2379")
            .expect_err("port")
            .contains("port"));
        assert!(Host::parse("bad host").is_err());
        assert!(Host::parse("").is_err());
        let hs = parse_hosts(&["a".into(), "a".into()], true).expect("hosts");
        assert_eq!(hs.len(), 3);
    }

    #[test]
    fn roles_get_their_usages() {
        let now = OffsetDateTime::now_utc();
        let new = ca::create("t", KeyType::EcdsaP256, &window(now, 100)).expect("ca");
        let ca = Ca::from_new(&new, Path::new("ca.pem"), Path::new("ca-key.pem"), now).expect("ca");
        for (role, server, client) in [
            (Role::Server, true, false),
            (Role::Peer, true, true),
            (Role::Client, false, true),
        ] {
            let spec = LeafSpec {
                role,
                common_name: "x".into(),
                hosts: vec![Host::Ip("127.0.0.1".parse().expect("ip"))],
                key_type: KeyType::EcdsaP256,
                window: window(now, 10),
            };
            let issued = issue(&ca, &spec).expect("issue");
            let eku = issued.info.eku.clone().expect("eku");
            assert_eq!(
                (eku.server_auth, eku.client_auth),
                (server, client),
                "{role:?}"
            );
            assert!(issued.info.role_problems(role).is_empty(), "{role:?}");
            assert_eq!(issued.info.basic_constraints, Some((false, None)));
            issued.info.verify_signed_by(&ca.cert).expect("chain");
            assert!(issued.info.covers_host("127.0.0.1"));
            assert!(!issued.info.covers_host("localhost"));
        }
    }

    #[test]
    fn expiry_is_clamped_to_the_ca() {
        let now = OffsetDateTime::now_utc();
        let new = ca::create("t", KeyType::EcdsaP256, &window(now, 10)).expect("ca");
        let ca = Ca::from_new(&new, Path::new("ca.pem"), Path::new("ca-key.pem"), now).expect("ca");
        let mut spec = LeafSpec {
            role: Role::Client,
            common_name: "root".into(),
            hosts: vec![],
            key_type: KeyType::EcdsaP256,
            window: window(now, 365),
        };
        let issued = issue(&ca, &spec).expect("issue");
        assert_eq!(issued.info.not_after, ca.cert.not_after);
        assert_eq!(issued.notes.len(), 1);
        spec.window.explicit_end = true;
        assert!(issue(&ca, &spec).is_err());
    }
}
