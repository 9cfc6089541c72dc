//! RequestProgress semantics, which decide the version kvd may report (see README, "Version").
//!
//! kube-apiserver serves consistent reads from its watch cache only for etcd versions whose
//! progress notifications are trustworthy: 3.4.31+ and 3.5.13+. Two fixes make them so:
//! - 3.4.25 / 3.5.8: a requested progress notification travels in order with the stream's
//!   events, so `progress notify: R` never precedes an event of a revision up to R, and never
//!   reports less than an event already sent;
//! - 3.4.31 / 3.5.13: a watcher that catches up without any event still gets the notification.
//!
//! The first property is checked under concurrent writes; a stream that breaks it must not
//! report a version that claims the fix. The second must always hold.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{etcdctl35_bin, header_revision, Ctl, Server};

/// Does an etcd version (`3.4.23`) include the "progress notifications in order" fix?
fn claims_ordered_progress(version: &str) -> bool {
    let parts: Vec<u32> = version.split('.').filter_map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [3, 4, patch, ..] => *patch >= 25,
        [3, 5, patch, ..] => *patch >= 8,
        [3, minor, ..] => *minor >= 6,
        [major, ..] => *major > 3,
        [] => false,
    }
}

#[test]
fn the_version_rule_matches_etcds_releases() {
    assert!(!claims_ordered_progress("3.4.23"));
    assert!(claims_ordered_progress("3.4.25"));
    assert!(!claims_ordered_progress("3.5.7"));
    assert!(claims_ordered_progress("3.5.13"));
    assert!(claims_ordered_progress("3.6.0"));
}

fn reported_version(s: &Server) -> String {
    let j = s.ctl(&["endpoint", "status", "-w", "json"]).ok().json();
    j[0]["Status"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// One thing the watch printed, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Event(i64),
    Progress(i64),
}

/// Orders broken: a notification at or above an event still to come, or below one already
/// sent.
fn violations(seen: &[Seen]) -> Vec<String> {
    let (mut max_event, mut max_progress) = (0, 0);
    let mut out = Vec::new();
    for s in seen {
        match *s {
            Seen::Event(r) => {
                if r <= max_progress {
                    out.push(format!("event {r} after progress notify {max_progress}"));
                }
                max_event = max_event.max(r);
            }
            Seen::Progress(r) => {
                if r < max_event {
                    out.push(format!("progress notify {r} after event {max_event}"));
                }
                max_progress = max_progress.max(r);
            }
        }
    }
    out
}

#[test]
fn the_order_check_finds_both_kinds_of_violation() {
    use Seen::{Event, Progress};
    assert!(violations(&[Event(2), Progress(2), Event(3), Progress(3)]).is_empty());
    assert_eq!(violations(&[Progress(3), Event(3)]).len(), 1);
    assert_eq!(violations(&[Event(4), Progress(3)]).len(), 1);
}

fn parse(lines: &[String]) -> Vec<Seen> {
    let mut seen = Vec::new();
    for l in lines {
        if let Some(r) = l.strip_prefix("progress notify: ") {
            seen.push(Seen::Progress(r.trim().parse().unwrap_or(0)));
        } else if l.starts_with('{') {
            let v: Value = serde_json::from_str(l).unwrap_or(Value::Null);
            for e in v["Events"].as_array().into_iter().flatten() {
                seen.push(Seen::Event(e["kv"]["mod_revision"].as_i64().unwrap_or(0)));
            }
        }
    }
    seen
}

#[test]
fn progress_notifications_under_writes_stay_in_order_or_the_version_says_so() {
    require_tools!();
    require_etcd35!();
    let _alone = crate::harness::exclusive();
    let s = Server::kvd(&[]);
    let first = header_revision(&s.ctl(&["put", "pk", "0", "-w", "json"]).ok().json());
    let mut w = Ctl::new(&s.endpoint())
        .bin(&etcdctl35_bin())
        .args(&["watch", "-i", "-w", "json"])
        .spawn_interactive();
    w.send_line(&format!("watch pk --rev {first}"));
    std::thread::scope(|sc| {
        let writers: Vec<_> = (0..4)
            .map(|i| {
                let s = &s;
                sc.spawn(move || {
                    for n in 0..40 {
                        s.ctl(&["put", "pk", &format!("{i}-{n}")]).ok();
                    }
                })
            })
            .collect();
        // Progress requests while the writes go on.
        while writers.iter().any(|h| !h.is_finished()) {
            w.send_line("progress");
            std::thread::sleep(Duration::from_millis(15));
        }
        for h in writers {
            h.join().expect("writer");
        }
    });
    let last = s.revision();
    // Keep asking until a notification covers the last write: everything has arrived then.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    loop {
        w.send_line("progress");
        lines.extend(w.rest(Duration::from_millis(200)));
        let covered = parse(&lines)
            .iter()
            .any(|s| matches!(s, Seen::Progress(r) if *r >= last));
        if covered {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no progress notification reached revision {last}"
        );
    }
    let seen = parse(&lines);
    let events = seen.iter().filter(|s| matches!(s, Seen::Event(_))).count();
    assert_eq!(
        events,
        usize::try_from(last - first + 1).expect("revision span"),
        "every write is seen once"
    );
    let broken = violations(&seen);
    let version = reported_version(&s);
    eprintln!(
        "{} progress notifications, {events} events, {} out of order; version {version}",
        seen.len() - events,
        broken.len()
    );
    assert!(
        broken.is_empty() || !claims_ordered_progress(&version),
        "kvd reports {version}, whose progress notifications etcd keeps in order with the events, but: {broken:?}"
    );
}

/// etcd 3.4.31 / 3.5.13: a watcher that starts in the past and catches up without a single
/// event still gets its progress notification.
#[test]
fn a_watcher_that_catches_up_without_events_gets_progress() {
    require_tools!();
    require_etcd35!();
    let s = Server::kvd(&[]);
    let start = header_revision(&s.ctl(&["put", "other", "0", "-w", "json"]).ok().json());
    for n in 1..=5 {
        s.ctl(&["put", "other", &n.to_string()]).ok();
    }
    let current = s.revision();
    let mut w = Ctl::new(&s.endpoint())
        .bin(&etcdctl35_bin())
        .args(&["watch", "-i"])
        .spawn_interactive();
    w.send_line(&format!("watch never-written --rev {start}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    let notified = loop {
        w.send_line("progress");
        if let Some(line) = w.next_line(Duration::from_millis(100)) {
            break line;
        }
        assert!(
            Instant::now() < deadline,
            "no progress notification for a watcher without events"
        );
    };
    assert_eq!(notified, format!("progress notify: {current}"));
}
