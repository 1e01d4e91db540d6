//! Object-layer tests over real local drives in temporary directories.

use super::*;
use crate::drive::local::LocalDrive;
use futures::StreamExt;

pub(super) struct Fixture {
    _dirs: Vec<tempfile::TempDir>,
    pub(super) paths: Vec<std::path::PathBuf>,
    pub(super) layer: Arc<ObjectLayer>,
}

pub(super) async fn fixture(n: usize, parity: usize, config: LayerConfig) -> Fixture {
    let dirs: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
    let paths: Vec<_> = dirs.iter().map(|d| d.path().to_path_buf()).collect();
    let layer = open(&paths, parity, config).await;
    Fixture {
        _dirs: dirs,
        paths,
        layer,
    }
}

pub(super) async fn open(
    paths: &[std::path::PathBuf],
    parity: usize,
    config: LayerConfig,
) -> Arc<ObjectLayer> {
    let drives: Vec<Option<Arc<dyn Drive>>> = paths
        .iter()
        .map(|p| Some(Arc::new(LocalDrive::open(p).unwrap()) as Arc<dyn Drive>))
        .collect();
    ObjectLayer::open("test-deployment", vec![drives], parity, config)
        .await
        .unwrap()
}

pub(super) fn body(data: Vec<u8>) -> ByteStream {
    // Deliver in uneven chunks, as a network would.
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(70_001)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

pub(super) fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(2_654_435_761)
                .rotate_left(u32::from(seed)) as u8
        })
        .collect()
}

pub(super) async fn read_all(layer: &ObjectLayer, bucket: &str, key: &str) -> ObjectResult<Vec<u8>> {
    let r = layer.head_object(bucket, key, None).await?;
    let size = r.version().size;
    let mut s = r.stream(0, size);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(ObjectError::Body)?);
    }
    Ok(out)
}

pub(super) fn small_blocks() -> LayerConfig {
    LayerConfig {
        block_size: 64 * 1024,
        inline_limit: 16 * 1024,
        ..Default::default()
    }
}

#[tokio::test]
async fn put_get_round_trips_inline_and_streamed_objects() {
    round_trips(small_blocks()).await;
}

/// The same with each upload hashing its own MD5 (what CPUs without the
/// hashing lanes do).
#[tokio::test]
async fn put_get_round_trips_with_md5_hashed_in_place() {
    round_trips(LayerConfig {
        md5_lanes: false,
        ..small_blocks()
    })
    .await;
}

async fn round_trips(config: LayerConfig) {
    let f = fixture(6, 2, config).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let lens = [
        0usize,
        1,
        100,
        16 * 1024,
        16 * 1024 + 1,
        64 * 1024,
        128 * 1024,
        1_000_003,
    ];
    // With the length declared (blocks taken at the body's size) and
    // without (a block learns it is the last only when the body ends).
    for (i, (len, declared)) in lens.into_iter().flat_map(|l| [(l, true), (l, false)]).enumerate() {
        let data = pattern(len, i as u8);
        let key = format!("k{len}-{declared}");
        let opts = PutOptions {
            size: declared.then_some(len as u64),
            ..Default::default()
        };
        let v = f
            .layer
            .put_object("bkt", &key, body(data.clone()), opts)
            .await
            .unwrap();
        assert_eq!(v.size, len as u64);
        assert_eq!(v.etag, hex::encode(<md5::Md5 as md5::Digest>::digest(&data)));
        assert_eq!(read_all(&f.layer, "bkt", &key).await.unwrap(), data, "len {len}");
    }
}

#[tokio::test]
async fn range_reads_return_exactly_the_range() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let data = pattern(300_000, 3);
    f.layer
        .put_object("bkt", "r", body(data.clone()), PutOptions::default())
        .await
        .unwrap();
    for (a, b) in [
        (0u64, 1u64),
        (65_535, 65_537),
        (100, 299_999),
        (299_999, 300_000),
        (131_072, 196_608),
    ] {
        let r = f.layer.head_object("bkt", "r", None).await.unwrap();
        let got: Vec<u8> = r
            .stream(a, b)
            .map(|c| c.unwrap().to_vec())
            .collect::<Vec<_>>()
            .await
            .concat();
        assert_eq!(got, &data[a as usize..b as usize]);
    }
    assert!(matches!(
        GetRange::From {
            first: 300_000,
            last: None
        }
        .resolve(300_000),
        Err(ObjectError::InvalidRange)
    ));
    assert_eq!(GetRange::Suffix(10).resolve(300_000).unwrap(), (299_990, 300_000));
}

/// Reads `[a, b)` of `bkt/key` through a fresh reader.
async fn read_range(layer: &ObjectLayer, key: &str, a: u64, b: u64) -> Vec<u8> {
    let r = layer.head_object("bkt", key, None).await.unwrap();
    r.stream(a, b)
        .map(|c| c.unwrap().to_vec())
        .collect::<Vec<_>>()
        .await
        .concat()
}

#[tokio::test]
async fn small_ranges_read_only_their_shards_and_survive_a_bad_one() {
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let data = pattern(1_000_000, 4);
    f.layer
        .put_object("bkt", "r", body(data.clone()), PutOptions::default())
        .await
        .unwrap();
    // Ranges inside one shard, across two shards of a block, to a block's
    // end, and the last short block (blocks of 64 KiB in 4 data shards).
    let ranges = [
        (0u64, 10u64),
        (16_380, 16_400),
        (20_000, 24_000),
        (40_000, 65_536),
        (65_536 * 3 + 5, 65_536 * 3 + 50_000),
        (999_000, 1_000_000),
    ];
    for (a, b) in ranges {
        assert_eq!(
            read_range(&f.layer, "r", a, b).await,
            &data[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    // A corrupt byte in every shard file of two drives: small reads that
    // meet a bad data shard fall back to the block read that rebuilds it.
    drop(f.layer);
    for p in &f.paths[..2] {
        for e in walk(&p.join("data")) {
            let mut b = std::fs::read(&e).unwrap();
            for at in (100..b.len()).step_by(4096) {
                b[at] ^= 0x5a;
            }
            std::fs::write(&e, b).unwrap();
        }
    }
    let layer = open(&f.paths, 2, small_blocks()).await;
    for (a, b) in ranges {
        assert_eq!(
            read_range(&layer, "r", a, b).await,
            &data[a as usize..b as usize],
            "{a}..{b} with bad shards"
        );
    }
}

#[tokio::test]
async fn reads_survive_m_lost_drives_and_corrupt_shards_then_heal_restores_redundancy() {
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let big = pattern(500_000, 1);
    let small = pattern(1000, 2);
    f.layer
        .put_object("bkt", "big", body(big.clone()), PutOptions::default())
        .await
        .unwrap();
    f.layer
        .put_object("bkt", "small", body(small.clone()), PutOptions::default())
        .await
        .unwrap();
    drop(f.layer);

    // Corrupt a byte in every shard file of one drive, wipe another drive.
    let data0 = f.paths[0].join("data");
    for e in walk(&data0) {
        let mut b = std::fs::read(&e).unwrap();
        let at = b.len() - 5;
        b[at] ^= 0xff;
        std::fs::write(&e, b).unwrap();
    }
    std::fs::remove_dir_all(&f.paths[1]).unwrap();
    std::fs::create_dir_all(&f.paths[1]).unwrap();

    let layer = open(&f.paths, 2, small_blocks()).await;
    layer.heal_buckets().await.unwrap();
    assert_eq!(read_all(&layer, "bkt", "big").await.unwrap(), big);
    assert_eq!(read_all(&layer, "bkt", "small").await.unwrap(), small);
    let report = layer.heal_all(None, 0.0, |_| {}).await.unwrap();
    assert!(report.repaired >= 3, "{report:?}");
    assert_eq!(report.failed, 0);
    drop(layer);

    // Full redundancy is back: lose two other drives and read everything.
    std::fs::remove_dir_all(&f.paths[4]).unwrap();
    std::fs::remove_dir_all(&f.paths[5]).unwrap();
    std::fs::create_dir_all(&f.paths[4]).unwrap();
    std::fs::create_dir_all(&f.paths[5]).unwrap();
    let layer = open(&f.paths, 2, small_blocks()).await;
    assert_eq!(read_all(&layer, "bkt", "big").await.unwrap(), big);
    assert_eq!(read_all(&layer, "bkt", "small").await.unwrap(), small);
}

/// Shard files on the fixture's drives.
pub(super) fn data_files(f: &Fixture) -> usize {
    f.paths
        .iter()
        .map(|p| {
            walk(p)
                .iter()
                .filter(|f| f.to_string_lossy().contains("/data/"))
                .count()
        })
        .sum()
}

pub(super) fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p))
        } else {
            out.push(p)
        }
    }
    out
}

#[tokio::test]
async fn listing_is_ordered_paged_and_folds_prefixes() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let keys = [
        "a/1",
        "a/2",
        "a/b/3",
        "b",
        "c/d",
        "c/e/f",
        "d//x",
        "../../etc/passwd",
        "z",
    ];
    for k in keys {
        f.layer
            .put_object("bkt", k, body(k.as_bytes().to_vec()), PutOptions::default())
            .await
            .unwrap();
    }
    let mut sorted: Vec<&str> = keys.to_vec();
    sorted.sort();
    // Pages of 2 without a delimiter return every key once, in order.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let p = f
            .layer
            .list_objects(
                "bkt",
                ListOptions {
                    start_after: after.clone(),
                    max_keys: 2,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        seen.extend(p.objects.iter().map(|o| o.key.clone()));
        if !p.truncated {
            break;
        }
        after = p.next_marker.unwrap();
    }
    assert_eq!(seen, sorted);
    let p = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.prefixes, vec!["../", "a/", "c/", "d/"]);
    assert_eq!(
        p.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["b", "z"]
    );
    let p = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                prefix: "a/".into(),
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.prefixes, vec!["a/b/"]);
    assert_eq!(
        p.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["a/1", "a/2"]
    );
    // Paging through prefixes resumes after the folded prefix.
    let p1 = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 2,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(p1.truncated);
    let p2 = f
        .layer
        .list_objects(
            "bkt",
            ListOptions {
                delimiter: Some("/".into()),
                max_keys: 2,
                start_after: p1.next_marker.unwrap(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p2.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(),
        vec!["b"]
    );
    assert_eq!(p2.prefixes, vec!["c/"]);
}

#[tokio::test]
async fn overwrite_and_delete_leave_no_data_behind() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    f.layer
        .put_object("bkt", "k", body(pattern(200_000, 1)), PutOptions::default())
        .await
        .unwrap();
    f.layer
        .put_object("bkt", "k", body(pattern(300_000, 2)), PutOptions::default())
        .await
        .unwrap();
    assert_eq!(read_all(&f.layer, "bkt", "k").await.unwrap(), pattern(300_000, 2));
    // The replaced version's data goes in the change's second step.
    f.layer.compact_queued().await;
    for p in &f.paths {
        assert_eq!(
            walk(&p.join("data")).len(),
            1,
            "one shard file per drive after overwrite"
        );
    }
    f.layer.delete_object("bkt", "k", None, false).await.unwrap();
    f.layer.compact_queued().await;
    assert!(matches!(
        read_all(&f.layer, "bkt", "k").await,
        Err(ObjectError::NoSuchKey)
    ));
    for p in &f.paths {
        assert!(walk(&p.join("data")).is_empty());
    }
    // The tombstone went too, after the entry it hid: no record is left.
    for d in f.layer.sets()[0].online_drives() {
        assert!(
            d.scan(crate::drive::Table::Objects, KeyRange::new(b"", b"\xff", 10))
                .unwrap()
                .is_empty()
        );
    }
    assert!(matches!(
        f.layer.delete_bucket("nope").await,
        Err(ObjectError::NoSuchBucket)
    ));
    f.layer.delete_bucket("bkt").await.unwrap();
}

#[tokio::test]
async fn multipart_assembles_parts_without_copying() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let id = f
        .layer
        .create_multipart("bkt", "mp", PutOptions::default())
        .await
        .unwrap();
    let p1 = pattern(5 << 20, 1);
    let p2 = pattern(1234, 2);
    let (e1, _) = f
        .layer
        .upload_part("bkt", "mp", &id, 1, body(p1.clone()), None, None, None, &NoKeys)
        .await
        .unwrap();
    let (e3, _) = f
        .layer
        .upload_part("bkt", "mp", &id, 3, body(p2.clone()), None, None, None, &NoKeys)
        .await
        .unwrap();
    let _unused = f
        .layer
        .upload_part(
            "bkt",
            "mp",
            &id,
            2,
            body(vec![1, 2, 3]),
            None,
            None,
            None,
            &NoKeys,
        )
        .await
        .unwrap();
    let (parts, _) = f.layer.list_parts("bkt", "mp", &id, 0, 1000).await.unwrap();
    assert_eq!(parts.iter().map(|p| p.number).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(f.layer.list_uploads("bkt", "", None, 10).await.unwrap().len(), 1);
    let bad = f
        .layer
        .complete_multipart(
            "bkt",
            "mp",
            &id,
            vec![
                CompletePart {
                    number: 3,
                    etag: e3.clone(),
                    checksum: None,
                },
                CompletePart {
                    number: 1,
                    etag: e1.clone(),
                    checksum: None,
                },
            ],
            &WriteCondition::default(),
            None,
        )
        .await;
    assert!(matches!(bad, Err(ObjectError::InvalidPartOrder)));
    let v = f
        .layer
        .complete_multipart(
            "bkt",
            "mp",
            &id,
            vec![
                CompletePart {
                    number: 1,
                    etag: format!("\"{e1}\""),
                    checksum: None,
                },
                CompletePart {
                    number: 3,
                    etag: e3,
                    checksum: None,
                },
            ],
            &WriteCondition::default(),
            None,
        )
        .await
        .unwrap();
    assert!(v.etag.ends_with("-2"));
    let mut expect = p1;
    expect.extend_from_slice(&p2);
    // The default full-object CRC64NVME, combined from the parts, is the
    // CRC64NVME of the whole object.
    let sum = v.extras.checksum.as_ref().expect("checksum");
    assert_eq!(
        sum.digest,
        crc_fast::checksum(crc_fast::CrcAlgorithm::Crc64Nvme, &expect).to_be_bytes()
    );
    assert_eq!(read_all(&f.layer, "bkt", "mp").await.unwrap(), expect);
    assert!(
        f.layer
            .list_uploads("bkt", "", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    for p in &f.paths {
        assert_eq!(walk(&p.join("data")).len(), 2, "the unused part's file is gone");
    }
    // The completion asked again (its answer lost) answers the same
    // version, while it is the key's; an unknown upload stays unknown.
    let again = f
        .layer
        .complete_multipart("bkt", "mp", &id, vec![], &WriteCondition::default(), None)
        .await
        .unwrap();
    assert_eq!((again.id, again.etag.clone()), (v.id, v.etag.clone()));
    let other = hex::encode([7u8; 16]);
    let gone = f
        .layer
        .complete_multipart("bkt", "mp", &other, vec![], &WriteCondition::default(), None)
        .await;
    assert!(matches!(gone, Err(ObjectError::NoSuchUpload)), "{gone:?}");
}

#[tokio::test]
async fn writes_need_write_quorum_and_roll_back() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut drives: Vec<Option<Arc<dyn Drive>>> = dirs
        .iter()
        .map(|d| Some(Arc::new(LocalDrive::open(d.path()).unwrap()) as Arc<dyn Drive>))
        .collect();
    drives[0] = None;
    // 2+2: write quorum is 3 of 4; with one drive offline writes still work.
    let layer = ObjectLayer::open("d", vec![drives.clone()], 2, small_blocks())
        .await
        .unwrap();
    layer.make_bucket("bkt").await.unwrap();
    layer
        .put_object("bkt", "k", body(pattern(100_000, 1)), PutOptions::default())
        .await
        .unwrap();
    drives[1] = None;
    let layer = ObjectLayer::open("d", vec![drives], 2, small_blocks())
        .await
        .unwrap();
    let r = layer
        .put_object("bkt", "k2", body(pattern(100_000, 1)), PutOptions::default())
        .await;
    assert!(matches!(r, Err(ObjectError::WriteQuorum { .. })), "{r:?}");
    // Nothing of the failed write is left on the drives that took it.
    for d in &dirs[2..] {
        assert_eq!(walk(&d.path().join("data")).len(), 1);
    }
    // Reads still work with two of four drives (read quorum 2).
    assert_eq!(read_all(&layer, "bkt", "k").await.unwrap(), pattern(100_000, 1));
}

#[tokio::test]
async fn bad_digest_and_short_body_store_nothing() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let opts = PutOptions {
        content_md5: Some([0; 16]),
        ..Default::default()
    };
    assert!(matches!(
        f.layer
            .put_object("bkt", "k", body(pattern(200_000, 1)), opts)
            .await,
        Err(ObjectError::BadDigest)
    ));
    let opts = PutOptions {
        size: Some(300_000),
        ..Default::default()
    };
    assert!(matches!(
        f.layer
            .put_object("bkt", "k", body(pattern(200_000, 1)), opts)
            .await,
        Err(ObjectError::IncompleteBody)
    ));
    assert!(matches!(
        f.layer.head_object("bkt", "k", None).await,
        Err(ObjectError::NoSuchKey)
    ));
    for p in &f.paths {
        assert!(walk(&p.join("data")).is_empty());
    }
    let long = "x".repeat(1025);
    assert!(matches!(
        f.layer
            .put_object("bkt", &long, body(vec![]), PutOptions::default())
            .await,
        Err(ObjectError::KeyTooLong)
    ));
}

/// Reports a full disk once a budget of shard bytes is spent, as a
/// filling disk would.
#[derive(Debug)]
struct Filling(std::sync::atomic::AtomicI64);

impl crate::drive::fault::Faults for Filling {
    fn on(&self, _: usize, _: u64, event: crate::drive::fault::Event) -> crate::drive::fault::Action {
        use crate::drive::fault::{Action, Event};
        match event {
            Event::Write(n) if self.0.fetch_sub(n as i64, std::sync::atomic::Ordering::SeqCst) < n as i64 => {
                Action::Fail(crate::drive::DriveError::Full)
            }
            _ => Action::Proceed,
        }
    }
}

#[tokio::test]
async fn a_full_disk_fails_the_write_cleanly_and_keeps_older_objects() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let budget: Arc<dyn crate::drive::fault::Faults> = Arc::new(Filling(600_000.into()));
    let drives: Vec<Option<Arc<dyn Drive>>> = dirs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let local: Arc<dyn Drive> = Arc::new(LocalDrive::open(d.path()).unwrap());
            Some(Arc::new(crate::drive::fault::FaultDrive::new(
                local,
                i,
                Arc::clone(&budget),
            )) as Arc<dyn Drive>)
        })
        .collect();
    let layer = ObjectLayer::open("full", vec![drives], 2, small_blocks())
        .await
        .unwrap();
    layer.make_bucket("bkt").await.unwrap();
    layer
        .put_object("bkt", "old", body(pattern(200_000, 1)), PutOptions::default())
        .await
        .unwrap();
    // The next object does not fit: every drive reports a full disk.
    let r = layer
        .put_object("bkt", "big", body(pattern(2_000_000, 2)), PutOptions::default())
        .await;
    assert!(matches!(r, Err(ObjectError::DiskFull)), "{r:?}");
    assert!(matches!(
        layer.head_object("bkt", "big", None).await,
        Err(ObjectError::NoSuchKey)
    ));
    assert_eq!(read_all(&layer, "bkt", "old").await.unwrap(), pattern(200_000, 1));
    for d in &dirs {
        assert_eq!(
            walk(&d.path().join("data")).len(),
            1,
            "only the old object's shard file remains"
        );
    }
    // Small objects still fit in the metadata.
    layer
        .put_object("bkt", "small", body(vec![1, 2, 3]), PutOptions::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn corrupt_metadata_fails_only_that_object_and_heals_when_a_quorum_is_intact() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    for k in ["a", "b"] {
        f.layer
            .put_object("bkt", k, body(pattern(100_000, 3)), PutOptions::default())
            .await
            .unwrap();
    }
    let garbage = |d: &Arc<dyn Drive>, key: &str| {
        let op = crate::drive::RecordOp::Put {
            table: crate::drive::Table::Objects,
            key: crate::drive::object_key("bkt", key),
            value: b"STOM\x01\x00not a record".to_vec(),
        };
        d.commit(vec![op]).unwrap();
    };
    let drives: Vec<Arc<dyn Drive>> = f.layer.sets()[0].online_drives();
    // "a": garbage on every drive: that object errors, the rest is served.
    for d in &drives {
        garbage(d, "a");
    }
    assert!(read_all(&f.layer, "bkt", "a").await.is_err());
    assert_eq!(read_all(&f.layer, "bkt", "b").await.unwrap(), pattern(100_000, 3));
    // "b": garbage on two of four drives (2+2, read quorum 2): still read,
    // and a heal rewrites the bad records.
    garbage(&drives[0], "b");
    garbage(&drives[3], "b");
    assert_eq!(read_all(&f.layer, "bkt", "b").await.unwrap(), pattern(100_000, 3));
    let set = Arc::clone(f.layer.set_for("bkt", "b"));
    let r = set.heal_object("bkt", "b", true).await.unwrap();
    assert_eq!(r.repaired, 2, "{r:?}");
    for d in &drives {
        let raw = d
            .get(
                crate::drive::Table::Objects,
                &crate::drive::object_key("bkt", "b"),
            )
            .unwrap()
            .unwrap();
        assert!(crate::meta::ObjectRecord::decode(&raw).is_ok());
    }
}

#[test]
fn many_concurrent_uploads_do_not_exhaust_the_blocking_pool() {
    // Regression: shard writers once held a blocking thread for the life of
    // an upload, so more concurrent uploads than threads / drives hung the
    // server. Eight slow uploads over four drives with eight blocking threads.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(8)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let f = fixture(4, 2, small_blocks()).await;
        f.layer.make_bucket("bkt").await.unwrap();
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let layer = Arc::clone(&f.layer);
                tokio::spawn(async move {
                    let data = pattern(400_000, i);
                    let chunks: Vec<Bytes> = data.chunks(50_000).map(Bytes::copy_from_slice).collect();
                    let slow = futures::stream::iter(chunks).then(|c| async move {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        Ok::<_, std::io::Error>(c)
                    });
                    layer
                        .put_object("bkt", &format!("k{i}"), Box::pin(slow), PutOptions::default())
                        .await
                        .unwrap();
                    data
                })
            })
            .collect();
        let done = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            futures::future::join_all(tasks),
        )
        .await
        .expect("uploads finished");
        for (i, d) in done.into_iter().enumerate() {
            assert_eq!(
                read_all(&f.layer, "bkt", &format!("k{i}")).await.unwrap(),
                d.unwrap()
            );
        }
    });
}

/// What S3 says a full listing (all pages joined) holds: objects and
/// common prefixes, in order.
fn reference_listing(
    keys: &std::collections::BTreeSet<String>,
    prefix: &str,
    delim: Option<&str>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for k in keys.iter().filter(|k| k.starts_with(prefix)) {
        let entry = match delim.and_then(|d| k[prefix.len()..].find(d).map(|i| (i, d))) {
            Some((i, d)) => format!("P:{}", &k[..prefix.len() + i + d.len()]),
            None => format!("O:{k}"),
        };
        if out.last() != Some(&entry) {
            out.push(entry);
        }
    }
    out
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
    /// Listing through pages of any size, with any prefix and delimiter,
    /// returns exactly what S3's definition says, in order.
    #[test]
    fn listing_matches_the_reference_model(
        keys in proptest::collection::btree_set("[ab/]{1,6}", 1..50),
        prefix in "[ab/]{0,2}",
        delim in proptest::option::of(proptest::sample::select(vec!["/", "a", "b/"])),
        page in 1usize..7,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let f = fixture(4, 2, small_blocks()).await;
            f.layer.make_bucket("bkt").await.unwrap();
            for k in &keys {
                f.layer.put_object("bkt", k, body(vec![1]), PutOptions::default()).await.unwrap();
            }
            let mut got = Vec::new();
            let mut after = String::new();
            for _ in 0..1000 {
                let opts = ListOptions {
                    prefix: prefix.clone(),
                    delimiter: delim.map(str::to_owned),
                    start_after: after.clone(),
                    max_keys: page,
                    ..Default::default()
                };
                let p = f.layer.list_objects("bkt", opts).await.unwrap();
                assert!(p.objects.len() + p.prefixes.len() <= page);
                let mut entries: Vec<String> = p.objects.iter().map(|o| format!("O:{}", o.key)).collect();
                entries.extend(p.prefixes.iter().map(|c| format!("P:{c}")));
                entries.sort_by(|a, b| a[2..].cmp(&b[2..]));
                got.extend(entries);
                if !p.truncated {
                    break;
                }
                after = p.next_marker.unwrap();
            }
            assert_eq!(got, reference_listing(&keys, &prefix, delim));
        });
    }
}

#[tokio::test(start_paused = true)]
async fn the_scanner_repairs_on_its_interval_and_sleeps_in_between() {
    // The clock is paused and jumps ahead whenever the runtime waits (on a
    // drive, too): no drive timeout here.
    let config = LayerConfig {
        drive_timeout: None,
        ..small_blocks()
    };
    let f = fixture(4, 2, config).await;
    f.layer.make_bucket("bkt").await.unwrap();
    f.layer
        .put_object("bkt", "k", body(pattern(200_000, 1)), PutOptions::default())
        .await
        .unwrap();
    let file = walk(&f.paths[0].join("data")).pop().unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    let at = bad.len() - 3;
    bad[at] ^= 0x40;
    std::fs::write(&file, &bad).unwrap();
    f.layer.start_scanner(std::time::Duration::from_secs(86_400), 0.0);
    // A (virtual) day minus a bit: the scanner has only slept.
    tokio::time::sleep(std::time::Duration::from_secs(86_000)).await;
    assert_eq!(std::fs::read(&file).unwrap(), bad);
    // Past the interval, a pass verifies every shard and rewrites the bad one.
    tokio::time::sleep(std::time::Duration::from_secs(500)).await;
    let mut repaired = false;
    for _ in 0..200 {
        if std::fs::read(&file).unwrap() == good {
            repaired = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(repaired, "the scanner did not repair the corrupt shard");
}

#[tokio::test]
async fn a_bucket_deleted_while_a_drive_was_offline_stays_deleted() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("gone").await.unwrap();
    f.layer.make_bucket("kept").await.unwrap();
    let drives: Vec<Option<Arc<dyn Drive>>> = f.layer.sets()[0].drives().to_vec();
    let mut without_first = drives.clone();
    without_first[0] = None;
    let partial = ObjectLayer::open("test-deployment", vec![without_first], 2, small_blocks())
        .await
        .unwrap();
    partial.delete_bucket("gone").await.unwrap();
    // All drives back: the stale record on drive 0 does not resurrect it.
    let layer = ObjectLayer::open("test-deployment", vec![drives.clone()], 2, small_blocks())
        .await
        .unwrap();
    assert!(matches!(layer.bucket("gone"), Err(ObjectError::NoSuchBucket)));
    assert!(layer.bucket("kept").is_ok());
    layer.heal_buckets().await.unwrap();
    let d0 = drives[0].clone().unwrap();
    assert_eq!(d0.get(crate::drive::Table::Buckets, b"gone").unwrap(), None);
    assert!(d0.get(crate::drive::Table::Buckets, b"kept").unwrap().is_some());
}
