//! Facts about one parsed certificate, in the forms kvd's checks and messages need: the
//! subject in RFC 4514 form (as Go prints it), the Common Name, SANs, extended key usages,
//! validity times in Go's format (RFC 3339, also `kvd pki`'s date format), serial numbers,
//! and host-name matching with Go's rules.
//!
//! Knows nothing about chains, files or the network.

use std::net::IpAddr;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::X509Name;

/// What a certificate is used for, as its extended key usage must allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Usage {
    /// TLS server (`serverAuth`).
    ServerAuth,
    /// TLS client (`clientAuth`).
    ClientAuth,
}

/// Parses one DER certificate; the whole input must be the certificate.
pub(crate) fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        Ok(_) => Err("trailing bytes after the certificate".to_string()),
        Err(e) => Err(format!("malformed certificate: {e}")),
    }
}

/// True for an X.509 v3 certificate (webpki reads only those).
pub(crate) fn is_v3(cert: &X509Certificate<'_>) -> bool {
    cert.version().0 == 2
}

/// The subject or issuer in RFC 4514 form, most specific part first, as Go's
/// `pkix.Name.String()` prints it: `CN=alice,O=kvd,C=CN`.
pub(crate) fn dn_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let key = short_name(&oid).map_or(oid.clone(), str::to_string);
                    let value = match atv.as_str() {
                        Ok(s) => escape_dn_value(s),
                        Err(_) => format!("#{}", hex(atv.attr_value().data)),
                    };
                    format!("{key}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 short names of common attributes.
fn short_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.17" => "POSTALCODE",
        "0.9.2342.19200300.100.1.1" => "UID",
        "0.9.2342.19200300.100.1.25" => "DC",
        "1.2.840.113549.1.9.1" => "emailAddress",
        _ => return None,
    })
}

/// Escapes an attribute value as RFC 4514 asks.
fn escape_dn_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let last = s.chars().count().saturating_sub(1);
    for (i, c) in s.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Lower-case hex without separators.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first Common Name of the subject, if any.
pub(crate) fn common_name(cert: &X509Certificate<'_>) -> Option<String> {
    cert.subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_string)
}

/// The subject alternative names kvd checks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Sans {
    /// DNS names, as written.
    pub(crate) dns: Vec<String>,
    /// IP addresses.
    pub(crate) ips: Vec<IpAddr>,
}

/// The DNS and IP SANs of `cert` (none when the extension is absent or unreadable).
pub(crate) fn sans(cert: &X509Certificate<'_>) -> Sans {
    let mut out = Sans::default();
    if let Ok(Some(ext)) = cert.subject_alternative_name() {
        for name in &ext.value.general_names {
            match name {
                GeneralName::DNSName(d) => out.dns.push((*d).to_string()),
                GeneralName::IPAddress(b) => {
                    if let Ok(v4) = <[u8; 4]>::try_from(*b) {
                        out.ips.push(IpAddr::from(v4));
                    } else if let Ok(v6) = <[u8; 16]>::try_from(*b) {
                        out.ips.push(IpAddr::from(v6));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

/// True when the certificate's extended key usage allows `usage`: no EKU extension at all
/// (allowed for everything, as in Go), `anyExtendedKeyUsage`, or the usage itself.
pub(crate) fn eku_allows(cert: &X509Certificate<'_>, usage: Usage) -> bool {
    match cert.extended_key_usage() {
        Ok(None) => true,
        Ok(Some(ext)) => {
            let eku = ext.value;
            eku.any
                || match usage {
                    Usage::ServerAuth => eku.server_auth,
                    Usage::ClientAuth => eku.client_auth,
                }
        }
        Err(_) => false,
    }
}

/// The extended key usages a certificate lists, by name (empty when it has none).
pub(crate) fn eku_names(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.extended_key_usage() else {
        return Vec::new();
    };
    let e = ext.value;
    let mut out = Vec::new();
    for (on, name) in [
        (e.any, "any"),
        (e.server_auth, "serverAuth"),
        (e.client_auth, "clientAuth"),
        (e.code_signing, "codeSigning"),
        (e.email_protection, "emailProtection"),
        (e.time_stamping, "timeStamping"),
        (e.ocsp_signing, "OCSPSigning"),
    ] {
        if on {
            out.push(name.to_string());
        }
    }
    out.extend(e.other.iter().map(|o| o.to_id_string()));
    out
}

/// `notBefore` and `notAfter` as Unix seconds.
pub(crate) fn validity(cert: &X509Certificate<'_>) -> (i64, i64) {
    let v = cert.validity();
    (v.not_before.timestamp(), v.not_after.timestamp())
}

/// A Unix time as Go prints it in x509 errors (RFC 3339, UTC): `2020-01-02T00:00:00Z`.
pub(crate) fn go_time(secs: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => rfc3339(t),
        Err(_) => format!("@{secs}"),
    }
}

/// `t` as RFC 3339 in UTC with second precision, e.g. `2025-01-31T12:00:00Z`.
pub(crate) fn rfc3339(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The serial number as colon-separated hex without leading zero bytes (`1a:02`; `00` for
/// zero), as `kvd pki` and the revocation messages print it.
pub(crate) fn serial_hex(raw: &[u8]) -> String {
    let trimmed = serial_key(raw);
    let bytes = if trimmed.is_empty() {
        &[0u8][..]
    } else {
        trimmed
    };
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The serial number without leading zero bytes, so that equal serials compare equal.
pub(crate) fn serial_key(raw: &[u8]) -> &[u8] {
    let start = raw.iter().position(|b| *b != 0).unwrap_or(raw.len());
    &raw[start..]
}

/// Go's `VerifyHostname`: an IP address matches an IP SAN; a name matches a DNS SAN,
/// case-insensitively, with a leading `*.` matching exactly one label. The Common Name is
/// not consulted (Go >= 1.15).
pub(crate) fn host_matches(sans: &Sans, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host.parse::<IpAddr>() {
        return sans
            .ips
            .iter()
            .any(|s| s.to_canonical() == ip.to_canonical());
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    sans.dns.iter().any(|pattern| dns_matches(pattern, &host))
}

/// One DNS SAN against a lower-case host name.
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    if pattern.is_empty() || host.is_empty() {
        return false;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((first, rest)) => !first.is_empty() && rest == suffix,
            None => false,
        };
    }
    pattern == host
}

/// Go's text for a host-name mismatch (`x509.HostnameError`).
pub(crate) fn host_mismatch_text(sans: &Sans, host: &str) -> String {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<IpAddr>().is_ok() {
        if sans.ips.is_empty() {
            return format!(
                "x509: cannot validate certificate for {bare} because it doesn't contain any IP SANs"
            );
        }
        let valid: Vec<String> = sans.ips.iter().map(IpAddr::to_string).collect();
        return format!(
            "x509: certificate is valid for {}, not {bare}",
            valid.join(", ")
        );
    }
    if sans.dns.is_empty() {
        return format!("x509: certificate is not valid for any names, but wanted to match {bare}");
    }
    format!(
        "x509: certificate is valid for {}, not {bare}",
        sans.dns.join(", ")
    )
}

/// Go's `%q` of a list of strings: `["a" "b"]`.
pub(crate) fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sans(dns: &[&str], ips: &[&str]) -> Sans {
        Sans {
            dns: dns.iter().map(|s| s.to_string()).collect(),
            ips: ips.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn host_names_match_as_in_go() {
        let s = sans(&["*.example.com", "Node1"], &["10.0.0.1", "::1"]);
        assert!(host_matches(&s, "a.example.com"));
        assert!(!host_matches(&s, "a.b.example.com"));
        assert!(!host_matches(&s, "example.com"));
        assert!(host_matches(&s, "node1."));
        assert!(host_matches(&s, "10.0.0.1"));
        assert!(host_matches(&s, "[::1]"));
        assert!(!host_matches(&s, "127.0.0.1"));
        assert!(!host_matches(&sans(&[""], &[]), ""));
    }

    #[test]
    fn mismatch_texts_are_gos() {
        assert_eq!(
            host_mismatch_text(&sans(&[], &["10.0.0.1"]), "127.0.0.1"),
            "x509: certificate is valid for 10.0.0.1, not 127.0.0.1"
        );
        assert_eq!(
            host_mismatch_text(&sans(&["a"], &[]), "127.0.0.1"),
            "x509: cannot validate certificate for 127.0.0.1 because it doesn't contain any IP SANs"
        );
        assert_eq!(
            go_quoted_list(&["".to_string(), "a".to_string()]),
            "[\"\" \"a\"]"
        );
    }

    #[test]
    fn times_print_like_go() {
        assert_eq!(go_time(1_577_923_200), "2020-01-02T00:00:00Z");
    }

    #[test]
    fn serials_compare_without_leading_zeros() {
        assert_eq!(serial_key(&[0, 0, 5, 0]), &[5, 0]);
        assert_eq!(serial_key(&[0]), &[] as &[u8]);
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(escape_dn_value("a,b"), "a\\,b");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
        assert_eq!(escape_dn_value("#1"), "\\#1");
    }
}
