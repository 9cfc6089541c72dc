use kvd::proto::etcdserverpb::{
    watch_request::RequestUnion, CompactionRequest, DeleteRangeRequest, PutRequest,
    WatchCreateRequest, WatchRequest,
};
use kvd::proto::mvccpb::event::EventType;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::common::{within, Member};

fn create(key: &str, range_end: &str, start: i64, prev_kv: bool) -> WatchRequest {
    WatchRequest {
        request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
            key: key.into(),
            range_end: range_end.into(),
            start_revision: start,
            prev_kv,
            ..Default::default()
        })),
    }
}

#[tokio::test]
async fn history_then_live_without_gap_or_duplicate() {
    let m = Member::start().await;
    let mut kv = m.kv().await;
    let mut w = m.watch().await;
    within(async {
        for i in 0..5 {
            kv.put(PutRequest {
                key: format!("w/{i}").into(),
                value: b"v".to_vec(),
                ..Default::default()
            })
            .await
            .expect("put");
        }
        let (tx, rx) = mpsc::channel(8);
        tx.send(create("w/", "w0", 2, true)).await.expect("send");
        let mut stream = w
            .watch(ReceiverStream::new(rx))
            .await
            .expect("watch")
            .into_inner();
        let created = stream.message().await.expect("stream").expect("created");
        assert!(created.created);
        let mut writer = kv.clone();
        let live = tokio::spawn(async move {
            for i in 5..10 {
                writer
                    .put(PutRequest {
                        key: format!("w/{i}").into(),
                        value: b"v".to_vec(),
                        ..Default::default()
                    })
                    .await
                    .expect("put");
            }
            writer
                .delete_range(DeleteRangeRequest {
                    key: "w/0".into(),
                    ..Default::default()
                })
                .await
                .expect("delete");
        });
        let mut revs = Vec::new();
        let mut deletes = 0;
        while revs.len() < 11 {
            let resp = stream.message().await.expect("stream").expect("events");
            for ev in resp.events {
                if ev.r#type == EventType::Delete as i32 {
                    deletes += 1;
                    assert_eq!(ev.prev_kv.expect("prev_kv asked").key, b"w/0");
                }
                revs.push(ev.kv.expect("kv").mod_revision);
            }
        }
        live.await.expect("writer");
        assert_eq!(
            revs,
            (2..=12).collect::<Vec<i64>>(),
            "every revision once, in order"
        );
        assert_eq!(deletes, 1);
        drop(tx);
    })
    .await;
}

#[tokio::test]
async fn compacted_start_revision_is_answered_in_the_stream() {
    let m = Member::start().await;
    let mut kv = m.kv().await;
    let mut w = m.watch().await;
    within(async {
        for v in ["1", "2", "3"] {
            kv.put(PutRequest {
                key: "c".into(),
                value: v.into(),
                ..Default::default()
            })
            .await
            .expect("put");
        }
        kv.compact(CompactionRequest {
            revision: 3,
            physical: false,
        })
        .await
        .expect("compact");
        let (tx, rx) = mpsc::channel(8);
        tx.send(create("c", "", 1, false)).await.expect("send");
        let mut stream = w
            .watch(ReceiverStream::new(rx))
            .await
            .expect("watch")
            .into_inner();
        let created = stream.message().await.expect("stream").expect("created");
        assert!(created.created);
        let canceled = stream.message().await.expect("stream").expect("canceled");
        assert!(canceled.canceled);
        assert_eq!(canceled.compact_revision, 3);
        drop(tx);
    })
    .await;
}

/// A member that shuts down ends its open watch streams with etcd's retryable
/// `etcdserver: server stopped` (so clients move to another member) instead of keeping them,
/// and its connections, open until a timeout.
#[tokio::test]
async fn shutdown_ends_open_watches_with_server_stopped() {
    let mut m = Member::start().await;
    let mut w = m.watch().await;
    within(async {
        let (tx, rx) = mpsc::channel(8);
        tx.send(create("s/", "s0", 0, false)).await.expect("send");
        let mut stream = w
            .watch(ReceiverStream::new(rx))
            .await
            .expect("watch")
            .into_inner();
        let created = stream.message().await.expect("stream").expect("created");
        assert!(created.created);
        let handle = m.handle.take().expect("running");
        let stopping = tokio::spawn(handle.shutdown());
        let err = loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the watch ended without an error"),
                Err(e) => break e,
            }
        };
        assert_eq!(
            (err.code(), err.message()),
            (tonic::Code::Unavailable, "etcdserver: server stopped")
        );
        stopping.await.expect("shutdown finished");
        drop(tx);
    })
    .await;
}
