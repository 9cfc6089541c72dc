//! URL parsing for the listen and advertise URL settings and for `initial-cluster`.
//!
//! Owns the URL forms etcd accepts: `scheme://host:port` with scheme `http`, `https`, `unix`
//! or `unixs`, no path; comma-separated lists; `name=url,...` cluster lists. It also owns
//! [`ListenUrl`], the validated form of a URL to bind. Pure functions over strings: no I/O,
//! no knowledge of flags or files (callers add which setting a URL came from).

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// The scheme of a listen or advertise URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plaintext TCP.
    Http,
    /// TLS over TCP.
    Https,
    /// Plaintext over a unix domain socket.
    Unix,
    /// TLS over a unix domain socket.
    Unixs,
}

impl Scheme {
    fn parse(s: &str) -> Option<Scheme> {
        match s.to_ascii_lowercase().as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "unix" => Some(Scheme::Unix),
            "unixs" => Some(Scheme::Unixs),
            _ => None,
        }
    }

    /// The scheme as written in URLs (`"https"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Unix => "unix",
            Scheme::Unixs => "unixs",
        }
    }

    /// True for `https` and `unixs`.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Https | Scheme::Unixs)
    }

    /// True for `unix` and `unixs`.
    pub fn is_unix(self) -> bool {
        matches!(self, Scheme::Unix | Scheme::Unixs)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated URL to listen on (`--listen-client-urls`, `--listen-peer-urls`, ...).
///
/// TCP URLs carry an IP address or `localhost` as host (etcd refuses other names for
/// binding) and a port (0 asks the OS for a free port). Unix URLs keep etcd's form
/// `unix://name:port`, whose socket file is `name:port` relative to the working directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListenUrl {
    /// The URL scheme.
    pub scheme: Scheme,
    /// The host without IPv6 brackets: an IP address or `localhost` (for unix URLs, the
    /// part before the colon).
    pub host: String,
    /// The TCP port; 0 for unix URLs.
    pub port: u16,
    /// The socket file of a unix URL (`unix://localhost:2379` -> `localhost:2379`); `None`
    /// for TCP URLs.
    pub path: Option<PathBuf>,
    /// The URL as the user wrote it (trimmed, scheme in lower case).
    pub raw: String,
}

impl ListenUrl {
    /// True when connections to this URL use TLS (`https`, `unixs`).
    pub fn is_tls(&self) -> bool {
        self.scheme.is_tls()
    }

    /// True for unix domain socket URLs.
    pub fn is_unix(&self) -> bool {
        self.scheme.is_unix()
    }

    /// The `host:port` string to bind a TCP listener to, with brackets around IPv6
    /// addresses (`[::1]:2379`); `None` for unix URLs (bind [`ListenUrl::path`] instead).
    pub fn bind_address(&self) -> Option<String> {
        if self.is_unix() {
            return None;
        }
        if self.host.contains(':') {
            Some(format!("[{}]:{}", self.host, self.port))
        } else {
            Some(format!("{}:{}", self.host, self.port))
        }
    }
}

impl fmt::Display for ListenUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Why a URL was refused. The texts of the first three are etcd's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not one of the four schemes.
    #[error("URL scheme must be http, https, unix, or unixs: {0}")]
    Scheme(String),
    /// No `host:port` after the scheme.
    #[error("URL address does not have the form \"host:port\": {0}")]
    HostPort(String),
    /// Something after `host:port`.
    #[error("URL must not contain a path: {0}")]
    Path(String),
    /// The port is not a number from 0 to 65535.
    #[error("URL port must be a number from 0 to 65535: {0}")]
    Port(String),
    /// The host is not an IP address or a valid DNS name.
    #[error("URL host is not a valid IP address or host name: {0}")]
    Host(String),
    /// A listen URL whose host is a name other than `localhost`.
    #[error("expected IP in URL for binding ({0})")]
    BindHost(String),
    /// An advertised URL with an empty host.
    #[error("unexpected empty host ({0})")]
    EmptyHost(String),
    /// An empty list.
    #[error("no valid URLs given")]
    Empty,
}

/// A syntactically valid URL, before the listen/advertise specific checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ParsedUrl {
    scheme: Scheme,
    /// Host without brackets.
    host: String,
    port: u16,
    /// `host:port` exactly as written (brackets kept).
    authority: String,
    /// Scheme in lower case + "://" + authority.
    canonical: String,
}

/// Parses one URL in etcd's accepted form.
fn parse_url(input: &str) -> Result<ParsedUrl, UrlError> {
    let trimmed = input.trim();
    let Some((scheme_text, rest)) = trimmed.split_once("://") else {
        // "localhost:2379" or "" or "ftp:x": no scheme we know.
        return Err(UrlError::Scheme(trimmed.to_string()));
    };
    let scheme = Scheme::parse(scheme_text).ok_or_else(|| UrlError::Scheme(trimmed.to_string()))?;
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if !tail.is_empty() {
        return Err(UrlError::Path(trimmed.to_string()));
    }
    if authority.contains('@') {
        // user:password@host is not a listen or advertise address.
        return Err(UrlError::HostPort(trimmed.to_string()));
    }
    let (host, port_text) =
        split_host_port(authority).ok_or_else(|| UrlError::HostPort(trimmed.to_string()))?;
    if port_text.is_empty() || !port_text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(UrlError::Port(trimmed.to_string()));
    }
    let port: u16 = port_text
        .parse()
        .map_err(|_| UrlError::Port(trimmed.to_string()))?;
    if !host.is_empty() && host.parse::<IpAddr>().is_err() && url::Host::parse(host).is_err() {
        return Err(UrlError::Host(trimmed.to_string()));
    }
    Ok(ParsedUrl {
        scheme,
        host: host.to_string(),
        port,
        authority: authority.to_string(),
        canonical: format!("{}://{}", scheme.as_str(), authority),
    })
}

/// Splits `host:port` or `[v6]:port` the way Go's `net.SplitHostPort` does: exactly one
/// colon outside brackets. Returns the host without brackets.
fn split_host_port(authority: &str) -> Option<(&str, &str)> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = after.strip_prefix(':')?;
        if host.is_empty() || port.contains(':') {
            return None;
        }
        return Some((host, port));
    }
    let (host, port) = authority.rsplit_once(':')?;
    if host.contains(':') || host.contains('[') || host.contains(']') {
        return None;
    }
    Some((host, port))
}

/// Parses a URL to listen on: etcd's syntax, and for TCP an IP address or `localhost`.
pub(crate) fn parse_listen_url(input: &str) -> Result<ListenUrl, UrlError> {
    let parsed = parse_url(input)?;
    if parsed.scheme.is_unix() {
        return Ok(ListenUrl {
            scheme: parsed.scheme,
            host: parsed.host,
            port: 0,
            path: Some(PathBuf::from(&parsed.authority)),
            raw: parsed.canonical,
        });
    }
    if parsed.host != "localhost" && parsed.host.parse::<IpAddr>().is_err() {
        return Err(UrlError::BindHost(parsed.canonical));
    }
    Ok(ListenUrl {
        scheme: parsed.scheme,
        host: parsed.host,
        port: parsed.port,
        path: None,
        raw: parsed.canonical,
    })
}

/// Parses a URL to advertise to clients or peers: etcd's syntax and a non-empty host.
/// Returns the URL as it will be advertised (trimmed, scheme in lower case).
pub(crate) fn parse_advertise_url(input: &str) -> Result<String, UrlError> {
    let parsed = parse_url(input)?;
    if parsed.host.is_empty() {
        return Err(UrlError::EmptyHost(parsed.canonical));
    }
    Ok(parsed.canonical)
}

/// True when two advertised URLs might reach the same address once host names are
/// resolved: same scheme and port, and the hosts are equal or one of them is a name (two
/// different IP literals never match). Unparsable URLs never match.
pub(crate) fn may_match(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (parse_url(a), parse_url(b)) else {
        return false;
    };
    let is_ip = |h: &str| h.parse::<IpAddr>().is_ok();
    a.scheme == b.scheme
        && a.port == b.port
        && (a.host == b.host || !is_ip(&a.host) || !is_ip(&b.host))
}

/// One problem in an `initial-cluster` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ClusterError {
    /// An entry without a name before `=`.
    #[error("entry {0:?} has no member name before '='")]
    EmptyName(String),
    /// An entry whose URL is not valid.
    #[error("member {name:?}: {source}")]
    Url {
        /// The member name of the entry.
        name: String,
        /// What is wrong with its URL.
        source: UrlError,
    },
}

/// Parses `name=url,name=url,...` (a name may appear several times, one URL each).
///
/// Empty entries are skipped, as etcd does. Returns the pairs in the order written, each URL
/// in the form [`parse_advertise_url`] returns, or every entry that is wrong.
pub(crate) fn parse_initial_cluster(
    input: &str,
) -> Result<Vec<(String, String)>, Vec<ClusterError>> {
    let mut members = Vec::new();
    let mut errors = Vec::new();
    for entry in input.split(',') {
        if entry.is_empty() {
            continue;
        }
        let (name, url) = entry.split_once('=').unwrap_or((entry, ""));
        let name = name.trim();
        if name.is_empty() {
            errors.push(ClusterError::EmptyName(entry.to_string()));
            continue;
        }
        match parse_advertise_url(url) {
            Ok(url) => members.push((name.to_string(), url)),
            Err(source) => errors.push(ClusterError::Url {
                name: name.to_string(),
                source,
            }),
        }
    }
    if errors.is_empty() {
        Ok(members)
    } else {
        Err(errors)
    }
}

/// Splits a comma-separated list, trimming blanks around items (as etcd trims URLs).
pub(crate) fn split_list(input: &str) -> Vec<String> {
    input.split(',').map(|s| s.trim().to_string()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_listen_urls() {
        let u = parse_listen_url("http://localhost:2379").unwrap();
        assert_eq!(u.scheme, Scheme::Http);
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 2379);
        assert_eq!(u.path, None);
        assert!(!u.is_tls());
        assert_eq!(u.bind_address().unwrap(), "localhost:2379");

        let u = parse_listen_url(" HTTPS://127.0.0.1:0 ").unwrap();
        assert!(u.is_tls());
        assert_eq!(u.port, 0);
        assert_eq!(u.raw, "https://127.0.0.1:0");

        let u = parse_listen_url("https://[::1]:2380").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.bind_address().unwrap(), "[::1]:2380");
        assert_eq!(u.raw, "https://[::1]:2380");

        let u = parse_listen_url("http://0.0.0.0:2379").unwrap();
        assert_eq!(u.bind_address().unwrap(), "0.0.0.0:2379");
    }

    #[test]
    fn parses_unix_listen_urls_like_etcd() {
        let u = parse_listen_url("unixs://localhost:2379").unwrap();
        assert_eq!(u.scheme, Scheme::Unixs);
        assert!(u.is_tls());
        assert!(u.is_unix());
        assert_eq!(u.port, 0);
        assert_eq!(u.path, Some(PathBuf::from("localhost:2379")));
        assert_eq!(u.bind_address(), None);
        assert!(!parse_listen_url("unix://localhost:1").unwrap().is_tls());
    }

    #[test]
    fn refuses_what_etcd_refuses_with_etcds_words() {
        assert_eq!(
            parse_listen_url("ftp://127.0.0.1:2379")
                .unwrap_err()
                .to_string(),
            "URL scheme must be http, https, unix, or unixs: ftp://127.0.0.1:2379"
        );
        assert_eq!(
            parse_listen_url("http://127.0.0.1")
                .unwrap_err()
                .to_string(),
            "URL address does not have the form \"host:port\": http://127.0.0.1"
        );
        assert_eq!(
            parse_listen_url("http://127.0.0.1:2379/foo")
                .unwrap_err()
                .to_string(),
            "URL must not contain a path: http://127.0.0.1:2379/foo"
        );
        assert_eq!(
            parse_listen_url("http://example.com:2379")
                .unwrap_err()
                .to_string(),
            "expected IP in URL for binding (http://example.com:2379)"
        );
        assert_eq!(
            parse_advertise_url("http://:2379").unwrap_err().to_string(),
            "unexpected empty host (http://:2379)"
        );
        assert!(matches!(
            parse_listen_url("127.0.0.1:2379"),
            Err(UrlError::Scheme(_))
        ));
        assert!(matches!(parse_listen_url(""), Err(UrlError::Scheme(_))));
        assert!(matches!(
            parse_listen_url("http://1.2.3.4:2379/"),
            Err(UrlError::Path(_))
        ));
        assert!(matches!(
            parse_listen_url("http://1.2.3.4:2379?a=b"),
            Err(UrlError::Path(_))
        ));
    }

    #[test]
    fn refuses_bad_ports_and_hosts() {
        assert!(matches!(
            parse_listen_url("http://127.0.0.1:99999"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            parse_listen_url("http://127.0.0.1:"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            parse_listen_url("http://127.0.0.1:ab"),
            Err(UrlError::Port(_))
        ));
        assert!(matches!(
            parse_listen_url("http://::1:2379"),
            Err(UrlError::HostPort(_))
        ));
        assert!(matches!(
            parse_advertise_url("http://a b:2379"),
            Err(UrlError::Host(_))
        ));
        assert!(matches!(
            parse_advertise_url("http://u@h:1"),
            Err(UrlError::HostPort(_))
        ));
    }

    #[test]
    fn advertise_urls_may_use_names() {
        assert_eq!(
            parse_advertise_url("https://node1.example.com:2379").unwrap(),
            "https://node1.example.com:2379"
        );
        assert!(may_match("http://localhost:2380", "http://127.0.0.1:2380"));
        assert!(may_match("http://node1:2380", "http://node2:2380"));
        assert!(!may_match("http://10.0.0.1:2380", "http://10.0.0.2:2380"));
        assert!(!may_match("http://localhost:2380", "http://127.0.0.1:2381"));
        assert!(!may_match(
            "http://localhost:2380",
            "https://localhost:2380"
        ));
    }

    #[test]
    fn parses_initial_cluster_with_repeated_names() {
        let members = parse_initial_cluster(
            "a=http://10.0.0.1:2380,b=https://10.0.0.2:2380,,a=http://10.0.0.3:2380",
        )
        .unwrap();
        assert_eq!(
            members,
            vec![
                ("a".to_string(), "http://10.0.0.1:2380".to_string()),
                ("b".to_string(), "https://10.0.0.2:2380".to_string()),
                ("a".to_string(), "http://10.0.0.3:2380".to_string()),
            ]
        );
    }

    #[test]
    fn reports_every_bad_initial_cluster_entry() {
        let errors = parse_initial_cluster("a,=http://x:1,c=ftp://x:1,d=http://x:1").unwrap_err();
        assert_eq!(errors.len(), 3);
        assert_eq!(
            errors[0].to_string(),
            "member \"a\": URL scheme must be http, https, unix, or unixs: "
        );
        assert_eq!(
            errors[1],
            ClusterError::EmptyName("=http://x:1".to_string())
        );
        assert!(errors[2].to_string().contains("ftp://x:1"));
    }

    #[test]
    fn splits_lists() {
        assert_eq!(split_list("a, b ,c"), vec!["a", "b", "c"]);
    }
}
