//! etcd → kvd: a snapshot saved from real etcd, restored by `kvd snapshot restore` and by
//! `etcdctl snapshot restore` (kvd then imports etcd's data dir), serves what etcd served.

use crate::harness::{etcd_bin, header_revision, kvd_bin, kvs, new_temp_dir, Member, Server};
use crate::ids::assert_membership;
use crate::observe::{assert_expected, observe, write_history, History, State, LAST, ROOT};
use crate::snapfile::{restore, save, Restorer, TOKEN};

#[test]
fn etcd_snapshot_serves_the_same_data_in_kvd() {
    require_tools!();
    let etcd = Server::start(&etcd_bin());
    let h = write_history(&etcd, true);
    let want = observe(&etcd, &h);
    assert_expected(&want, &h);
    let files = new_temp_dir();
    let snap = files.path().join("etcd.db");
    save(&etcd, ROOT, &snap);
    drop(etcd);

    // Both restores, then both servers start side by side.
    let mut servers = Vec::new();
    for (tool, name) in [
        (Restorer::Kvd, "kvd-restored"),
        (Restorer::Etcdctl, "etcdctl-restored"),
    ] {
        let member = Member::new(name);
        let dir = new_temp_dir();
        let data = dir.path().join("data");
        restore(tool, &snap, &data, &member, &member.cluster_entry(), &[]).ok();
        assert!(data.is_dir(), "{tool:?} restore made no data dir");
        if tool == Restorer::Etcdctl {
            assert!(
                data.join("member/snap/db").is_file(),
                "etcd layout expected"
            );
        }
        let cluster = member.cluster_entry();
        let s = Server::spawn_in(dir, &kvd_bin(), member, &cluster, TOKEN, ROOT);
        servers.push((tool, s));
    }
    // The two servers are checked side by side.
    std::thread::scope(|scope| {
        for (tool, s) in &mut servers {
            let (want, h) = (&want, &h);
            scope.spawn(move || check_restored(*tool, s, want, h));
        }
    });
}

/// Asserts that kvd, started on what `tool` restored, serves `want` and goes on from it.
fn check_restored(tool: Restorer, s: &mut Server, want: &State, h: &History) {
    s.wait_ready();
    let got = observe(s, h);
    want.assert_same(
        &got,
        &format!("etcd snapshot restored by {tool:?}, served by kvd"),
    );
    assert_membership(s, ROOT, &[s.member().clone()], TOKEN);
    // The restored store goes on from the snapshot's revision, and a restart keeps both
    // the imported history and the new write (nothing is imported a second time).
    let put = s
        .ctl()
        .user(ROOT)
        .args(&["put", "z", "1", "-w", "json"])
        .run()
        .ok();
    assert_eq!(header_revision(&put.json()), LAST + 1, "{tool:?}");
    s.restart();
    let z = s
        .ctl()
        .user(ROOT)
        .args(&["get", "z", "-w", "json"])
        .run()
        .ok()
        .json();
    assert_eq!(
        header_revision(&z),
        LAST + 1,
        "{tool:?}: revision after restart"
    );
    assert_eq!(
        kvs(&z).len(),
        1,
        "{tool:?}: the write after the restore survives a restart"
    );
    let at9 = s.ok_as(ROOT, &["get", "", "--prefix", "--rev", "9"]);
    assert_eq!(
        at9,
        want.get("get all --rev 9"),
        "{tool:?}: history after restart"
    );
    let leases = s.ok_as(ROOT, &["lease", "list"]);
    assert_eq!(
        leases.lines().count(),
        3,
        "{tool:?}: leases after restart: {leases}"
    );
    let u1 = s.ok_as(ROOT, &["user", "get", "u1"]);
    assert_eq!(u1, want.get("user get u1"), "{tool:?}: users after restart");
}
