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
