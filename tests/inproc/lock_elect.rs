//! The Lock and Election services: serialisation of lock holders, elections, error texts, and
//! clean-up when a waiting client goes away.

use std::time::Duration;

use kvd::proto::etcdserverpb::kv_client::KvClient;
use kvd::proto::etcdserverpb::lease_client::LeaseClient;
use kvd::proto::etcdserverpb::{
    LeaseGrantRequest, LeaseRevokeRequest, LeaseTimeToLiveRequest, RangeRequest,
};
use kvd::proto::v3electionpb::election_client::ElectionClient;
use kvd::proto::v3electionpb::{
    CampaignRequest, LeaderKey, LeaderRequest, ProclaimRequest, ResignRequest,
};
use kvd::proto::v3lockpb::lock_client::LockClient;
use kvd::proto::v3lockpb::{LockRequest, UnlockRequest};
use tonic::transport::Channel;
use tonic::Code;

use crate::common::{within, Member};

async fn grant(lease: &mut LeaseClient<Channel>, ttl: i64) -> i64 {
    lease
        .lease_grant(LeaseGrantRequest { ttl, id: 0 })
        .await
        .expect("grant")
        .into_inner()
        .id
}

/// The key-value at `key`, if any.
async fn get(kv: &mut KvClient<Channel>, key: &[u8]) -> Option<kvd::proto::mvccpb::KeyValue> {
    let r = kv
        .range(RangeRequest {
            key: key.to_vec(),
            ..Default::default()
        })
        .await
        .expect("range")
        .into_inner();
    r.kvs.into_iter().next()
}

/// Polls until `key` exists (or not), bounded by the caller's `within`.
async fn wait_for_key(kv: &mut KvClient<Channel>, key: &[u8], present: bool) {
    while get(kv, key).await.is_some() != present {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Asserts that `task` does not finish within a short grace period (it must be waiting).
async fn assert_still_waiting<T>(task: &mut tokio::task::JoinHandle<T>) {
    let waited = tokio::time::timeout(Duration::from_millis(300), task).await;
    assert!(
        waited.is_err(),
        "the waiter must not finish while the earlier holder holds"
    );
}

fn hex_key(prefix: &str, lease: i64) -> Vec<u8> {
    format!("{prefix}/{lease:x}").into_bytes()
}

#[tokio::test]
async fn two_lockers_serialise_on_unlock_and_on_revoke() {
    let m = Member::start().await;
    let mut lock = LockClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let (l1, l2, l3) = (
            grant(&mut lease, 30).await,
            grant(&mut lease, 30).await,
            grant(&mut lease, 30).await,
        );
        let first = lock
            .lock(LockRequest {
                name: b"m".to_vec(),
                lease: l1,
            })
            .await
            .expect("lock")
            .into_inner();
        assert_eq!(
            first.key,
            hex_key("m", l1),
            "the lock key is NAME/<lease hex>"
        );
        let held_rev = first.header.expect("header").revision;
        assert_eq!(get(&mut kv, &first.key).await.expect("key").lease, l1);

        // The second locker waits until the first unlocks.
        let mut second_client = lock.clone();
        let mut second = tokio::spawn(async move {
            second_client
                .lock(LockRequest {
                    name: b"m".to_vec(),
                    lease: l2,
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("m", l2), true).await;
        assert_still_waiting(&mut second).await;
        let unlocked = lock
            .unlock(UnlockRequest {
                key: first.key.clone(),
            })
            .await
            .expect("unlock")
            .into_inner();
        let unlock_rev = unlocked.header.expect("header").revision;
        assert!(unlock_rev > held_rev);
        let second = second.await.expect("task").expect("lock").into_inner();
        assert_eq!(second.key, hex_key("m", l2));
        assert!(second.header.expect("header").revision >= unlock_rev);

        // The third waits until the second's lease is revoked.
        let mut third_client = lock.clone();
        let mut third = tokio::spawn(async move {
            third_client
                .lock(LockRequest {
                    name: b"m".to_vec(),
                    lease: l3,
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("m", l3), true).await;
        assert_still_waiting(&mut third).await;
        lease
            .lease_revoke(LeaseRevokeRequest { id: l2 })
            .await
            .expect("revoke");
        let third = third.await.expect("task").expect("lock").into_inner();
        assert_eq!(third.key, hex_key("m", l3));

        // Locking again under the holding lease returns at once with the same key.
        let again = lock
            .lock(LockRequest {
                name: b"m".to_vec(),
                lease: l3,
            })
            .await
            .expect("relock")
            .into_inner();
        assert_eq!(again.key, third.key);
    })
    .await;
}

#[tokio::test]
async fn lock_errors_and_session_lease() {
    let m = Member::start().await;
    let mut lock = LockClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let err = lock
            .lock(LockRequest {
                name: b"x".to_vec(),
                lease: 12345,
            })
            .await
            .expect_err("unknown lease");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "etcdserver: requested lease not found")
        );
        assert!(
            get(&mut kv, &hex_key("x", 12345)).await.is_none(),
            "no key for a failed lock"
        );

        let err = lock
            .unlock(UnlockRequest { key: Vec::new() })
            .await
            .expect_err("empty key");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "etcdserver: key is not provided")
        );
        let before = m
            .kv()
            .await
            .range(RangeRequest {
                key: b"a".to_vec(),
                ..Default::default()
            })
            .await
            .expect("range");
        let rev = before.into_inner().header.expect("header").revision;
        let missing = lock
            .unlock(UnlockRequest {
                key: b"nothing".to_vec(),
            })
            .await
            .expect("unlock of a missing key")
            .into_inner();
        assert_eq!(
            missing.header.expect("header").revision,
            rev,
            "deleting nothing costs no revision"
        );

        // Lease 0: the lock gets a fresh 60-second lease of its own.
        let r = lock
            .lock(LockRequest {
                name: b"s".to_vec(),
                lease: 0,
            })
            .await
            .expect("lock")
            .into_inner();
        let held = get(&mut kv, &r.key).await.expect("lock key");
        assert!(held.lease != 0);
        assert_eq!(r.key, hex_key("s", held.lease));
        let ttl = lease
            .lease_time_to_live(LeaseTimeToLiveRequest {
                id: held.lease,
                keys: false,
            })
            .await
            .expect("ttl")
            .into_inner();
        assert_eq!(ttl.granted_ttl, 60);
    })
    .await;
}

#[tokio::test]
async fn a_lock_waiter_that_goes_away_leaves_no_key() {
    let m = Member::start().await;
    let mut lock = LockClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let (l1, l2, l3) = (
            grant(&mut lease, 30).await,
            grant(&mut lease, 30).await,
            grant(&mut lease, 30).await,
        );
        let first = lock
            .lock(LockRequest {
                name: b"g".to_vec(),
                lease: l1,
            })
            .await
            .expect("lock")
            .into_inner();
        // The waiter uses its own connection, so that going away is a real disconnect.
        let mut waiter_client = LockClient::new(m.channel().await);
        let waiter = tokio::spawn(async move {
            waiter_client
                .lock(LockRequest {
                    name: b"g".to_vec(),
                    lease: l2,
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("g", l2), true).await;
        waiter.abort();
        let _ = waiter.await;
        wait_for_key(&mut kv, &hex_key("g", l2), false).await;

        // The lock still works for the next waiter.
        let mut next_client = lock.clone();
        let next = tokio::spawn(async move {
            next_client
                .lock(LockRequest {
                    name: b"g".to_vec(),
                    lease: l3,
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("g", l3), true).await;
        lock.unlock(UnlockRequest { key: first.key })
            .await
            .expect("unlock");
        let next = next.await.expect("task").expect("lock").into_inner();
        assert_eq!(next.key, hex_key("g", l3));
    })
    .await;
}

#[tokio::test]
async fn campaign_leader_proclaim_resign() {
    let m = Member::start().await;
    let mut el = ElectionClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let err = el
            .leader(LeaderRequest {
                name: b"e".to_vec(),
            })
            .await
            .expect_err("no leader yet");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "election: no leader")
        );

        let (l1, l2) = (grant(&mut lease, 30).await, grant(&mut lease, 30).await);
        let won = el
            .campaign(CampaignRequest {
                name: b"e".to_vec(),
                lease: l1,
                value: b"v1".to_vec(),
            })
            .await
            .expect("campaign")
            .into_inner();
        let header_rev = won.header.expect("header").revision;
        let leader = won.leader.expect("leader key");
        assert_eq!(leader.name, b"e");
        assert_eq!(leader.key, hex_key("e", l1));
        assert_eq!((leader.rev, leader.lease), (header_rev, l1));

        let current = el
            .leader(LeaderRequest {
                name: b"e".to_vec(),
            })
            .await
            .expect("leader")
            .into_inner();
        let current_kv = current.kv.expect("kv");
        assert_eq!(
            (current_kv.key.as_slice(), current_kv.value.as_slice()),
            (leader.key.as_slice(), &b"v1"[..])
        );

        // A second candidate waits.
        let mut other_client = el.clone();
        let mut other = tokio::spawn(async move {
            other_client
                .campaign(CampaignRequest {
                    name: b"e".to_vec(),
                    lease: l2,
                    value: b"w1".to_vec(),
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("e", l2), true).await;
        assert_still_waiting(&mut other).await;

        el.proclaim(ProclaimRequest {
            leader: Some(leader.clone()),
            value: b"v2".to_vec(),
        })
        .await
        .expect("proclaim");
        let current = el
            .leader(LeaderRequest {
                name: b"e".to_vec(),
            })
            .await
            .expect("leader")
            .into_inner();
        assert_eq!(current.kv.expect("kv").value, b"v2");

        let stale = LeaderKey {
            rev: leader.rev + 100,
            ..leader.clone()
        };
        let err = el
            .proclaim(ProclaimRequest {
                leader: Some(stale.clone()),
                value: b"x".to_vec(),
            })
            .await
            .expect_err("not leader");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "election: not leader")
        );
        let err = el
            .proclaim(ProclaimRequest {
                leader: None,
                value: b"x".to_vec(),
            })
            .await
            .expect_err("no key");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "\"leader\" field must be provided")
        );
        let err = el
            .resign(ResignRequest { leader: None })
            .await
            .expect_err("no key");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "\"leader\" field must be provided")
        );

        // Resigning with a stale revision is no error and changes nothing.
        el.resign(ResignRequest {
            leader: Some(stale),
        })
        .await
        .expect("stale resign");
        assert!(get(&mut kv, &leader.key).await.is_some());
        assert_still_waiting(&mut other).await;

        // Campaigning again with the same lease keeps the place and proclaims the new value.
        let again = el
            .campaign(CampaignRequest {
                name: b"e".to_vec(),
                lease: l1,
                value: b"v3".to_vec(),
            })
            .await
            .expect("campaign again")
            .into_inner();
        assert_eq!(again.leader.expect("leader").rev, leader.rev);
        assert_eq!(get(&mut kv, &leader.key).await.expect("key").value, b"v3");

        el.resign(ResignRequest {
            leader: Some(leader.clone()),
        })
        .await
        .expect("resign");
        let other = other.await.expect("task").expect("campaign").into_inner();
        assert_eq!(other.leader.expect("leader").key, hex_key("e", l2));
        let current = el
            .leader(LeaderRequest {
                name: b"e".to_vec(),
            })
            .await
            .expect("leader")
            .into_inner();
        assert_eq!(current.kv.expect("kv").value, b"w1");

        let err = el
            .campaign(CampaignRequest {
                name: b"e".to_vec(),
                lease: 999,
                value: b"v".to_vec(),
            })
            .await
            .expect_err("unknown lease");
        assert_eq!(
            (err.code(), err.message()),
            (Code::Unknown, "etcdserver: requested lease not found")
        );
    })
    .await;
}

#[tokio::test]
async fn observe_follows_leaders_and_values() {
    let m = Member::start().await;
    let mut el = ElectionClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let (l1, l2) = (grant(&mut lease, 30).await, grant(&mut lease, 30).await);
        let mut stream = el
            .observe(LeaderRequest {
                name: b"o".to_vec(),
            })
            .await
            .expect("observe")
            .into_inner();

        let won = el
            .campaign(CampaignRequest {
                name: b"o".to_vec(),
                lease: l1,
                value: b"a1".to_vec(),
            })
            .await
            .expect("campaign")
            .into_inner();
        let leader = won.leader.expect("leader");
        let first = stream
            .message()
            .await
            .expect("stream")
            .expect("first leader");
        let first_kv = first.kv.expect("kv");
        assert_eq!(
            (first_kv.key.as_slice(), first_kv.value.as_slice()),
            (leader.key.as_slice(), &b"a1"[..])
        );
        assert_eq!(
            first.header.expect("header").revision,
            first_kv.mod_revision
        );

        el.proclaim(ProclaimRequest {
            leader: Some(leader.clone()),
            value: b"a2".to_vec(),
        })
        .await
        .expect("proclaim");
        let next = stream
            .message()
            .await
            .expect("stream")
            .expect("proclaimed value");
        assert_eq!(next.kv.expect("kv").value, b"a2");

        let mut other_client = el.clone();
        let other = tokio::spawn(async move {
            other_client
                .campaign(CampaignRequest {
                    name: b"o".to_vec(),
                    lease: l2,
                    value: b"b1".to_vec(),
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("o", l2), true).await;
        el.resign(ResignRequest {
            leader: Some(leader),
        })
        .await
        .expect("resign");
        let next = stream
            .message()
            .await
            .expect("stream")
            .expect("next leader");
        let next_kv = next.kv.expect("kv");
        assert_eq!(
            (next_kv.key, next_kv.value),
            (hex_key("o", l2), b"b1".to_vec())
        );
        other.await.expect("task").expect("campaign");

        // An observer that starts while a leader exists gets it at once.
        let mut late = el
            .observe(LeaderRequest {
                name: b"o".to_vec(),
            })
            .await
            .expect("observe")
            .into_inner();
        let now = late
            .message()
            .await
            .expect("stream")
            .expect("current leader");
        assert_eq!(now.kv.expect("kv").value, b"b1");
    })
    .await;
}

#[tokio::test]
async fn a_candidate_that_goes_away_resigns() {
    let m = Member::start().await;
    let mut el = ElectionClient::new(m.channel().await);
    let mut lease = m.lease().await;
    let mut kv = m.kv().await;
    within(async {
        let (l1, l2) = (grant(&mut lease, 30).await, grant(&mut lease, 30).await);
        el.campaign(CampaignRequest {
            name: b"c".to_vec(),
            lease: l1,
            value: b"1".to_vec(),
        })
        .await
        .expect("campaign");
        let mut waiter_client = ElectionClient::new(m.channel().await);
        let waiter = tokio::spawn(async move {
            waiter_client
                .campaign(CampaignRequest {
                    name: b"c".to_vec(),
                    lease: l2,
                    value: b"2".to_vec(),
                })
                .await
        });
        wait_for_key(&mut kv, &hex_key("c", l2), true).await;
        waiter.abort();
        let _ = waiter.await;
        wait_for_key(&mut kv, &hex_key("c", l2), false).await;
        assert!(
            get(&mut kv, &hex_key("c", l1)).await.is_some(),
            "the leader is untouched"
        );
    })
    .await;
}
