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
//! commits. A cluster node also takes the figures from the drives again
//! every [`REFRESH_EVERY`], so the other nodes' writes count too.
//!
//! A quota caps a bucket's bytes. A change that would take the bucket past
//! it fails with `QuotaExceeded` before anything is committed; the bytes a
//! change adds are reserved while it commits, so concurrent writers cannot
//! together go beyond the quota. Changes that free space always pass.

use super::{ListOptions, ObjectError, ObjectLayer, ObjectResult, blocking};
use crate::drive::{KeyRange, RecordOp, Table, decode_counters, encode_counters};
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

/// How often a cluster node takes the bucket figures from the drives'
/// counters again (which every node's commits change).
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl ObjectLayer {
    /// Loads every bucket's figures and quota, before serving.
    pub(super) async fn load_usage(&self) -> ObjectResult<()> {
        let (agreed, unsettled) = self.counted_by_drives().await?;
        for (name, w) in agreed {
            self.usage.set_counted(&name, w);
        }
        for name in unsettled {
            tracing::info!(bucket = %name, "drives' usage counters differ; counting the bucket");
            let w = self.count_bucket(&name).await?;
            self.usage.set_counted(&name, w);
        }
        for b in self.list_buckets() {
            self.usage.set_quota(&b.name, self.quota(&b.name)?);
        }
        Ok(())
    }

    /// Takes the figures of every bucket whose counters settle from the
    /// drives again: in a cluster, what other nodes wrote then counts here
    /// too (quotas hold across nodes within [`REFRESH_EVERY`]).
    pub async fn refresh_usage(&self) -> ObjectResult<()> {
        let (agreed, _) = self.counted_by_drives().await?;
        for (name, w) in agreed {
            self.usage.set_counted(&name, w);
        }
        Ok(())
    }

    /// Runs [`ObjectLayer::refresh_usage`] every [`REFRESH_EVERY`] (a
    /// cluster node).
    pub fn start_usage_refresh(self: &Arc<Self>) {
        let layer = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(REFRESH_EVERY).await;
                let Some(l) = layer.upgrade() else { return };
                if let Err(e) = l.refresh_usage().await {
                    tracing::debug!(error = %e, "usage refresh failed");
                }
            }
        });
    }

    /// Every bucket's figures from the drives' counters: per set, the
    /// value most of its answering drives hold (at least a read quorum, and
    /// no other value as often), summed over the sets. Buckets some set
    /// does not settle (a crash left changes on some drives; a drive came
    /// back and is not healed yet) come back apart.
    async fn counted_by_drives(&self) -> ObjectResult<(Vec<(String, Weight)>, Vec<String>)> {
        let names: Vec<String> = self.list_buckets().into_iter().map(|b| b.name).collect();
        let mut totals: HashMap<String, Weight> =
            names.iter().map(|n| (n.clone(), Weight::default())).collect();
        let mut unsettled: Vec<String> = Vec::new();
        for set in &self.sets {
            let drives = set.online_drives();
            // Each drive's counters; a drive without them (formatted before
            // they existed, or a replacement) gets them from its own records.
            let tables: Vec<BTreeMap<Vec<u8>, [i64; 2]>> = blocking(move || {
                drives
                    .iter()
                    .map(|d| drive_counters(d.as_ref()))
                    .collect::<Vec<_>>()
            })
            .await?
            .into_iter()
            .flatten()
            .collect();
            for name in &names {
                let mut tally: Vec<([i64; 2], usize)> = Vec::new();
                for t in &tables {
                    let v = t.get(name.as_bytes()).copied().unwrap_or([0, 0]);
                    match tally.iter_mut().find(|(x, _)| *x == v) {
                        Some((_, n)) => *n += 1,
                        None => tally.push((v, 1)),
                    }
                }
                tally.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
                let settled = match tally.as_slice() {
                    [(v, n), rest @ ..]
                        if *n >= set.read_quorum() && rest.first().is_none_or(|t| t.1 < *n) =>
                    {
                        Some(*v)
                    }
                    _ => None,
                };
                match settled {
                    Some(v) => {
                        let t = totals.entry(name.clone()).or_default();
                        t.bytes += v[0];
                        t.versions += v[1];
                    }
                    None if !unsettled.contains(name) => unsettled.push(name.clone()),
                    None => {}
                }
            }
        }
        let agreed = totals
            .into_iter()
            .filter(|(n, _)| !unsettled.contains(n))
            .collect();
        Ok((agreed, unsettled))
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
    let rows = d.scan(Table::Usage, KeyRange::new(b"", &[0xff; 64], usize::MAX))?;
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
        let page = d.scan(
            Table::Objects,
            KeyRange::new(&start, &[0xff; 1100], 1000).exclusive(!start.is_empty()),
        )?;
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
