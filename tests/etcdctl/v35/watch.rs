//! `etcdctl watch -i` (3.5): watches created from stdin and `progress`, which asks the server
//! for a progress notification (RequestProgress) answered once every watcher on the stream is
//! up to date: `progress notify: REVISION`.

use std::time::Duration;

use super::{differential35, transcript};
use crate::differential::Transcript;
use crate::harness::{Bg, Server};

const LINE_WAIT: Duration = Duration::from_secs(10);

#[test]
fn interactive_watch_with_progress_requests() {
    require_tools!();
    require_etcd35!();
    differential35(interactive_scenario);
}

/// Reads `n` lines, records them, returns them.
fn expect_lines(t: &mut Transcript, w: &Bg, n: usize) -> Vec<String> {
    let lines = w.lines(n, LINE_WAIT);
    t.note("watch output", &lines.join("\n"));
    lines
}

fn interactive_scenario(s: &Server) -> Transcript {
    let mut t = transcript(s);
    t.ok(&["put", "w", "1"]); // 2
    let mut w = t.ctl().args(&["watch", "-i"]).spawn_interactive();
    w.send_line("watch w --rev 1");
    assert_eq!(expect_lines(&mut t, &w, 3), ["PUT", "w", "1"]);
    // The watcher has caught up: a progress request is answered at once.
    w.send_line("progress");
    assert_eq!(expect_lines(&mut t, &w, 1), ["progress notify: 2"]);
    t.ok(&["put", "w", "2"]); // 3
    assert_eq!(expect_lines(&mut t, &w, 3), ["PUT", "w", "2"]);
    w.send_line("progress");
    assert_eq!(expect_lines(&mut t, &w, 1), ["progress notify: 3"]);
    // A second watcher on the stream that never sees an event.
    w.send_line("watch quiet");
    t.ok(&["put", "other", "x"]); // 4
    w.send_line("progress");
    assert_eq!(expect_lines(&mut t, &w, 1), ["progress notify: 4"]);
    w.close_stdin();
    let status = w.wait(LINE_WAIT);
    t.note(
        "watch -i after end of input",
        &format!(
            "exit {status}\n{}",
            crate::harness::user_stderr(&w.stderr()).join("\n")
        ),
    );
    t
}
