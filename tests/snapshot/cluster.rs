//! A three-member kvd cluster restored from one snapshot: `kvd snapshot restore` once per
//! member with the same `--initial-cluster`, then the three start, elect a leader, serve the
//! snapshot's data and agree on `endpoint hashkv`, also after a new write.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{eventually, initial_cluster, kvd_bin, new_temp_dir, Member, Server};
use crate::ids::{assert_membership, member_id};
use crate::observe::{assert_expected, observe, write_history, COMPACTED, LAST};
use crate::snapfile::{restore, save, Restorer, TOKEN};

/// (hash, revision, compact revision) of one member's `endpoint hashkv`.
fn hashkv(s: &Server) -> (u64, i64, i64) {
    let v = s
        .ctl()
        .args(&["endpoint", "hashkv", "-w", "json"])
        .run()
        .ok()
        .json();
    let h = &v[0]["HashKV"];
    (
        h["hash"]
            .as_u64()
            .unwrap_or_else(|| panic!("no hash in {v}")),
        h["header"]["revision"].as_i64().unwrap_or(0),
        h["compact_revision"].as_i64().unwrap_or(0),
    )
}

/// The leader each member reports in `endpoint status`.
fn leader(s: &Server) -> u64 {
    let v: Value = s
        .ctl()
        .args(&["endpoint", "status", "-w", "json"])
        .run()
        .ok()
        .json();
    v[0]["Status"]["leader"].as_u64().unwrap_or(0)
}

#[test]
fn three_members_restored_from_one_snapshot() {
    require_tools!();
    let source = Server::start(&kvd_bin());
    let h = write_history(&source, false);
    let want = observe(&source, &h);
    assert_expected(&want, &h);
    let files = new_temp_dir();
    let snap = files.path().join("kvd.db");
    save(&source, "", &snap);
    drop(source);

    let members: Vec<Member> = ["r1", "r2", "r3"].iter().map(|n| Member::new(n)).collect();
    let cluster = initial_cluster(&members);
    let mut servers: Vec<Server> = members
        .iter()
        .map(|m| {
            let dir = new_temp_dir();
            restore(
                Restorer::Kvd,
                &snap,
                &dir.path().join("data"),
                m,
                &cluster,
                &[],
            )
            .ok();
            Server::spawn_in(dir, &kvd_bin(), m.clone(), &cluster, TOKEN, "")
        })
        .collect();
    for s in &mut servers {
        s.wait_ready();
    }

    let ids: Vec<u64> = members
        .iter()
        .map(|m| member_id(&[&m.peer_url()], TOKEN))
        .collect();
    let agreed = eventually(Duration::from_secs(10), || {
        let l: Vec<u64> = servers.iter().map(leader).collect();
        (l[0] != 0 && l.iter().all(|x| *x == l[0])).then_some(l[0])
    });
    let lead = agreed.expect("the three members agree on one leader within 10s");
    assert!(
        ids.contains(&lead),
        "leader {lead:x} is not one of {ids:x?}"
    );

    for s in &servers {
        assert_membership(s, "", &members, TOKEN);
        want.assert_same(&observe(s, &h), &format!("member {}", s.member().name));
    }
    let first = hashkv(&servers[0]);
    assert_eq!(
        (first.1, first.2),
        (LAST, COMPACTED),
        "hashkv revision and compaction"
    );
    for s in &servers[1..] {
        assert_eq!(
            hashkv(s),
            first,
            "hashkv of {} vs {}",
            s.member().name,
            servers[0].member().name
        );
    }

    // A write through one member reaches the others' stores.
    servers[2]
        .ctl()
        .args(&["put", "after", "restore"])
        .run()
        .ok();
    let converged = eventually(Duration::from_secs(10), || {
        let all: Vec<_> = servers.iter().map(hashkv).collect();
        (all.iter().all(|x| *x == all[0]) && all[0].1 == LAST + 1).then_some(all[0])
    });
    let after = converged.expect("all three reach revision 11 with equal hashkv within 10s");
    assert_ne!(after.0, first.0, "the new write changes the hash");
    for s in &servers {
        let got = s
            .ctl()
            .args(&["get", "after", "--consistency=s"])
            .run()
            .ok()
            .stdout;
        assert_eq!(
            got,
            "after\nrestore\n",
            "serializable read on {}",
            s.member().name
        );
    }
}
