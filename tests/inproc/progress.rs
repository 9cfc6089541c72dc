//! RequestProgress under concurrent writes: a progress notification's revision never runs
//! ahead of an event not yet delivered on its stream (etcd's "bookmarkable" guarantee, which
//! etcd 3.4.23 breaks: etcd #15220). One watcher starts in the past, so the stream begins
//! unsynced; the progress requests made then are answered once it has caught up.

use std::time::Duration;

use kvd::proto::etcdserverpb::{
    watch_request::RequestUnion, PutRequest, WatchCreateRequest, WatchProgressRequest, WatchRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::common::{within, Member};

const WRITERS: usize = 4;
const PUTS_PER_WRITER: usize = 150;

fn create(key: &str, range_end: &str, start: i64) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            start_revision: start,
            ..Default::default()
        })),
    }
}

fn progress_request() -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::ProgressRequest(WatchProgressRequest {})),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn progress_never_runs_ahead_of_undelivered_events() {
    let m = Member::start().await;
    let kv = m.kv().await;
    let mut w = m.watch().await;
    within(async {
        // history the first watcher has to catch up on
        let mut first = kv.clone();
        for i in 0..200 {
            first
                .put(PutRequest {
                    key: format!("p/h{i}").into(),
                    value: b"v".to_vec(),
                    ..Default::default()
                })
                .await
                .expect("put");
        }
        let (tx, rx) = mpsc::channel(64);
        tx.send(create("p/", "p0", 1)).await.expect("send");
        tx.send(create("q/", "q0", 0)).await.expect("send");
        let mut stream = w
            .watch(ReceiverStream::new(rx))
            .await
            .expect("watch")
            .into_inner();
        // Both watchers exist before the first write: "q/" starts at the revision current when
        // it is created, so a write racing its creation would not be its event.
        let mut created = 0;
        while created < 2 {
            let resp = stream.message().await.expect("stream").expect("open");
            assert!(resp.created, "only creations come before the first write");
            created += 1;
        }
        let mut writers = Vec::new();
        for n in 0..WRITERS {
            let mut kv = kv.clone();
            writers.push(tokio::spawn(async move {
                for i in 0..PUTS_PER_WRITER {
                    let key = if i % 10 == 0 {
                        "q/x".to_string()
                    } else {
                        format!("p/{n}/{i}")
                    };
                    kv.put(PutRequest {
                        key: key.into(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .expect("put");
                }
            }));
        }
        // progress requests until the reader has seen everything (it aborts this task)
        let requester = tokio::spawn(async move {
            while tx.send(progress_request()).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        for wr in writers {
            wr.await.expect("writer");
        }
        let final_rev = 1 + 200 + (WRITERS * PUTS_PER_WRITER) as i64;
        let mut delivered_max = 0i64;
        let mut bookmark = 0i64;
        let mut events = 0usize;
        let mut progress = 0usize;
        let mut violations = Vec::new();
        let mut last_of = std::collections::HashMap::new();
        while delivered_max < final_rev || bookmark < final_rev {
            let resp = stream.message().await.expect("stream").expect("open");
            if resp.created {
                continue;
            }
            if resp.events.is_empty() {
                let rev = resp.header.expect("header").revision;
                assert_eq!(resp.watch_id, -1, "a RequestProgress answer");
                assert!(
                    rev >= bookmark,
                    "progress revisions never go back: {rev} < {bookmark}"
                );
                bookmark = rev;
                progress += 1;
                continue;
            }
            for ev in &resp.events {
                let rev = ev.kv.as_ref().expect("kv").mod_revision;
                if rev <= bookmark {
                    violations.push(format!(
                        "event at revision {rev} arrived after progress {bookmark}"
                    ));
                }
                let last = last_of.entry(resp.watch_id).or_insert(0);
                assert!(
                    rev >= *last,
                    "watch {} out of order: {rev} after {last}",
                    resp.watch_id
                );
                *last = rev;
                delivered_max = delivered_max.max(rev);
                events += 1;
            }
            if progress > 0 && bookmark >= final_rev && delivered_max >= final_rev {
                break;
            }
        }
        requester.abort();
        assert!(violations.is_empty(), "{}", violations.join("\n"));
        assert_eq!(events, 200 + WRITERS * PUTS_PER_WRITER, "every event once");
        assert!(progress >= 10, "only {progress} progress answers");
        eprintln!("{events} events, {progress} progress answers, last at {bookmark}");
    })
    .await;
}
