//! `kvd pki cluster`: everything a TLS cluster needs in one command. One CA (an existing
//! one in `--dir` is reused), one certificate per member (serverAuth + clientAuth, so it
//! serves both the client and the peer port, SANs = the member's hosts), a client
//! certificate for etcdctl (CN = the user, for CN-based auth), one etcd-style
//! `--config-file` YAML per member, and the command lines to start and use the cluster.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::args::ClusterArgs;
use super::ca::{self, Ca};
use super::certinfo::Role;
use super::files::{self, Naming, Output};
use super::issue::{self, Host, LeafSpec};
use super::times::{self, Window};
use super::PkiError;

/// The default client port when `--client-urls` does not name one.
pub const DEFAULT_CLIENT_PORT: u16 = 2379;
/// The default peer port when a member URL has none.
pub const DEFAULT_PEER_PORT: u16 = 2380;

/// A `scheme://host:port` URL of a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The host as written in URLs (`10.0.1.10`, `[::1]`, `etcd1.example.com`).
    pub host: String,
    /// The host as a certificate SAN.
    pub san: Host,
    /// The port.
    pub port: u16,
}

impl Endpoint {
    /// Parses `https://host[:port]` (no path), with `default_port` when none is given.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(s: &str, default_port: u16) -> Result<Endpoint, String> {
        let url = url::Url::parse(s.trim())
            .map_err(|e| format!("{s:?} is not a URL ({e}); write https://HOST:PORT"))?;
        if url.scheme() != "https" {
            return Err(format!(
                "{s:?} uses {}://; kvd pki sets up TLS, so write https://",
                url.scheme()
            ));
        }
        if !(url.path().is_empty() || url.path() == "/") || url.query().is_some() {
            return Err(format!(
                "{s:?} has a path or query; write https://HOST:PORT"
            ));
        }
        let host = url
            .host_str()
            .ok_or_else(|| format!("{s:?} has no host"))?
            .to_string();
        let san = Host::parse(&host)?;
        Ok(Endpoint {
            host,
            san,
            port: url.port().unwrap_or(default_port),
        })
    }

    /// The URL clients and peers use.
    pub fn url(&self) -> String {
        format!("https://{}:{}", self.host, self.port)
    }

    /// The URL to listen on: etcd binds only IP addresses, so a DNS name listens on all
    /// interfaces and `localhost` on 127.0.0.1.
    pub fn listen_url(&self) -> String {
        match &self.san {
            Host::Ip(_) => self.url(),
            Host::Dns(d) if d == "localhost" => format!("https://127.0.0.1:{}", self.port),
            Host::Dns(_) => format!("https://0.0.0.0:{}", self.port),
        }
    }

    fn is_loopback_or_any(&self) -> bool {
        match &self.san {
            Host::Ip(ip) => ip.is_loopback() || ip.is_unspecified(),
            Host::Dns(d) => d == "localhost",
        }
    }
}

/// Parses `name=URL` items (from `--members` or `--client-urls`).
///
/// # Errors
/// [`PkiError::BadFlag`] naming the flag and the bad item.
pub fn parse_named(
    flag: &'static str,
    items: &[String],
    default_port: u16,
) -> Result<Vec<(String, Endpoint)>, PkiError> {
    let mut out: Vec<(String, Endpoint)> = Vec::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, url) = item.split_once('=').ok_or_else(|| {
            PkiError::bad_flag(flag, format!("{item:?} is not NAME=https://HOST:PORT"))
        })?;
        let name = name.trim();
        if !files::valid_stem(name) {
            return Err(PkiError::bad_flag(
                flag,
                format!("{name:?} is not a usable member name (letters, digits, '-', '_', '.', '@'; not \"ca\")"),
            ));
        }
        if out.iter().any(|(n, _)| n == name) {
            return Err(PkiError::bad_flag(
                flag,
                format!("member {name:?} is given twice"),
            ));
        }
        let ep = Endpoint::parse(url, default_port)
            .map_err(|e| PkiError::bad_flag(flag, format!("{name}: {e}")))?;
        out.push((name.to_string(), ep));
    }
    Ok(out)
}

/// One member of the cluster to set up.
#[derive(Debug, Clone)]
pub struct Member {
    /// The member name (etcd's `name`).
    pub name: String,
    /// Its peer URL.
    pub peer: Endpoint,
    /// Its client URL.
    pub client: Endpoint,
}

/// Combines `--members` and `--client-urls`: a member without a client URL uses its peer
/// host on port 2379.
///
/// # Errors
/// [`PkiError::BadFlag`] for unknown names in `--client-urls` or duplicate URLs.
pub fn plan_members(
    peers: Vec<(String, Endpoint)>,
    clients: Vec<(String, Endpoint)>,
) -> Result<Vec<Member>, PkiError> {
    if peers.is_empty() {
        return Err(PkiError::bad_flag(
            "--members",
            "give at least one member, e.g. --members infra1=https://10.0.1.10:2380,infra2=https://10.0.1.11:2380",
        ));
    }
    for (name, _) in &clients {
        if !peers.iter().any(|(n, _)| n == name) {
            return Err(PkiError::bad_flag(
                "--client-urls",
                format!("{name:?} is not one of --members"),
            ));
        }
    }
    let members: Vec<Member> = peers
        .into_iter()
        .map(|(name, peer)| {
            let client = clients
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, e)| e.clone())
                .unwrap_or_else(|| Endpoint {
                    port: DEFAULT_CLIENT_PORT,
                    ..peer.clone()
                });
            Member { name, peer, client }
        })
        .collect();
    let mut urls: Vec<String> = Vec::new();
    for m in &members {
        for u in [m.peer.url(), m.client.url()] {
            if urls.contains(&u) {
                return Err(PkiError::bad_flag(
                    "--members",
                    format!("{u} is used twice; members on one host need different ports (see --client-urls)"),
                ));
            }
            urls.push(u);
        }
    }
    Ok(members)
}

/// Where the members will find their files, as written into the YAML.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Directory of the certificate files on the members' hosts.
    pub remote_dir: PathBuf,
    /// Data directory template; `{name}` is the member name.
    pub data_dir: String,
    /// File naming.
    pub naming: Naming,
}

impl Layout {
    fn remote(&self, file: &str) -> String {
        self.remote_dir.join(file).display().to_string()
    }

    fn data_dir_for(&self, name: &str) -> String {
        self.data_dir.replace("{name}", name)
    }
}

/// Quotes a YAML scalar (single quotes, quotes doubled), safe for any path or URL.
fn yq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Quotes a word for a POSIX shell when needed.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=,@+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The etcd `--config-file` YAML for member `m` of `all`.
pub fn member_yaml(
    m: &Member,
    all: &[Member],
    layout: &Layout,
    token: &str,
    with_localhost: bool,
) -> String {
    let cert = layout.remote(&layout.naming.cert_file(&m.name));
    let key = layout.remote(&layout.naming.key_file(&m.name));
    let ca = layout.remote(&layout.naming.cert_file("ca"));
    let initial_cluster = all
        .iter()
        .map(|o| format!("{}={}", o.name, o.peer.url()))
        .collect::<Vec<_>>()
        .join(",");
    let mut listen_client = vec![m.client.listen_url()];
    if with_localhost
        && !m.client.is_loopback_or_any()
        && m.client.listen_url() != format!("https://0.0.0.0:{}", m.client.port)
    {
        listen_client.push(format!("https://127.0.0.1:{}", m.client.port));
    }
    let mut y = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        y,
        "# etcd/kvd configuration for member {}, written by `kvd pki cluster`.",
        m.name
    );
    let _ = writeln!(
        y,
        "# Start with: kvd --config-file {}.yaml  (etcd --config-file works the same)",
        m.name
    );
    let _ = writeln!(y, "name: {}", yq(&m.name));
    let _ = writeln!(y, "data-dir: {}", yq(&layout.data_dir_for(&m.name)));
    let _ = writeln!(y, "listen-peer-urls: {}", yq(&m.peer.listen_url()));
    let _ = writeln!(y, "listen-client-urls: {}", yq(&listen_client.join(",")));
    let _ = writeln!(y, "initial-advertise-peer-urls: {}", yq(&m.peer.url()));
    let _ = writeln!(y, "advertise-client-urls: {}", yq(&m.client.url()));
    let _ = writeln!(y, "initial-cluster: {}", yq(&initial_cluster));
    let _ = writeln!(y, "initial-cluster-token: {}", yq(token));
    let _ = writeln!(y, "initial-cluster-state: 'new'");
    for block in ["client-transport-security", "peer-transport-security"] {
        let _ = writeln!(y, "{block}:");
        let _ = writeln!(y, "  cert-file: {}", yq(&cert));
        let _ = writeln!(y, "  key-file: {}", yq(&key));
        let _ = writeln!(y, "  client-cert-auth: true");
        let _ = writeln!(y, "  trusted-ca-file: {}", yq(&ca));
    }
    y
}

/// Runs `kvd pki cluster`.
///
/// # Errors
/// [`PkiError`] for bad flags, existing files or signing failures; nothing is written then.
pub fn run(args: &ClusterArgs, now: OffsetDateTime) -> Result<(), PkiError> {
    let peers = parse_named("--members", &args.members, DEFAULT_PEER_PORT)?;
    let clients = parse_named("--client-urls", &args.client_urls, DEFAULT_CLIENT_PORT)?;
    let members = plan_members(peers, clients)?;
    let client_name = args.client_name.trim().to_string();
    if !files::valid_stem(&client_name) {
        return Err(PkiError::bad_flag(
            "--client-name",
            format!("{client_name:?} cannot name the files: use letters, digits, '-', '_', '.', '@' (and not \"ca\")"),
        ));
    }
    if let Some(m) = members.iter().find(|m| m.name == client_name) {
        return Err(PkiError::bad_flag(
            "--members",
            format!(
                "member name {:?} would clash with the client certificate's files; rename the member or pass --client-name",
                m.name
            ),
        ));
    }
    let dir =
        std::path::absolute(&args.common.dir).map_err(|e| PkiError::io(&args.common.dir, e))?;
    let naming = args.common.naming.unwrap_or_else(|| Naming::detect(&dir));
    let ca_cert_path = dir.join(naming.cert_file("ca"));
    let ca_key_path = dir.join(naming.key_file("ca"));
    let layout = Layout {
        remote_dir: args.remote_dir.clone().unwrap_or_else(|| dir.clone()),
        data_dir: match &args.data_dir {
            Some(d) if d.contains("{name}") => d.clone(),
            Some(d) => Path::new(d).join("{name}.etcd").display().to_string(),
            None => args
                .remote_dir
                .clone()
                .unwrap_or_else(|| dir.clone())
                .join("{name}.etcd")
                .display()
                .to_string(),
        },
        naming,
    };

    // Refuse before generating any key when files are in the way.
    let mut planned: Vec<Output> = Vec::new();
    for stem in members
        .iter()
        .map(|m| m.name.as_str())
        .chain([client_name.as_str()])
    {
        planned.push(Output::public(
            dir.join(naming.cert_file(stem)),
            String::new(),
        ));
        planned.push(Output::private(
            dir.join(naming.key_file(stem)),
            String::new(),
        ));
    }
    for m in &members {
        planned.push(Output::public(
            dir.join(format!("{}.yaml", m.name)),
            String::new(),
        ));
    }
    files::ensure_absent(&planned, args.common.force)?;

    let mut outputs: Vec<Output> = Vec::new();
    let (ca, ca_is_new) = if ca_cert_path.exists() {
        if !ca_key_path.exists() {
            return Err(PkiError::bad_file(
                &ca_key_path,
                format!("missing, but {} exists; kvd needs the CA key to sign (or remove the CA to create a new one)", ca_cert_path.display()),
            ));
        }
        (Ca::load(&ca_cert_path, &ca_key_path, now)?, false)
    } else {
        let window = Window::resolve(now, args.ca_validity, None, None)?;
        let cn = match &args.ca_cn {
            Some(cn) => cn.clone(),
            None => ca::default_common_name()?,
        };
        let new = ca::create(&cn, args.key.key_type, &window)?;
        let ca = Ca::from_new(&new, &ca_cert_path, &ca_key_path, now)?;
        outputs.push(Output::public(ca_cert_path.clone(), new.cert_pem));
        outputs.push(Output::private(ca_key_path.clone(), new.key_pem));
        (ca, true)
    };

    let window = Window::resolve(
        now,
        args.key.validity,
        args.key.not_before,
        args.key.not_after,
    )?;
    let mut summary: Vec<String> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let token = match &args.token {
        Some(t) => t.clone(),
        None => {
            let mut b = [0u8; 4];
            ca::random_bytes(&mut b)?;
            format!(
                "kvd-cluster-{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            )
        }
    };
    for m in &members {
        let mut hosts = vec![m.peer.san.clone()];
        issue::push_unique(&mut hosts, m.client.san.clone());
        if args.with_localhost {
            issue::add_localhost(&mut hosts);
        }
        let spec = LeafSpec {
            role: Role::Peer,
            common_name: m.name.clone(),
            hosts,
            key_type: args.key.key_type,
            window,
        };
        let issued = issue::issue(&ca, &spec)?;
        notes.extend(issued.notes.iter().map(|n| format!("{}: {n}", m.name)));
        let cert_file = naming.cert_file(&m.name);
        let key_file = naming.key_file(&m.name);
        let yaml_file = format!("{}.yaml", m.name);
        summary.push(format!(
            "  member {}: {cert_file}, {key_file}, {yaml_file}  (SANs {}; serverAuth, clientAuth; for client and peer TLS)",
            m.name,
            issued.info.san_list()
        ));
        outputs.push(Output::public(dir.join(&cert_file), issued.cert_pem));
        outputs.push(Output::private(dir.join(&key_file), issued.key_pem));
        outputs.push(Output::public(
            dir.join(&yaml_file),
            member_yaml(m, &members, &layout, &token, args.with_localhost),
        ));
    }
    let client_spec = LeafSpec {
        role: Role::Client,
        common_name: client_name.clone(),
        hosts: Vec::new(),
        key_type: args.key.key_type,
        window,
    };
    let client = issue::issue(&ca, &client_spec)?;
    notes.extend(client.notes.iter().map(|n| format!("{client_name}: {n}")));
    let client_cert = naming.cert_file(&client_name);
    let client_key = naming.key_file(&client_name);
    summary.push(format!(
        "  client {client_name}: {client_cert}, {client_key}  (CN={client_name}; clientAuth; for etcdctl and applications)"
    ));
    outputs.push(Output::public(dir.join(&client_cert), client.cert_pem));
    outputs.push(Output::private(dir.join(&client_key), client.key_pem));

    files::write_all(&outputs, args.common.force)?;

    let mut out = String::new();
    let _ = writeln!(
        out,
        "kvd pki cluster: {} members, files in {}",
        members.len(),
        dir.display()
    );
    let ca_file_names = format!("{}, {}", naming.cert_file("ca"), naming.key_file("ca"));
    let _ = writeln!(
        out,
        "  {} CA: {ca_file_names}  ({}, valid until {})",
        if ca_is_new { "new" } else { "existing" },
        ca.cert.display_name(),
        times::rfc3339(ca.cert.not_after)
    );
    for s in &summary {
        let _ = writeln!(out, "{s}");
    }
    let _ = writeln!(
        out,
        "  certificates valid until {}; private keys written with mode 0600",
        times::rfc3339(window.not_after.min(ca.cert.not_after))
    );
    for n in &notes {
        let _ = writeln!(out, "  note: {n}");
    }
    if layout.remote_dir != dir {
        let _ = writeln!(
            out,
            "Copy to {} on each member's host: {} and the member's {}, {} and NAME.yaml",
            layout.remote_dir.display(),
            naming.cert_file("ca"),
            naming.cert_file("NAME"),
            naming.key_file("NAME")
        );
    }
    let _ = writeln!(
        out,
        "Start each member (etcd accepts the same --config-file):"
    );
    for m in &members {
        let _ = writeln!(
            out,
            "  kvd --config-file {}",
            shell_quote(&layout.remote(&format!("{}.yaml", m.name)))
        );
    }
    let endpoints = members
        .iter()
        .map(|m| m.client.url())
        .collect::<Vec<_>>()
        .join(",");
    let _ = writeln!(out, "Then talk to the cluster with:");
    // The client files stay where they were written: the user runs etcdctl from here.
    let local = |f: &str| shell_quote(&dir.join(f).display().to_string());
    let _ = writeln!(
        out,
        "  etcdctl --endpoints={} --cacert={} --cert={} --key={} endpoint health",
        endpoints,
        local(&naming.cert_file("ca")),
        local(&client_cert),
        local(&client_key),
    );
    let _ = writeln!(
        out,
        "Check the set-up any time with: kvd pki check --cacert {} --cert {} --key {} --endpoints={}",
        local(&naming.cert_file("ca")),
        local(&client_cert),
        local(&client_key),
        endpoints
    );
    print!("{out}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(s: &str) -> Vec<String> {
        s.split(',').map(str::to_string).collect()
    }

    #[test]
    fn members_and_client_urls() {
        let peers = parse_named(
            "--members",
            &items(
                "a=https://10.0.1.10:2380,b=https://10.0.1.11,c=https://etcd3.example.com:12380",
            ),
            DEFAULT_PEER_PORT,
        )
        .expect("members");
        let clients = parse_named(
            "--client-urls",
            &items("c=https://etcd3.example.com:12379"),
            DEFAULT_CLIENT_PORT,
        )
        .expect("clients");
        let ms = plan_members(peers, clients).expect("plan");
        assert_eq!(ms[0].client.url(), "https://10.0.1.10:2379");
        assert_eq!(ms[1].peer.url(), "https://10.0.1.11:2380");
        assert_eq!(ms[2].client.url(), "https://etcd3.example.com:12379");
        assert_eq!(ms[2].peer.listen_url(), "https://0.0.0.0:12380");
    }

    #[test]
    fn bad_members_are_explained() {
        let e = parse_named("--members", &items("a=http://10.0.0.1:2380"), 2380).expect_err("http");
        assert!(e.to_string().contains("https://"), "{e}");
        let e = parse_named("--members", &items("a"), 2380).expect_err("no url");
        assert!(e.to_string().contains("NAME=https://"), "{e}");
        let e =
            parse_named("--members", &items("a=https://h:1,a=https://h:2"), 2380).expect_err("dup");
        assert!(e.to_string().contains("twice"), "{e}");
        let peers = parse_named(
            "--members",
            &items("a=https://127.0.0.1:2380,b=https://127.0.0.1:2380"),
            2380,
        )
        .expect("parse");
        let e = plan_members(peers, vec![]).expect_err("same url");
        assert!(e.to_string().contains("used twice"), "{e}");
    }

    #[test]
    fn yaml_has_etcd_keys_and_parses() {
        let peers = parse_named(
            "--members",
            &items("a=https://127.0.0.1:2380,b=https://127.0.0.1:2480"),
            2380,
        )
        .expect("parse");
        let clients = parse_named(
            "--client-urls",
            &items("a=https://127.0.0.1:2379,b=https://127.0.0.1:2479"),
            2379,
        )
        .expect("parse");
        let ms = plan_members(peers, clients).expect("plan");
        let layout = Layout {
            remote_dir: PathBuf::from("/etc/kvd/it's"),
            data_dir: "/var/lib/{name}.etcd".into(),
            naming: Naming::Cfssl,
        };
        let y = member_yaml(&ms[1], &ms, &layout, "tok", false);
        let v: serde_yaml::Value = serde_yaml::from_str(&y).expect("valid yaml");
        assert_eq!(v["name"].as_str(), Some("b"));
        assert_eq!(v["data-dir"].as_str(), Some("/var/lib/b.etcd"));
        assert_eq!(
            v["listen-client-urls"].as_str(),
            Some("https://127.0.0.1:2479")
        );
        assert_eq!(
            v["initial-cluster"].as_str(),
            Some("a=https://127.0.0.1:2380,b=https://127.0.0.1:2480")
        );
        assert_eq!(v["initial-cluster-state"].as_str(), Some("new"));
        for block in ["client-transport-security", "peer-transport-security"] {
            assert_eq!(v[block]["cert-file"].as_str(), Some("/etc/kvd/it's/b.pem"));
            assert_eq!(
                v[block]["key-file"].as_str(),
                Some("/etc/kvd/it's/b-key.pem")
            );
            assert_eq!(
                v[block]["trusted-ca-file"].as_str(),
                Some("/etc/kvd/it's/ca.pem")
            );
            assert_eq!(v[block]["client-cert-auth"].as_bool(), Some(true));
        }
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("/a/b.pem"), "/a/b.pem");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }
}
