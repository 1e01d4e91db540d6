//! Versions whose data lives in a remote tier (a store in memory here):
//! read back byte-exact, whole and in ranges, from the tier; a tier that
//! fails or damages bytes is an error, never wrong bytes; a version that
//! changes while it moves stays as it is; removed versions' remote objects
//! are removed, later when the tier is down; nothing is left behind.

use super::cold::memory::MemoryStore;
use super::cold::{ColdSweep, Moved};
use super::tests::{Fixture, body, data_files, fixture, pattern, read_all, small_blocks};
use super::*;
use crate::lifecycle::{Clock, Lifecycle, NoncurrentTransition, Rule, Transition, When, scan};
use futures::StreamExt;
use std::sync::atomic::Ordering;

async fn setup() -> (Fixture, Arc<MemoryStore>) {
    let f = fixture(4, 2, small_blocks()).await;
    let store = Arc::new(MemoryStore::default());
    f.layer.set_cold_store(store.clone());
    f.layer.make_bucket("bkt").await.unwrap();
    (f, store)
}

async fn put(layer: &ObjectLayer, key: &str, data: &[u8]) -> Version {
    layer
        .put_object("bkt", key, body(data.to_vec()), PutOptions::default())
        .await
        .unwrap()
}

async fn current(layer: &ObjectLayer, key: &str) -> Version {
    layer
        .head_object("bkt", key, None)
        .await
        .unwrap()
        .version()
        .clone()
}

async fn range(layer: &ObjectLayer, key: &str, start: u64, end: u64) -> ObjectResult<Vec<u8>> {
    let r = layer.head_object("bkt", key, None).await?;
    let mut s = r.stream_charged(start, end).await?;
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(ObjectError::Body)?);
    }
    Ok(out)
}

async fn rows(layer: &ObjectLayer) -> usize {
    let mut n = 0;
    for s in layer.sets() {
        n += s.rows().await.len();
    }
    n
}

#[tokio::test]
async fn a_moved_version_reads_the_same_from_the_tier_and_its_local_data_goes() {
    let (f, store) = setup().await;
    let big = pattern(300_000, 3);
    let small = pattern(1_000, 4);
    put(&f.layer, "big", &big).await;
    put(&f.layer, "small", &small).await;
    f.layer
        .put_object_tags("bkt", "big", None, vec![("k".into(), "v".into())])
        .await
        .unwrap();
    let before = current(&f.layer, "big").await;
    assert!(data_files(&f) > 0);
    for key in ["big", "small"] {
        let v = current(&f.layer, key).await;
        let moved = f.layer.transition("bkt", key, &v, "cold").await.unwrap();
        assert_eq!(moved, Moved::Done { bytes: v.size });
    }
    f.layer.compact_queued().await;
    assert_eq!(
        data_files(&f),
        0,
        "the local shards went with the entry they belonged to"
    );
    assert_eq!(store.count(), 2);
    assert_eq!(rows(&f.layer).await, 0, "no journal row once committed");
    let after = current(&f.layer, "big").await;
    assert_eq!(after.remote().unwrap().tier, "cold");
    assert_eq!(
        (
            after.id,
            after.mod_time_ns,
            &after.etag,
            after.size,
            &after.extras.tags
        ),
        (
            before.id,
            before.mod_time_ns,
            &before.etag,
            before.size,
            &before.extras.tags
        ),
        "the version is the same but for where its bytes are"
    );
    assert_eq!(read_all(&f.layer, "bkt", "big").await.unwrap(), big);
    assert_eq!(read_all(&f.layer, "bkt", "small").await.unwrap(), small);
    for (s, e) in [
        (0, 1),
        (65_535, 65_537),
        (131_072, 196_608),
        (299_000, 300_000),
        (10, 299_990),
    ] {
        assert_eq!(
            range(&f.layer, "big", s, e).await.unwrap(),
            big[s as usize..e as usize]
        );
    }
    // Listings know where it is.
    let page = f.layer.list_objects("bkt", ListOptions::default()).await.unwrap();
    assert!(page.objects.iter().all(|o| o.version.remote().is_some()));
    // In a tier already: nothing to do.
    assert_eq!(
        f.layer.transition("bkt", "big", &after, "cold").await.unwrap(),
        Moved::Skipped
    );
    // Heal (deep) has no shards to check and changes nothing.
    f.layer
        .set_for("bkt", "big")
        .heal_object("bkt", "big", true)
        .await
        .unwrap();
    assert_eq!(read_all(&f.layer, "bkt", "big").await.unwrap(), big);

    // A tier that is down, or answers damaged bytes: an error before any
    // byte, never wrong bytes.
    store.down.store(true, Ordering::SeqCst);
    assert!(matches!(
        range(&f.layer, "big", 0, 10).await,
        Err(ObjectError::TierUnavailable(_))
    ));
    store.down.store(false, Ordering::SeqCst);
    store.damaged.store(true, Ordering::SeqCst);
    assert!(matches!(
        range(&f.layer, "big", 0, 300_000).await,
        Err(ObjectError::TierUnavailable(_))
    ));
    assert!(matches!(
        range(&f.layer, "small", 5, 6).await,
        Err(ObjectError::TierUnavailable(_))
    ));
    store.damaged.store(false, Ordering::SeqCst);

    // Deleted: its remote object goes at the next sweep.
    f.layer.delete_object("bkt", "big", None, false).await.unwrap();
    f.layer.compact_queued().await;
    let r = f.layer.sweep_cold(now_ns()).await;
    assert_eq!((r.removed, r.failed), (1, 0));
    assert_eq!(store.count(), 1);
    // Deleted while the tier is down: kept in the journal, removed once
    // the tier is back.
    store.down.store(true, Ordering::SeqCst);
    f.layer.delete_object("bkt", "small", None, false).await.unwrap();
    f.layer.compact_queued().await;
    let r = f.layer.sweep_cold(now_ns()).await;
    assert_eq!((r.removed, r.failed), (0, 1));
    assert_eq!((store.count(), rows(&f.layer).await), (1, 1));
    store.down.store(false, Ordering::SeqCst);
    let r = f.layer.sweep_cold(now_ns()).await;
    assert_eq!(
        r,
        ColdSweep {
            removed: 1,
            ..Default::default()
        }
    );
    assert_eq!((store.count(), rows(&f.layer).await), (0, 0));
}

#[tokio::test]
async fn a_transition_that_fails_or_loses_a_race_leaves_the_object_where_it_was() {
    let (f, store) = setup().await;
    let data = pattern(200_000, 5);
    let v = put(&f.layer, "k", &data).await;
    // The tier is down: an error, the object stays, the journal row waits
    // for the sweep.
    store.down.store(true, Ordering::SeqCst);
    let r = f.layer.transition("bkt", "k", &v, "cold").await;
    assert!(matches!(r, Err(ObjectError::TierUnavailable(_))), "{r:?}");
    store.down.store(false, Ordering::SeqCst);
    assert!(current(&f.layer, "k").await.remote().is_none());
    assert_eq!(read_all(&f.layer, "bkt", "k").await.unwrap(), data);
    // The row is a transition's: settled after its deadline only.
    let r = f.layer.sweep_cold(now_ns()).await;
    assert_eq!(r.waiting, 1);
    let r = f.layer.sweep_cold(now_ns() + 2 * 3_600_000_000_000).await;
    assert_eq!(
        r,
        ColdSweep {
            removed: 1,
            ..Default::default()
        }
    );
    assert_eq!((store.count(), rows(&f.layer).await), (0, 0));

    // Overwritten while its bytes were on their way: the new object stays
    // local, and the copy of the old one is removed.
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    *store.gate.lock().unwrap() = Some((Arc::clone(&started), Arc::clone(&release)));
    let layer = Arc::clone(&f.layer);
    let moving = tokio::spawn(async move { layer.transition("bkt", "k", &v, "cold").await });
    started.notified().await;
    let newer = pattern(150_000, 6);
    put(&f.layer, "k", &newer).await;
    release.notify_one();
    assert_eq!(moving.await.unwrap().unwrap(), Moved::Skipped);
    assert!(current(&f.layer, "k").await.remote().is_none());
    assert_eq!(read_all(&f.layer, "bkt", "k").await.unwrap(), newer);
    assert_eq!((store.count(), rows(&f.layer).await), (0, 0));
}

#[tokio::test]
async fn lifecycle_moves_current_and_noncurrent_versions_by_their_own_rules() {
    let (f, store) = setup().await;
    f.layer
        .set_versioning("bkt", crate::meta::Versioning::Enabled)
        .await
        .unwrap();
    let old = pattern(140_000, 7);
    let new = pattern(160_000, 8);
    put(&f.layer, "logs/a", &old).await;
    put(&f.layer, "logs/a", &new).await;
    put(&f.layer, "tiny", b"under the 128 KiB floor").await;
    let rule = Rule {
        id: "cold".into(),
        enabled: true,
        filter: Default::default(),
        expiration: None,
        expired_object_delete_marker: false,
        noncurrent_days: None,
        newer_noncurrent: None,
        abort_incomplete_days: None,
        transitions: vec![Transition {
            when: When::Days(3),
            class: "COLD".into(),
        }],
        noncurrent_transitions: vec![NoncurrentTransition {
            days: 1,
            newer: None,
            class: "COLD".into(),
        }],
    };
    let rules = Lifecycle { rules: vec![rule] };
    f.layer
        .set_bucket_setting("bkt", crate::lifecycle::BUCKET_SETTING, Some(rules.encode()))
        .await
        .unwrap();
    let clock = Clock::default();
    let now = now_ns();
    const DAY: i64 = 86_400 * 1_000_000_000;
    let r = scan::pass(&f.layer, &clock, now + 2 * DAY).await;
    assert_eq!(
        (r.transitioned, r.transitioned_bytes),
        (1, 140_000),
        "the noncurrent version only"
    );
    let r = scan::pass(&f.layer, &clock, now + 5 * DAY).await;
    assert_eq!(
        (r.transitioned, r.transition_failures),
        (1, 0),
        "then the current one"
    );
    assert_eq!(store.count(), 2);
    let page = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                versions: true,
                max_keys: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let moved: Vec<(&str, bool)> = page
        .objects
        .iter()
        .map(|o| (o.key.as_str(), o.version.remote().is_some()))
        .collect();
    assert_eq!(moved, vec![("logs/a", true), ("logs/a", true), ("tiny", false)]);
    assert_eq!(read_all(&f.layer, "bkt", "logs/a").await.unwrap(), new);
    let oldest = page.objects[1].version.id.to_api();
    let r = f.layer.head_object("bkt", "logs/a", Some(&oldest)).await.unwrap();
    let size = r.version().size;
    let mut s = r.stream(0, size);
    let mut back = Vec::new();
    while let Some(c) = s.next().await {
        back.extend_from_slice(&c.unwrap());
    }
    assert_eq!(back, old);
    // Nothing more to do.
    let r = scan::pass(&f.layer, &clock, now + 9 * DAY).await;
    assert_eq!(r.transitioned, 0);
}

#[tokio::test]
async fn reads_of_many_frames_cross_request_boundaries_byte_exact() {
    let (f, store) = setup().await;
    // Past two 4 MiB requests, not a whole number of 64 KiB frames.
    let data = pattern(9 * 1024 * 1024 + 12_345, 9);
    let v = put(&f.layer, "huge", &data).await;
    f.layer.transition("bkt", "huge", &v, "cold").await.unwrap();
    assert_eq!(
        store.objects.lock().unwrap().values().next().unwrap().len() as u64,
        data.len() as u64 + (data.len() as u64).div_ceil(cold::FRAME) * 8
    );
    assert_eq!(read_all(&f.layer, "bkt", "huge").await.unwrap(), data);
    let mib = 1024 * 1024;
    for (s, e) in [
        (4 * mib - 3, 4 * mib + 3),
        (5 * mib, 9 * mib + 1),
        (8 * mib + 7, data.len() as u64),
    ] {
        assert_eq!(
            range(&f.layer, "huge", s, e).await.unwrap(),
            data[s as usize..e as usize]
        );
    }
    // A damaged frame in the second request fails the read part-way: the
    // bytes before it are right, and nothing wrong follows.
    let r = f.layer.head_object("bkt", "huge", None).await.unwrap();
    store.objects.lock().unwrap().values_mut().next().unwrap()[6 * mib as usize] ^= 1;
    let mut s = r.stream_charged(0, data.len() as u64).await.unwrap();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(c) = s.next().await {
        match c {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed && got.len() < 6 * mib as usize && data.starts_with(&got));
}
