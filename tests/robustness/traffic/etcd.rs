//! The etcd-like profile: each client picks a key of a small set and puts a unique value,
//! reads it linearizably, deletes it or compare-and-swaps it (comparing the value it last
//! saw); it also grants short leases, puts keys of its own with them, keeps some alive once
//! and lets them expire.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ops::call;
use super::{Shared, FAILURE_PAUSE};
use crate::record::{Cond, Record, Request, Response, Then};

/// Prefix of every key this profile writes.
pub const PREFIX: &str = "/etcd/";
/// Keys the clients share (the linearizability checker reads these).
const KEYS: usize = 8;
/// TTL of the leases granted, in seconds.
pub const LEASE_TTL: i64 = 3;

/// The shared keys.
pub fn keys() -> Vec<String> {
    (0..KEYS).map(|i| format!("{PREFIX}key/{i}")).collect()
}

/// Prefix of the keys put with a lease.
pub fn lease_prefix() -> String {
    format!("{PREFIX}lease/")
}

/// One client's loop until `shared.stop`; returns its records.
pub async fn client(id: usize, shared: Shared) -> Vec<Record> {
    let mut rng = StdRng::from_entropy();
    let keys = keys();
    let mut out = Vec::new();
    // the value this client last saw for each key (`None`: absent)
    let mut seen: HashMap<String, Option<String>> = HashMap::new();
    let mut lease: Option<i64> = None;
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        n += 1;
        let key = keys[rng.gen_range(0..keys.len())].clone();
        let fresh = format!("c{id}-{n}");
        let roll = rng.gen_range(0..100);
        let req = if roll < 30 {
            Request::Get { key: key.clone() }
        } else if roll < 55 {
            Request::Put {
                key: key.clone(),
                value: fresh.clone(),
                lease: 0,
            }
        } else if roll < 70 {
            Request::Txn {
                key: key.clone(),
                cond: Cond::Value(seen.get(&key).cloned().flatten()),
                then: Then::Put(fresh.clone()),
            }
        } else if roll < 78 {
            Request::Delete { key: key.clone() }
        } else if roll < 88 {
            match lease {
                Some(l) => Request::Put {
                    key: format!("{}c{id}-{n}", lease_prefix()),
                    value: fresh.clone(),
                    lease: l,
                },
                None => Request::LeaseGrant { ttl: LEASE_TTL },
            }
        } else if roll < 94 {
            match lease {
                Some(l) => Request::LeaseKeepAlive { id: l },
                None => Request::LeaseGrant { ttl: LEASE_TTL },
            }
        } else {
            Request::LeaseGrant { ttl: LEASE_TTL }
        };
        let target = shared.slots.get(id);
        let rec = call(id, &target, &shared.clock, req).await;
        match (&rec.req, &rec.resp) {
            (Request::Get { key }, Ok(Response::Get { kv, .. })) => {
                seen.insert(key.clone(), kv.as_ref().map(|k| k.value.clone()));
            }
            (Request::Put { key, value, .. }, Ok(_)) => {
                seen.insert(key.clone(), Some(value.clone()));
            }
            (Request::Delete { key }, Ok(_)) => {
                seen.insert(key.clone(), None);
            }
            (
                Request::Txn {
                    key,
                    then: Then::Put(v),
                    ..
                },
                Ok(Response::Txn {
                    succeeded, else_kv, ..
                }),
            ) => {
                let now = if *succeeded {
                    Some(v.clone())
                } else {
                    else_kv.as_ref().map(|k| k.value.clone())
                };
                seen.insert(key.clone(), now);
            }
            (Request::LeaseGrant { .. }, Ok(Response::LeaseGrant { id, .. })) => {
                lease = Some(*id);
            }
            (Request::LeaseKeepAlive { .. }, Ok(Response::LeaseKeepAlive { ttl })) if *ttl <= 0 => {
                lease = None;
            }
            (Request::Put { lease: l, .. }, Err(e)) if *l != 0 && e.contains("lease not found") => {
                lease = None;
            }
            _ => {}
        }
        let failed = rec.resp.is_err();
        out.push(rec);
        if failed {
            tokio::time::sleep(FAILURE_PAUSE).await;
        }
    }
    out
}
