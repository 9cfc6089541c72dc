//! The in-memory backend: one ordered map per [`Keyspace`] under a lock. Unit tests run on it
//! (no files, no background threads); nothing in it survives the process.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use parking_lot::RwLock;

use super::backend::{Keyspace, KvBackend, Visit, Write};
use super::{Result, SpaceGuard};

/// Records copied out per lock hold while iterating.
const CHUNK: usize = 256;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// Ordered maps in memory. Batches are atomic because they are applied under the write lock.
#[derive(Default)]
pub struct MemBackend {
    /// The state and member maps, behind one lock (a parking_lot lock: held only for map
    /// operations, never across a call into other code).
    maps: RwLock<[Map; 2]>,
}

impl MemBackend {
    /// An empty backend.
    pub fn new() -> Self {
        Self::default()
    }

    fn index(space: Keyspace) -> usize {
        match space {
            Keyspace::State => 0,
            Keyspace::Member => 1,
        }
    }

    fn write(maps: &mut [Map; 2], space: Keyspace, writes: Vec<Write>) {
        let map = &mut maps[Self::index(space)];
        for (k, v) in writes {
            match v {
                Some(v) => map.insert(k, v),
                None => map.remove(&k),
            };
        }
    }
}

impl KvBackend for MemBackend {
    fn get(&self, space: Keyspace, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.maps.read()[Self::index(space)].get(key).cloned())
    }

    fn for_each(
        &self,
        space: Keyspace,
        start: &[u8],
        end: Option<&[u8]>,
        visit: Visit<'_>,
    ) -> Result<()> {
        // Copied out a chunk at a time and visited without the lock, so `visit` may call back
        // into the engine (even write) without deadlocking.
        let mut from = Bound::Included(start.to_vec());
        loop {
            let chunk: Vec<(Vec<u8>, Vec<u8>)> = {
                let maps = self.maps.read();
                let to = end.map_or(Bound::Unbounded, |e| Bound::Excluded(e.to_vec()));
                if let (Bound::Included(f) | Bound::Excluded(f), Bound::Excluded(t)) = (&from, &to)
                {
                    // An empty range (BTreeMap::range panics on some of them).
                    if f >= t {
                        return Ok(());
                    }
                }
                maps[Self::index(space)]
                    .range((from.clone(), to))
                    .take(CHUNK)
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let full = chunk.len() == CHUNK;
            let Some(last) = chunk.last().map(|(k, _)| k.clone()) else {
                return Ok(());
            };
            for (k, v) in &chunk {
                if !visit(k, v) {
                    return Ok(());
                }
            }
            if !full {
                return Ok(());
            }
            from = Bound::Excluded(last);
        }
    }

    fn write_in_order(&self, space: Keyspace, writes: Vec<Write>) -> Result<()> {
        Self::write(&mut self.maps.write(), space, writes);
        Ok(())
    }

    fn write_atomic(&self, space: Keyspace, writes: Vec<Write>) -> Result<()> {
        Self::write(&mut self.maps.write(), space, writes);
        Ok(())
    }

    fn flush(&self) -> Result<()> {
        Ok(())
    }

    fn size_on_disk(&self) -> Result<u64> {
        let maps = self.maps.read();
        let bytes: usize = maps
            .iter()
            .flat_map(|m| m.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        Ok(bytes as u64)
    }

    fn space(&self) -> Option<Arc<SpaceGuard>> {
        None
    }
}
