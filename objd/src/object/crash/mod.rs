//! Crash tests of the object layer: an operation is run over drives that
//! stop changing at chosen points (each drive after a budget of events,
//! [`crate::drive::fault::Crash`]), the layer is reopened from what the
//! drives hold, and the invariant of `docs/semantics.md` is checked: what
//! was acknowledged reads back byte-exact, what was not is wholly there or
//! wholly absent, no key fails to read, heal changes nothing visible, and
//! after heal, compaction and the orphan sweep the drives hold exactly the
//! live versions and no stray data.
//!
//! [`points`] runs each operation kind at every crash point; [`model`] runs
//! random sequences against a reference model with crashes at random.

mod cold;
mod errors;
mod model;
mod points;

use super::{ByteStream, ListOptions, ObjectError, ObjectLayer, ObjectResult};
use crate::drive::fault::{Crash, FaultDrive, Faults};
use crate::drive::local::LocalDrive;
use crate::drive::{Drive, KeyRange, Table};
use crate::meta::ObjectRecord;
use bytes::Bytes;
use futures::StreamExt;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

pub(super) const BUCKET: &str = "crash";

/// Small blocks and inline limit, so multi-block and inline objects are
/// cheap to make.
pub(super) fn config() -> super::LayerConfig {
    super::LayerConfig {
        block_size: 64 * 1024,
        inline_limit: 16 * 1024,
        ..Default::default()
    }
}

/// Drive directories of one test case, on a memory filesystem when there
/// is one (crash semantics here are those of the drive boundary, so fsync
/// speed does not matter).
pub(super) struct Rig {
    _dirs: Vec<tempfile::TempDir>,
    paths: Vec<PathBuf>,
    pub parity: usize,
}

impl Rig {
    pub fn new(n: usize, parity: usize) -> Self {
        let base = std::path::Path::new("/dev/shm");
        let dirs: Vec<tempfile::TempDir> = (0..n)
            .map(|_| {
                if base.is_dir() {
                    tempfile::tempdir_in(base).unwrap()
                } else {
                    tempfile::tempdir().unwrap()
                }
            })
            .collect();
        let paths = dirs.iter().map(|d| d.path().to_path_buf()).collect();
        Self {
            _dirs: dirs,
            paths,
            parity,
        }
    }

    pub fn n(&self) -> usize {
        self.paths.len()
    }

    /// Opens the layer, every drive behind `faults` when given. Returns
    /// weak handles to the drives, to wait until they are closed.
    pub async fn open(&self, faults: Option<Arc<dyn Faults>>) -> (Arc<ObjectLayer>, Vec<Weak<dyn Drive>>) {
        self.open_with(faults, config()).await
    }

    pub async fn open_with(
        &self,
        faults: Option<Arc<dyn Faults>>,
        config: super::LayerConfig,
    ) -> (Arc<ObjectLayer>, Vec<Weak<dyn Drive>>) {
        let mut weak = Vec::new();
        let drives: Vec<Option<Arc<dyn Drive>>> = self
            .paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let local: Arc<dyn Drive> = Arc::new(LocalDrive::open(p).unwrap());
                weak.push(Arc::downgrade(&local));
                Some(match &faults {
                    Some(f) => Arc::new(FaultDrive::new(local, i, Arc::clone(f))) as Arc<dyn Drive>,
                    None => local,
                })
            })
            .collect();
        let layer = ObjectLayer::open("crash-test", vec![drives], self.parity, config)
            .await
            .unwrap();
        (layer, weak)
    }
}

/// Drops the layer and waits until every drive is closed (readers that
/// were streaming may hold them a moment longer), as a process exit would.
pub(super) async fn close(layer: Arc<ObjectLayer>, drives: Vec<Weak<dyn Drive>>) {
    drop(layer);
    for _ in 0..2000 {
        if drives.iter().all(|d| d.strong_count() == 0) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("drives still open after the layer was dropped");
}

pub(super) fn body(data: Vec<u8>) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(40_000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

pub(super) fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// One version as a client sees it: delete marker or not, its bytes (by
/// hash) and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SeenVersion {
    pub marker: bool,
    pub hash: u64,
    pub size: u64,
    pub tags: Vec<(String, String)>,
}

/// What a client sees of the bucket: per key, the bytes of a GET of it
/// (`None`: no such key) and every version, newest first; and the uploads
/// in progress with their parts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(super) struct Seen {
    pub keys: BTreeMap<String, (Option<u64>, Vec<SeenVersion>)>,
    pub uploads: BTreeMap<String, Vec<(u32, String)>>,
    pub usage: (u64, u64),
    pub quota: Option<u64>,
}

/// The hash, size and tags of a version as a reader gets them.
async fn read_hash(layer: &ObjectLayer, key: &str, version: Option<&str>) -> ObjectResult<(u64, u64, Tags)> {
    let r = layer.head_object(BUCKET, key, version).await?;
    let size = r.version().size;
    let tags = r.version().extras.tags.clone();
    let mut s = r.stream(0, size);
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut n = 0u64;
    while let Some(c) = s.next().await {
        let c = c.map_err(ObjectError::Body)?;
        n += c.len() as u64;
        h.update(&c);
    }
    if n != size {
        return Err(ObjectError::Internal(format!("{key}: read {n} of {size} bytes")));
    }
    Ok((h.digest(), size, tags))
}

type Tags = Vec<(String, String)>;

/// Reads everything a client can see; any failure to read is an error.
pub(super) async fn observe(layer: &ObjectLayer) -> Result<Seen, String> {
    let mut seen = Seen::default();
    let mut opts = ListOptions {
        max_keys: 1000,
        versions: true,
        ..Default::default()
    };
    loop {
        let page = layer
            .list_objects(BUCKET, opts.clone())
            .await
            .map_err(|e| format!("listing: {e}"))?;
        for o in &page.objects {
            let v = &o.version;
            let entry = seen
                .keys
                .entry(o.key.clone())
                .or_insert_with(|| (None, Vec::new()));
            // Listings carry no tags: each version's come from reading it.
            let (hash, size, tags) = if v.is_delete_marker() {
                (0, 0, vec![])
            } else {
                let id = v.id.to_api();
                read_hash(layer, &o.key, Some(&id))
                    .await
                    .map_err(|e| format!("{} version {id}: {e}", o.key))?
            };
            entry.1.push(SeenVersion {
                marker: v.is_delete_marker(),
                hash,
                size,
                tags,
            });
        }
        if !page.truncated {
            break;
        }
        opts.start_after = page.next_marker.unwrap_or_default();
        opts.version_marker = page.next_version_marker;
    }
    let keys: Vec<String> = seen.keys.keys().cloned().collect();
    for k in keys {
        let latest = match read_hash(layer, &k, None).await {
            Ok((h, _, _)) => Some(h),
            Err(ObjectError::NoSuchKey | ObjectError::DeleteMarker { .. }) => None,
            Err(e) => return Err(format!("{k}: {e}")),
        };
        if let Some(e) = seen.keys.get_mut(&k) {
            e.0 = latest;
        }
    }
    for u in layer
        .list_uploads(BUCKET, "", None, 1000)
        .await
        .map_err(|e| format!("uploads: {e}"))?
    {
        let (parts, _) = layer
            .list_parts(BUCKET, &u.key, &u.upload_id, 0, 1000)
            .await
            .map_err(|e| format!("parts of {}: {e}", u.key))?;
        seen.uploads.insert(
            u.key.clone(),
            parts.into_iter().map(|p| (p.number, p.etag)).collect(),
        );
    }
    let usage = layer.usage(BUCKET).map_err(|e| e.to_string())?;
    seen.usage = (usage.bytes, usage.versions);
    seen.quota = usage.quota;
    let counted = seen.keys.values().flat_map(|(_, v)| v).filter(|v| !v.marker);
    let expect = (
        counted.clone().map(|v| v.size).sum::<u64>(),
        counted.count() as u64,
    );
    if seen.usage != expect {
        return Err(format!("usage {:?} but the listing holds {expect:?}", seen.usage));
    }
    Ok(seen)
}

/// After heal, compaction and the sweep: every drive holds the same
/// entries per key, only live versions (nothing superseded, no
/// tombstone), and no data directory or temporary file that no record
/// names.
pub(super) async fn check_tidy(layer: &ObjectLayer) -> Result<(), String> {
    let drives = layer.sets()[0].online_drives();
    let tables: Vec<Vec<(Vec<u8>, Vec<u8>)>> = drives
        .iter()
        .map(|d| {
            d.scan(Table::Objects, KeyRange::new(b"", b"\xff", usize::MAX))
                .unwrap()
        })
        .collect();
    let mut keys: Vec<&Vec<u8>> = tables.iter().flatten().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        let recs: Vec<Option<ObjectRecord>> = tables
            .iter()
            .map(|t| {
                t.iter()
                    .find(|(x, _)| x == k)
                    .map(|(_, v)| ObjectRecord::decode(v).unwrap())
            })
            .collect();
        let first = recs[0].clone().unwrap_or_default();
        for (i, r) in recs.iter().enumerate() {
            let r = r.clone().unwrap_or_default();
            let same = r.versions.len() == first.versions.len()
                && r.versions
                    .iter()
                    .zip(&first.versions)
                    .all(|(a, b)| a.same_version(b));
            if !same {
                return Err(format!(
                    "{}: drive {i} holds {:?}, drive 0 {:?}",
                    String::from_utf8_lossy(k),
                    r.versions
                        .iter()
                        .map(|v| (v.id, v.stamp, v.kind))
                        .collect::<Vec<_>>(),
                    first
                        .versions
                        .iter()
                        .map(|v| (v.id, v.stamp, v.kind))
                        .collect::<Vec<_>>()
                ));
            }
            let mut ids: Vec<_> = r.versions.iter().map(|v| v.id).collect();
            ids.sort();
            ids.dedup();
            if ids.len() != r.versions.len() || r.versions.iter().any(|v| v.is_tombstone()) {
                return Err(format!(
                    "{}: drive {i} keeps settled entries",
                    String::from_utf8_lossy(k)
                ));
            }
        }
    }
    for (i, d) in drives.iter().enumerate() {
        let table = &tables[i];
        // The drive's usage counters sum up its records.
        let mut sum = [0i64; 2];
        for (_, v) in table {
            let w = crate::object::usage::Weight::of(&ObjectRecord::decode(v).unwrap());
            sum[0] += w.bytes;
            sum[1] += w.versions;
        }
        let counters = d
            .get(Table::Usage, BUCKET.as_bytes())
            .unwrap()
            .map_or([0, 0], |v| crate::drive::decode_counters(&v));
        if counters != sum {
            return Err(format!("drive {i} counts {counters:?} but holds {sum:?}"));
        }
        let mut named: Vec<[u8; 16]> = table
            .iter()
            .flat_map(|(_, v)| ObjectRecord::decode(v).unwrap().versions)
            .filter_map(|v| v.dir())
            .collect();
        for (_, v) in d
            .scan(Table::Uploads, KeyRange::new(b"", b"\xff", usize::MAX))
            .unwrap()
        {
            named.push(crate::meta::UploadRecord::decode(&v).unwrap().upload_id);
        }
        for p in 0..=255u8 {
            for dir in d.data_dirs(p).unwrap() {
                if !named.contains(&dir.id) {
                    return Err(format!("drive {i} keeps data directory {}", hex::encode(dir.id)));
                }
                if let Some(f) = dir.files.iter().find(|(f, _)| f.contains(".tmp-")) {
                    return Err(format!("drive {i} keeps temporary file {f:?}"));
                }
            }
        }
    }
    Ok(())
}

/// What clients see of a layer reopened after a crash during an operation:
/// what it did when it was acknowledged, else what was there before or
/// what it would have done; then heal and the sweep change none of it.
pub(super) async fn check_restarted(
    layer: &ObjectLayer,
    acked: bool,
    (before, after): (&Seen, &Seen),
    ctx: &str,
) {
    let seen = observe(layer)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: after restart: {e}"));
    if acked {
        assert_eq!(&seen, after, "{ctx}: acknowledged, but not what was done");
    } else {
        assert!(
            &seen == before || &seen == after,
            "{ctx}: neither the old state nor the new one:\n{seen:?}\nbefore {before:?}\nafter {after:?}"
        );
    }
    check_heal(layer, &seen, ctx).await;
}

/// Heals and tidies a reopened layer and checks that clients see what they
/// saw before (`seen`), and that the drives hold nothing stray.
pub(super) async fn check_heal(layer: &ObjectLayer, seen: &Seen, ctx: &str) {
    heal_and_sweep(layer).await;
    let healed = observe(layer)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: after heal: {e}"));
    assert_eq!(&healed, seen, "{ctx}: heal changed what clients see");
    check_tidy(layer)
        .await
        .unwrap_or_else(|e| panic!("{ctx}: after heal and sweep: {e}"));
}

/// Heals and tidies a reopened layer, as the scanner would.
pub(super) async fn heal_and_sweep(layer: &ObjectLayer) {
    layer.heal_all(None, 0.0, |_| {}).await.unwrap();
    layer.compact_queued().await;
    layer
        .sweep_orphans(std::time::SystemTime::now() + std::time::Duration::from_secs(1))
        .await;
}

/// A crash plan for `n` drives with no limit yet.
pub(super) fn crash_plan(n: usize) -> Arc<Crash> {
    Arc::new(Crash::new(n))
}
