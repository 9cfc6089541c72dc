//! Concurrency recipes that etcdctl builds on leases, txns and watches: `lock` (with a
//! command and `ETCD_LOCK_KEY`/`ETCD_LOCK_REV`, two lockers serialising) and `elect`
//! (campaign, observer with `-l`, hand-over on resign).
//!
//! Lock keys contain etcdctl's session lease id, so these tests assert absolutely against
//! the server under test instead of comparing transcripts.

use std::time::Duration;

use crate::harness::{Bg, Server};

const WAIT: Duration = Duration::from_secs(15);
/// How long a blocked waiter must stay silent to count as blocked.
const BLOCKED: Duration = Duration::from_millis(1500);

/// Splits `NAME/<hex lease id>`.
#[track_caller]
fn lock_key(line: &str, name: &str) -> u64 {
    let id = line
        .strip_prefix(&format!("{name}/"))
        .unwrap_or_else(|| panic!("{line:?} is not {name}/<id>"));
    u64::from_str_radix(id, 16).unwrap_or_else(|_| panic!("{line:?}: id not hex"))
}

#[test]
fn lock_runs_command_with_env() {
    require_tools!();
    let _g = crate::harness::shared();
    let s = Server::kvd(&[]);
    s.ok(&["put", "x", "1"]);
    let out = s
        .ctl(&[
            "lock",
            "mylock",
            "--",
            "sh",
            "-c",
            "echo \"$ETCD_LOCK_KEY\"; echo \"$ETCD_LOCK_REV\"",
        ])
        .ok();
    let lines = out.lines();
    assert_eq!(lines.len(), 2, "{out:?}");
    lock_key(lines[0], "mylock");
    assert_eq!(
        lines[1], "3",
        "the lock key is created at revision 3: {out:?}"
    );
    // the lock is released (its session lease revoked) when the command ends
    s.ctl(&["get", "mylock", "--prefix"]).prints("");
    // the command's exit status is reported
    s.ctl(&["lock", "mylock", "--", "sh", "-c", "exit 3"])
        .fails_with(1, "Error: exit status 3");
    s.ctl(&["get", "mylock", "--prefix"]).prints("");
}

#[test]
fn two_lockers_serialise() {
    require_tools!();
    let _g = crate::harness::shared();
    let s = Server::kvd(&[]);
    let mut a = Bg::start(&s, &["lock", "L"]);
    let a_line = a.lines(1, WAIT).remove(0);
    let a_id = lock_key(&a_line, "L");
    let b = Bg::start(
        &s,
        &["lock", "L", "--", "sh", "-c", "echo \"got $ETCD_LOCK_KEY\""],
    );
    // b has queued its own key but must not get the lock while a holds it
    let queued = crate::harness::eventually(WAIT, || {
        let keys = s.ok(&["get", "L", "--prefix", "--keys-only"]);
        (keys.split_whitespace().count() == 2).then_some(keys)
    })
    .expect("second locker never queued its key");
    assert!(queued.contains(&a_line), "{queued}");
    assert!(
        b.quiet_for(BLOCKED),
        "second locker ran while the lock was held"
    );
    // releasing a (SIGTERM: etcdctl unlocks and revokes its session) lets b run
    a.terminate();
    let got = b.lines(1, WAIT).remove(0);
    let b_key = got.strip_prefix("got ").expect("b's output");
    let b_id = lock_key(b_key, "L");
    assert_ne!(a_id, b_id);
    let mut b = b;
    assert_eq!(b.wait(WAIT), 0);
    let left = crate::harness::eventually(WAIT, || {
        s.ok(&["get", "L", "--prefix"]).is_empty().then_some(())
    });
    assert!(left.is_some(), "lock keys left behind");
}

#[test]
fn election_campaign_observe_and_handover() {
    require_tools!();
    let _g = crate::harness::shared();
    let s = Server::kvd(&[]);
    let mut p1 = Bg::start(&s, &["elect", "E", "p1"]);
    let l1 = p1.lines(2, WAIT);
    let id1 = lock_key(&l1[0], "E");
    assert_eq!(l1[1], "p1");
    let obs = Bg::start(&s, &["elect", "-l", "E"]);
    let o1 = obs.lines(2, WAIT);
    assert_eq!(o1, l1, "observer reports the current leader");
    let p2 = Bg::start(&s, &["elect", "E", "p2"]);
    let queued = crate::harness::eventually(WAIT, || {
        let keys = s.ok(&["get", "E", "--prefix", "--keys-only"]);
        (keys.split_whitespace().count() == 2).then_some(())
    });
    assert!(queued.is_some(), "second candidate never queued");
    assert!(
        p2.quiet_for(BLOCKED),
        "second candidate elected while p1 leads"
    );
    s.ok(&["get", "E", "--prefix", "--print-value-only"])
        .lines()
        .zip(["p1", "p2"])
        .for_each(|(got, want)| assert_eq!(got, want));
    // p1 resigns on SIGTERM: p2 becomes leader, the observer follows
    p1.terminate();
    let l2 = p2.lines(2, WAIT);
    let id2 = lock_key(&l2[0], "E");
    assert_ne!(id1, id2);
    assert_eq!(l2[1], "p2");
    let o2 = obs.lines(2, WAIT);
    assert_eq!(o2, l2);
}
