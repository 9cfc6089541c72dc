//! Leases in the state backend: one record per lease (its ID and granted TTL), written in the
//! same batch as the apply that grants or revokes it, and read back at start with the keys
//! attached to each.

use super::Lessor;
use crate::mvcc::MvccStore;
use crate::storage::{Engine, StateBatch, StorageError};

/// The state records of leases: this prefix, then the lease ID (8 bytes, big-endian).
const LEASE_PREFIX: &[u8] = b"l/";

fn lease_key(id: i64) -> Vec<u8> {
    let mut k = LEASE_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Records a granted lease in `batch` (a grant, or a lease imported from a snapshot).
pub fn record_grant(batch: &mut StateBatch, id: i64, ttl: i64) {
    batch.put(lease_key(id), ttl.to_be_bytes());
}

/// Removes a revoked lease's record in `batch`.
pub fn record_revoke(batch: &mut StateBatch, id: i64) {
    batch.delete(lease_key(id));
}

/// The leases in storage, each with the keys attached to it (every live key names its lease).
///
/// # Errors
/// Storage failure.
pub fn load(engine: &Engine, store: &mut MvccStore, min_ttl: i64) -> Result<Lessor, StorageError> {
    let mut lessor = Lessor::new(min_ttl);
    for (k, v) in engine.state_scan_prefix(LEASE_PREFIX)? {
        let id = k[LEASE_PREFIX.len()..].try_into().map(i64::from_be_bytes);
        let ttl = v.as_slice().try_into().map(i64::from_be_bytes);
        if let (Ok(id), Ok(ttl)) = (id, ttl) {
            lessor.restore(id, ttl);
        }
    }
    for (key, lease) in store.take_leased_keys() {
        lessor.attach(&key, 0, lease);
    }
    Ok(lessor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn granted_leases_and_their_keys_come_back_and_revoked_ones_do_not() {
        let engine = Engine::temporary().expect("engine");
        let mut store = MvccStore::open(engine.clone()).expect("store");
        let mut batch = StateBatch::default();
        record_grant(&mut batch, 7, 60);
        record_grant(&mut batch, 8, 30);
        {
            let mut txn = store.write(&mut batch);
            txn.put(b"k", b"v", 7).expect("put");
            txn.finish();
        }
        store.write_commit(&mut batch, 1);
        engine.apply_state(batch).expect("apply");
        let mut batch = StateBatch::default();
        record_revoke(&mut batch, 8);
        engine.apply_state(batch).expect("apply");

        let mut reopened = MvccStore::open(engine.clone()).expect("reopen");
        let lessor = load(&engine, &mut reopened, 5).expect("load");
        assert_eq!(lessor.ids(), vec![7]);
        let lease = lessor.get(7).expect("lease 7");
        assert_eq!(lease.ttl, 60);
        assert_eq!(lease.keys.iter().collect::<Vec<_>>(), vec![&b"k".to_vec()]);
    }
}
