//! Watch scenarios: single key, prefix, range, `--rev` history, `--prev-kv`, live events,
//! JSON output, and a watch from a compacted revision.
//!
//! Watches that start in the past (`--rev`) see every event whatever the timing; a watch
//! without `--rev` is first synchronised by writing probe values until one arrives, then
//! draining up to a marker, so the recorded part is deterministic.

use std::time::Duration;

use serde_json::Value;

use crate::differential::{differential, Transcript};
use crate::harness::{b64, user_stderr, Bg, Server};

const LINE_WAIT: Duration = Duration::from_secs(10);

/// Starts `etcdctl watch args...` and records it as a step of the transcript.
fn watch(t: &mut Transcript, s: &Server, args: &[&str]) -> Bg {
    let mut full = vec!["watch"];
    full.extend_from_slice(args);
    t.note("start", &format!("etcdctl {}", full.join(" ")));
    Bg::start(s, &full)
}

/// Reads watch output up to and including the line `last`, records it, returns it.
fn read_until(t: &mut Transcript, w: &Bg, last: &str) -> Vec<String> {
    let mut lines = w.until(last, LINE_WAIT);
    lines.push(last.to_string());
    t.note("watch output", &lines.join("\n"));
    lines
}

#[test]
fn watch_history_and_live() {
    require_tools!();
    differential(watch_history_scenario);
}

fn watch_history_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "k", "v1"]); // 2
    t.ok(&["put", "p/a", "a1"]); // 3
    t.ok(&["put", "k", "v2"]); // 4
    t.ok(&["put", "p/b", "b1"]); // 5
    t.ok(&["del", "k"]); // 6
    t.ok(&["put", "q", "q1"]); // 7
    t.ok(&["del", "p/", "--prefix"]); // 8: two DELETE events at one revision

    let w = watch(&mut t, s, &["k", "--rev", "1"]);
    let lines = read_until(&mut t, &w, "v2");
    assert_eq!(lines, ["PUT", "k", "v1", "PUT", "k", "v2"]);
    assert_eq!(w.lines(3, LINE_WAIT), ["DELETE", "k", ""]);
    // live event after the history
    t.ok(&["put", "k", "v3"]); // 9
    assert_eq!(w.lines(3, LINE_WAIT), ["PUT", "k", "v3"]);
    drop(w);

    let w = watch(&mut t, s, &["p/", "--prefix", "--rev", "2"]);
    let lines = read_until(&mut t, &w, "b1");
    assert_eq!(lines, ["PUT", "p/a", "a1", "PUT", "p/b", "b1"]);
    assert_eq!(
        w.lines(6, LINE_WAIT),
        ["DELETE", "p/a", "", "DELETE", "p/b", ""]
    );
    t.ok(&["put", "p/c", "c1"]); // 10
    t.ok(&["put", "pp", "not in range"]); // 11
    t.ok(&["put", "p/c", "c2"]); // 12
    assert_eq!(
        w.lines(6, LINE_WAIT),
        ["PUT", "p/c", "c1", "PUT", "p/c", "c2"]
    );
    drop(w);

    // start revision in the middle of the history
    let w = watch(&mut t, s, &["k", "--rev", "5"]);
    let lines = read_until(&mut t, &w, "v3");
    assert_eq!(lines, ["DELETE", "k", "", "PUT", "k", "v3"]);
    drop(w);

    // explicit range [p/b, q]: p/b deletion, p/c puts, pp; q is outside
    let w = watch(&mut t, s, &["p/b", "q", "--rev", "6"]);
    let lines = read_until(&mut t, &w, "c2");
    assert_eq!(
        lines,
        [
            "DELETE",
            "p/b",
            "",
            "PUT",
            "p/c",
            "c1",
            "PUT",
            "pp",
            "not in range",
            "PUT",
            "p/c",
            "c2"
        ]
    );
    drop(w);

    // --prev-kv: the previous key/value come before the new ones
    let w = watch(&mut t, s, &["k", "--prev-kv", "--rev", "2"]);
    let lines = read_until(&mut t, &w, "v3");
    assert_eq!(
        lines,
        [
            "PUT", "k", "v1", "PUT", "k", "v1", "k", "v2", "DELETE", "k", "v2", "k", "", "PUT",
            "k", "v3"
        ]
    );
    drop(w);

    // an empty prefix watches every key (etcdctl 3.4's watch has no --from-key)
    let w = watch(&mut t, s, &["", "--prefix", "--rev", "11"]);
    let lines = read_until(&mut t, &w, "c2");
    assert_eq!(lines, ["PUT", "pp", "not in range", "PUT", "p/c", "c2"]);
    t.ok(&["put", "r", "r1"]); // 13
    assert_eq!(w.lines(3, LINE_WAIT), ["PUT", "r", "r1"]);
    drop(w);
    assert_eq!(s.revision(), 13);
    t
}

#[test]
fn watch_without_rev_sees_live_events() {
    require_tools!();
    differential(watch_live_scenario);
}

/// A watch without `--rev` starts at the current revision: once it is established it
/// sees the following writes, nothing earlier.
fn watch_live_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "w/old", "before"]);
    let w = Bg::start(s, &["watch", "w/", "--prefix"]);
    // synchronise: probe until the watcher reports something, then drain to a marker
    let mut n = 0;
    loop {
        n += 1;
        assert!(n < 100, "watch never delivered a probe: {}", w.stderr());
        s.ok(&["put", "w/probe", &format!("probe-{n}")]);
        if w.next_line(Duration::from_millis(500)).is_some() {
            break;
        }
    }
    s.ok(&["put", "w/marker", "marker"]);
    let drained = w.until("marker", LINE_WAIT);
    assert!(
        !drained.iter().any(|l| l == "before"),
        "old value replayed: {drained:?}"
    );
    t.note("synchronised", "");
    t.ok(&["put", "w/a", "1"]);
    t.ok(&["del", "w/probe"]);
    t.ok(&["put", "other", "x"]);
    t.ok(&["put", "w/a", "2"]);
    let lines = read_until(&mut t, &w, "2");
    assert_eq!(
        lines,
        ["PUT", "w/a", "1", "DELETE", "w/probe", "", "PUT", "w/a", "2"]
    );
    t
}

#[test]
fn watch_json_output() {
    require_tools!();
    differential(watch_json_scenario);
}

/// `watch -w json`: events carry type (PUT omitted as the zero value, DELETE = 1), kv with
/// revisions, prev_kv; responses may batch history, so the scenario records the event list.
fn watch_json_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    t.ok(&["put", "j", "1"]); // 2
    t.ok(&["put", "j", "2"]); // 3
    t.ok(&["del", "j"]); // 4
    let w = Bg::start(s, &["watch", "j", "--rev", "2", "--prev-kv", "-w", "json"]);
    let mut events: Vec<String> = Vec::new();
    while events.len() < 3 {
        let line = w
            .next_line(LINE_WAIT)
            .unwrap_or_else(|| panic!("watch -w json gave {events:?}; stderr {}", w.stderr()));
        let v: Value = serde_json::from_str(&line).expect("watch json line");
        assert_eq!(v["Created"], false);
        assert_eq!(v["Canceled"], false);
        assert!(v["Header"]["revision"].as_i64().unwrap_or(0) >= 4, "{v}");
        for e in v["Events"].as_array().expect("Events") {
            let kv = &e["kv"];
            let mut desc = format!(
                "type={} key={} value={} create={} mod={} version={}",
                e.get("type").and_then(Value::as_i64).unwrap_or(0),
                b64(&kv["key"]),
                kv.get("value").map(b64).unwrap_or_default(),
                kv.get("create_revision")
                    .and_then(Value::as_i64)
                    .unwrap_or(0),
                kv["mod_revision"].as_i64().unwrap_or(0),
                kv.get("version").and_then(Value::as_i64).unwrap_or(0),
            );
            if let Some(p) = e.get("prev_kv") {
                desc.push_str(&format!(
                    " prev={}@{}",
                    p.get("value").map(b64).unwrap_or_default(),
                    p["mod_revision"].as_i64().unwrap_or(0)
                ));
            }
            events.push(desc);
        }
    }
    assert_eq!(
        events,
        [
            "type=0 key=j value=1 create=2 mod=2 version=1",
            "type=0 key=j value=2 create=2 mod=3 version=2 prev=1@2",
            "type=1 key=j value= create=0 mod=4 version=0 prev=2@3",
        ]
    );
    t.note("events", &events.join("\n"));
    t
}

#[test]
fn watch_compacted_revision() {
    require_tools!();
    differential(watch_compacted_scenario);
}

fn watch_compacted_scenario(s: &Server) -> Transcript {
    let mut t = Transcript::new(s);
    for v in ["1", "2", "3", "4"] {
        t.ok(&["put", "c", v]); // 2..=5
    }
    t.ok(&["compaction", "4"]).prints("compacted revision 4\n");
    let mut w = Bg::start(s, &["watch", "c", "--rev", "3"]);
    let code = w.wait(LINE_WAIT);
    let out = w.rest(Duration::from_millis(200));
    let err = user_stderr(&w.stderr());
    t.note("exit", &code.to_string());
    t.note("stdout", &out.join("\n"));
    t.note("stderr", &err.join("\n"));
    assert_eq!(code, 5);
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(
        err,
        [
            "watch was canceled (etcdserver: mvcc: required revision has been compacted)",
            "Error: watch is canceled by the server"
        ]
    );
    // the compaction revision itself is still watchable
    let w = Bg::start(s, &["watch", "c", "--rev", "4"]);
    let lines = read_until(&mut t, &w, "4");
    assert_eq!(lines, ["PUT", "c", "3", "PUT", "c", "4"]);
    t
}
