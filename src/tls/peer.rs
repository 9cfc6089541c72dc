//! The peer port's check that a connecting member's client certificate names the address
//! it connects from, as etcd does after the handshake: when the certificate has IP or DNS
//! SANs, the remote IP must be one of the IP SANs, or one of the DNS SANs must resolve to
//! it. Turned off by `--experimental-peer-skip-client-san-verification`.

use std::net::IpAddr;
use std::time::Duration;

use crate::x509::cert;

/// How long all DNS look-ups of one check may take together.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);

/// `Err(reason)` (in etcd's words) when the certificate `leaf_der` does not name `remote`.
pub(crate) async fn check_remote_address(leaf_der: &[u8], remote: IpAddr) -> Result<(), String> {
    let sans = match cert::parse(leaf_der) {
        Ok(leaf) => cert::sans(&leaf),
        Err(e) => return Err(format!("x509: {e}")),
    };
    if sans.ips.is_empty() && sans.dns.is_empty() {
        return Ok(());
    }
    let remote = remote.to_canonical();
    let host = remote.to_string();
    if !sans.ips.is_empty() {
        if cert::host_matches(&sans, &host) {
            return Ok(());
        }
        if sans.dns.is_empty() {
            return Err(cert::host_mismatch_text(&sans, &host));
        }
    }
    let lookups = async {
        let mut last_error = None;
        for name in sans.dns.iter().filter(|n| !n.starts_with("*.")) {
            match tokio::net::lookup_host((name.as_str(), 0)).await {
                Ok(addrs) => {
                    if addrs.map(|a| a.ip().to_canonical()).any(|ip| ip == remote) {
                        return Ok(());
                    }
                }
                Err(e) => last_error = Some(format!("lookup {name}: {e}")),
            }
        }
        Err(last_error)
    };
    let last_error = match tokio::time::timeout(LOOKUP_TIMEOUT, lookups).await {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => Some(format!("DNS look-ups took more than {LOOKUP_TIMEOUT:?}")),
    };
    let suffix = last_error.map(|e| format!(" ({e})")).unwrap_or_default();
    Err(format!(
        "tls: {host:?} does not match any of DNSNames {}{suffix}",
        cert::go_quoted_list(&sans.dns)
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cert_with(sans: &[&str]) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().unwrap();
        let params =
            rcgen::CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn lo() -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }

    #[tokio::test]
    async fn ip_sans_must_name_the_remote_address() {
        assert_eq!(
            check_remote_address(&cert_with(&["127.0.0.1"]), lo()).await,
            Ok(())
        );
        assert_eq!(
            check_remote_address(&cert_with(&["10.0.0.1"]), lo()).await,
            Err("x509: certificate is valid for 10.0.0.1, not 127.0.0.1".to_string())
        );
        assert_eq!(check_remote_address(&cert_with(&[]), lo()).await, Ok(()));
        // An IPv4 peer seen through an IPv6 socket.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert_eq!(
            check_remote_address(&cert_with(&["127.0.0.1"]), mapped).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn dns_sans_resolve_to_the_remote_address() {
        assert_eq!(
            check_remote_address(&cert_with(&["localhost"]), lo()).await,
            Ok(())
        );
        let err = check_remote_address(&cert_with(&["10.0.0.1", "*.example.com"]), lo())
            .await
            .unwrap_err();
        assert_eq!(
            err,
            "tls: \"127.0.0.1\" does not match any of DNSNames [\"*.example.com\"]"
        );
    }
}
