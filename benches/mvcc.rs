//! Micro-benchmarks of the MVCC store and the watch hub: put, range, and watch fan-out.
//! Run with `cargo bench --bench mvcc`.

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use kvd::internals::{Engine, Event, MvccStore, StateBatch, WatchHub, WatchSpec};
use parking_lot::RwLock;

fn store_with(keys: usize) -> MvccStore {
    let mut store = MvccStore::open(Engine::temporary_on_disk().expect("engine")).expect("store");
    for i in 0..keys {
        put(&mut store, format!("key/{i:06}").as_bytes(), &[b'v'; 256]);
    }
    store
}

fn put(store: &mut MvccStore, key: &[u8], value: &[u8]) -> Vec<Event> {
    let mut batch = StateBatch::default();
    let mut txn = store.write(&mut batch);
    txn.put(key, value, 0).expect("put");
    let (events, _) = txn.finish();
    store.engine().apply_state(batch).expect("apply");
    events
}

fn bench_put(c: &mut Criterion) {
    let mut store = store_with(0);
    let mut i = 0u64;
    c.bench_function("mvcc put 256B (100k key space)", |b| {
        b.iter(|| {
            i += 1;
            let key = format!("key/{:06}", i % 100_000);
            put(&mut store, key.as_bytes(), &[b'v'; 256]);
        })
    });
}

fn bench_range(c: &mut Criterion) {
    let store = store_with(10_000);
    c.bench_function("mvcc range one key (10k keys)", |b| {
        b.iter(|| {
            store
                .range_at(b"key/005000", b"", 0, 0, false)
                .expect("range")
        })
    });
    c.bench_function("mvcc range 100 keys (10k keys)", |b| {
        b.iter(|| {
            store
                .range_at(b"key/005000", b"key/005100", 0, 0, false)
                .expect("range")
        })
    });
    c.bench_function("mvcc count-only whole keyspace (10k keys)", |b| {
        b.iter(|| store.range_at(b"key/", b"key0", 0, 0, true).expect("range"))
    });
}

fn bench_watch_fanout(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let _guard = runtime.enter();
    let mvcc = Arc::new(RwLock::new(store_with(0)));
    let hub = WatchHub::new(mvcc.clone());
    let mut receivers = Vec::new();
    for w in 0..1000 {
        let (tx, rx) = tokio::sync::mpsc::channel(1 << 16);
        let spec = WatchSpec {
            key: b"key/".to_vec(),
            range_end: b"key0".to_vec(),
            no_put: false,
            no_delete: false,
        };
        hub.watch((1, w), spec, 0, tx);
        receivers.push(rx);
    }
    c.bench_function("watch fan-out: one put to 1000 watchers", |b| {
        b.iter_batched(
            || {
                let mut store = mvcc.write();
                let events = put(&mut store, b"key/000001", b"v");
                (store.current_rev(), events)
            },
            |(rev, events)| {
                hub.notify(rev, &events);
                for rx in &mut receivers {
                    let _ = rx.try_recv();
                }
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, bench_put, bench_range, bench_watch_fanout);
criterion_main!(benches);
