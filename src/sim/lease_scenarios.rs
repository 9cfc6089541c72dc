//! Lease scenarios over kvd members: grants and revokes through each member's real API
//! functions, deadlines kept by the leader's lessor on virtual time, and the leader's expiry
//! loop revoking through raft.

use std::time::Duration;

use tokio::time::Instant;

use super::cluster::{within, SimCluster, ELECTION};
use super::kv::{self, get, rev, same_state_everywhere};
use super::network::Link;
use crate::api::status::ApiError;
use crate::mvcc::EventKind;

fn others(all: &[u64], but: &[u64]) -> Vec<u64> {
    all.iter().copied().filter(|id| !but.contains(id)).collect()
}

async fn put_with_lease(c: &SimCluster, id: u64, key: &str, lease: i64) -> i64 {
    kv::revision_of(kv::try_put(c, id, key, "v", lease).await.expect("put"))
}

/// Waits until no member of `among` has `key`; returns when the first one lost it.
async fn wait_gone(c: &SimCluster, among: &[u64], key: &str) -> Instant {
    c.wait_until(&format!("{key} revoked on one of {among:?}"), |c| {
        among.iter().any(|id| get(c, *id, key).is_none())
    })
    .await;
    let at = Instant::now();
    c.wait_until(&format!("{key} revoked on {among:?}"), |c| {
        among.iter().all(|id| get(c, *id, key).is_none())
    })
    .await;
    at
}

/// A lease whose leader is cut off: the new leader gives it its whole TTL again (plus an
/// election timeout, as etcd does), so it outlives its first deadline; then it expires and is
/// revoked exactly once — one delete event, one revision — on every member.
#[tokio::test(start_paused = true)]
async fn a_lease_outlives_a_leader_change_then_expires_once() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let old = c.leader().await;
    let w = others(&all, &[old])[0];
    let lease = kv::grant(&c, old, 10).await;
    let t0 = Instant::now();
    let put_rev = put_with_lease(&c, old, "lk", lease).await;
    c.wait_until("the put reaches the watcher's member", |c| {
        get(c, w, "lk").is_some()
    })
    .await;
    let mut rx = kv::watch(&c, w, "lk", "", 0);
    tokio::time::sleep_until(t0 + Duration::from_secs(4)).await;
    c.isolate(old, Link::Cut);
    let rest = others(&all, &[old]);
    let new = c.leader_among(&rest).await;
    let promoted = Instant::now();
    tokio::time::sleep_until(t0 + Duration::from_secs(11)).await;
    assert!(
        get(&c, new, "lk").is_some(),
        "revoked at its first deadline"
    );
    let ttl = kv::time_to_live(&c, new, lease).await;
    assert_eq!(ttl.granted_ttl, 10);
    assert!(ttl.ttl >= 4, "remaining TTL not refreshed: {ttl:?}");
    let revoked = wait_gone(&c, &rest, "lk").await;
    assert!(
        revoked >= promoted + Duration::from_secs(10),
        "revoked {:?} after the new leader appeared",
        revoked - promoted
    );
    let (events, _) = kv::events(&mut rx, 1).await;
    assert_eq!(events[0].kind, EventKind::Delete);
    assert_eq!(events[0].kv.mod_revision, put_rev + 1);
    c.isolate(old, Link::Open);
    same_state_everywhere(&c).await;
    assert!(
        kv::drain(&mut rx, 2 * ELECTION).await.is_empty(),
        "revoked twice"
    );
    for id in all {
        assert!(!kv::has_lease(&c, id, lease), "member {id}");
        assert_eq!(rev(&c, id), put_rev + 1, "member {id}");
    }
    c.shutdown().await;
}

/// A leader cut off just before a short lease's deadline may try to revoke it, but that
/// proposal never commits: the lease lives on under the new leader's refreshed deadline, and
/// is revoked once, later.
#[tokio::test(start_paused = true)]
async fn an_isolated_leaders_revoke_never_applies() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let old = c.leader().await;
    let lease = kv::grant(&c, old, 2).await;
    let t0 = Instant::now();
    let put_rev = put_with_lease(&c, old, "lk", lease).await;
    tokio::time::sleep_until(t0 + Duration::from_secs(1)).await;
    c.isolate(old, Link::Cut);
    let rest = others(&all, &[old]);
    let new = c.leader_among(&rest).await;
    tokio::time::sleep_until(t0 + Duration::from_millis(4500)).await;
    for id in &rest {
        assert!(get(&c, *id, "lk").is_some(), "member {id}: revoked early");
        assert!(kv::has_lease(&c, *id, lease), "member {id}");
    }
    c.wait_until("the new leader revokes", |c| get(c, new, "lk").is_none())
        .await;
    c.isolate(old, Link::Open);
    same_state_everywhere(&c).await;
    for id in all {
        assert!(get(&c, id, "lk").is_none(), "member {id}");
        assert_eq!(rev(&c, id), put_rev + 1, "member {id}");
    }
    c.shutdown().await;
}

/// Keep-alives on the leader hold a lease past many TTLs; once they stop, it expires one TTL
/// after the last one, and its revoke is applied once everywhere.
#[tokio::test(start_paused = true)]
async fn keep_alives_hold_a_lease_until_they_stop() {
    let c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    let lease = kv::grant(&c, l, 3).await;
    let put_rev = put_with_lease(&c, l, "lk", lease).await;
    c.wait_until("the put reaches the follower", |c| {
        get(c, f, "lk").is_some()
    })
    .await;
    let mut rx = kv::watch(&c, f, "lk", "", 0);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let r = within(crate::api::lease::keep_alive_once(c.core(l), lease))
            .await
            .expect("keep-alive");
        assert_eq!(r.ttl, 3);
    }
    let last = Instant::now();
    assert!(get(&c, l, "lk").is_some());
    let revoked = wait_gone(&c, &c.ids(), "lk").await;
    assert!(revoked >= last + Duration::from_secs(3), "expired early");
    assert!(revoked <= last + Duration::from_secs(5), "expired late");
    let (events, _) = kv::events(&mut rx, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, EventKind::Delete);
    assert_eq!(kv::time_to_live(&c, l, lease).await.ttl, -1);
    same_state_everywhere(&c).await;
    assert!(kv::drain(&mut rx, 2 * ELECTION).await.is_empty());
    for id in c.ids() {
        assert!(!kv::has_lease(&c, id, lease), "member {id}");
        assert_eq!(rev(&c, id), put_rev + 1);
    }
    c.shutdown().await;
}

/// The remaining TTL a new leader reports is the whole TTL again (etcd refreshes leases on
/// promotion), not what was left under the old leader.
#[tokio::test(start_paused = true)]
async fn a_new_leader_reports_a_refreshed_ttl() {
    let c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let to = others(&c.ids(), &[l])[0];
    let lease = kv::grant(&c, l, 10).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let before = kv::time_to_live(&c, l, lease).await;
    assert!(before.ttl <= 4, "{before:?}");
    c.transfer_leader(l, to).await;
    let after = kv::time_to_live(&c, to, lease).await;
    assert_eq!(after.granted_ttl, 10);
    assert!(after.ttl >= 10, "{after:?}");
    c.shutdown().await;
}

/// Revoking a lease through a follower deletes every key attached to it, in one revision, on
/// every member; a second revoke finds no lease.
#[tokio::test(start_paused = true)]
async fn a_revoke_deletes_the_attached_keys_once_everywhere() {
    let c = SimCluster::start_kvd(3);
    let all = c.ids();
    let l = c.leader().await;
    let f = others(&all, &[l])[0];
    let w = others(&all, &[l, f])[0];
    let lease = kv::grant(&c, f, 60).await;
    for k in ["a", "b", "c"] {
        put_with_lease(&c, f, k, lease).await;
    }
    kv::put(&c, f, "free", "v").await;
    let before = same_state_everywhere(&c).await.0;
    let mut rx = kv::watch(&c, w, "", "\0", 0);
    kv::revoke(&c, f, lease).await.expect("revoke");
    let (events, _) = kv::events(&mut rx, 3).await;
    assert!(events.iter().all(|e| e.kind == EventKind::Delete));
    assert!(events.iter().all(|e| e.kv.mod_revision == before + 1));
    let mut keys: Vec<Vec<u8>> = events.iter().map(|e| e.kv.key.clone()).collect();
    keys.sort();
    assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(kv::revoke(&c, l, lease).await, Err(ApiError::LeaseNotFound));
    same_state_everywhere(&c).await;
    for id in all {
        assert!(get(&c, id, "a").is_none() && get(&c, id, "free").is_some());
        assert!(!kv::has_lease(&c, id, lease));
        assert_eq!(rev(&c, id), before + 1);
    }
    c.shutdown().await;
}

/// A member restarted from its storage has the lease and its keys again; made leader, it
/// keeps the lease a whole TTL from its promotion, then revokes it once.
#[tokio::test(start_paused = true)]
async fn a_lease_survives_a_restart_and_expires_under_the_restarted_leader() {
    let mut c = SimCluster::start_kvd(3);
    let l = c.leader().await;
    let f = others(&c.ids(), &[l])[0];
    let lease = kv::grant(&c, l, 5).await;
    let put_rev = put_with_lease(&c, l, "lk", lease).await;
    c.wait_index(&[f], c.handle(l).status().commit).await;
    c.stop_member(f).await;
    c.restart_member(f);
    {
        let lessor = c.core(f).state.lessor.lock();
        let restored = lessor.get(lease).expect("lease restored");
        assert!(restored.keys.contains(b"lk".as_slice()));
    }
    c.wait_until("the restarted member follows", |c| {
        c.handle(f).status().leader == l
    })
    .await;
    c.wait_index(&[f], c.handle(l).status().commit).await;
    c.transfer_leader(l, f).await;
    let promoted = Instant::now();
    let revoked = wait_gone(&c, &c.ids(), "lk").await;
    assert!(
        revoked >= promoted + Duration::from_secs(5),
        "expired early"
    );
    same_state_everywhere(&c).await;
    for id in c.ids() {
        assert_eq!(rev(&c, id), put_rev + 1, "member {id}");
    }
    c.shutdown().await;
}
