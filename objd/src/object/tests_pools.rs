//! Pools: a namespace pool and a capacity pool of their own drives (each
//! a real layer over temporary directories), and a remote tier in memory.
//! Storage classes resolve to their places; a PUT to a pool's class keeps
//! its data on that pool's drives only and reads back byte-exact, whole
//! and in ranges; data moves namespace -> pool -> tier and what it leaves
//! behind goes; a write that fails leaves nothing anywhere.

use super::cold::memory::MemoryStore;
use super::cold::{ColdStore, Moved};
use super::placement::{Place, Placement};
use super::tests::{Fixture, body, data_files, fixture, pattern, read_all, small_blocks};
use super::*;
use crate::tier::pool::{BUCKET as POOL_BUCKET, PoolStore};
use futures::StreamExt;

struct Pools {
    home: Fixture,
    capacity: Fixture,
    cold: Arc<MemoryStore>,
}

async fn setup() -> Pools {
    let home = fixture(4, 2, small_blocks()).await;
    let capacity = fixture(6, 3, small_blocks()).await;
    let cold = Arc::new(MemoryStore::default());
    let store = PoolStore::open("capacity", Arc::clone(&capacity.layer))
        .await
        .unwrap();
    let placement = Placement::new(
        "fast",
        vec![("capacity".into(), Arc::new(store) as Arc<dyn ColdStore>)],
        vec![("STANDARD_IA".into(), "capacity".into())],
    )
    .unwrap();
    home.layer.set_placement(placement);
    home.layer.set_cold_store(cold.clone());
    home.layer.make_bucket("bkt").await.unwrap();
    Pools { home, capacity, cold }
}

fn placed(size: usize, place: &str) -> PutOptions {
    PutOptions {
        size: Some(size as u64),
        place: Some(place.into()),
        ..Default::default()
    }
}

async fn range(layer: &ObjectLayer, key: &str, start: u64, end: u64) -> Vec<u8> {
    let r = layer.head_object("bkt", key, None).await.unwrap();
    let mut s = r.stream_charged(start, end).await.unwrap();
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    out
}

/// Objects the capacity pool holds.
async fn pool_objects(p: &Pools) -> usize {
    p.capacity
        .layer
        .list_objects(
            POOL_BUCKET,
            ListOptions {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .objects
        .len()
}

async fn settle(p: &Pools) {
    p.home.layer.compact_queued().await;
    p.capacity.layer.compact_queued().await;
    p.home.layer.sweep_cold(now_ns() + 48 * 3_600_000_000_000).await;
    p.capacity.layer.compact_queued().await;
}

#[tokio::test]
async fn classes_resolve_to_the_namespace_pool_the_other_pools_and_tiers() {
    let p = setup().await;
    let l = &p.home.layer;
    for (class, place) in [
        ("STANDARD", Some(Place::Home)),
        ("FAST", Some(Place::Home)),
        ("standard", Some(Place::Home)),
        ("CAPACITY", Some(Place::Store("capacity".into()))),
        ("STANDARD_IA", Some(Place::Store("capacity".into()))),
        // The memory store answers for one tier, `cold`.
        ("COLD", Some(Place::Store("cold".into()))),
        ("GLACIER", None),
    ] {
        assert_eq!(l.place_of(class).await.unwrap(), place, "{class}");
    }
    let placement = l.placement();
    assert!(placement.is_taken("capacity") && placement.is_taken("standard_ia"));
    assert!(!placement.is_taken("cold"));
    assert!(placement.rank(None) < placement.rank(Some("capacity")));
    assert!(placement.rank(Some("capacity")) < placement.rank(Some("cold")));
    // Bad layouts are refused.
    assert!(Placement::new("fast", vec![], vec![("STANDARD".into(), "fast".into())]).is_err());
    assert!(Placement::new("fast", vec![], vec![("X".into(), "Not a name".into())]).is_err());
}

#[tokio::test]
async fn a_put_to_a_pool_s_class_keeps_its_data_on_that_pool_only() {
    let p = setup().await;
    let l = &p.home.layer;
    let data = pattern(300_000, 5);
    let v = l
        .put_object("bkt", "k", body(data.clone()), placed(data.len(), "capacity"))
        .await
        .unwrap();
    assert_eq!(v.remote().map(|r| r.tier.as_str()), Some("capacity"));
    let mut md5 = crate::digest::Md5::new();
    md5.update(&data);
    assert_eq!(v.etag, hex::encode(md5.finish()));
    assert_eq!(data_files(&p.home), 0, "no data in the namespace pool");
    assert!(data_files(&p.capacity) > 0, "the data is on the pool's drives");
    assert_eq!(pool_objects(&p).await, 1);
    assert_eq!(read_all(l, "bkt", "k").await.unwrap(), data);
    for (s, e) in [(0, 1), (65_535, 65_537), (100_000, 300_000), (299_999, 300_000)] {
        assert_eq!(
            range(l, "k", s, e).await,
            &data[s as usize..e as usize],
            "{s}..{e}"
        );
    }
    let head = l.head_object("bkt", "k", None).await.unwrap();
    assert_eq!(l.class_of(head.version()).as_deref(), Some("STANDARD_IA"));
    // A body of unknown length is written here, then moved.
    let opts = PutOptions {
        size: None,
        ..placed(0, "capacity")
    };
    l.put_object("bkt", "unsized", body(data.clone()), opts)
        .await
        .unwrap();
    let head = l.head_object("bkt", "unsized", None).await.unwrap();
    assert_eq!(l.class_of(head.version()).as_deref(), Some("STANDARD_IA"));
    assert_eq!(read_all(l, "bkt", "unsized").await.unwrap(), data);
    l.delete_object("bkt", "unsized", None, false).await.unwrap();
    // An overwrite into the namespace pool; the pool's copy goes.
    l.put_object("bkt", "k", body(b"small".to_vec()), PutOptions::default())
        .await
        .unwrap();
    settle(&p).await;
    assert_eq!(pool_objects(&p).await, 0);
    assert_eq!(read_all(l, "bkt", "k").await.unwrap(), b"small");
}

#[tokio::test]
async fn data_moves_from_the_namespace_pool_to_a_pool_then_to_a_tier() {
    let p = setup().await;
    let l = &p.home.layer;
    let data = pattern(200_000, 9);
    l.put_object("bkt", "k", body(data.clone()), PutOptions::default())
        .await
        .unwrap();
    let v = l.head_object("bkt", "k", None).await.unwrap().version().clone();
    assert!(matches!(
        l.transition("bkt", "k", &v, "capacity").await.unwrap(),
        Moved::Done { .. }
    ));
    settle(&p).await;
    assert_eq!(data_files(&p.home), 0, "the namespace pool's copy went");
    assert_eq!(pool_objects(&p).await, 1);
    assert_eq!(read_all(l, "bkt", "k").await.unwrap(), data);
    let v = l.head_object("bkt", "k", None).await.unwrap().version().clone();
    assert!(matches!(
        l.transition("bkt", "k", &v, "cold").await.unwrap(),
        Moved::Done { .. }
    ));
    settle(&p).await;
    assert_eq!(pool_objects(&p).await, 0, "the pool's copy went");
    assert_eq!(p.cold.count(), 1);
    assert_eq!(read_all(l, "bkt", "k").await.unwrap(), data);
    assert_eq!(range(l, "k", 70_000, 140_000).await, &data[70_000..140_000]);
    let head = l.head_object("bkt", "k", None).await.unwrap();
    assert_eq!(l.class_of(head.version()).as_deref(), Some("COLD"));
}

#[tokio::test]
async fn a_put_to_a_pool_that_fails_leaves_nothing_behind() {
    let p = setup().await;
    let l = &p.home.layer;
    // The body ends before its declared length.
    let short = pattern(100_000, 1);
    let e = l
        .put_object("bkt", "k", body(short), placed(150_000, "capacity"))
        .await
        .unwrap_err();
    assert!(matches!(e, ObjectError::IncompleteBody), "{e:?}");
    // A Content-MD5 that does not match.
    let data = pattern(100_000, 2);
    let opts = PutOptions {
        content_md5: Some([0; 16]),
        ..placed(data.len(), "capacity")
    };
    let e = l.put_object("bkt", "k", body(data), opts).await.unwrap_err();
    assert!(matches!(e, ObjectError::BadDigest), "{e:?}");
    // A tier that is down.
    p.cold.down.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = l
        .put_object("bkt", "k", body(pattern(10, 1)), placed(10, "cold"))
        .await
        .unwrap_err();
    assert!(matches!(e, ObjectError::TierUnavailable(_)), "{e:?}");
    p.cold.down.store(false, std::sync::atomic::Ordering::SeqCst);
    settle(&p).await;
    assert!(matches!(
        l.head_object("bkt", "k", None).await.unwrap_err(),
        ObjectError::NoSuchKey
    ));
    assert_eq!(pool_objects(&p).await, 0);
    assert_eq!(p.cold.count(), 0);
    for s in l.sets() {
        assert!(s.rows().await.is_empty(), "journal rows left");
    }
}

#[tokio::test]
async fn a_clone_of_an_object_in_a_pool_is_a_copy_in_the_same_pool() {
    let p = setup().await;
    let l = &p.home.layer;
    l.make_bucket("snap").await.unwrap();
    let data = pattern(250_000, 4);
    l.put_object("bkt", "k", body(data.clone()), placed(data.len(), "capacity"))
        .await
        .unwrap();
    l.clone_prefix(("bkt", ""), ("snap", ""), Arc::new(NoKeys), |_| {})
        .await
        .unwrap();
    let c = l.head_object("snap", "k", None).await.unwrap();
    assert_eq!(c.version().remote().map(|r| r.tier.as_str()), Some("capacity"));
    assert_eq!(pool_objects(&p).await, 2, "a copy of its own");
    assert_eq!(read_all(l, "snap", "k").await.unwrap(), data);
    assert_eq!(data_files(&p.home), 0);
    // Independent: the source's removal leaves the clone whole.
    l.delete_object("bkt", "k", None, false).await.unwrap();
    settle(&p).await;
    assert_eq!(pool_objects(&p).await, 1);
    assert_eq!(read_all(l, "snap", "k").await.unwrap(), data);
}
