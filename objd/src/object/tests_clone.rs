//! Clones over real local drives: shared files, independence from later
//! writes on either side, usage, heal of a clone, several sets.

use super::tests::{body, fixture, open, pattern, read_all, small_blocks, walk};
use super::*;
use crate::drive::local::LocalDrive;
use std::os::unix::fs::MetadataExt;

async fn put(layer: &ObjectLayer, bucket: &str, key: &str, data: Vec<u8>) {
    let opts = PutOptions {
        headers: vec![("content-type".into(), "text/x-test".into())],
        user_meta: vec![("mode".into(), "33188".into())],
        ..Default::default()
    };
    layer.put_object(bucket, key, body(data), opts).await.unwrap();
}

async fn clone(layer: &ObjectLayer, src: (&str, &str), dst: (&str, &str)) -> ObjectResult<CloneReport> {
    layer.clone_prefix(src, dst, Arc::new(NoKeys), |_| {}).await
}

#[tokio::test]
async fn a_clone_shares_files_and_later_writes_change_neither_side() {
    let f = fixture(6, 2, small_blocks()).await;
    let l = &f.layer;
    l.make_bucket("src").await.unwrap();
    l.make_bucket("dst").await.unwrap();
    let keys: Vec<String> = (0..12).map(|i| format!("vol/d{}/f{i}", i % 3)).collect();
    for (i, k) in keys.iter().enumerate() {
        // Streamed (files) and inline objects.
        let len = if i % 2 == 0 { 200_000 + i * 1000 } else { 500 + i };
        put(l, "src", k, pattern(len, i as u8)).await;
    }
    put(l, "src", "other/outside", pattern(100_000, 99)).await;
    // The directory marker of the prefix itself.
    put(l, "src", "vol/", vec![]).await;
    let before: u64 = keys
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if i % 2 == 0 {
                200_000 + i as u64 * 1000
            } else {
                500 + i as u64
            }
        })
        .sum();

    let r = clone(l, ("src", "vol/"), ("dst", "copy/")).await.unwrap();
    assert_eq!(r.objects, 13);
    assert_eq!(r.linked, 13);
    assert_eq!(r.copied, 0);
    assert_eq!(r.bytes, before);
    assert_eq!(l.usage("dst").unwrap().bytes, before);
    assert_eq!(l.usage("dst").unwrap().versions, 13);
    assert_eq!(read_all(l, "dst", "copy/").await.unwrap(), Vec::<u8>::new());
    // Under an empty target prefix the marker has no name and stays out.
    l.make_bucket("whole").await.unwrap();
    let r = clone(l, ("src", "vol/"), ("whole", "")).await.unwrap();
    assert_eq!(r.objects, 12);
    assert_eq!(read_all(l, "whole", "d2/f5").await.unwrap(), pattern(505, 5));

    // No bytes were copied: each of the 6 streamed objects has one shard
    // file per drive, and each now has three names (two clones).
    let mut shared = 0;
    for p in &f.paths {
        for file in walk(&p.join("data")) {
            if std::fs::metadata(&file).unwrap().nlink() == 3 {
                shared += 1;
            }
        }
    }
    assert_eq!(
        shared,
        3 * 6 * 6,
        "each streamed object's 6 shard files have three names"
    );

    for (i, k) in keys.iter().enumerate() {
        let to = format!("copy/{}", &k["vol/".len()..]);
        let len = if i % 2 == 0 { 200_000 + i * 1000 } else { 500 + i };
        assert_eq!(
            read_all(l, "dst", &to).await.unwrap(),
            pattern(len, i as u8),
            "{to}"
        );
        let a = l.head_object("src", k, None).await.unwrap();
        let b = l.head_object("dst", &to, None).await.unwrap();
        assert_eq!(a.version().etag, b.version().etag);
        assert_eq!(a.version().mod_time_ns, b.version().mod_time_ns);
        assert_eq!(b.version().header("content-type"), Some("text/x-test"));
        assert_eq!(
            b.version().user_meta,
            vec![("mode".to_owned(), "33188".to_owned())]
        );
    }
    assert!(matches!(
        read_all(l, "dst", "copy/outside").await,
        Err(ObjectError::NoSuchKey)
    ));

    // Overwrite and delete on the origin; the clone keeps what it had.
    put(l, "src", &keys[0], pattern(300_000, 200)).await;
    l.delete_object("src", &keys[2], None, false).await.unwrap();
    // And the other way round.
    l.delete_object("dst", "copy/d1/f1", None, false).await.unwrap();
    put(l, "dst", "copy/d0/f3", pattern(7, 7)).await;
    l.compact_queued().await;
    // An orphan sweep finds nothing to take from either side.
    let swept = l.sweep_orphans(std::time::SystemTime::now()).await;
    assert_eq!(swept.dirs, 0, "{swept:?}");
    assert_eq!(
        read_all(l, "dst", "copy/d0/f0").await.unwrap(),
        pattern(200_000, 0)
    );
    assert_eq!(
        read_all(l, "dst", "copy/d2/f2").await.unwrap(),
        pattern(202_000, 2)
    );
    assert_eq!(read_all(l, "src", &keys[0]).await.unwrap(), pattern(300_000, 200));
    assert_eq!(read_all(l, "src", &keys[1]).await.unwrap(), pattern(501, 1));
    assert_eq!(read_all(l, "src", &keys[3]).await.unwrap(), pattern(503, 3));

    // Within one bucket, prefixes that overlap are refused; missing
    // buckets are what they are.
    for (s, d) in [("vol/", "vol/x/"), ("vol/", ""), ("", "snap/")] {
        assert!(matches!(
            clone(l, ("src", s), ("src", d)).await,
            Err(ObjectError::InvalidRequest(_))
        ));
    }
    assert!(matches!(
        clone(l, ("src", "vol/"), ("nope", "")).await,
        Err(ObjectError::NoSuchBucket)
    ));
    // Into the same bucket, beside the origin.
    let r = clone(l, ("src", "vol/d0/"), ("src", "snap/")).await.unwrap();
    assert_eq!(r.objects, 4);
    assert_eq!(read_all(l, "src", "snap/f6").await.unwrap(), pattern(206_000, 6));
}

#[tokio::test]
async fn a_clone_is_healed_to_full_redundancy_whatever_its_shard_order() {
    // The clone's shards keep their origin's order over the drives, which
    // is not the order of their new names: heal must rebuild the shard
    // that is missing, not the one its name would have put there.
    let f = fixture(6, 2, small_blocks()).await;
    let l = &f.layer;
    l.make_bucket("src").await.unwrap();
    l.make_bucket("dst").await.unwrap();
    for i in 0..8 {
        put(l, "src", &format!("k{i}"), pattern(150_000, i)).await;
    }
    clone(l, ("src", ""), ("dst", "")).await.unwrap();
    for i in 0..8 {
        l.delete_object("src", &format!("k{i}"), None, false)
            .await
            .unwrap();
    }
    l.compact_queued().await;
    let paths = f.paths.clone();
    drop(f.layer);
    std::fs::remove_dir_all(&paths[1]).unwrap();
    std::fs::create_dir_all(&paths[1]).unwrap();
    let layer = open(&paths, 2, small_blocks()).await;
    layer.heal_buckets().await.unwrap();
    let report = layer.heal_all(None, 0.0, |_| {}).await.unwrap();
    assert_eq!(report.failed, 0, "{report:?}");
    drop(layer);
    // Two more drives lost: every clone still reads, so the healed drive
    // holds the shards that were missing.
    for p in [&paths[4], &paths[5]] {
        std::fs::remove_dir_all(p).unwrap();
        std::fs::create_dir_all(p).unwrap();
    }
    let layer = open(&paths, 2, small_blocks()).await;
    for i in 0..8 {
        assert_eq!(
            read_all(&layer, "dst", &format!("k{i}")).await.unwrap(),
            pattern(150_000, i),
            "k{i}"
        );
    }
}

#[tokio::test]
async fn names_in_another_set_are_copied() {
    let dirs: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let drives = |r: std::ops::Range<usize>| -> Vec<Option<Arc<dyn Drive>>> {
        dirs[r]
            .iter()
            .map(|d| Some(Arc::new(LocalDrive::open(d.path()).unwrap()) as Arc<dyn Drive>))
            .collect()
    };
    let l = ObjectLayer::open(
        "test-deployment",
        vec![drives(0..4), drives(4..8)],
        2,
        small_blocks(),
    )
    .await
    .unwrap();
    l.make_bucket("src").await.unwrap();
    l.make_bucket("dst").await.unwrap();
    for i in 0..20 {
        put(&l, "src", &format!("k{i}"), pattern(100_000 + i, i as u8)).await;
    }
    let r = clone(&l, ("src", ""), ("dst", "c/")).await.unwrap();
    assert_eq!(r.objects, 20);
    assert_eq!(r.linked + r.copied, 20);
    assert!(r.linked > 0 && r.copied > 0, "{r:?}");
    for i in 0..20 {
        let k = format!("k{i}");
        assert_eq!(
            read_all(&l, "dst", &format!("c/{k}")).await.unwrap(),
            pattern(100_000 + i, i as u8)
        );
        let a = l.head_object("src", &k, None).await.unwrap();
        let b = l.head_object("dst", &format!("c/{k}"), None).await.unwrap();
        assert_eq!(a.version().etag, b.version().etag);
        assert_eq!(b.version().user_meta, a.version().user_meta);
    }
    assert_eq!(l.usage("dst").unwrap().bytes, l.usage("src").unwrap().bytes);
}

#[tokio::test]
async fn a_clone_respects_the_targets_quota() {
    let f = fixture(4, 2, small_blocks()).await;
    let l = &f.layer;
    l.make_bucket("src").await.unwrap();
    l.make_bucket("dst").await.unwrap();
    for i in 0..4 {
        put(l, "src", &format!("k{i}"), pattern(100_000, i)).await;
    }
    l.set_quota("dst", Some(250_000)).await.unwrap();
    assert!(matches!(
        clone(l, ("src", ""), ("dst", "")).await,
        Err(ObjectError::QuotaExceeded { .. })
    ));
    assert!(l.usage("dst").unwrap().bytes <= 250_000);
    l.set_quota("dst", Some(400_000)).await.unwrap();
    // Run again: what the first run cloned is replaced, not counted twice.
    let r = clone(l, ("src", ""), ("dst", "")).await.unwrap();
    assert_eq!(r.objects, 4);
    assert_eq!(l.usage("dst").unwrap().bytes, 400_000);
}

#[tokio::test]
async fn a_clone_of_more_keys_than_a_batch_takes_every_one_once() {
    let f = fixture(4, 2, small_blocks()).await;
    let l = &f.layer;
    l.make_bucket("src").await.unwrap();
    l.make_bucket("dst").await.unwrap();
    // Past a batch of staged keys and a listing page: inline and in files.
    let n = 1100;
    for i in 0..n {
        let len = if i % 100 == 0 { 40_000 } else { 100 + i % 7 };
        put(l, "src", &format!("k{i:05}"), pattern(len, (i % 251) as u8)).await;
    }
    let r = clone(l, ("src", ""), ("dst", "c/")).await.unwrap();
    assert_eq!(r.objects, n as u64);
    assert_eq!(l.usage("dst").unwrap(), l.usage("src").unwrap());
    for i in (0..n).step_by(97).chain([n - 1]) {
        let len = if i % 100 == 0 { 40_000 } else { 100 + i % 7 };
        assert_eq!(
            read_all(l, "dst", &format!("c/k{i:05}")).await.unwrap(),
            pattern(len, (i % 251) as u8)
        );
    }
    let listed = l
        .list_objects(
            "dst",
            ListOptions {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(listed.truncated && listed.objects.len() == 1000);
}
