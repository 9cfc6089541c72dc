//! A three-member cluster of the server under test driven by etcdctl: member list,
//! one leader, replication of writes, linearizable and serializable reads on followers,
//! and a member that is SIGKILLed and restarted catching up.

use std::time::Duration;

use crate::harness::{eventually, header_revision, kvd_bin, Cluster, Ctl};

const WAIT: Duration = Duration::from_secs(20);

#[test]
fn three_member_cluster() {
    require_tools!();
    let _g = crate::harness::shared();
    let mut c = Cluster::start(&kvd_bin(), 3, &[]);
    let all = c.endpoints();

    // member list: three started voting members, the names and URLs we gave them
    let list = c.servers[0].ok(&["member", "list"]);
    let mut names = Vec::new();
    for line in list.lines() {
        let f: Vec<&str> = line.split(", ").collect();
        assert_eq!(f.len(), 6, "{line}");
        assert_eq!((f[1], f[5]), ("started", "false"), "{line}");
        let s = c
            .servers
            .iter()
            .find(|s| s.member().name == f[2])
            .unwrap_or_else(|| panic!("unknown member in {line}"));
        assert_eq!(f[3], s.member().peer_url());
        assert_eq!(f[4], format!("http://{}", s.endpoint()));
        names.push(f[2].to_string());
    }
    names.sort();
    assert_eq!(names, ["m1", "m2", "m3"]);
    let ids: Vec<String> = list
        .lines()
        .map(|l| l.split(", ").next().unwrap_or_default().to_string())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_by_key(|h| u64::from_str_radix(h, 16).unwrap_or(0));
    assert_eq!(ids, sorted, "member list is sorted by id");
    let j = c.servers[1]
        .ctl(&["member", "list", "-w", "json"])
        .ok()
        .json();
    assert_eq!(j["members"].as_array().map(Vec::len), Some(3));

    // exactly one leader, and every member agrees on it
    let st = Ctl::new(&all)
        .args(&["endpoint", "status", "-w", "json"])
        .run()
        .ok()
        .json();
    let st = st.as_array().expect("status array").clone();
    assert_eq!(st.len(), 3);
    let leader = st[0]["Status"]["leader"].clone();
    assert!(st.iter().all(|e| e["Status"]["leader"] == leader), "{st:?}");
    let leaders = st
        .iter()
        .filter(|e| e["Status"]["leader"] == e["Status"]["header"]["member_id"])
        .count();
    assert_eq!(leaders, 1, "{st:?}");
    let cluster_ids: Vec<_> = st
        .iter()
        .map(|e| e["Status"]["header"]["cluster_id"].clone())
        .collect();
    assert!(cluster_ids.iter().all(|x| *x == cluster_ids[0]));

    // a write on one member is visible on the others (linearizable read right away)
    c.servers[0].ok(&["put", "k", "v1"]);
    for s in &c.servers {
        s.ctl(&["get", "k"]).prints("k\nv1\n");
    }
    let serial = eventually(WAIT, || {
        let out = c.servers[2].ctl(&["get", "k", "--consistency=s"]);
        (out.stdout == "k\nv1\n").then_some(())
    });
    assert!(
        serial.is_some(),
        "serializable read on a follower never saw the write"
    );
    Ctl::new(&all).args(&["endpoint", "health"]).run().ok();

    // one member down: the other two still make progress
    c.servers[2].kill9();
    let p = c.servers[1]
        .ctl(&["put", "k", "v2", "-w", "json"])
        .ok()
        .json();
    let rev = header_revision(&p);
    assert_eq!(rev, 3);
    c.servers[0].ctl(&["get", "k"]).prints("k\nv2\n");
    // it comes back and catches up
    c.servers[2].restart();
    let caught_up = eventually(WAIT, || {
        let out = c.servers[2].ctl(&["get", "k", "--consistency=s", "-w", "json"]);
        (out.status == 0 && header_revision(&out.json()) >= rev).then_some(())
    });
    assert!(caught_up.is_some(), "restarted member never caught up");
    c.servers[2]
        .ctl(&["get", "k", "--consistency=s"])
        .prints("k\nv2\n");
    c.servers[2].ok(&["put", "k", "v3"]);
    c.servers[0].ctl(&["get", "k"]).prints("k\nv3\n");
}

/// kvd hands leadership over before a leader stops on SIGTERM, so the other members serve a
/// write at once instead of after an election timeout.
#[test]
fn a_stopping_leader_hands_over_leadership() {
    require_tools!();
    let _g = crate::harness::shared();
    let mut c = Cluster::start(&kvd_bin(), 3, &[]);
    let st = Ctl::new(&c.endpoints())
        .args(&["endpoint", "status", "-w", "json"])
        .run()
        .ok()
        .json();
    let st = st.as_array().cloned().unwrap_or_default();
    let leader_id = st[0]["Status"]["leader"].clone();
    let leader = st
        .iter()
        .position(|e| e["Status"]["header"]["member_id"] == leader_id)
        .expect("one member leads");
    let endpoint = st[leader]["Endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let index = c
        .servers
        .iter()
        .position(|s| s.endpoint() == endpoint)
        .expect("leader is a member");
    c.servers[index].stop();
    let other = (index + 1) % 3;
    // The write succeeds right away, and the old leader's log says it handed over.
    Ctl::new(&c.servers[other].endpoint())
        .command_timeout("3s")
        .args(&["put", "after-stop", "x"])
        .run()
        .ok();
    assert!(
        c.servers[index]
            .log_tail(50)
            .contains("handed leadership over before stopping"),
        "{}",
        c.servers[index].log_tail(20)
    );
}

/// `etcdctl move-leader` on kvd and on etcd: what it prints when leadership moves to a
/// follower, that every member then follows the new leader, and the refusals for an unknown
/// member and for endpoints that do not include the leader.
#[test]
fn move_leader_matches_etcd() {
    require_tools!();
    let _g = crate::harness::shared();
    let kvd = move_leader_scenario(&kvd_bin());
    let etcd = move_leader_scenario(&crate::harness::etcd_bin());
    assert_eq!(kvd, etcd, "kvd (left) and etcd (right) differ");
    assert_eq!(kvd[0], "Leadership transferred from <leader> to <target>\n");
    assert!(kvd[2].starts_with("unknown member: exit 1 "), "{}", kvd[2]);
    assert!(
        kvd[3].starts_with("no leader among endpoints: exit 128 "),
        "{}",
        kvd[3]
    );
    eprintln!("[move-leader] {kvd:?}");
}

/// The member IDs as JSON numbers, from `endpoint status -w json` of every member:
/// (this member, the leader it follows).
fn status_ids(endpoints: &str) -> Vec<(u64, u64)> {
    let st = Ctl::new(endpoints)
        .args(&["endpoint", "status", "-w", "json"])
        .run()
        .ok()
        .json();
    st.as_array()
        .expect("status array")
        .iter()
        .map(|e| {
            (
                e["Status"]["header"]["member_id"].as_u64().unwrap_or(0),
                e["Status"]["leader"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

fn move_leader_scenario(bin: &std::path::Path) -> Vec<String> {
    let c = Cluster::start(bin, 3, &[]);
    let all = c.endpoints();
    let ids = status_ids(&all);
    let leader = ids[0].1;
    let target = ids
        .iter()
        .map(|(m, _)| *m)
        .find(|m| *m != leader)
        .expect("a follower");
    let name = |id: u64| {
        if id == leader {
            "<leader>".to_string()
        } else if id == target {
            "<target>".to_string()
        } else {
            format!("{id:x}")
        }
    };
    let mut transcript = Vec::new();
    let moved = Ctl::new(&all)
        .args(&["move-leader", &format!("{target:x}")])
        .run()
        .ok();
    transcript.push(
        moved
            .stdout
            .replace(&format!("{leader:x}"), "<leader>")
            .replace(&format!("{target:x}"), "<target>"),
    );
    let followed = eventually(WAIT, || {
        let now = status_ids(&all);
        now.iter().all(|(_, l)| *l == target).then_some(now)
    })
    .expect("every member follows the new leader");
    transcript.push(format!(
        "leaders after the move: {:?}",
        followed.iter().map(|(_, l)| name(*l)).collect::<Vec<_>>()
    ));
    let unknown = Ctl::new(&all).args(&["move-leader", "1234abcd"]).run();
    transcript.push(format!(
        "unknown member: exit {} {:?}",
        unknown.status,
        unknown.err_lines()
    ));
    // only the old leader (now a follower) as endpoint: etcdctl finds no leader among them
    let old = c
        .servers
        .iter()
        .find(|s| status_ids(&s.endpoint()).first().map(|(m, _)| *m) == Some(leader))
        .expect("the old leader")
        .endpoint();
    let no_leader = Ctl::new(&old)
        .args(&["move-leader", &format!("{leader:x}")])
        .run();
    transcript.push(format!(
        "no leader among endpoints: exit {} {:?}",
        no_leader.status,
        no_leader
            .err_lines()
            .iter()
            .map(|l| l.replace(&old, "<endpoint>"))
            .collect::<Vec<_>>()
    ));
    transcript
}
