use super::*;
use proptest::prelude::*;

fn sample() -> ObjectRecord {
    ObjectRecord {
        versions: vec![
            Version {
                id: VersionId([7; 16]),
                mod_time_ns: 1_700_000_000_123_456_789,
                stamp: 1_700_000_000_123_456_789,
                kind: VersionKind::Object,
                size: 5_000_000,
                etag: "0123456789abcdef0123456789abcdef-2".into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                user_meta: vec![("mode".into(), "33188".into())],
                erasure: ErasureInfo {
                    data: 4,
                    parity: 2,
                    shard_index: 5,
                    hash_algo: 1,
                    block_size: 1 << 20,
                },
                parts: vec![
                    PartInfo {
                        number: 1,
                        size: 4_000_000,
                        etag: "aa".into(),
                        tag: 0,
                    },
                    PartInfo {
                        number: 2,
                        size: 1_000_000,
                        etag: "bb".into(),
                        tag: 0,
                    },
                ],
                data: DataLoc::Dir([9; 16]),
                extras: Extras::default(),
            },
            Version {
                id: VersionId::NULL,
                mod_time_ns: 1_600_000_000_000_000_000,
                stamp: 1_600_000_000_000_000_000,
                kind: VersionKind::DeleteMarker,
                size: 0,
                etag: String::new(),
                headers: vec![],
                user_meta: vec![],
                erasure: ErasureInfo {
                    data: 4,
                    parity: 2,
                    shard_index: 0,
                    hash_algo: 1,
                    block_size: 1 << 20,
                },
                parts: vec![],
                data: DataLoc::None,
                extras: Extras::default(),
            },
            Version {
                id: VersionId([1; 16]),
                mod_time_ns: 1_500_000_000_000_000_000,
                stamp: 1_500_000_000_000_000_000,
                kind: VersionKind::Object,
                size: 3,
                etag: "ee".into(),
                headers: vec![],
                user_meta: vec![],
                erasure: ErasureInfo {
                    data: 4,
                    parity: 2,
                    shard_index: 1,
                    hash_algo: 1,
                    block_size: 1 << 20,
                },
                parts: vec![PartInfo {
                    number: 1,
                    size: 3,
                    etag: "ee".into(),
                    tag: 0,
                }],
                data: DataLoc::Inline(vec![1, 2, 3, 4]),
                extras: Extras::default(),
            },
        ],
    }
}

/// The sample as format version 2 writes it: tags, and an extension of a
/// newer format that must survive a rewrite.
fn sample_v2() -> ObjectRecord {
    let mut r = sample();
    r.versions[0].extras.tags = vec![("team".into(), "storage".into()), ("tier".into(), "hot".into())];
    r.versions[0].extras.checksum = Some(ChecksumRecord {
        algo: 3,
        kind: 1,
        digest: vec![0xAE, 0x8B, 0x14, 0x86, 0x0A, 0x79, 0x98, 0x88],
        parts: 0,
    });
    r.versions[0].extras.retention = Some((2, 1_900_000_000_000_000_000));
    r.versions[0].extras.legal_hold = true;
    r.versions[2].extras.unknown = vec![(900, vec![1, 2, 3])];
    r
}

/// The sample as format version 3 writes it: the version-2 sample with a
/// metadata change of its first version (a newer entry of the same id that
/// shares the data) and a tombstone of its last one, both kept until the
/// change is settled.
fn sample_v3() -> ObjectRecord {
    let mut r = sample_v2();
    let mut changed = r.versions[0].clone();
    changed.stamp += 5_000;
    changed.extras.tags = vec![("tier".into(), "cold".into())];
    changed.parts[1].tag = 0x0123_4567_89ab_cdef;
    let erasure = r.versions[2].erasure;
    r.add(changed);
    r.add(Version::tombstone(
        VersionId([1; 16]),
        1_800_000_000_000_000_000,
        erasure,
    ));
    r
}

/// The sample as format version 4 writes it: the version-3 sample whose
/// newest object version is encrypted (SSE-KMS with a context).
fn sample_v4() -> ObjectRecord {
    let mut r = sample_v3();
    let first = r
        .versions
        .iter_mut()
        .find(|v| v.kind == VersionKind::Object)
        .unwrap();
    first.extras.encryption = Some(sample_encryption());
    r
}

fn sample_encryption() -> EncryptionRecord {
    EncryptionRecord {
        mode: 2,
        algo: 1,
        package: 65536,
        key_id: "tenant-a/app".into(),
        sealed_key: (0..64).collect(),
        context: r#"{"team":"storage"}"#.into(),
        bucket_key: true,
        bound: None,
    }
}

const FIXTURE_V1: &[u8] = include_bytes!("../../tests/fixtures/object-record-v1.bin");
const FIXTURE_V2: &[u8] = include_bytes!("../../tests/fixtures/object-record-v2.bin");
const FIXTURE_V3: &[u8] = include_bytes!("../../tests/fixtures/object-record-v3.bin");
const FIXTURE_V4: &[u8] = include_bytes!("../../tests/fixtures/object-record-v4.bin");

#[test]
fn version_4_fixture_decodes_encryption() {
    let r = ObjectRecord::decode(FIXTURE_V4).unwrap();
    assert_eq!(r, sample_v4());
    assert_eq!(r.encode(), FIXTURE_V4);
    assert_eq!(
        u16::from_le_bytes([FIXTURE_V4[4], FIXTURE_V4[5]]),
        FORMAT_VERSION_4
    );
    // Without an encrypted version a record is still written as version 3,
    // which older builds read.
    let mut plain = r.clone();
    for v in &mut plain.versions {
        v.extras.encryption = None;
    }
    assert_eq!(plain.encode(), FIXTURE_V3);
    // The encryption extension in a version-3 record is refused.
    let mut bytes = r.encode();
    bytes.truncate(bytes.len() - 4);
    bytes[4] = 3;
    let mut w = codec::Writer { buf: bytes };
    codec::seal(&mut w);
    assert!(matches!(
        ObjectRecord::decode(&w.buf),
        Err(DecodeError::Invalid(_))
    ));
}

#[test]
fn a_clone_keeps_the_name_its_data_key_is_bound_to() {
    let mut r = sample_v4();
    let e = r.versions[1].extras.encryption.as_mut().unwrap();
    assert_eq!(e.bound_name("b", "k"), ("b", "k"));
    e.bound = Some(("origin".into(), "dir/file".into()));
    let back = ObjectRecord::decode(&r.encode()).unwrap();
    assert_eq!(back, r);
    let e = back.versions[1].extras.encryption.as_ref().unwrap();
    assert_eq!(e.bound_name("b", "k"), ("origin", "dir/file"));
    // A bound name without encryption is refused, not taken for data.
    let mut plain = r.clone();
    plain.versions[1].extras.encryption = None;
    plain.versions[1].extras.unknown.push((ext::BOUND_NAME, {
        let mut t = codec::Writer::default();
        t.str("origin");
        t.str("k");
        t.buf
    }));
    let mut bytes = plain.encode();
    // Written as version 3 without encryption; claim version 4 so only
    // the missing encryption extension is wrong.
    bytes.truncate(bytes.len() - 4);
    bytes[4] = 4;
    let mut w = codec::Writer { buf: bytes };
    codec::seal(&mut w);
    assert!(matches!(
        ObjectRecord::decode(&w.buf),
        Err(DecodeError::Invalid(_))
    ));
}

#[test]
fn encryption_records_are_checked() {
    let mut r = sample_v4();
    let e = r.versions[1].extras.encryption.as_mut().unwrap();
    e.package = 28;
    assert!(ObjectRecord::decode(&r.encode()).is_err());
    let mut r = sample_v4();
    r.versions[1].extras.encryption.as_mut().unwrap().mode = 9;
    assert!(ObjectRecord::decode(&r.encode()).is_err());
    assert!(!format!("{:?}", sample_encryption()).contains("sealed_key"));
}

#[test]
fn version_1_fixture_still_decodes() {
    assert_eq!(ObjectRecord::decode(FIXTURE_V1).unwrap(), sample());
}

#[test]
fn version_2_fixture_decodes_and_keeps_unknown_extensions() {
    let r = ObjectRecord::decode(FIXTURE_V2).unwrap();
    assert_eq!(r, sample_v2());
    // Every entry's stamp is its modification time; rewritten as version 3.
    assert!(r.versions.iter().all(|v| v.stamp == v.mod_time_ns));
    assert_eq!(ObjectRecord::decode(&r.encode()).unwrap(), r);
}

#[test]
fn version_3_fixture_decodes_stamps_and_tombstones() {
    let r = ObjectRecord::decode(FIXTURE_V3).unwrap();
    assert_eq!(r, sample_v3());
    assert_eq!(r.encode(), FIXTURE_V3);
    let stamps: Vec<i64> = r.versions.iter().map(|v| v.stamp).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "newest stamp first");
    assert!(r.versions[0].is_tombstone());
    // A tombstone in a version-2 record is refused, not misread.
    let mut bytes = r.encode();
    bytes.truncate(bytes.len() - 4);
    bytes[4] = 2;
    let mut w = codec::Writer { buf: bytes };
    codec::seal(&mut w);
    assert!(matches!(
        ObjectRecord::decode(&w.buf),
        Err(DecodeError::Invalid(_) | DecodeError::Truncated)
    ));
}

#[test]
#[ignore = "writes the current fixture; run by hand only when adding a format version"]
fn write_fixture() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/object-record-v4.bin");
    std::fs::write(path, sample_v4().encode()).unwrap();
}

#[test]
fn bucket_records_round_trip_and_version_1_decodes() {
    let mut b = BucketRecord {
        created_ns: 17,
        versioning: Versioning::Suspended,
        ..Default::default()
    };
    b.settings.insert("tagging".into(), b"x".to_vec());
    assert_eq!(BucketRecord::decode(&b.encode()).unwrap(), b);
    // Version 1 layout: magic, version, created, versioning, seal.
    let mut w = codec::Writer::default();
    w.raw(&BUCKET_MAGIC);
    w.u16(1);
    w.i64(17);
    w.u8(1);
    codec::seal(&mut w);
    let v1 = BucketRecord::decode(&w.buf).unwrap();
    assert_eq!(v1.versioning, Versioning::Enabled);
    assert!(v1.settings.is_empty());
    // A version from the future is refused, not misread.
    let mut w = codec::Writer::default();
    w.raw(&BUCKET_MAGIC);
    w.u16(3);
    codec::seal(&mut w);
    assert_eq!(BucketRecord::decode(&w.buf), Err(DecodeError::Version(3)));
}

#[test]
fn corruption_is_detected() {
    let mut b = sample().encode();
    let mid = b.len() / 2;
    b[mid] ^= 1;
    assert_eq!(ObjectRecord::decode(&b), Err(DecodeError::Checksum));
    assert_eq!(ObjectRecord::decode(&b[..3]), Err(DecodeError::Truncated));
}

#[test]
fn entries_are_kept_newest_stamp_first_and_never_replaced() {
    let mut r = sample();
    let mut v = r.versions[2].clone();
    v.mod_time_ns = 1_800_000_000_000_000_000;
    v.stamp = v.mod_time_ns;
    r.add(v.clone());
    assert_eq!(r.versions.len(), 4);
    assert_eq!(r.versions[0], v);
    assert_eq!(r.versions[3].id, v.id, "the older entry of the id stays");
}

#[test]
fn upload_and_part_records_round_trip() {
    let u = UploadRecord {
        upload_id: [3; 16],
        initiated_ns: 42,
        headers: vec![("content-type".into(), "a/b".into())],
        user_meta: vec![],
        erasure: ErasureInfo {
            data: 2,
            parity: 1,
            shard_index: 2,
            hash_algo: 1,
            block_size: 1 << 20,
        },
        extras: Extras {
            tags: vec![("a".into(), "b".into())],
            checksum: Some(ChecksumRecord {
                algo: 3,
                kind: 1,
                digest: vec![],
                parts: 0,
            }),
            retention: Some((1, 5)),
            legal_hold: false,
            encryption: None,
            acl: vec![(1, 5), (2, 1)],
            place: Some("capacity".into()),
            unknown: vec![],
        },
        completed: true,
    };
    assert_eq!(UploadRecord::decode(&u.encode()).unwrap(), u);
    let sealed = UploadRecord {
        extras: Extras {
            encryption: Some(sample_encryption()),
            ..u.extras.clone()
        },
        ..u.clone()
    };
    let bytes = sealed.encode();
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION_4);
    assert_eq!(UploadRecord::decode(&bytes).unwrap(), sealed);
    let p = PartRecord {
        number: 10_000,
        size: 5 << 20,
        etag: "x".into(),
        mod_time_ns: -1,
        checksum: Some(ChecksumRecord {
            algo: 1,
            kind: 1,
            digest: vec![1, 2, 3, 4],
            parts: 0,
        }),
        tag: 0xfeed,
    };
    assert_eq!(PartRecord::decode(&p.encode()).unwrap(), p);
    let mut v1 = codec::Writer::default();
    v1.raw(&PART_MAGIC);
    v1.u16(1);
    v1.u32(7);
    v1.u64(9);
    v1.str("e");
    v1.i64(3);
    codec::seal(&mut v1);
    let old = PartRecord::decode(&v1.buf).unwrap();
    assert_eq!((old.number, old.size, old.checksum, old.tag), (7, 9, None, 0));
    assert!(PartRecord::decode(&u.encode()).is_err());
}

fn arb_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    proptest::collection::vec((".{0,12}", ".{0,20}"), 0..4)
}

fn arb_version() -> impl Strategy<Value = Version> {
    (
        (any::<[u8; 16]>(), any::<i64>()),
        any::<i64>(),
        0u8..3,
        any::<u64>(),
        "[0-9a-f]{0,34}",
        arb_pairs(),
        arb_pairs(),
        (1u8..16, 0u8..8, any::<u32>()),
        (
            proptest::collection::vec((any::<u32>(), any::<u64>(), "[0-9a-f]{0,8}"), 0..4),
            arb_pairs(),
        ),
        prop_oneof![
            Just(DataLoc::None),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(DataLoc::Inline),
            any::<[u8; 16]>().prop_map(DataLoc::Dir),
        ],
    )
        .prop_map(
            |((id, stamp), t, kind, size, etag, headers, user_meta, (k, m, bs), (parts, tags), data)| {
                Version {
                    id: VersionId(id),
                    mod_time_ns: t,
                    stamp,
                    kind: match kind {
                        0 => VersionKind::Object,
                        1 => VersionKind::DeleteMarker,
                        _ => VersionKind::Tombstone,
                    },
                    size,
                    etag,
                    headers,
                    user_meta,
                    erasure: ErasureInfo {
                        data: k,
                        parity: m,
                        shard_index: k - 1,
                        hash_algo: 1,
                        block_size: bs.max(1),
                    },
                    parts: parts
                        .into_iter()
                        .map(|(number, size, etag)| PartInfo {
                            number,
                            size,
                            etag,
                            tag: size.rotate_left(7),
                        })
                        .collect(),
                    data,
                    extras: Extras {
                        tags,
                        ..Default::default()
                    },
                }
            },
        )
}

proptest! {
    #[test]
    fn object_records_round_trip(versions in proptest::collection::vec(arb_version(), 0..4)) {
        let r = ObjectRecord { versions };
        prop_assert_eq!(ObjectRecord::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ObjectRecord::decode(&bytes);
        let _ = UploadRecord::decode(&bytes);
        let _ = PartRecord::decode(&bytes);
        let _ = BucketRecord::decode(&bytes);
    }
}

#[test]
fn a_version_in_a_remote_tier_needs_format_5() {
    let mut rec = sample();
    let plain = rec.encode();
    assert_eq!(u16::from_le_bytes([plain[4], plain[5]]), FORMAT_VERSION_3);
    rec.versions[0].data = DataLoc::Remote(RemoteLoc {
        tier: "cold".into(),
        id: [3; 16],
    });
    let bytes = rec.encode();
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), FORMAT_VERSION_5);
    let back = ObjectRecord::decode(&bytes).unwrap();
    assert_eq!(back, rec);
    assert_eq!(back.versions[0].remote().unwrap().tier, "cold");
    // The same bytes labelled as an older format are refused, not read
    // as a version without data.
    let mut w = codec::Writer::default();
    w.raw(&bytes[..bytes.len() - 4]);
    w.buf[4..6].copy_from_slice(&FORMAT_VERSION_4.to_le_bytes());
    codec::seal(&mut w);
    assert!(matches!(
        ObjectRecord::decode(&w.buf),
        Err(DecodeError::Invalid("data location"))
    ));
    // Copies on two drives name the same remote object or they differ.
    let mut other = rec.versions[0].clone();
    assert!(other.same_version(&rec.versions[0]));
    other.data = DataLoc::Remote(RemoteLoc {
        tier: "cold".into(),
        id: [4; 16],
    });
    assert!(!other.same_version(&rec.versions[0]));
}
