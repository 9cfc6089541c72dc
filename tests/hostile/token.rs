//! A token etcd never issued, also one of 1 MiB, in a request's metadata: etcd answers that
//! request `etcdserver: invalid auth token` (auth need not be enabled) and every other stream
//! on the same connection carries on.

use std::time::Duration;

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::watch_client::WatchClient;
use kvd::proto::etcdserverpb::watch_request::RequestUnion;
use kvd::proto::etcdserverpb::{PutRequest, RangeRequest, WatchCreateRequest, WatchRequest};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;

use crate::server::Server;

#[test]
fn a_bogus_or_huge_token_fails_only_its_own_request() {
    for (label, bin) in crate::servers() {
        crate::run("token", Duration::from_secs(60), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let ch = server.channel().await;
            // a watch on the same connection, to show it survives
            let (tx, rx) = mpsc::channel(4);
            tx.send(WatchRequest {
                request_union: Some(RequestUnion::CreateRequest(WatchCreateRequest {
                    key: b"token/k".to_vec(),
                    ..Default::default()
                })),
            })
            .await
            .expect("queue");
            let mut watch = WatchClient::new(ch.clone())
                .watch(ReceiverStream::new(rx))
                .await
                .expect("watch")
                .into_inner();
            assert!(
                watch
                    .message()
                    .await
                    .expect("created")
                    .expect("open")
                    .created
            );

            for token in ["bogus".to_string(), "a".repeat(1 << 20)] {
                let mut request = tonic::Request::new(RangeRequest {
                    key: b"token/k".to_vec(),
                    ..Default::default()
                });
                request
                    .metadata_mut()
                    .insert("token", token.parse().expect("ascii token"));
                let refused = KvClient::new(ch.clone())
                    .range(request)
                    .await
                    .expect_err("a token nobody issued");
                assert_eq!(
                    (refused.code(), refused.message()),
                    (Code::Unauthenticated, "etcdserver: invalid auth token"),
                    "{label}: token of {} bytes",
                    token.len()
                );
            }

            // the same connection still works, and so does its open watch
            let put = KvClient::new(ch.clone())
                .put(PutRequest {
                    key: b"token/k".to_vec(),
                    value: b"v".to_vec(),
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{label}: put on the same connection: {e}"))
                .into_inner();
            let rev = put.header.expect("header").revision;
            let event = tokio::time::timeout(Duration::from_secs(10), watch.message())
                .await
                .expect("the watch delivers in time")
                .unwrap_or_else(|e| panic!("{label}: the watch on that connection ended: {e}"))
                .expect("open");
            assert_eq!(event.events[0].kv.as_ref().expect("kv").mod_revision, rev);
            drop(tx);
            server.assert_serving().await;
        });
    }
}
