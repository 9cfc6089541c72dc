//! The MVCC store: the key index, the current and compacted revisions, reads and write
//! transactions.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Arc;

use prost::Message;

use super::encoded::{self, Reorder};
use super::index_image;
use super::key_index::KeyIndex;
use super::revision::Revision;
use super::{MvccError, Result};
use crate::proto::mvccpb::KeyValue;
use crate::proto::range_response::{EncodedKvs, EncodedKvsBuilder};
use crate::storage::{Engine, RecordsKept, StateBatch, StorageError};

const KV_PREFIX: u8 = b'k';
/// The current revision as older kvd versions stored it (read when there is no commit record).
const META_CURRENT_REV: &[u8] = b"m/current_rev";
/// The commit record of the last applied batch: applied index (u64) and current revision
/// (i64), big-endian. Written last in every batch; revision records above its revision are
/// orphans of a batch a crash cut short.
const COMMIT: &[u8] = b"m/commit";
const META_COMPACT_REV: &[u8] = b"m/compact_rev";

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or updated.
    Put,
    /// Deleted.
    Delete,
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// The key-value after the change (for a delete: key and mod_revision only).
    pub kv: Arc<KeyValue>,
    /// The key-value before the change, if the key existed.
    pub prev_kv: Option<Arc<KeyValue>>,
}

/// A change of a key's lease made by a write, for the lessor to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseAttach {
    /// The key.
    pub key: Vec<u8>,
    /// The lease it was attached to before (0 = none).
    pub old_lease: i64,
    /// The lease it is attached to now (0 = none).
    pub new_lease: i64,
}

/// The MVCC state of one member.
pub struct MvccStore {
    engine: Engine,
    index: BTreeMap<Box<[u8]>, KeyIndex>,
    current_rev: i64,
    compact_rev: i64,
    size_bytes: u64,
    /// Values written by transactions whose storage batch is not applied yet: apply groups
    /// several commands in one batch, and a later one must see an earlier one's writes.
    pending: HashMap<Revision, KeyValue>,
    /// Revisions with a lease found when the store was opened (see
    /// [`MvccStore::take_leased_keys`]).
    leased_at_open: LeasedAtOpen,
}

fn kv_key(rev: Revision, tombstone: bool) -> Vec<u8> {
    let mut k = Vec::with_capacity(19);
    k.push(KV_PREFIX);
    k.extend_from_slice(&rev.encode(tombstone));
    k
}

fn decode_i64(bytes: Option<Vec<u8>>) -> i64 {
    bytes
        .and_then(|b| b.as_slice().try_into().ok().map(i64::from_be_bytes))
        .unwrap_or(0)
}

/// The bounds of a key range as etcd understands `key`/`range_end`: empty end = the key alone,
/// `"\0"` = every key from `key` on, otherwise `[key, range_end)`.
pub(crate) fn key_bounds<'a>(
    key: &'a [u8],
    range_end: &'a [u8],
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    if range_end.is_empty() {
        (Bound::Included(key), Bound::Included(key))
    } else if range_end == [0] {
        (Bound::Included(key), Bound::Unbounded)
    } else {
        (Bound::Included(key), Bound::Excluded(range_end))
    }
}

/// Records a change of `key` in `index` (allocating the key only when it is new).
fn index_push(index: &mut BTreeMap<Box<[u8]>, KeyIndex>, key: &[u8], rev: Revision, tomb: bool) {
    match index.get_mut(key) {
        Some(ki) => ki.push(rev, tomb),
        None => {
            let mut ki = KeyIndex::default();
            ki.push(rev, tomb);
            index.insert(key.into(), ki);
        }
    }
}

/// The name of the key index image file beside the database.
const KEY_INDEX_IMAGE: &str = "key-index";

/// The live keys attached to a lease, as found when the store was opened.
enum LeasedAtOpen {
    /// Every stored revision carrying a lease (the index was rebuilt from the records).
    Revisions(Vec<(Revision, i64)>),
    /// The keys themselves (from the key index image).
    Keys(Vec<(Vec<u8>, i64)>),
}

/// What rebuilding the key index from every stored record gives: the index, the stored bytes,
/// the revisions carrying a lease, and the records past the current revision.
type Rebuilt = (
    BTreeMap<Box<[u8]>, KeyIndex>,
    u64,
    Vec<(Revision, i64)>,
    Vec<Vec<u8>>,
);

/// Rebuilds the key index from every stored record at or below `current_rev`.
fn rebuild_index(engine: &Engine, current_rev: i64) -> Result<Rebuilt> {
    let mut index: BTreeMap<Box<[u8]>, KeyIndex> = BTreeMap::new();
    let mut size_bytes = 0u64;
    let mut orphans = Vec::new();
    let mut leased = Vec::new();
    let mut bad: Option<MvccError> = None;
    // Only each record's key (and lease) is read: the index holds revisions, not values.
    engine.state_for_each(&[KV_PREFIX], &[KV_PREFIX + 1], |k, v| {
        let Some((rev, tombstone)) = Revision::decode(&k[1..]) else {
            bad = Some(corrupt("revision key", k));
            return false;
        };
        if rev.main > current_rev {
            // Written by a batch whose commit record a crash lost: applied again from
            // the WAL.
            orphans.push(k.to_vec());
            return true;
        }
        size_bytes += (k.len() + v.len()) as u64;
        let Some((key, lease)) = key_and_lease(v) else {
            bad = Some(corrupt("key-value", v.len()));
            return false;
        };
        index_push(&mut index, key, rev, tombstone);
        if lease != 0 {
            leased.push((rev, lease));
        }
        true
    })?;
    if let Some(e) = bad {
        return Err(e);
    }
    Ok((index, size_bytes, leased, orphans))
}

/// A range reading at least this many values considers one ordered scan of their revision span
/// instead of a lookup each.
const SCAN_MIN_VALUES: usize = 256;

/// The scan is chosen while the span holds at most this many revisions per value wanted (older
/// versions and other keys in between are read and skipped).
const SCAN_MAX_SPREAD: i64 = 4;

/// Whether the values at `revs` are many and dense enough in revision order to read with one
/// scan.
fn worth_scanning(revs: &[Revision]) -> bool {
    if revs.len() < SCAN_MIN_VALUES {
        return false;
    }
    let (lo, hi) = revs.iter().fold((i64::MAX, i64::MIN), |(lo, hi), r| {
        (lo.min(r.main), hi.max(r.main))
    });
    let span = hi.saturating_sub(lo).saturating_add(1);
    span <= (revs.len() as i64).saturating_mul(SCAN_MAX_SPREAD)
}

/// Reads the stored records of `revs[i]` for every position `i` in `wanted` with one ordered
/// scan of their revision span, calling `found` with each position and record. Positions the
/// scan passes without finding are left for the caller's lookups to report.
///
/// # Errors
/// Storage failure, a corrupt revision key, or what `found` returns.
fn scan_revisions(
    engine: &Engine,
    revs: &[Revision],
    mut wanted: Vec<usize>,
    mut found: impl FnMut(usize, &[u8]) -> Result<()>,
) -> Result<()> {
    wanted.sort_unstable_by_key(|&i| revs[i]);
    let (Some(&first), Some(&last)) = (wanted.first(), wanted.last()) else {
        return Ok(());
    };
    let start = kv_key(revs[first], false);
    let end = kv_key(Revision::new(revs[last].main, revs[last].sub + 1), false);
    let mut next = wanted.iter().copied().peekable();
    let mut bad = None;
    engine.state_for_each(&start, &end, |k, v| {
        let Some((rev, _)) = Revision::decode(&k[1..]) else {
            bad = Some(corrupt("revision key", k));
            return false;
        };
        while let Some(&i) = next.peek() {
            if revs[i] > rev {
                break;
            }
            if revs[i] < rev {
                // Passed without being found.
                return false;
            }
            if let Err(e) = found(i, v) {
                bad = Some(e);
                return false;
            }
            next.next();
        }
        next.peek().is_some()
    })?;
    bad.map_or(Ok(()), Err)
}

/// The stored record of the key-value at `rev`.
fn stored_value(engine: &Engine, rev: Revision) -> Result<Vec<u8>> {
    engine
        .state_get(&kv_key(rev, false))?
        .ok_or_else(|| corrupt("missing value for revision", format!("{rev:?}")))
}

/// A range's revisions, chosen under the MVCC lock, read without it (see
/// [`MvccStore::plan_encoded_range`]).
pub struct EncodedRange {
    /// Holds off the removal of the records to read.
    kept: RecordsKept,
    engine: Engine,
    revs: Vec<Revision>,
    /// Values not in storage yet, by position in `revs`.
    pending: HashMap<usize, KeyValue>,
    count: usize,
    more: bool,
    keys_only: bool,
}

impl EncodedRange {
    /// Reads the key-values: in their wire form and key order, the count of keys in the range,
    /// and whether the limit left key-values out.
    ///
    /// # Errors
    /// Storage failure or a missing record.
    pub fn read(self) -> Result<(EncodedKvs, usize, bool)> {
        let kvs = self.values()?;
        drop(self.kept);
        Ok((kvs, self.count, self.more))
    }

    /// The values at `revs`, in their order: read as [`MvccStore::values_at`] reads them, with
    /// one ordered scan when that pays.
    fn values(&self) -> Result<EncodedKvs> {
        let (revs, keys_only) = (&self.revs, self.keys_only);
        if !worth_scanning(revs) {
            let mut out = EncodedKvsBuilder::default();
            for (i, &rev) in revs.iter().enumerate() {
                match self.pending.get(&i) {
                    Some(kv) => encoded::push_decoded(&mut out, kv, keys_only),
                    None => {
                        encoded::push_stored(&mut out, &stored_value(&self.engine, rev)?, keys_only)
                            .map_err(|e| corrupt("key-value", e))?
                    }
                }
            }
            return Ok(out.finish());
        }
        let mut out = Reorder::new(revs.len());
        for (&i, kv) in &self.pending {
            out.put(i, |o| encoded::push_decoded(o, kv, keys_only));
        }
        // Positions still to read.
        let wanted: Vec<usize> = (0..revs.len()).filter(|&i| !out.has(i)).collect();
        scan_revisions(&self.engine, revs, wanted, |i, v| {
            let mut pushed = Ok(());
            out.put(i, |o| pushed = encoded::push_stored(o, v, keys_only));
            pushed.map_err(|e| corrupt("key-value", e))
        })?;
        for (i, &rev) in revs.iter().enumerate() {
            if !out.has(i) {
                let raw = stored_value(&self.engine, rev)?;
                let mut pushed = Ok(());
                out.put(i, |o| pushed = encoded::push_stored(o, &raw, keys_only));
                pushed.map_err(|e| corrupt("key-value", e))?;
            }
        }
        Ok(out.finish().expect("every position was filled above"))
    }
}

fn range_is_empty(key: &[u8], range_end: &[u8]) -> bool {
    !range_end.is_empty() && range_end != [0] && range_end <= key
}

impl MvccStore {
    /// Loads the store from storage, rebuilding the key index.
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn open(engine: Engine) -> Result<Self> {
        let current_rev = match stored_commit(&engine)? {
            Some((_, rev)) => rev,
            None => decode_i64(engine.state_get(META_CURRENT_REV)?),
        }
        .max(1);
        // etcd starts at -1: `compaction 0` on a fresh store succeeds and marks revision 0.
        let compact_rev = engine
            .state_get(META_COMPACT_REV)?
            .and_then(|b| b.as_slice().try_into().ok().map(i64::from_be_bytes))
            .unwrap_or(-1);
        let applied_index = stored_commit(&engine)?.map_or(0, |(applied, _)| applied);
        let image = engine
            .dir()
            .map(|dir| dir.join(KEY_INDEX_IMAGE))
            .and_then(|path| index_image::take(&path))
            .filter(|image| {
                let taken = image.taken;
                (taken.applied_index, taken.current_rev, taken.compact_rev)
                    == (applied_index, current_rev, compact_rev)
            });
        let (index, size_bytes, leased_at_open, orphans) = match image {
            Some(image) => {
                tracing::info!(
                    keys = image.index.len(),
                    "loaded the key index saved at the last clean stop"
                );
                // Records past the current revision (written by a batch whose commit record a
                // crash lost) can only be in the tail.
                let from = kv_key(Revision::new(current_rev.saturating_add(1), 0), false);
                let mut orphans = Vec::new();
                engine.state_for_each(&from, &[KV_PREFIX + 1], |k, _| {
                    orphans.push(k.to_vec());
                    true
                })?;
                (
                    image.index,
                    image.taken.size_bytes,
                    LeasedAtOpen::Keys(image.leased_keys),
                    orphans,
                )
            }
            None => {
                let (index, size_bytes, leased, orphans) = rebuild_index(&engine, current_rev)?;
                (index, size_bytes, LeasedAtOpen::Revisions(leased), orphans)
            }
        };
        engine.remove_state_records(&orphans)?;
        Ok(Self {
            engine,
            index,
            current_rev,
            compact_rev,
            size_bytes,
            pending: HashMap::new(),
            leased_at_open,
        })
    }

    /// Writes the key index to a file beside the database (`mvcc/index_image.rs`), for the next
    /// start to load instead of rebuilding it. Call it at a clean stop, once nothing applies
    /// any more; `leased_keys` are the live keys attached to a lease. The state is flushed
    /// first. Does nothing for an engine without a directory, or when the stored state is not
    /// the one in memory.
    ///
    /// # Errors
    /// Storage failure, or the file cannot be written.
    pub fn save_index_image(&self, leased_keys: Vec<(Vec<u8>, i64)>) -> Result<()> {
        let Some(dir) = self.engine.dir() else {
            return Ok(());
        };
        // What the image describes must be on disk: nothing applies while `self` is borrowed.
        self.engine.flush()?;
        let Some((applied_index, rev)) = stored_commit(&self.engine)? else {
            return Ok(());
        };
        if rev != self.current_rev || !self.pending.is_empty() {
            return Ok(());
        }
        let taken = index_image::Taken {
            applied_index,
            current_rev: self.current_rev,
            compact_rev: self.compact_rev,
            size_bytes: self.size_bytes,
        };
        let path = dir.join(KEY_INDEX_IMAGE);
        index_image::save(&path, taken, &self.index, &leased_keys).map_err(|e| {
            // A half-written image is never used (checksum), but do not leave one behind.
            let _ = index_image::discard(&path);
            MvccError::Storage(StorageError::Backend(Box::new(e)))
        })
    }

    /// The live keys attached to a lease, as stored (for the lessor at start); each key once.
    pub fn take_leased_keys(&mut self) -> Vec<(Vec<u8>, i64)> {
        let leased = match std::mem::replace(
            &mut self.leased_at_open,
            LeasedAtOpen::Revisions(Vec::new()),
        ) {
            LeasedAtOpen::Keys(keys) => return keys,
            LeasedAtOpen::Revisions(revs) => revs,
        };
        let mut by_rev: HashMap<Revision, i64> = leased.into_iter().collect();
        if by_rev.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        for (key, ki) in &self.index {
            if let Some(last) = ki.last().filter(|r| !r.tombstone) {
                if let Some(lease) = by_rev.remove(&last.rev) {
                    out.push((key.to_vec(), lease));
                }
            }
        }
        out
    }

    /// The current revision.
    pub fn current_rev(&self) -> i64 {
        self.current_rev
    }

    /// The revision of the last compaction (-1 if none, as etcd reports it).
    pub fn compact_rev(&self) -> i64 {
        self.compact_rev
    }

    /// Bytes of stored key-values, history included (what the space quota limits).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// The storage engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Checks that `rev` (0 = current) can be read.
    ///
    /// # Errors
    /// `MvccError::FutureRev` or `MvccError::Compacted`.
    pub fn check_rev(&self, rev: i64) -> Result<i64> {
        let rev = if rev <= 0 { self.current_rev } else { rev };
        if rev > self.current_rev {
            return Err(MvccError::FutureRev);
        }
        if rev < self.compact_rev {
            return Err(MvccError::Compacted);
        }
        Ok(rev)
    }

    /// Whether the key index holds at least `n` keys in the range (live or not): a cheap bound on
    /// how much a range over it may read.
    pub fn has_keys_in_range(&self, key: &[u8], range_end: &[u8], n: usize) -> bool {
        if range_is_empty(key, range_end) {
            return n == 0;
        }
        self.index
            .range::<[u8], _>(key_bounds(key, range_end))
            .nth(n.saturating_sub(1))
            .is_some()
            || n == 0
    }

    /// The key-values live at revision `at` (0 = current) in the range, in key order, at most `limit` of them
    /// (0 = all), plus the total count.
    ///
    /// # Errors
    /// Storage failure.
    pub fn range_at(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize)> {
        self.range_with(key, range_end, at, limit, count_only, &HashMap::new())
    }

    fn range_with(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        limit: usize,
        count_only: bool,
        overlay: &HashMap<Revision, KeyValue>,
    ) -> Result<(Vec<KeyValue>, usize)> {
        let (revs, count) = self.live_revs(key, range_end, at, limit, count_only);
        Ok((self.values_at(&revs, overlay)?, count))
    }

    /// The revisions live at `at` (0 = current) in the range, in key order, at most `limit` (0 =
    /// all, none when `count_only`), and how many keys are live in it.
    fn live_revs(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        limit: usize,
        count_only: bool,
    ) -> (Vec<Revision>, usize) {
        let at = if at <= 0 { self.current_rev } else { at };
        let mut revs = Vec::new();
        let mut count = 0;
        if range_is_empty(key, range_end) {
            return (revs, 0);
        }
        for (_, ki) in self.index.range::<[u8], _>(key_bounds(key, range_end)) {
            let Some(rev) = ki.live_at(at) else { continue };
            count += 1;
            if count_only || (limit > 0 && revs.len() >= limit) {
                continue;
            }
            revs.push(rev);
        }
        (revs, count)
    }

    /// Like [`MvccStore::range_at`], with the key-values in their wire form, copied from storage
    /// without decoding (stored records are `KeyValue` encodings), without their values when
    /// `keys_only`; this part, which needs the store, chooses the revisions to read.
    /// The plan reads them without it, so a range over a million keys does not hold writes
    /// back while it reads; it keeps storage from removing records until it is done (see
    /// [`Engine::keep_records`]).
    pub fn plan_encoded_range(
        &self,
        key: &[u8],
        range_end: &[u8],
        at: i64,
        limit: usize,
        count_only: bool,
        keys_only: bool,
    ) -> EncodedRange {
        // One more than the limit tells whether there is more (a limit of 0 is none).
        let wanted = if limit == 0 {
            0
        } else {
            limit.saturating_add(1)
        };
        let (mut revs, count) = self.live_revs(key, range_end, at, wanted, count_only);
        let more = limit > 0 && revs.len() > limit;
        if more {
            revs.truncate(limit);
        }
        let pending = if self.pending.is_empty() {
            HashMap::new()
        } else {
            revs.iter()
                .enumerate()
                .filter_map(|(i, r)| self.pending.get(r).map(|kv| (i, kv.clone())))
                .collect()
        };
        EncodedRange {
            kept: self.engine.keep_records(),
            engine: self.engine.clone(),
            revs,
            pending,
            count,
            more,
            keys_only,
        }
    }

    /// The stored record of the key-value at `rev`.
    fn stored_value(&self, rev: Revision) -> Result<Vec<u8>> {
        stored_value(&self.engine, rev)
    }

    /// The key-values stored at `revs`, in the order given.
    ///
    /// Many values close together in revision order (a large range, such as every key) are read
    /// with one ordered scan of their revision span: the backend then decodes each of its pages
    /// once, where a lookup per value decodes a page per value.
    fn values_at(
        &self,
        revs: &[Revision],
        overlay: &HashMap<Revision, KeyValue>,
    ) -> Result<Vec<KeyValue>> {
        if !worth_scanning(revs) {
            return revs.iter().map(|&r| self.value_at(r, overlay)).collect();
        }
        let mut out: Vec<Option<KeyValue>> = revs
            .iter()
            .map(|r| overlay.get(r).or_else(|| self.pending.get(r)).cloned())
            .collect();
        // Positions still to read.
        let wanted: Vec<usize> = (0..revs.len()).filter(|&i| out[i].is_none()).collect();
        scan_revisions(&self.engine, revs, wanted, |i, v| {
            out[i] = Some(KeyValue::decode(v).map_err(|e| corrupt("key-value", e))?);
            Ok(())
        })?;
        out.into_iter()
            .zip(revs)
            .map(|(kv, &rev)| match kv {
                Some(kv) => Ok(kv),
                None => self.value_at(rev, overlay),
            })
            .collect()
    }

    fn value_at(&self, rev: Revision, overlay: &HashMap<Revision, KeyValue>) -> Result<KeyValue> {
        if let Some(kv) = overlay.get(&rev).or_else(|| self.pending.get(&rev)) {
            return Ok(kv.clone());
        }
        let raw = self.stored_value(rev)?;
        KeyValue::decode(raw.as_slice()).map_err(|e| corrupt("key-value", e))
    }

    /// Every change with main revision in `[from, to]`, in revision order, as events (prev_kv
    /// filled where the previous version is still retained).
    ///
    /// # Errors
    /// Storage failure.
    pub fn events_between(&self, from: i64, to: i64) -> Result<Vec<Event>> {
        let start = kv_key(Revision::new(from, 0), false);
        let end = kv_key(Revision::new(to.saturating_add(1), 0), false);
        let mut out = Vec::new();
        for (k, v) in self.engine.state_scan_range(&start, &end, 0)? {
            let (rev, tombstone) =
                Revision::decode(&k[1..]).ok_or_else(|| corrupt("revision key", &k))?;
            let kv = KeyValue::decode(v.as_slice()).map_err(|e| corrupt("key-value", e))?;
            let prev_kv = match self
                .index
                .get(kv.key.as_slice())
                .and_then(|ki| ki.live_at(rev.main - 1))
            {
                Some(prev) => Some(Arc::new(self.value_at(prev, &HashMap::new())?)),
                None => None,
            };
            let kind = if tombstone {
                EventKind::Delete
            } else {
                EventKind::Put
            };
            out.push(Event {
                kind,
                kv: Arc::new(kv),
                prev_kv,
            });
        }
        Ok(out)
    }

    /// Every stored revision of every key, in revision order: (revision, tombstone, key-value).
    ///
    /// # Errors
    /// Storage failure or a corrupt record.
    pub fn records(&self) -> Result<Vec<(Revision, bool, KeyValue)>> {
        let mut out = Vec::new();
        for (k, v) in self.engine.state_scan_prefix(&[KV_PREFIX])? {
            let (rev, tombstone) =
                Revision::decode(&k[1..]).ok_or_else(|| corrupt("revision key", &k))?;
            let kv = KeyValue::decode(v.as_slice()).map_err(|e| corrupt("key-value", e))?;
            out.push((rev, tombstone, kv));
        }
        Ok(out)
    }

    /// Writes a whole history into `batch` (restoring a snapshot into an empty state): every
    /// record, the current revision and the compaction revision.
    pub fn import(
        batch: &mut StateBatch,
        records: &[(Revision, bool, KeyValue)],
        current_rev: i64,
        compact_rev: i64,
    ) {
        for (rev, tombstone, kv) in records {
            batch.put(kv_key(*rev, *tombstone), kv.encode_to_vec());
        }
        batch.put(META_CURRENT_REV, current_rev.max(1).to_be_bytes());
        if compact_rev >= 0 {
            batch.put(META_COMPACT_REV, compact_rev.to_be_bytes());
        }
    }

    /// Ends `batch` with the commit record: `applied_index` and the current revision.
    pub fn write_commit(&self, batch: &mut StateBatch, applied_index: u64) {
        batch.commit(COMMIT, commit_record(applied_index, self.current_rev));
    }

    /// Forgets pending values once their storage batch is applied.
    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    /// Starts a write transaction; its changes go into `batch`.
    pub fn write<'a>(&'a mut self, batch: &'a mut StateBatch) -> WriteTxn<'a> {
        let begin_rev = self.current_rev;
        WriteTxn {
            store: self,
            batch,
            begin_rev,
            sub: 0,
            overlay: HashMap::new(),
            events: Vec::new(),
            lease_changes: Vec::new(),
        }
    }

    /// Compacts history up to `rev`, removing unreachable values through `batch`.
    ///
    /// # Errors
    /// `MvccError::Compacted` when `rev` is at or below the last compaction,
    /// `MvccError::FutureRev` when it is above the current revision.
    pub fn compact(&mut self, rev: i64, batch: &mut StateBatch) -> Result<()> {
        if rev <= self.compact_rev {
            return Err(MvccError::Compacted);
        }
        if rev > self.current_rev {
            return Err(MvccError::FutureRev);
        }
        let measured = crate::metrics::mvcc::compaction();
        let mut removed = 0;
        let mut emptied = Vec::new();
        for (key, ki) in self.index.iter_mut() {
            for dropped in ki.compact(rev) {
                removed += 1;
                let k = kv_key(dropped.rev, dropped.tombstone);
                let len = self.engine.state_get(&k)?.map_or(0, |v| v.len());
                self.size_bytes = self.size_bytes.saturating_sub((k.len() + len) as u64);
                batch.remove_kept(k);
            }
            if ki.is_empty() {
                emptied.push(key.clone());
            }
        }
        for key in emptied {
            self.index.remove(&key);
        }
        self.compact_rev = rev;
        batch.put(META_COMPACT_REV, rev.to_be_bytes());
        measured.finish(removed);
        Ok(())
    }

    /// A CRC-32 over every retained key-value up to `rev`: equal on members with equal history.
    ///
    /// # Errors
    /// Storage failure.
    pub fn hash_kv(&self, rev: i64) -> Result<u32> {
        // As etcd: CRC-32C over the bucket name, then every retained revision key and value up
        // to `rev` (compaction removes what it drops, so the older ones are all still needed).
        let start = kv_key(Revision::new(0, 0), false);
        let end = kv_key(Revision::new(rev.saturating_add(1), 0), false);
        let mut h = crate::crc32c::Crc32c::new();
        h.update(b"key");
        self.engine.state_for_each(&start, &end, |k, v| {
            h.update(&k[1..]);
            h.update(v);
            true
        })?;
        Ok(h.finish())
    }

    /// Number of keys live at the current revision.
    pub fn live_keys(&self) -> usize {
        self.index
            .values()
            .filter(|ki| ki.last().is_some_and(|r| !r.tombstone))
            .count()
    }
}

/// A write transaction: every change takes main revision `begin + 1` and the next sub revision.
pub struct WriteTxn<'a> {
    store: &'a mut MvccStore,
    batch: &'a mut StateBatch,
    begin_rev: i64,
    sub: i64,
    overlay: HashMap<Revision, KeyValue>,
    events: Vec<Event>,
    lease_changes: Vec<LeaseAttach>,
}

impl WriteTxn<'_> {
    /// The revision reads in this transaction see: the writes made so far included.
    pub fn read_rev(&self) -> i64 {
        if self.events.is_empty() {
            self.begin_rev
        } else {
            self.begin_rev + 1
        }
    }

    /// The store revision before this transaction.
    pub fn begin_rev(&self) -> i64 {
        self.begin_rev
    }

    /// The store this transaction writes to.
    pub fn store(&self) -> &MvccStore {
        self.store
    }

    /// Reads a range inside the transaction (sees its own writes). `rev` 0 = latest.
    ///
    /// # Errors
    /// Compacted/future revision or storage failure.
    pub fn range(
        &self,
        key: &[u8],
        range_end: &[u8],
        rev: i64,
        limit: usize,
        count_only: bool,
    ) -> Result<(Vec<KeyValue>, usize, i64)> {
        let current = self.read_rev();
        let at = if rev <= 0 { current } else { rev };
        if at > current {
            return Err(MvccError::FutureRev);
        }
        if at < self.store.compact_rev {
            return Err(MvccError::Compacted);
        }
        let (kvs, count) =
            self.store
                .range_with(key, range_end, at, limit, count_only, &self.overlay)?;
        Ok((kvs, count, current))
    }

    /// The live key-value for `key` inside the transaction.
    ///
    /// # Errors
    /// Storage failure.
    pub fn get(&self, key: &[u8]) -> Result<Option<KeyValue>> {
        let at = self.read_rev();
        match self.store.index.get(key).and_then(|ki| ki.live_at(at)) {
            Some(rev) => Ok(Some(self.store.value_at(rev, &self.overlay)?)),
            None => Ok(None),
        }
    }

    fn next_rev(&mut self) -> Revision {
        let rev = Revision::new(self.begin_rev + 1, self.sub);
        self.sub += 1;
        rev
    }

    /// Puts `key` = `value` with `lease`; returns the new revision.
    ///
    /// # Errors
    /// Storage failure.
    pub fn put(&mut self, key: &[u8], value: &[u8], lease: i64) -> Result<i64> {
        let prev = self.get(key)?;
        let rev = self.next_rev();
        let (create_revision, version) = match &prev {
            Some(p) => (p.create_revision, p.version + 1),
            None => (rev.main, 1),
        };
        let kv = KeyValue {
            key: key.to_vec(),
            create_revision,
            mod_revision: rev.main,
            version,
            value: value.to_vec(),
            lease,
        };
        let (k, v) = (kv_key(rev, false), kv.encode_to_vec());
        self.store.size_bytes += (k.len() + v.len()) as u64;
        self.batch.append(k, v);
        index_push(&mut self.store.index, key, rev, false);
        let old_lease = prev.as_ref().map_or(0, |p| p.lease);
        if old_lease != lease {
            self.lease_changes.push(LeaseAttach {
                key: key.to_vec(),
                old_lease,
                new_lease: lease,
            });
        }
        self.events.push(Event {
            kind: EventKind::Put,
            kv: Arc::new(kv.clone()),
            prev_kv: prev.map(Arc::new),
        });
        self.store.pending.insert(rev, kv);
        Ok(rev.main)
    }

    /// Deletes every live key in the range; returns how many were deleted.
    ///
    /// # Errors
    /// Storage failure.
    pub fn delete_range(&mut self, key: &[u8], range_end: &[u8]) -> Result<i64> {
        let at = self.read_rev();
        let (kvs, _) = self
            .store
            .range_with(key, range_end, at, 0, false, &self.overlay)?;
        for prev in &kvs {
            let rev = self.next_rev();
            let tomb = KeyValue {
                key: prev.key.clone(),
                mod_revision: rev.main,
                ..Default::default()
            };
            let (k, v) = (kv_key(rev, true), tomb.encode_to_vec());
            self.store.size_bytes += (k.len() + v.len()) as u64;
            self.batch.append(k, v);
            index_push(&mut self.store.index, &prev.key, rev, true);
            if prev.lease != 0 {
                self.lease_changes.push(LeaseAttach {
                    key: prev.key.clone(),
                    old_lease: prev.lease,
                    new_lease: 0,
                });
            }
            self.events.push(Event {
                kind: EventKind::Delete,
                kv: Arc::new(tomb),
                prev_kv: Some(Arc::new(prev.clone())),
            });
        }
        Ok(i64::try_from(kvs.len()).unwrap_or(i64::MAX))
    }

    /// Ends the transaction: moves the current revision if anything changed and returns the
    /// events and lease attachment changes.
    pub fn finish(self) -> (Vec<Event>, Vec<LeaseAttach>) {
        if !self.events.is_empty() {
            // Stored with the batch's commit record (see `MvccStore::write_commit`).
            self.store.current_rev = self.begin_rev + 1;
        }
        (self.events, self.lease_changes)
    }
}

/// The key (field 1) and lease (field 6) of an encoded `mvccpb.KeyValue`, read without
/// decoding the rest; `None` if the bytes are not one.
fn key_and_lease(mut bytes: &[u8]) -> Option<(&[u8], i64)> {
    use prost::encoding::{decode_key, decode_varint, WireType};
    let mut key: &[u8] = &[];
    let mut lease = 0i64;
    while !bytes.is_empty() {
        let (tag, wire_type) = decode_key(&mut bytes).ok()?;
        match wire_type {
            WireType::Varint => {
                let v = decode_varint(&mut bytes).ok()?;
                if tag == 6 {
                    lease = v as i64;
                }
            }
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut bytes).ok()?).ok()?;
                let field = bytes.get(..len)?;
                if tag == 1 {
                    key = field;
                }
                bytes = &bytes[len..];
            }
            WireType::SixtyFourBit => bytes = bytes.get(8..)?,
            WireType::ThirtyTwoBit => bytes = bytes.get(4..)?,
            _ => return None,
        }
    }
    Some((key, lease))
}

/// The commit record for `applied_index` and `current_rev`.
pub fn commit_record(applied_index: u64, current_rev: i64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&applied_index.to_be_bytes());
    out[8..].copy_from_slice(&current_rev.to_be_bytes());
    out
}

/// The applied index and current revision of the last committed batch, if any was written
/// with a commit record.
///
/// # Errors
/// Storage failure or a malformed record.
pub fn stored_commit(engine: &Engine) -> Result<Option<(u64, i64)>> {
    let Some(bytes) = engine.state_get(COMMIT)? else {
        return Ok(None);
    };
    let record: [u8; 16] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("commit record", &bytes))?;
    let mut applied = [0u8; 8];
    let mut rev = [0u8; 8];
    applied.copy_from_slice(&record[..8]);
    rev.copy_from_slice(&record[8..]);
    Ok(Some((u64::from_be_bytes(applied), i64::from_be_bytes(rev))))
}

/// Writes the commit record into `batch` (restoring a snapshot).
pub fn write_commit_record(batch: &mut StateBatch, applied_index: u64, current_rev: i64) {
    batch.commit(COMMIT, commit_record(applied_index, current_rev));
}

fn corrupt(what: &str, detail: impl std::fmt::Debug) -> MvccError {
    MvccError::Storage(StorageError::Corrupt {
        what: what.to_string(),
        detail: format!("{detail:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> MvccStore {
        MvccStore::open(Engine::temporary().expect("engine")).expect("store")
    }

    fn commit(s: &mut MvccStore, f: impl FnOnce(&mut WriteTxn<'_>)) -> Vec<Event> {
        let mut batch = StateBatch::default();
        let mut txn = s.write(&mut batch);
        f(&mut txn);
        let (events, _) = txn.finish();
        s.write_commit(&mut batch, 0);
        let engine = s.engine().clone();
        engine.apply_state(batch).expect("apply");
        events
    }

    #[test]
    fn revisions_versions_and_generations_follow_etcd() {
        let mut s = store();
        assert_eq!(s.current_rev(), 1, "a fresh store is at revision 1");
        commit(&mut s, |t| {
            t.put(b"a", b"1", 0).expect("put");
        });
        commit(&mut s, |t| {
            t.put(b"a", b"2", 0).expect("put");
        });
        let (kvs, count) = s.range_at(b"a", b"", 3, 0, false).expect("range");
        assert_eq!(count, 1);
        assert_eq!(
            (kvs[0].create_revision, kvs[0].mod_revision, kvs[0].version),
            (2, 3, 2)
        );
        let ev = commit(&mut s, |t| {
            assert_eq!(t.delete_range(b"a", b"").expect("del"), 1);
        });
        assert_eq!(ev[0].kind, EventKind::Delete);
        assert_eq!(s.current_rev(), 4);
        commit(&mut s, |t| {
            t.put(b"a", b"3", 0).expect("put");
        });
        let (kvs, _) = s.range_at(b"a", b"", 0, 0, false).expect("range");
        assert_eq!(
            (kvs[0].create_revision, kvs[0].version),
            (5, 1),
            "a new generation"
        );
        // history
        let (kvs, _) = s.range_at(b"a", b"", 2, 0, false).expect("range");
        assert_eq!(kvs[0].value, b"1");
        let (kvs, _) = s.range_at(b"a", b"", 4, 0, false).expect("range");
        assert!(kvs.is_empty());
    }

    #[test]
    fn a_delete_of_nothing_does_not_move_the_revision() {
        let mut s = store();
        commit(&mut s, |t| {
            assert_eq!(t.delete_range(b"missing", b"").expect("del"), 0);
        });
        assert_eq!(s.current_rev(), 1);
    }

    #[test]
    fn txn_sub_revisions_and_reads_of_own_writes() {
        let mut s = store();
        let ev = commit(&mut s, |t| {
            t.put(b"a", b"1", 0).expect("put");
            t.put(b"b", b"1", 0).expect("put");
            let (kvs, count, rev) = t.range(b"a", b"c", 0, 0, false).expect("range");
            assert_eq!((kvs.len(), count, rev), (2, 2, 2));
            t.put(b"a", b"2", 0).expect("put");
        });
        assert_eq!(ev.len(), 3);
        assert!(ev.iter().all(|e| e.kv.mod_revision == 2));
        let (kvs, _) = s.range_at(b"a", b"", 0, 0, false).expect("range");
        assert_eq!((kvs[0].version, kvs[0].value.as_slice()), (2, &b"2"[..]));
    }

    /// Each key's value read alone (one lookup), for comparing with a large range's.
    fn one_by_one(s: &MvccStore, keys: &[KeyValue], at: i64) -> Vec<KeyValue> {
        keys.iter()
            .map(|kv| {
                let (mut one, _) = s.range_at(&kv.key, b"", at, 0, false).expect("get");
                one.remove(0)
            })
            .collect()
    }

    #[test]
    fn large_ranges_read_by_scan_match_lookups() {
        let mut s = store();
        let key = |i: usize| format!("k{i:04}").into_bytes();
        for i in 0..700 {
            commit(&mut s, |t| {
                t.put(&key(i), format!("v{i}").as_bytes(), 0).expect("put");
            });
        }
        let before_updates = s.current_rev();
        for i in (0..700).step_by(3) {
            commit(&mut s, |t| {
                t.put(&key(i), format!("w{i}").as_bytes(), 0).expect("put");
            });
        }
        for i in (0..700).step_by(7) {
            commit(&mut s, |t| {
                t.delete_range(&key(i), b"").expect("delete");
            });
        }
        s.clear_pending();
        // Two writes left pending: the scan takes those from memory.
        commit(&mut s, |t| {
            t.put(&key(1), b"pending", 0).expect("put");
            t.put(&key(2), b"pending", 0).expect("put");
        });
        let (now, count) = s.range_at(b"k", b"l", 0, 0, false).expect("range");
        assert_eq!(count, 600, "700 keys less every 7th");
        assert_eq!(now.len(), 600);
        assert_eq!(now, one_by_one(&s, &now, 0));
        assert_eq!(now[0].key, key(1));
        assert_eq!(now[0].value, b"pending");
        assert_eq!(now[2].value, b"w3", "k0003 was updated");
        let (old, count) = s
            .range_at(b"k", b"l", before_updates, 0, false)
            .expect("range");
        assert_eq!(count, 700);
        assert_eq!(old, one_by_one(&s, &old, before_updates));
        assert!(old.iter().all(|kv| kv.version == 1));
        // Inside a write transaction the range sees the transaction's own writes.
        commit(&mut s, |t| {
            t.put(&key(5), b"own", 0).expect("put");
            let (kvs, count, _) = t.range(b"k", b"l", 0, 0, false).expect("range");
            assert_eq!((kvs.len(), count), (600, 600));
            assert_eq!(kvs[4].key, key(5));
            assert_eq!(kvs[4].value, b"own");
        });
    }

    #[test]
    fn encoded_ranges_match_decoded_ones() {
        let mut s = store();
        let key = |i: usize| format!("k{i:04}").into_bytes();
        // Written in reverse key order, so a scan by revision reads them out of key order.
        for i in (0..600).rev() {
            commit(&mut s, |t| {
                t.put(&key(i), format!("v{i}").as_bytes(), 0).expect("put");
            });
        }
        let loaded = s.current_rev();
        for i in (0..600).step_by(5) {
            commit(&mut s, |t| {
                t.put(&key(i), b"", 7).expect("put");
            });
        }
        s.clear_pending();
        commit(&mut s, |t| {
            t.put(&key(3), b"pending", 0).expect("put");
        });
        let cases: [(&[u8], &[u8], i64, usize); 6] = [
            (b"k", b"l", 0, 0),
            (b"k", b"l", loaded, 0),
            (b"k", b"l", 0, 10),
            (b"k", b"l", 0, 600),
            (b"k0010", b"k0020", 0, 0),
            (b"k0003", b"", 0, 0),
        ];
        for (from, to, at, limit) in cases {
            let (mut want, count) = s.range_at(from, to, at, 0, false).expect("range");
            let more = limit > 0 && want.len() > limit;
            if more {
                want.truncate(limit);
            }
            for keys_only in [false, true] {
                let (got, got_count, got_more) = s
                    .plan_encoded_range(from, to, at, limit, false, keys_only)
                    .read()
                    .expect("encoded range");
                let mut want = want.clone();
                if keys_only {
                    want.iter_mut().for_each(|kv| kv.value.clear());
                }
                assert_eq!(
                    got.decode().expect("decode"),
                    want,
                    "{from:?}..{to:?} at {at}"
                );
                assert_eq!((got_count, got_more), (count, more));
            }
            let (none, n, _) = s
                .plan_encoded_range(from, to, at, limit, true, false)
                .read()
                .expect("count");
            assert_eq!((none.len(), n), (0, count));
        }
    }

    #[test]
    fn a_planned_range_reads_without_the_store_and_compaction_waits_for_it() {
        let mut s = store();
        let key = |i: usize| format!("k{i:04}").into_bytes();
        for i in 0..400 {
            commit(&mut s, |t| {
                t.put(&key(i), b"old", 0).expect("put");
            });
        }
        let loaded = s.current_rev();
        for i in 0..400 {
            commit(&mut s, |t| {
                t.put(&key(i), b"new", 0).expect("put");
            });
        }
        let (want, _) = s.range_at(b"k", b"l", loaded, 0, false).expect("range");
        let plan = s.plan_encoded_range(b"k", b"l", loaded, 0, false, false);
        // With the plan out, the store takes writes (the caller released the MVCC lock).
        commit(&mut s, |t| {
            t.put(b"later", b"v", 0).expect("put");
        });
        // A compaction that removes every value the plan reads waits until it has read them.
        let mut batch = StateBatch::default();
        s.compact(s.current_rev(), &mut batch).expect("compact");
        let engine = s.engine().clone();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let compaction = std::thread::spawn(move || {
            engine.apply_state(batch).expect("apply");
            done_tx.send(()).expect("send");
        });
        let (kvs, count, more) = plan.read().expect("read");
        assert_eq!(kvs.decode().expect("decode"), want);
        assert_eq!((count, more), (400, false));
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("the compaction goes on once the read is done");
        compaction.join().expect("thread");
        assert!(matches!(s.check_rev(loaded), Err(MvccError::Compacted)));
        assert!(
            s.engine()
                .state_get(&kv_key(Revision::new(2, 0), false))
                .expect("get")
                .is_none(),
            "the first value written is gone"
        );
    }

    #[test]
    fn only_many_values_dense_in_revision_order_are_scanned() {
        let revs = |n: i64, step: i64| -> Vec<Revision> {
            (0..n).map(|i| Revision::new(2 + i * step, 0)).collect()
        };
        assert!(!worth_scanning(&revs(10, 1)), "few values");
        assert!(worth_scanning(&revs(1000, 1)));
        assert!(worth_scanning(&revs(1000, 4)));
        assert!(!worth_scanning(&revs(1000, 50)), "sparse in a long history");
    }

    #[test]
    fn ranges_prefix_from_key_limit_and_count() {
        let mut s = store();
        for k in ["a", "b", "c", "d"] {
            commit(&mut s, |t| {
                t.put(k.as_bytes(), b"v", 0).expect("put");
            });
        }
        let (kvs, count) = s.range_at(b"b", b"\0", 0, 2, false).expect("range");
        assert_eq!(count, 3);
        assert_eq!(kvs.len(), 2);
        let (kvs, count) = s.range_at(b"a", b"c", 0, 0, true).expect("range");
        assert_eq!((kvs.len(), count), (0, 2));
        let (_, count) = s.range_at(b"d", b"a", 0, 0, false).expect("range");
        assert_eq!(count, 0, "an inverted range is empty");
    }

    /// Every key-value at every revision from the compacted one on, and the store's counters.
    fn everything(s: &MvccStore) -> (Vec<Vec<KeyValue>>, i64, i64, u64) {
        let history = (s.compact_rev().max(1)..=s.current_rev())
            .map(|at| s.range_at(b"\0", b"\0", at, 0, false).expect("range").0)
            .collect();
        (history, s.current_rev(), s.compact_rev(), s.size_bytes)
    }

    /// A store on disk with history: updates, a delete, a compaction and a leased key.
    fn store_with_history(dir: &std::path::Path) -> MvccStore {
        let mut s = MvccStore::open(Engine::open(dir).expect("engine")).expect("store");
        for i in 0..50 {
            commit(&mut s, |t| {
                t.put(format!("k{i:02}").as_bytes(), b"1", 0).expect("put");
            });
        }
        commit(&mut s, |t| {
            t.put(b"k01", b"2", 0).expect("put");
            t.put(b"leased", b"v", 7).expect("put");
        });
        commit(&mut s, |t| {
            t.delete_range(b"k02", b"").expect("delete");
        });
        let mut batch = StateBatch::default();
        s.compact(20, &mut batch).expect("compact");
        s.engine().apply_state(batch).expect("apply");
        commit(&mut s, |t| {
            t.put(b"k03", b"3", 0).expect("put");
        });
        s.clear_pending();
        s
    }

    #[test]
    fn the_key_index_saved_at_a_clean_stop_is_loaded_once_and_matches_a_rebuild() {
        let dir = tempfile::tempdir().expect("dir");
        let image = dir.path().join(KEY_INDEX_IMAGE);
        let s = store_with_history(dir.path());
        let before = everything(&s);
        s.save_index_image(vec![(b"leased".to_vec(), 7)])
            .expect("save");
        drop(s);
        assert!(image.exists());

        let mut loaded = MvccStore::open(Engine::open(dir.path()).expect("engine")).expect("open");
        assert!(!image.exists(), "an image serves one start only");
        assert!(
            matches!(loaded.leased_at_open, LeasedAtOpen::Keys(_)),
            "the image was used"
        );
        assert_eq!(everything(&loaded), before);
        assert_eq!(loaded.take_leased_keys(), vec![(b"leased".to_vec(), 7)]);
        drop(loaded);

        let mut rebuilt = MvccStore::open(Engine::open(dir.path()).expect("engine")).expect("open");
        assert!(matches!(rebuilt.leased_at_open, LeasedAtOpen::Revisions(_)));
        assert_eq!(everything(&rebuilt), before);
        assert_eq!(rebuilt.take_leased_keys(), vec![(b"leased".to_vec(), 7)]);
    }

    #[test]
    fn a_key_index_image_older_than_the_state_is_not_used() {
        let dir = tempfile::tempdir().expect("dir");
        let mut s = store_with_history(dir.path());
        s.save_index_image(Vec::new()).expect("save");
        // A write after the image was taken (as a start that crashed before removing it).
        commit(&mut s, |t| {
            t.put(b"later", b"v", 0).expect("put");
        });
        s.engine().flush().expect("flush");
        drop(s);
        let reopened = MvccStore::open(Engine::open(dir.path()).expect("engine")).expect("open");
        assert!(matches!(
            reopened.leased_at_open,
            LeasedAtOpen::Revisions(_)
        ));
        let (kvs, _) = reopened
            .range_at(b"later", b"", 0, 0, false)
            .expect("range");
        assert_eq!(kvs.len(), 1, "the rebuilt index has the later write");
        assert!(!dir.path().join(KEY_INDEX_IMAGE).exists());
    }

    #[test]
    fn compaction_and_errors_and_reopen() {
        let engine = Engine::temporary().expect("engine");
        let mut s = MvccStore::open(engine.clone()).expect("store");
        for v in ["1", "2", "3"] {
            commit(&mut s, |t| {
                t.put(b"k", v.as_bytes(), 0).expect("put");
            });
        }
        let mut batch = StateBatch::default();
        s.compact(3, &mut batch).expect("compact");
        engine.apply_state(batch).expect("apply");
        assert!(matches!(s.check_rev(2), Err(MvccError::Compacted)));
        assert_eq!(
            s.check_rev(3).expect("readable"),
            3,
            "the compact revision stays readable"
        );
        assert!(matches!(s.check_rev(5), Err(MvccError::FutureRev)));
        let mut batch = StateBatch::default();
        assert!(matches!(
            s.compact(3, &mut batch),
            Err(MvccError::Compacted)
        ));
        let (kvs, _) = s.range_at(b"k", b"", 3, 0, false).expect("range");
        assert_eq!(kvs[0].value, b"2");
        let reopened = MvccStore::open(engine).expect("reopen");
        assert_eq!((reopened.current_rev(), reopened.compact_rev()), (4, 3));
        let (kvs, _) = reopened.range_at(b"k", b"", 0, 0, false).expect("range");
        assert_eq!(kvs[0].value, b"3");
    }

    #[test]
    fn revisions_a_crash_left_without_their_commit_record_are_dropped_on_open() {
        let engine = Engine::temporary().expect("engine");
        let mut s = MvccStore::open(engine.clone()).expect("store");
        commit(&mut s, |t| {
            t.put(b"k", b"committed", 0).expect("put");
        });
        // a batch cut short: its revision record written, its commit record lost
        let mut batch = StateBatch::default();
        let mut txn = s.write(&mut batch);
        txn.put(b"k", b"lost", 0).expect("put");
        txn.put(b"other", b"lost", 0).expect("put");
        txn.finish();
        let writes_without_commit = batch;
        engine
            .apply_state(writes_without_commit)
            .expect("records only");
        let reopened = MvccStore::open(engine.clone()).expect("reopen");
        assert_eq!(reopened.current_rev(), 2);
        let (kvs, count) = reopened.range_at(b"", b"\0", 0, 0, false).expect("range");
        assert_eq!(count, 1);
        assert_eq!(kvs[0].value, b"committed");
        assert!(
            engine.state_scan_prefix(&[KV_PREFIX]).expect("scan").len() == 1,
            "the orphans are removed"
        );
    }

    #[test]
    fn the_key_and_lease_are_read_from_an_encoded_key_value() {
        let kv = KeyValue {
            key: b"the/key".to_vec(),
            create_revision: 3,
            mod_revision: 9,
            version: 2,
            value: vec![7; 300],
            lease: 0x694d_77aa_9e38_260f,
        };
        let bytes = kv.encode_to_vec();
        assert_eq!(
            key_and_lease(&bytes),
            Some((&b"the/key"[..], 0x694d_77aa_9e38_260f))
        );
        assert_eq!(key_and_lease(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn history_events_carry_prev_kv() {
        let mut s = store();
        commit(&mut s, |t| {
            t.put(b"k", b"1", 0).expect("put");
        });
        commit(&mut s, |t| {
            t.put(b"k", b"2", 0).expect("put");
        });
        commit(&mut s, |t| {
            t.delete_range(b"k", b"").expect("del");
        });
        let evs = s.events_between(2, 4).expect("events");
        assert_eq!(evs.len(), 3);
        assert_eq!(
            evs[1].prev_kv.as_ref().map(|p| p.value.clone()),
            Some(b"1".to_vec())
        );
        assert_eq!(evs[2].kind, EventKind::Delete);
        assert_eq!(
            evs[2].prev_kv.as_ref().map(|p| p.value.clone()),
            Some(b"2".to_vec())
        );
    }
}
