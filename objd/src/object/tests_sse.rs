//! Encrypted objects through the object layer over real local drives:
//! round trips, ranges across packages and parts, keys that do not open,
//! and no plaintext on any drive.

use super::tests::{body, fixture, pattern, small_blocks};
use super::*;
use crate::meta::EncryptionRecord;
use crate::sse::{Algorithm, DataKey, Mode};
use futures::StreamExt;

/// Hands out one data key for every object (as a KMS would unseal it).
struct Fixed(DataKey);

#[async_trait::async_trait]
impl KeySource for Fixed {
    async fn data_key(&self, _: &str, _: &str, _: &EncryptionRecord) -> ObjectResult<DataKey> {
        Ok(self.0.clone())
    }
}

fn sealing(key: &DataKey, mode: Mode, algo: Algorithm) -> Sealing {
    Sealing {
        key: key.clone(),
        record: EncryptionRecord {
            mode: mode as u8,
            algo: algo as u8,
            key_id: "k".into(),
            sealed_key: vec![1, 2, 3],
            ..Default::default()
        },
    }
}

async fn read(layer: &ObjectLayer, key: &str, keys: &dyn KeySource, a: u64, b: u64) -> ObjectResult<Vec<u8>> {
    let mut r = layer.head_object("bkt", key, None).await?;
    r.unlock(keys).await?;
    let mut s = r.stream(a, b);
    let mut out = Vec::new();
    while let Some(c) = s.next().await {
        out.extend_from_slice(&c.map_err(ObjectError::Body)?);
    }
    Ok(out)
}

/// A body that names itself many times, to be looked for on the drives.
fn marked(len: usize) -> Vec<u8> {
    b"PLAINTEXT-MARKER-7f3a "
        .iter()
        .copied()
        .cycle()
        .take(len)
        .collect()
}

/// Whether any file under the drives holds `needle`.
fn drives_hold(paths: &[std::path::PathBuf], needle: &[u8]) -> bool {
    fn walk(p: &std::path::Path, needle: &[u8]) -> bool {
        let Ok(entries) = std::fs::read_dir(p) else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path, needle)
            } else {
                std::fs::read(&path).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            }
        })
    }
    paths.iter().any(|p| walk(p, needle))
}

#[tokio::test]
async fn encrypted_objects_round_trip_in_whole_and_in_ranges() {
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let key = DataKey::random();
    let keys = Fixed(key.clone());
    for (i, len) in [0usize, 1, 16 * 1024, 65_508, 65_509, 200_000, 1_000_003]
        .into_iter()
        .enumerate()
    {
        let algo = if i % 2 == 0 {
            Algorithm::Aes256Gcm
        } else {
            Algorithm::ChaCha20Poly1305
        };
        let data = pattern(len, i as u8);
        let name = format!("k{len}");
        let opts = PutOptions {
            encryption: Some(sealing(&key, Mode::S3, algo)),
            ..Default::default()
        };
        let v = f
            .layer
            .put_object("bkt", &name, body(data.clone()), opts)
            .await
            .unwrap();
        assert_eq!(v.size, len as u64);
        assert_eq!(
            v.etag,
            hex::encode(<md5::Md5 as md5::Digest>::digest(&data)),
            "SSE-S3 ETag is the MD5"
        );
        let rec = v.extras.encryption.as_ref().unwrap();
        assert_eq!(rec.package, 64 * 1024);
        assert_eq!(v.parts[0].size, rec.sealed_len(len as u64));
        let head = f.layer.head_object("bkt", &name, None).await.unwrap();
        assert_eq!(head.version().size, len as u64);
        assert_eq!(
            read(&f.layer, &name, &keys, 0, len as u64).await.unwrap(),
            data,
            "len {len}"
        );
        for (a, b) in [
            (0, 1),
            (65_507, 65_510),
            (100, 131_100),
            ((len as u64).saturating_sub(1), len as u64),
        ] {
            let (a, b) = (a.min(len as u64), b.min(len as u64));
            if a < b {
                let got = read(&f.layer, &name, &keys, a, b).await.unwrap();
                assert_eq!(got, &data[a as usize..b as usize], "len {len} range {a}..{b}");
            }
        }
    }
}

#[tokio::test]
async fn keys_that_do_not_open_return_no_bytes() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let key = DataKey::random();
    let data = pattern(150_000, 9);
    let opts = PutOptions {
        encryption: Some(sealing(&key, Mode::Customer, Algorithm::Aes256Gcm)),
        ..Default::default()
    };
    let v = f
        .layer
        .put_object("bkt", "c", body(data.clone()), opts)
        .await
        .unwrap();
    assert_ne!(
        v.etag,
        hex::encode(<md5::Md5 as md5::Digest>::digest(&data)),
        "SSE-C ETag is not the MD5"
    );
    // A wrong data key: the stream fails instead of yielding bytes.
    let wrong = read(&f.layer, "c", &Fixed(DataKey::random()), 0, 150_000).await;
    assert!(matches!(wrong, Err(ObjectError::Body(_))), "{wrong:?}");
    // No key at all.
    let r = f.layer.head_object("bkt", "c", None).await.unwrap();
    assert!(r.encrypted());
    let mut s = r.stream(0, 10);
    assert!(s.next().await.unwrap().is_err());
    let mut r = f.layer.head_object("bkt", "c", None).await.unwrap();
    assert!(r.unlock(&NoKeys).await.is_err());
}

#[tokio::test]
async fn encrypted_multipart_uploads_and_copies() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let key = DataKey::random();
    let keys = Fixed(key.clone());
    let opts = PutOptions {
        encryption: Some(sealing(&key, Mode::Kms, Algorithm::Aes256Gcm)),
        ..Default::default()
    };
    let id = f.layer.create_multipart("bkt", "mp", opts).await.unwrap();
    let p1 = pattern(5 << 20, 1);
    let p2 = pattern(70_000, 2);
    let mut done = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        let (etag, _) = f
            .layer
            .upload_part("bkt", "mp", &id, n, body(p.clone()), None, None, None, &keys)
            .await
            .unwrap();
        assert_ne!(etag, hex::encode(<md5::Md5 as md5::Digest>::digest(p)));
        done.push(CompletePart {
            number: n,
            etag,
            checksum: None,
        });
    }
    // A part cannot be written without the upload's key.
    assert!(
        f.layer
            .upload_part("bkt", "mp", &id, 3, body(vec![1; 10]), None, None, None, &NoKeys)
            .await
            .is_err()
    );
    let (parts, _) = f.layer.list_parts("bkt", "mp", &id, 0, 10).await.unwrap();
    assert_eq!(
        parts.iter().map(|p| p.size).collect::<Vec<_>>(),
        vec![5 << 20, 70_000]
    );
    let v = f
        .layer
        .complete_multipart("bkt", "mp", &id, done, &WriteCondition::default(), None)
        .await
        .unwrap();
    let whole = [p1.clone(), p2.clone()].concat();
    assert_eq!(v.size, whole.len() as u64);
    assert_eq!(read(&f.layer, "mp", &keys, 0, v.size).await.unwrap(), whole);
    let (a, b) = ((5 << 20) - 100, (5 << 20) + 100);
    assert_eq!(
        read(&f.layer, "mp", &keys, a, b).await.unwrap(),
        &whole[a as usize..b as usize]
    );
    assert_eq!(v.plain_part_size(&v.parts[1]), 70_000);

    // Copied to a plain object, and back under another key.
    let src = CopySource {
        bucket: "bkt".into(),
        key: "mp".into(),
        keys: Some(std::sync::Arc::new(Fixed(key.clone()))),
        ..Default::default()
    };
    let (_, plain) = f
        .layer
        .copy_object(&src, "bkt", "plain", PutOptions::default(), true, true)
        .await
        .unwrap();
    assert!(plain.extras.encryption.is_none());
    assert_eq!(
        super::tests::read_all(&f.layer, "bkt", "plain").await.unwrap(),
        whole
    );
    let other = DataKey::random();
    let src = CopySource {
        bucket: "bkt".into(),
        key: "plain".into(),
        ..Default::default()
    };
    let opts = PutOptions {
        encryption: Some(sealing(&other, Mode::Customer, Algorithm::ChaCha20Poly1305)),
        ..Default::default()
    };
    f.layer
        .copy_object(&src, "bkt", "again", opts, true, true)
        .await
        .unwrap();
    assert_eq!(
        read(&f.layer, "again", &Fixed(other), 0, whole.len() as u64)
            .await
            .unwrap(),
        whole
    );
    // An encrypted source without its key is not copied.
    let src = CopySource {
        bucket: "bkt".into(),
        key: "again".into(),
        ..Default::default()
    };
    assert!(
        f.layer
            .copy_object(&src, "bkt", "x", PutOptions::default(), true, true)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn no_plaintext_reaches_the_drives() {
    let f = fixture(4, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let key = DataKey::random();
    let needle = b"PLAINTEXT-MARKER-7f3a";
    for (name, len) in [("small", 3_000), ("large", 400_000)] {
        let opts = PutOptions {
            encryption: Some(sealing(&key, Mode::S3, Algorithm::Aes256Gcm)),
            ..Default::default()
        };
        f.layer
            .put_object("bkt", name, body(marked(len)), opts)
            .await
            .unwrap();
    }
    assert!(!drives_hold(&f.paths, needle), "plaintext found on a drive");
    // The scan does find plaintext where there is some.
    f.layer
        .put_object("bkt", "plain", body(marked(3_000)), PutOptions::default())
        .await
        .unwrap();
    assert!(drives_hold(&f.paths, needle));
}

#[tokio::test]
async fn healing_rebuilds_encrypted_shards_without_their_key() {
    let f = fixture(6, 2, small_blocks()).await;
    f.layer.make_bucket("bkt").await.unwrap();
    let key = DataKey::random();
    let data = pattern(400_000, 5);
    let opts = PutOptions {
        encryption: Some(sealing(&key, Mode::Kms, Algorithm::Aes256Gcm)),
        ..Default::default()
    };
    f.layer
        .put_object("bkt", "e", body(data.clone()), opts)
        .await
        .unwrap();
    drop(f.layer);
    // Two drives lose everything; the healer has no data key.
    for p in &f.paths[..2] {
        std::fs::remove_dir_all(p).unwrap();
        std::fs::create_dir_all(p).unwrap();
    }
    let layer = super::tests::open(&f.paths, 2, small_blocks()).await;
    layer.heal_buckets().await.unwrap();
    let report = layer.heal_all(None, 0.0, |_| {}).await.unwrap();
    assert!(report.repaired >= 1 && report.failed == 0, "{report:?}");
    drop(layer);
    // Two other drives go: the healed shards alone must serve the object.
    for p in &f.paths[4..] {
        std::fs::remove_dir_all(p).unwrap();
        std::fs::create_dir_all(p).unwrap();
    }
    let layer = super::tests::open(&f.paths, 2, small_blocks()).await;
    assert_eq!(read(&layer, "e", &Fixed(key), 0, 400_000).await.unwrap(), data);
}
