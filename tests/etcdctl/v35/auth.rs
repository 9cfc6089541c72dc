//! Auth with etcdctl 3.5: `auth status`, users without passwords (`user add --no-password`),
//! and the error a password login of such a user gets.

use super::{differential35, transcript};
use crate::differential::Transcript;
use crate::harness::Server;

#[test]
fn auth_status_and_users_without_passwords() {
    require_tools!();
    require_etcd35!();
    differential35(auth_scenario);
}

fn auth_scenario(s: &Server) -> Transcript {
    let mut t = transcript(s);
    let off = t.ok(&["auth", "status"]);
    assert_eq!(
        off.stdout,
        "Authentication Status: false\nAuthRevision: 1\n"
    );
    t.ok(&["auth", "status", "-w", "json"]);
    t.ok(&["user", "add", "root", "--new-user-password=rootpw"]);
    t.ok(&["user", "grant-role", "root", "root"]);
    let np = t.ok(&["user", "add", "--no-password", "np"]);
    assert_eq!(np.stdout, "User np created\n");
    t.ok(&["role", "add", "reader"]);
    t.ok(&[
        "role",
        "grant-permission",
        "reader",
        "read",
        "app/",
        "--prefix",
    ]);
    t.ok(&["user", "grant-role", "np", "reader"]);
    t.ok(&["user", "get", "np", "--detail"]);
    t.ok(&["put", "app/x", "1"]);
    t.ok(&["auth", "enable"]);
    let login = t.run(&["--user", "np:any", "get", "app/x"]);
    assert!(
        login.err_lines().contains(
            &"Error: rpc error: code = Unknown desc = auth: authentication failed, password was given for no password user"
                .to_string()
        ),
        "{login:?}"
    );
    let on = t.ok(&["--user", "root:rootpw", "auth", "status"]);
    assert!(
        on.stdout.starts_with("Authentication Status: true\n"),
        "{on:?}"
    );
    t.ok(&["--user", "root:rootpw", "auth", "status", "-w", "json"]);
    t.ok(&["--user", "root:rootpw", "user", "list"]);
    t.ok(&["--user", "root:rootpw", "auth", "disable"]);
    t.ok(&["auth", "status"]);
    t
}
