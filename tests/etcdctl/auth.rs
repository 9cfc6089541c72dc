//! Authentication and authorization with etcdctl: users and roles, `auth enable` (etcdctl
//! creates the root role itself), reads and writes with `--user name:password` and without
//! credentials, prefix/from-key/range/key permissions, txn, watch, lease revoke, what only root
//! may do, `role get`/`user get` output, password changes, deletions and `auth disable`.
//!
//! Both servers run with `--bcrypt-cost 4` (etcdctl authenticates on every invocation).
//! Left out on purpose, because kvd is stricter than etcd 3.4 there: compaction, `alarm
//! disarm` and `move-leader` by a user without the root role (etcd 3.4 checks nothing).

use crate::differential::{differential_with, Transcript};
use crate::harness::{lease_id, Server};

const FLAGS: &[&str] = &["--bcrypt-cost", "4"];
const ROOT: &str = "--user=root:rootpw";
const ALICE: &str = "--user=alice:apw";
const EMPTY: &str = "Error: etcdserver: user name is empty";
const DENIED: &str = "Error: etcdserver: permission denied";
const FAILED: &str = "Error: etcdserver: authentication failed, invalid user ID or password";

#[test]
fn auth_users_roles_enable_and_disable() {
    require_tools!();
    differential_with(FLAGS, users_roles_scenario);
}

fn users_roles_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.run(&["auth", "enable"])
        .fails_with(1, "Error: etcdserver: root user does not exist");
    t.ok(&["user", "add", "root:rootpw"])
        .prints("User root created\n");
    t.run(&["user", "add", "root:other"])
        .fails_with(1, "Error: etcdserver: user name already exists");
    t.ok(&["user", "add", "alice:apw"]);
    t.ok(&["role", "add", "app"]).prints("Role app created\n");
    t.run(&["role", "add", "app"])
        .fails_with(1, "Error: etcdserver: role name already exists");
    t.run(&["role", "get", "nope"])
        .fails_with(1, "Error: etcdserver: role name not found");
    t.ok(&[
        "role",
        "grant-permission",
        "app",
        "read",
        "/app/",
        "--prefix",
    ])
    .prints("Role app updated\n");
    t.ok(&["role", "grant-permission", "app", "readwrite", "/app/rw"]);
    t.ok(&["role", "grant-permission", "app", "read", "k", "--from-key"]);
    t.ok(&["role", "grant-permission", "app", "write", "a", "z"]);
    t.ok(&["role", "get", "app"]).prints(
        "Role app\nKV Read:\n\t[/app/, /app0) (prefix /app/)\n\t/app/rw\n\t[k, <open ended>\nKV Write:\n\t/app/rw\n\t[a, z)\n",
    );
    t.run(&["role", "get", "app", "-w", "json"]);
    t.ok(&["user", "grant-role", "alice", "app"])
        .prints("Role app is granted to user alice\n");
    t.run(&["user", "grant-role", "alice", "nope"])
        .fails_with(1, "Error: etcdserver: role name not found");
    t.run(&["user", "grant-role", "nobody", "app"])
        .fails_with(1, "Error: etcdserver: user name not found");
    t.ok(&["user", "get", "alice"])
        .prints("User: alice\nRoles: app\n");
    t.ok(&["user", "get", "alice", "--detail"]);
    t.ok(&["user", "list"]).prints("alice\nroot\n");
    t.ok(&["role", "list"]).prints("app\n");

    // root has no root role yet: the server refuses, etcdctl adds the role and retries
    t.ok(&["auth", "enable"]).prints("Authentication Enabled\n");
    t.run(&["role", "list"]).fails_with(1, EMPTY);
    t.run(&["user", "get", "root"]).fails_with(1, EMPTY);
    t.run(&["put", "/app/x", "v"]).fails_with(1, EMPTY);
    t.run(&["get", "/app/x"]).fails_with(1, EMPTY);
    t.ok(&[ROOT, "role", "list"]).prints("app\nroot\n");
    t.ok(&[ROOT, "user", "get", "root"])
        .prints("User: root\nRoles: root\n");
    t.ok(&[ROOT, "put", "/app/x", "v"]).prints("OK\n");
    t.ok(&[ROOT, "put", "/app/rw", "v"]);
    t.ok(&[ROOT, "put", "/secret", "s"]);
    t.run(&["--user=root:wrong", "get", "/app/x"])
        .fails_with(2, FAILED);
    t.run(&["--user=nobody:x", "get", "/app/x"])
        .fails_with(2, FAILED);

    // alice: read on /app/, read-write on /app/rw, read from k on, write on [a, z)
    t.ok(&[ALICE, "get", "/app/x"]).prints("/app/x\nv\n");
    t.ok(&[ALICE, "get", "/app/", "--prefix", "--keys-only"])
        .prints("/app/rw\n\n/app/x\n\n");
    t.run(&[ALICE, "get", "", "--prefix"]).fails_with(1, DENIED);
    t.run(&[ALICE, "get", "/secret"]).fails_with(1, DENIED);
    t.ok(&[ALICE, "get", "k", "--from-key"]);
    t.run(&[ALICE, "get", "j", "--from-key"])
        .fails_with(1, DENIED);
    t.run(&[ALICE, "put", "/app/x", "v2"]).fails_with(1, DENIED);
    t.ok(&[ALICE, "put", "/app/rw", "v2"]).prints("OK\n");
    t.ok(&[ALICE, "put", "b", "v"]);
    t.ok(&[ALICE, "del", "a", "z"]).prints("1\n");
    t.run(&[ALICE, "del", "a", "zz"]).fails_with(1, DENIED);
    t.run(&[ALICE, "del", "/app/rw", "--prev-kv"]);
    t.ok(&[ALICE, "user", "get", "alice"])
        .prints("User: alice\nRoles: app\n");
    t.ok(&[ALICE, "role", "get", "app"]);
    for admin in [
        &["user", "get", "root"][..],
        &["role", "get", "root"],
        &["role", "list"],
        &["user", "list"],
        &["user", "add", "eve:x"],
        &["role", "add", "r2"],
        &["auth", "disable"],
    ] {
        let mut args = vec![ALICE];
        args.extend_from_slice(admin);
        t.run(&args).fails_with(1, DENIED);
    }

    // root cannot lock everyone out
    let mgmt = "Error: etcdserver: invalid auth management";
    t.run(&[ROOT, "user", "delete", "root"]).fails_with(1, mgmt);
    t.run(&[ROOT, "role", "delete", "root"]).fails_with(1, mgmt);
    t.run(&[ROOT, "user", "revoke-role", "root", "root"])
        .fails_with(1, mgmt);
    t.run(&[ROOT, "user", "revoke-role", "alice", "nope"])
        .fails_with(1, "Error: etcdserver: role is not granted to the user");
    t.run(&[ROOT, "role", "revoke-permission", "app", "/nope"])
        .fails_with(
            1,
            "Error: etcdserver: permission is not granted to the role",
        );
    t.ok(&[
        ROOT,
        "role",
        "revoke-permission",
        "app",
        "/app/",
        "--prefix",
    ])
    .prints("Permission of range [/app/, /app0) is revoked from role app\n");
    t.run(&[ALICE, "get", "/app/x"]).fails_with(1, DENIED);

    // a new password: the old one stops working
    t.run_stdin(
        &[ROOT, "user", "passwd", "alice", "--interactive=false"],
        "newpw\n",
    )
    .ok();
    t.run(&[ALICE, "get", "/app/rw"]).fails_with(2, FAILED);
    t.ok(&["--user=alice:newpw", "put", "/app/rw", "v3"]);

    t.ok(&[ROOT, "role", "delete", "app"])
        .prints("Role app deleted\n");
    t.ok(&[ROOT, "user", "get", "alice"])
        .prints("User: alice\nRoles:\n");
    t.run(&["--user=alice:newpw", "put", "/app/rw", "v4"])
        .fails_with(1, DENIED);
    t.ok(&[ROOT, "user", "delete", "alice"])
        .prints("User alice deleted\n");
    t.run(&[ROOT, "user", "delete", "alice"])
        .fails_with(1, "Error: etcdserver: user name not found");
    t.ok(&[ROOT, "auth", "disable"])
        .prints("Authentication Disabled\n");
    t.ok(&["put", "k", "v"]);
    t.ok(&[ROOT, "get", "k"]).prints("k\nv\n");
    t.ok(&["auth", "disable"]);
    t.ok(&["user", "list"]).prints("root\n");
    t.ok(&["get", "", "--prefix", "--keys-only"]);
    t
}

#[test]
fn auth_txn_watch_lease_and_maintenance() {
    require_tools!();
    differential_with(FLAGS, txn_watch_lease_scenario);
}

fn txn_watch_lease_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    let bob = "--user=bob:bpw";
    let carol = "--user=carol:cpw";
    t.ok(&["user", "add", "root:rootpw"]);
    t.ok(&["auth", "enable"]);
    t.ok(&[ROOT, "user", "add", "bob:bpw"]);
    t.ok(&[ROOT, "role", "add", "w"]);
    t.ok(&[
        ROOT,
        "role",
        "grant-permission",
        "w",
        "readwrite",
        "/w/",
        "--prefix",
    ]);
    t.ok(&[ROOT, "user", "grant-role", "bob", "w"]);
    t.ok(&[ROOT, "put", "/secret", "s"]);
    t.ok(&[ROOT, "put", "/w/a", "x"]);

    // txn: every compare and both branches are checked
    t.run_stdin(
        &[bob, "txn"],
        "value(\"/w/a\") = \"x\"\n\nput /w/b 1\n\nput /w/c 2\n\n",
    )
    .ok();
    t.run_stdin(
        &[bob, "txn"],
        "value(\"/secret\") = \"x\"\n\nput /w/b 1\n\n\n",
    )
    .fails_with(1, DENIED);
    t.run_stdin(&[bob, "txn"], "\nput /w/b 1\n\nput /secret 2\n\n")
        .fails_with(1, DENIED);
    t.ok(&[bob, "get", "/w/", "--prefix"]);

    // watch: a refused watch is canceled by the server
    t.run(&[bob, "watch", "/secret"]);

    // leases: nobody may revoke (or join) a lease holding keys they cannot write
    let out = t.ok(&[ROOT, "lease", "grant", "100"]);
    let lease = lease_id(&out.stdout);
    t.ok(&[ROOT, "put", "/secret/l", "v", "--lease", &lease]);
    t.run(&[bob, "lease", "revoke", &lease]).fails_with(
        1,
        "Error: failed to revoke lease (etcdserver: permission denied)",
    );
    t.run(&[bob, "put", "/w/l", "v", "--lease", &lease])
        .fails_with(1, DENIED);
    t.ok(&[ROOT, "lease", "revoke", &lease]);

    // maintenance and membership need the root role
    t.run(&[bob, "defrag"]);
    t.run(&[bob, "endpoint", "hashkv"]);
    let snap = s.dir().join("bob.db");
    t.run(&[bob, "snapshot", "save", &snap.display().to_string()]);
    t.run(&[bob, "member", "add", "x", "--peer-urls=http://127.0.0.1:1"])
        .fails_with(1, DENIED);
    t.ok(&[ROOT, "defrag"]);

    // an empty prefix (etcdctl sends ["\0", "\0")) is the whole key space
    t.ok(&[ROOT, "user", "add", "carol:cpw"]);
    t.ok(&[ROOT, "role", "add", "all"]);
    t.ok(&[
        ROOT,
        "role",
        "grant-permission",
        "all",
        "read",
        "",
        "--prefix",
    ]);
    t.ok(&[ROOT, "user", "grant-role", "carol", "all"]);
    t.ok(&[ROOT, "role", "get", "all"]);
    t.ok(&[carol, "get", "", "--prefix", "--keys-only"]);
    t.run(&[carol, "put", "/w/c", "3"]).fails_with(1, DENIED);
    t.ok(&[ROOT, "role", "revoke-permission", "all", "", "--prefix"]);
    t.run(&[carol, "get", "/w/a"]).fails_with(1, DENIED);
    t
}

#[test]
fn auth_with_jwt_tokens() {
    require_tools!();
    let keys = tempfile::tempdir().expect("key dir");
    let rsa = keys.path().join("app.rsa");
    let rsa_pub = keys.path().join("app.rsa.pub");
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let (k, p) = (rsa.display().to_string(), rsa_pub.display().to_string());
    if !openssl(&["genrsa", "-out", &k, "2048"])
        || !openssl(&["rsa", "-in", &k, "-pubout", "-out", &p])
    {
        eprintln!("skipped: openssl cannot generate an RSA key pair");
        return;
    }
    let token = format!("jwt,pub-key={p},priv-key={k},sign-method=RS256,ttl=10m");
    differential_with(
        &["--bcrypt-cost", "4", "--auth-token", &token],
        jwt_scenario,
    );
}

fn jwt_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["user", "add", "root:rootpw"]);
    t.ok(&["auth", "enable"]);
    t.run(&["put", "k", "v"]).fails_with(1, EMPTY);
    t.ok(&[ROOT, "put", "k", "v"]);
    t.ok(&[ROOT, "user", "add", "alice:apw"]);
    t.ok(&[ROOT, "role", "add", "app"]);
    t.ok(&[
        ROOT,
        "role",
        "grant-permission",
        "app",
        "readwrite",
        "/app/",
        "--prefix",
    ]);
    t.ok(&[ROOT, "user", "grant-role", "alice", "app"]);
    t.ok(&[ALICE, "put", "/app/a", "1"]);
    t.ok(&[ALICE, "get", "/app/", "--prefix"]);
    t.run(&[ALICE, "get", "k"]).fails_with(1, DENIED);
    t.run(&["--user=alice:bad", "get", "/app/a"])
        .fails_with(2, FAILED);
    t.ok(&[ROOT, "auth", "disable"]);
    t.ok(&["get", "k"]);
    t
}

/// Auth state is replicated: users, roles and `auth enable` made through one member are
/// enforced on every other member, and a permission granted on another member takes effect
/// everywhere.
#[test]
fn auth_changes_on_one_member_are_enforced_on_all() {
    require_tools!();
    let _g = crate::harness::shared();
    let c = crate::harness::Cluster::start(&crate::harness::kvd_bin(), 3, FLAGS);
    let on = |i: usize, args: &[&str]| {
        crate::harness::Ctl::new(&c.servers[i].endpoint())
            .args(args)
            .run()
    };
    on(0, &["user", "add", "root:rootpw"]).ok();
    on(0, &["user", "grant-role", "root", "root"]).ok();
    on(0, &["user", "add", "alice:apw"]).ok();
    on(0, &["role", "add", "app"]).ok();
    on(0, &["user", "grant-role", "alice", "app"]).ok();
    on(0, &["auth", "enable"]).ok();
    // Every member now refuses anonymous requests and alice's writes outside her permissions.
    for i in 0..3 {
        on(i, &["put", "k", "v"]).fails_with(1, EMPTY);
        on(i, &[ALICE, "put", "app/k", "v"]).fails_with(1, DENIED);
        on(i, &["--user=alice:wrong", "get", "app/k"]).fails_with(2, FAILED);
    }
    // A permission granted through member 2 lets alice write through member 3.
    on(
        1,
        &[
            ROOT,
            "role",
            "grant-permission",
            "app",
            "readwrite",
            "app/",
            "--prefix",
        ],
    )
    .ok();
    on(2, &[ALICE, "put", "app/k", "v"]).ok();
    for i in 0..3 {
        on(i, &[ALICE, "get", "app/k", "--print-value-only"]).prints("v\n");
        on(i, &[ALICE, "put", "other", "v"]).fails_with(1, DENIED);
    }
    on(0, &[ROOT, "auth", "disable"]).ok();
    on(2, &["put", "k", "v"]).ok();
}

/// Tokens interoperate with etcd's (`auth/jwt.go`, jwt-go): for an RSA key (PKCS#8, as
/// `openssl genrsa` writes it; RS256 and PS384), a P-384 key (PKCS#8, ES384), an EC key (SEC1, as `openssl ecparam -genkey -noout` writes it;
/// etcd refuses the file when an `EC PARAMETERS` block comes first) and an HMAC secret, real etcd started with the same `--auth-token`
/// accepts a token kvd signs (claims `username`, `revision`, `exp`), checks its revision, and
/// refuses one signed with another key; kvd verifies the token etcd issued and reads the same
/// user and revision from it.
#[test]
fn jwt_tokens_interoperate_with_etcd() {
    require_tools!();
    let _g = crate::harness::shared();
    let keys = tempfile::tempdir().expect("key dir");
    let openssl = |args: &[&str]| {
        std::process::Command::new("openssl")
            .args(args)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let path = |name: &str| keys.path().join(name).display().to_string();
    let (rsa, rsa_pub, ec, ec_pub, other_ec, secret) = (
        path("rsa.pem"),
        path("rsa.pub"),
        path("ec.pem"),
        path("ec.pub"),
        path("other-ec.pem"),
        path("secret"),
    );
    let (p384, p384_pub) = (path("p384.pem"), path("p384.pub"));
    if !openssl(&["genrsa", "-out", &rsa, "2048"])
        || !openssl(&["rsa", "-in", &rsa, "-pubout", "-out", &rsa_pub])
        || !openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &ec,
        ])
        || !openssl(&["ec", "-in", &ec, "-pubout", "-out", &ec_pub])
        || !openssl(&[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &other_ec,
        ])
        || !openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-out",
            &p384,
        ])
        || !openssl(&["pkey", "-in", &p384, "-pubout", "-out", &p384_pub])
    {
        eprintln!("skipped: openssl cannot generate the key pairs");
        return;
    }
    std::fs::write(&secret, "a shared secret").expect("write secret");
    let other_secret = path("other-secret");
    std::fs::write(&other_secret, "another secret").expect("write secret");
    for (method, priv_key, pub_key, foreign) in [
        ("RS256", &rsa, rsa_pub.as_str(), None),
        ("PS384", &rsa, rsa_pub.as_str(), None),
        ("ES256", &ec, ec_pub.as_str(), Some(&other_ec)),
        ("ES384", &p384, p384_pub.as_str(), None),
        ("HS256", &secret, "", Some(&other_secret)),
    ] {
        let mut spec = format!("jwt,priv-key={priv_key},sign-method={method},ttl=10m");
        if !pub_key.is_empty() {
            spec.push_str(&format!(",pub-key={pub_key}"));
        }
        let etcd = Server::start(&crate::harness::etcd_bin(), &["--auth-token", &spec]);
        etcd.ok(&["user", "add", "root:rootpw"]);
        etcd.ok(&["auth", "enable"]);
        let options: Vec<(&str, &str)> = spec
            .split(',')
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .collect();
        let kvd_keys = kvd::internals::JwtKeys::from_options(&options).expect("kvd reads the keys");
        let foreign_keys = foreign.map(|f| {
            let opts: Vec<(&str, &str)> = vec![("sign-method", method), ("priv-key", f.as_str())];
            kvd::internals::JwtKeys::from_options(&opts).expect("other key")
        });
        let endpoint = format!("http://{}", etcd.endpoint());
        runtime().block_on(async {
            let channel = within(
                tonic::transport::Endpoint::from_shared(endpoint)
                    .expect("url")
                    .connect(),
            )
            .await
            .expect("connect to etcd");
            let mut auth = AuthClient::new(channel.clone());
            let etcd_token = within(auth.authenticate(AuthenticateRequest {
                name: "root".into(),
                password: "rootpw".into(),
            }))
            .await
            .expect("etcd authenticates root")
            .into_inner()
            .token;
            let (user, revision) = kvd_keys
                .verify(&etcd_token)
                .unwrap_or_else(|| panic!("{method}: kvd verifies etcd's token {etcd_token}"));
            assert_eq!(user, "root", "{method}");
            assert!(revision > 0, "{method}: auth revision {revision}");
            let kvd_token = kvd_keys.sign("root", revision).expect("kvd signs");
            assert_eq!(
                claim_names(&kvd_token),
                claim_names(&etcd_token),
                "{method}"
            );
            assert_eq!(
                token_part(&kvd_token, 0)["alg"],
                token_part(&etcd_token, 0)["alg"]
            );

            let range = |token: String| {
                let mut kv = KvClient::new(channel.clone());
                async move {
                    let mut req = tonic::Request::new(RangeRequest {
                        key: b"k".to_vec(),
                        ..Default::default()
                    });
                    req.metadata_mut()
                        .insert("token", token.parse().expect("ascii token"));
                    within(kv.range(req))
                        .await
                        .map(|_| ())
                        .map_err(|s| s.message().to_string())
                }
            };
            assert_eq!(
                range(kvd_token).await,
                Ok(()),
                "{method}: etcd accepts kvd's token"
            );
            let old = kvd_keys.sign("root", revision - 1).expect("kvd signs");
            assert_eq!(
                range(old).await,
                Err("etcdserver: revision of auth store is old".to_string()),
                "{method}: etcd reads the revision claim"
            );
            if let Some(foreign) = &foreign_keys {
                let forged = foreign.sign("root", revision).expect("sign");
                assert_eq!(
                    range(forged).await,
                    Err("etcdserver: invalid auth token".to_string()),
                    "{method}: etcd checks the signature"
                );
                assert_eq!(
                    kvd_keys.verify(&foreign.sign("root", revision).expect("sign")),
                    None
                );
            }
        });
    }
}

use kvd::proto::etcdserverpb::auth_client::AuthClient;
use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::{AuthenticateRequest, RangeRequest};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// `fut` with a 20 s bound, so a hung server fails the test instead of hanging it.
async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(20), fut)
        .await
        .expect("answered within 20 s")
}

/// The decoded JSON of part `i` of a JWT.
fn token_part(token: &str, i: usize) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(i).expect("a JWT has three parts");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("JSON")
}

/// The claim names of a JWT, sorted.
fn claim_names(token: &str) -> Vec<String> {
    let mut names: Vec<String> = token_part(token, 1)
        .as_object()
        .expect("claims object")
        .keys()
        .cloned()
        .collect();
    names.sort();
    names
}
