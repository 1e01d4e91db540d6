//! Crashes while data moves to a remote tier, while a PUT writes straight
//! into one (its storage class names it), and while a version whose data
//! lives there is deleted: at every crash point of the drives (the
//! tier, a store in memory, keeps what it was sent), the object reads back
//! as before (a transition never changes what clients see) or, for a
//! delete, as before or after; and once the journal is swept, the tier
//! holds exactly the objects that entries on the drives reference: no
//! orphan, nothing referenced missing.

use super::points::cuts;
use super::*;
use crate::object::PutOptions;
use crate::object::cold::memory::MemoryStore;
use std::collections::BTreeSet;

/// Time past which every journal row (of a transition, or of a write
/// straight into a store) may be settled.
const LATER: i64 = 48 * 3_600_000_000_000;

async fn put(l: &ObjectLayer, key: &str, size: usize, seed: u64) {
    let opts = PutOptions {
        size: Some(size as u64),
        ..Default::default()
    };
    l.put_object(BUCKET, key, body(pattern(size, seed)), opts)
        .await
        .unwrap();
}

async fn transition(l: &ObjectLayer, key: &str) -> ObjectResult<()> {
    let v = l.head_object(BUCKET, key, None).await?.version().clone();
    l.transition(BUCKET, key, &v, "cold").await.map(|_| ())
}

/// The remote objects entries on the drives reference.
fn referenced(layer: &ObjectLayer) -> BTreeSet<[u8; 16]> {
    let mut out = BTreeSet::new();
    for d in layer.sets()[0].online_drives() {
        for (_, v) in d
            .scan(Table::Objects, KeyRange::new(b"", b"\xff", usize::MAX))
            .unwrap()
        {
            for v in ObjectRecord::decode(&v).unwrap().versions {
                if let Some(r) = v.remote() {
                    out.insert(r.id);
                }
            }
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Op {
    /// Move a key's data to the tier.
    Transition(&'static str),
    /// Delete a key whose data is in the tier.
    Delete(&'static str),
    /// Overwrite a key with a PUT whose data goes straight to the tier.
    Placed(&'static str),
}

async fn prepared(
    rig: &Rig,
    store: &Arc<MemoryStore>,
    op: Op,
) -> (Arc<ObjectLayer>, Vec<Weak<dyn Drive>>, Arc<Crash>) {
    let plan = crash_plan(rig.n());
    let faults: Arc<dyn Faults> = plan.clone();
    let (layer, weak) = rig.open(Some(faults)).await;
    layer.set_cold_store(store.clone());
    layer.make_bucket(BUCKET).await.unwrap();
    put(&layer, "files", 100_000, 1).await;
    put(&layer, "inline", 1_000, 2).await;
    if let Op::Delete(k) = op {
        transition(&layer, k).await.unwrap();
    }
    layer.compact_queued().await;
    (layer, weak, plan)
}

async fn run_op(layer: &ObjectLayer, op: Op) -> ObjectResult<()> {
    match op {
        Op::Transition(k) => transition(layer, k).await,
        Op::Delete(k) => layer.delete_object(BUCKET, k, None, false).await.map(|_| ()),
        Op::Placed(k) => {
            let opts = PutOptions {
                size: Some(150_000),
                place: Some("cold".into()),
                ..Default::default()
            };
            layer
                .put_object(BUCKET, k, body(pattern(150_000, 3)), opts)
                .await
                .map(|_| ())
        }
    }
}

async fn run(op: Op, name: &str) -> usize {
    let rig = Rig::new(4, 2);
    let store = Arc::new(MemoryStore::default());
    let (layer, weak, plan) = prepared(&rig, &store, op).await;
    let before = observe(&layer).await.unwrap();
    let start = plan.seen();
    run_op(&layer, op).await.unwrap();
    layer.compact_queued().await;
    let events: Vec<u64> = plan.seen().iter().zip(&start).map(|(a, b)| a - b).collect();
    let after = observe(&layer).await.unwrap();
    close(layer, weak).await;
    let cuts = cuts(&events);
    for cut in &cuts {
        let rig = Rig::new(4, 2);
        let store = Arc::new(MemoryStore::default());
        let (layer, weak, plan) = prepared(&rig, &store, op).await;
        plan.limit_from_now(cut);
        let acked = run_op(&layer, op).await.is_ok();
        layer.compact_queued().await;
        close(layer, weak).await;
        let ctx = format!("{name}, crash after {cut:?} of {events:?} events");
        let (layer, weak) = rig.open(None).await;
        layer.set_cold_store(store.clone());
        check_restarted(&layer, acked, (&before, &after), &ctx).await;
        // Once the journal is swept (a transition's row waits out its
        // deadline), the tier holds what the drives reference, no more.
        let r = layer.sweep_cold(crate::object::now_ns() + LATER).await;
        assert_eq!(r.failed, 0, "{ctx}: sweep {r:?}");
        let held: BTreeSet<[u8; 16]> = store.objects.lock().unwrap().keys().map(|(_, id)| *id).collect();
        assert_eq!(
            held,
            referenced(&layer),
            "{ctx}: the tier holds other than what is referenced"
        );
        for s in layer.sets() {
            assert!(s.rows().await.is_empty(), "{ctx}: journal rows left");
        }
        close(layer, weak).await;
    }
    cuts.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_crash_point_of_moving_data_to_a_tier_and_deleting_it_there() {
    let mut total = 0;
    for (op, name) in [
        (Op::Transition("files"), "transition of a files object"),
        (Op::Transition("inline"), "transition of an inline object"),
        (Op::Delete("files"), "delete of an object in a tier"),
        (Op::Placed("inline"), "PUT straight into a tier"),
    ] {
        let t0 = std::time::Instant::now();
        let n = run(op, name).await;
        eprintln!("{name}: {n} crash points in {:?}", t0.elapsed());
        total += n;
    }
    assert!(total > 20, "{total} crash points");
}
