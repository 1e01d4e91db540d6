//! Bucket usage and quotas. Usage is the bytes and the number of stored
//! versions of each bucket (delete markers and unfinished multipart uploads
//! excluded). Each drive keeps counters per bucket in its `usage` table,
//! changed in the same transaction as every record change by what the
//! change does to that drive's records, so the counters always sum up the
//! records beside them. At start-up the layer takes a bucket's figures
//! from the counters when every drive agrees, and counts the bucket by
//! listing it when they do not (a crash left changes on some drives) or
//! the drives predate the counters. Then every change keeps the figures in
//! memory exact: its difference in the quorum view is applied when it
//! commits.
//!
//! A quota caps a bucket's bytes. A change that would take the bucket past
//! it fails with `QuotaExceeded` before anything is committed; the bytes a
//! change adds are reserved while it commits, so concurrent writers cannot
//! together go beyond the quota. Changes that free space always pass.

use super::{ListOptions, ObjectError, ObjectLayer, ObjectResult, blocking};
use crate::drive::{RecordOp, Table, decode_counters, encode_counters};
use crate::meta::{ObjectRecord, VersionKind};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// What one record (or a change of one) weighs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Weight {
    pub bytes: i64,
    pub versions: i64,
}

impl Weight {
    /// What a drive's record of a key weighs on that drive: per version id
    /// its newest entry, unless that is a tombstone or a delete marker.
    /// (With every drive holding the same settled entries, this is what
    /// the quorum view of the key weighs.)
    pub fn of(rec: &ObjectRecord) -> Self {
        let mut w = Weight::default();
        for (i, v) in rec.versions.iter().enumerate() {
            let newest = !rec.versions[..i].iter().any(|o| o.id == v.id);
            if newest && v.kind == VersionKind::Object {
                w.bytes += v.size as i64;
                w.versions += 1;
            }
        }
        w
    }

    pub fn minus(self, other: Weight) -> Weight {
        Weight {
            bytes: self.bytes - other.bytes,
            versions: self.versions - other.versions,
        }
    }
}

/// A bucket's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub bytes: u64,
    pub versions: u64,
    pub quota: Option<u64>,
}

#[derive(Debug, Default)]
struct Counts {
    bytes: i64,
    versions: i64,
    /// Bytes of changes being committed.
    reserved: i64,
    quota: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Usage {
    buckets: Mutex<HashMap<String, Counts>>,
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counts>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, bucket: &str) -> BucketUsage {
        self.lock()
            .get(bucket)
            .map_or_else(BucketUsage::default, |c| BucketUsage {
                bytes: c.bytes.max(0) as u64,
                versions: c.versions.max(0) as u64,
                quota: c.quota,
            })
    }

    /// Sets the counted figures of a bucket (start-up count).
    pub fn set_counted(&self, bucket: &str, w: Weight) {
        let mut b = self.lock();
        let c = b.entry(bucket.to_owned()).or_default();
        c.bytes = w.bytes;
        c.versions = w.versions;
    }

    pub fn set_quota(&self, bucket: &str, quota: Option<u64>) {
        self.lock().entry(bucket.to_owned()).or_default().quota = quota;
    }

    pub fn remove(&self, bucket: &str) {
        self.lock().remove(bucket);
    }

    /// Admits a change of `delta` to `bucket`: fails with `QuotaExceeded`
    /// if it adds bytes beyond the quota, else holds them until the change
    /// is applied or dropped.
    pub fn reserve(self: &Arc<Self>, bucket: &str, delta: Weight) -> ObjectResult<Reservation> {
        let held = delta.bytes.max(0);
        let mut b = self.lock();
        let c = b.entry(bucket.to_owned()).or_default();
        if let Some(q) = c.quota
            && held > 0
            && c.bytes + c.reserved + held > q as i64
        {
            return Err(ObjectError::QuotaExceeded {
                quota: q,
                used: c.bytes.max(0) as u64,
            });
        }
        c.reserved += held;
        Ok(Reservation {
            usage: Arc::clone(self),
            bucket: bucket.to_owned(),
            delta,
            applied: false,
        })
    }
}

/// Bytes held for a change being committed.
#[derive(Debug)]
pub struct Reservation {
    usage: Arc<Usage>,
    bucket: String,
    delta: Weight,
    applied: bool,
}

impl Reservation {
    /// The change committed: its weight counts from now on.
    pub fn apply(mut self) {
        let mut b = self.usage.lock();
        let c = b.entry(self.bucket.clone()).or_default();
        c.reserved -= self.delta.bytes.max(0);
        c.bytes += self.delta.bytes;
        c.versions += self.delta.versions;
        self.applied = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.applied {
            let mut b = self.usage.lock();
            if let Some(c) = b.get_mut(&self.bucket) {
                c.reserved -= self.delta.bytes.max(0);
            }
        }
    }
}

/// A row of every drive's usage table saying that its counters are kept
/// (bucket names cannot start with a zero byte).
const COUNTED: &[u8] = b"\0counted";

impl ObjectLayer {
    /// Loads every bucket's figures and quota, before serving.
    pub(super) async fn load_usage(&self) -> ObjectResult<()> {
        let drives = self.all_drives();
        // Each drive's counters; a drive without them (formatted before
        // they existed, or a replacement) gets them from its own records.
        let tables = blocking(move || {
            drives
                .iter()
                .map(|d| drive_counters(d.as_ref()))
                .collect::<Vec<_>>()
        })
        .await?;
        let answered: Vec<BTreeMap<Vec<u8>, [i64; 2]>> = tables.into_iter().flatten().collect();
        let names: Vec<String> = self.list_buckets().into_iter().map(|b| b.name).collect();
        for name in &names {
            let values: Vec<[i64; 2]> = answered
                .iter()
                .map(|t| t.get(name.as_bytes()).copied().unwrap_or([0, 0]))
                .collect();
            let w = match values.first() {
                Some(v) if values.iter().all(|x| x == v) => Weight {
                    bytes: v[0],
                    versions: v[1],
                },
                _ => {
                    tracing::info!(bucket = %name, "drives' usage counters differ; counting the bucket");
                    self.count_bucket(name).await?
                }
            };
            self.usage.set_counted(name, w);
            self.usage.set_quota(name, self.quota(name)?);
        }
        Ok(())
    }

    /// A bucket's figures by listing every version of it.
    async fn count_bucket(&self, name: &str) -> ObjectResult<Weight> {
        let mut total = Weight::default();
        let mut opts = ListOptions {
            max_keys: 1000,
            versions: true,
            ..Default::default()
        };
        loop {
            let page = self.list_objects(name, opts.clone()).await?;
            for o in page.objects.iter().filter(|o| !o.version.is_delete_marker()) {
                total.bytes += o.version.size as i64;
                total.versions += 1;
            }
            if !page.truncated {
                return Ok(total);
            }
            opts.start_after = page.next_marker.unwrap_or_default();
            opts.version_marker = page.next_version_marker;
        }
    }
}

/// A drive's usage counters by bucket, made from its records first if it
/// has none yet.
fn drive_counters(d: &dyn crate::drive::Drive) -> crate::drive::DriveResult<BTreeMap<Vec<u8>, [i64; 2]>> {
    let rows = d.scan(Table::Usage, b"", false, &[0xff; 64], usize::MAX)?;
    if rows.iter().any(|(k, _)| k == COUNTED) {
        return Ok(rows
            .into_iter()
            .filter(|(k, _)| k != COUNTED)
            .map(|(k, v)| (k, decode_counters(&v)))
            .collect());
    }
    let mut sums: BTreeMap<Vec<u8>, [i64; 2]> = BTreeMap::new();
    let mut start: Vec<u8> = Vec::new();
    loop {
        let page = d.scan(Table::Objects, &start, !start.is_empty(), &[0xff; 1100], 1000)?;
        for (k, v) in &page {
            let bucket = k.split(|b| *b == 0).next().unwrap_or_default().to_vec();
            if let Ok(rec) = ObjectRecord::decode(v) {
                let w = Weight::of(&rec);
                let c = sums.entry(bucket).or_default();
                c[0] += w.bytes;
                c[1] += w.versions;
            }
        }
        match page.last() {
            Some((k, _)) if page.len() == 1000 => start = k.clone(),
            _ => break,
        }
    }
    let mut ops: Vec<RecordOp> = sums
        .iter()
        .map(|(k, c)| RecordOp::Put {
            table: Table::Usage,
            key: k.clone(),
            value: encode_counters(*c),
        })
        .collect();
    ops.push(RecordOp::Put {
        table: Table::Usage,
        key: COUNTED.to_vec(),
        value: vec![],
    });
    d.commit(ops)?;
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(bytes: i64) -> Weight {
        Weight { bytes, versions: 1 }
    }

    #[test]
    fn quotas_hold_with_concurrent_reservations() {
        let u = Arc::new(Usage::default());
        u.set_counted("b", w(100));
        u.set_quota("b", Some(1000));
        let first = u.reserve("b", w(600)).unwrap();
        // The first change is not committed yet, but its bytes are held.
        let e = u.reserve("b", w(400)).unwrap_err();
        assert!(
            matches!(
                e,
                ObjectError::QuotaExceeded {
                    quota: 1000,
                    used: 100
                }
            ),
            "{e:?}"
        );
        // Freeing space always passes; a dropped change gives its bytes back.
        u.reserve("b", w(-50)).unwrap().apply();
        drop(first);
        u.reserve("b", w(900)).unwrap().apply();
        assert_eq!(
            u.get("b"),
            BucketUsage {
                bytes: 950,
                versions: 3,
                quota: Some(1000)
            }
        );
        assert!(u.reserve("b", w(51)).is_err());
        u.reserve("b", w(50)).unwrap().apply();
        // No quota: anything goes.
        u.set_quota("b", None);
        u.reserve("b", w(1 << 40)).unwrap().apply();
        assert_eq!(u.get("b").bytes, 1000 + (1 << 40));
        u.remove("b");
        assert_eq!(u.get("b"), BucketUsage::default());
    }
}
