//! The Kubernetes-like profile, as kube-apiserver's etcd3 storage talks to etcd: lists in
//! pages (`limit`, continued from the last key + `"\x00"` at the first page's revision),
//! linearizable gets, and optimistic writes `Txn(If ModRevision(k)==rev Then Put|Delete
//! Else Get(k))` from the object the client last saw (creates compare ModRevision 0).

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ops::call;
use super::{Shared, FAILURE_PAUSE};
use crate::client::prefix_end;
use crate::record::{Cond, Kv, Record, Request, Response, Then};

/// Prefix of every key this profile writes.
pub const PREFIX: &str = "/registry/pods/";
/// Objects the clients share.
const OBJECTS: usize = 10;
/// Page size of lists.
pub const PAGE: i64 = 4;

/// The objects' keys.
pub fn keys() -> Vec<String> {
    (0..OBJECTS)
        .map(|i| format!("{PREFIX}default/pod-{i}"))
        .collect()
}

/// What a client knows of an object: absent from the map when unknown.
type Known = HashMap<String, Option<Kv>>;

/// One client's loop until `shared.stop`; returns its records.
pub async fn client(id: usize, shared: Shared) -> Vec<Record> {
    let mut rng = StdRng::from_entropy();
    let keys = keys();
    let mut out = Vec::new();
    let mut known: Known = HashMap::new();
    let mut n = 0u64;
    while !shared.stop.load(Ordering::SeqCst) {
        n += 1;
        let roll = rng.gen_range(0..100);
        let key = keys[rng.gen_range(0..keys.len())].clone();
        let ok = if roll < 15 {
            list(id, &shared, &mut known, &mut out).await
        } else if roll < 35 || !known.contains_key(&key) {
            let rec = call(
                id,
                &shared.slots.get(id),
                &shared.clock,
                Request::Get { key: key.clone() },
            )
            .await;
            if let Ok(Response::Get { kv, .. }) = &rec.resp {
                known.insert(key.clone(), kv.clone());
            }
            push(&mut out, rec)
        } else {
            let fresh = format!("k{id}-{n}");
            let (cond, then) = match known.get(&key).cloned().flatten() {
                None => (
                    Cond::ModRevision {
                        rev: 0,
                        believed: None,
                    },
                    Then::Put(fresh.clone()),
                ),
                Some(kv) => (
                    Cond::ModRevision {
                        rev: kv.mod_revision,
                        believed: Some(kv.value.clone()),
                    },
                    if rng.gen_range(0..100) < 15 {
                        Then::Delete
                    } else {
                        Then::Put(fresh.clone())
                    },
                ),
            };
            let rec = call(
                id,
                &shared.slots.get(id),
                &shared.clock,
                Request::Txn {
                    key: key.clone(),
                    cond,
                    then: then.clone(),
                },
            )
            .await;
            match &rec.resp {
                Ok(Response::Txn {
                    succeeded: true,
                    revision,
                    ..
                }) => {
                    let now = match (&then, known.get(&key).cloned().flatten()) {
                        (Then::Delete, _) => None,
                        (Then::Put(v), before) => Some(Kv {
                            key: key.clone(),
                            value: v.clone(),
                            create_revision: before
                                .as_ref()
                                .map_or(*revision, |b| b.create_revision),
                            mod_revision: *revision,
                            version: before.as_ref().map_or(1, |b| b.version + 1),
                            lease: 0,
                        }),
                    };
                    known.insert(key.clone(), now);
                }
                Ok(Response::Txn { else_kv, .. }) => {
                    known.insert(key.clone(), else_kv.clone());
                }
                _ => {
                    known.remove(&key);
                }
            }
            push(&mut out, rec)
        };
        if !ok {
            tokio::time::sleep(FAILURE_PAUSE).await;
        }
    }
    out
}

/// Records `rec`; true if it succeeded.
fn push(out: &mut Vec<Record>, rec: Record) -> bool {
    let ok = rec.resp.is_ok();
    out.push(rec);
    ok
}

/// Lists every object in pages; a complete list refreshes what the client knows. True if
/// every page was served.
async fn list(id: usize, shared: &Shared, known: &mut Known, out: &mut Vec<Record>) -> bool {
    let end = String::from_utf8(prefix_end(PREFIX.as_bytes())).expect("ASCII prefix");
    let mut start = PREFIX.to_string();
    let mut revision = 0;
    let mut seen: Vec<Kv> = Vec::new();
    loop {
        let rec = call(
            id,
            &shared.slots.get(id),
            &shared.clock,
            Request::List {
                start: start.clone(),
                end: end.clone(),
                limit: PAGE,
                revision,
            },
        )
        .await;
        let page = match &rec.resp {
            Ok(Response::List {
                kvs,
                more,
                revision: header,
            }) => Some((kvs.clone(), *more, *header)),
            _ => None,
        };
        if !push(out, rec) {
            return false;
        }
        let Some((kvs, more, header)) = page else {
            return false;
        };
        if revision == 0 {
            revision = header;
        }
        if let Some(last) = kvs.last() {
            start = format!("{}\u{0}", last.key);
        }
        seen.extend(kvs);
        if !more {
            break;
        }
        if shared.stop.load(Ordering::SeqCst) {
            return true;
        }
    }
    for key in keys() {
        known.insert(key.clone(), seen.iter().find(|kv| kv.key == key).cloned());
    }
    true
}
