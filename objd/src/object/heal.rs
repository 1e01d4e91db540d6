//! Healing: bringing every drive of a set back to holding its shard of every
//! version that has quorum, and removing versions that lost it for good.
//!
//! Work arrives three ways: reads and writes that met a missing or corrupt
//! shard queue the key ([`HealQueue`]); `objd admin heal` walks a bucket or
//! the whole deployment; the background scanner walks everything at a slow,
//! throttled pace. All three end in [`ErasureSet::heal_object`].

use super::get::read_shards;
use super::set::{Resolved, record_ops};
use super::usage::Weight;
use super::{ErasureSet, ObjectLayer, ObjectResult, blocking};
use crate::drive::{DriveError, KeyRange, RecordOp, ShardWriter, Table, object_key};
use crate::erasure::{self, Layout, bitrot};
use crate::meta::{DataLoc, Version};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Objects the healer, the scanner and `objd admin heal` checked, found
/// something to repair in, and could not fully repair, since start (for
/// metrics).
#[derive(Debug, Default)]
pub struct HealCounts {
    pub scanned: std::sync::atomic::AtomicU64,
    pub healed: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

impl HealCounts {
    fn note(&self, r: &ObjectResult<HealReport>) {
        use std::sync::atomic::Ordering::Relaxed;
        self.scanned.fetch_add(1, Relaxed);
        match r {
            Ok(r) if r.failed > 0 => self.failed.fetch_add(1, Relaxed),
            Ok(r) if r.repaired > 0 || r.removed > 0 => self.healed.fetch_add(1, Relaxed),
            Ok(_) => 0,
            Err(_) => self.failed.fetch_add(1, Relaxed),
        };
    }
}

/// What healing one key did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct HealReport {
    /// Drive copies of versions rebuilt (shards rewritten and metadata restored).
    pub repaired: usize,
    /// Versions found on too few drives to ever be read, removed.
    pub removed: usize,
    /// Versions that could not be repaired (too few good shards).
    pub failed: usize,
}

impl std::ops::AddAssign for HealReport {
    fn add_assign(&mut self, o: Self) {
        self.repaired += o.repaired;
        self.removed += o.removed;
        self.failed += o.failed;
    }
}

/// Which shard each target drive is rebuilt with: one that no good copy
/// holds, its own in rotation order when that one is missing (a clone's
/// shards keep its origin's rotation, so the key's own can be held
/// elsewhere). A target left without a missing shard gets none.
fn missing_shards(
    good: &[Option<Version>],
    targets: &[usize],
    rotated: impl Fn(usize) -> usize,
) -> Vec<(usize, usize)> {
    let n = good.len();
    let mut missing: Vec<bool> = vec![true; n];
    for c in good.iter().flatten() {
        if let Some(m) = missing.get_mut(usize::from(c.erasure.shard_index)) {
            *m = false;
        }
    }
    let mut out = Vec::with_capacity(targets.len());
    let mut rest = Vec::new();
    for &p in targets {
        let own = rotated(p);
        if missing[own] {
            missing[own] = false;
            out.push((p, own));
        } else {
            rest.push(p);
        }
    }
    for p in rest {
        if let Some(s) = missing.iter().position(|m| *m) {
            missing[s] = false;
            out.push((p, s));
        }
    }
    out
}

impl ErasureSet {
    /// Finds drive positions whose shards of `res` are missing or corrupt.
    async fn damaged_copies(self: &Arc<Self>, res: &Resolved, layout: &Layout) -> ObjectResult<Vec<usize>> {
        let mut bad: HashSet<usize> = HashSet::new();
        let holder = |idx: usize| {
            res.copies.iter().position(|c| {
                c.as_ref()
                    .is_some_and(|c| usize::from(c.erasure.shard_index) == idx)
            })
        };
        for part in &res.version.parts {
            for block in 0..layout.block_count(part.size) {
                let (shards, damaged) = read_shards(self, res, layout, part, block, true).await?;
                if damaged {
                    for (idx, s) in shards.iter().enumerate() {
                        if s.is_none()
                            && let Some(p) = holder(idx)
                        {
                            bad.insert(p);
                        }
                    }
                }
            }
        }
        Ok(bad.into_iter().collect())
    }

    /// Rewrites the shards of `res` held by drive positions `targets` from
    /// the good shards; returns each target's new copy of the version.
    async fn rebuild(
        self: &Arc<Self>,
        res: &Resolved,
        layout: &Layout,
        targets: &[(usize, usize)],
    ) -> ObjectResult<Vec<(usize, Version)>> {
        let v = &res.version;
        let mut copies: Vec<(usize, Version)> = targets
            .iter()
            .map(|&(pos, shard)| {
                let mut c = v.clone();
                c.erasure.shard_index = shard as u8;
                (pos, c)
            })
            .collect();
        // A delete marker has no data, a version in a remote tier none here.
        if v.is_delete_marker() || v.remote().is_some() {
            return Ok(copies);
        }
        let dir = match &v.data {
            DataLoc::Dir(d) => Some(*d),
            _ => None,
        };
        let mut inline: Vec<Vec<u8>> = vec![Vec::new(); targets.len()];
        for part in &v.parts {
            let mut writers: Vec<Option<Box<dyn ShardWriter>>> = Vec::new();
            if let Some(dir) = dir {
                for &(pos, shard) in targets {
                    let d = self.drives[pos]
                        .clone()
                        .ok_or(DriveError::Offline)
                        .map_err(drive_err)?;
                    let layout = *layout;
                    let number = part.file();
                    let w = blocking(move || -> Result<Box<dyn ShardWriter>, DriveError> {
                        let mut w = d.create_shard(&dir, number)?;
                        w.write_all(&erasure::shard_header(&layout, shard))?;
                        Ok(w)
                    })
                    .await?
                    .map_err(drive_err)?;
                    writers.push(Some(w));
                }
            }
            for block in 0..layout.block_count(part.size) {
                let (mut shards, _) = read_shards(self, res, layout, part, block, false).await?;
                erasure::reconstruct(layout, &mut shards, true)?;
                for (t, &(_, shard)) in targets.iter().enumerate() {
                    let payload = shards[shard].as_deref().unwrap_or_default();
                    let framed = bitrot::frame(payload);
                    match writers.get_mut(t) {
                        Some(slot) => {
                            let mut w = slot.take().ok_or(DriveError::Offline).map_err(drive_err)?;
                            let (w, r) = blocking(move || {
                                let r = w.write_all(&framed);
                                (w, r)
                            })
                            .await?;
                            r.map_err(drive_err)?;
                            *slot = Some(w);
                        }
                        None => inline[t].extend_from_slice(&framed),
                    }
                }
            }
            for w in writers.into_iter().flatten() {
                blocking(move || w.finish()).await?.map_err(drive_err)?;
            }
        }
        for (t, (_, c)) in copies.iter_mut().enumerate() {
            if dir.is_none() {
                c.data = DataLoc::Inline(std::mem::take(&mut inline[t]));
            }
        }
        Ok(copies)
    }

    /// Heals one key: the winner of every version id (see
    /// [`super::resolve`]) is restored on every online drive that lacks it
    /// (with `deep`, shard checksums are verified too, and damaged copies
    /// rewritten); then the key is compacted, which removes entries that
    /// can never reach quorum and those their winners superseded.
    pub async fn heal_object(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        deep: bool,
    ) -> ObjectResult<HealReport> {
        let _guard = self.locks.lock(bucket, key).await;
        let (records, hashes) = self.read_records_hashed(bucket, key).await;
        let view = self.view(&records);
        let n = self.drives.len();
        let rotation = self.rotation(bucket, key);
        let mut report = HealReport::default();
        // New copies to put, per drive position.
        let mut puts: Vec<Vec<Version>> = vec![Vec::new(); n];
        // Drives that answered (a corrupt record is rewritten whole).
        let writable =
            |p: usize| matches!(records[p], Ok(_) | Err(DriveError::Corrupt(_))) && self.drives[p].is_some();
        for w in view.winners() {
            let v = &w.version;
            let mut targets: Vec<usize> = (0..n)
                .filter(|p| w.copies[*p].is_none() && writable(*p))
                .collect();
            if v.is_tombstone() {
                for p in targets {
                    puts[p].push(v.clone());
                }
                continue;
            }
            let e = v.erasure;
            let layout = Layout::new(e.data.into(), e.parity.into(), e.block_size)?;
            let res = Resolved {
                version: v.clone(),
                copies: w.copies.clone(),
            };
            if deep && !v.is_delete_marker() && v.remote().is_none() {
                match self.damaged_copies(&res, &layout).await {
                    Ok(bad) => {
                        for p in bad {
                            if !targets.contains(&p) {
                                targets.push(p);
                            }
                        }
                    }
                    Err(_) => {
                        report.failed += 1;
                        continue;
                    }
                }
            }
            if targets.is_empty() {
                continue;
            }
            // The shard a target must hold: the one no good copy holds, in
            // rotation order.
            let good_copies = Resolved {
                version: v.clone(),
                copies: w
                    .copies
                    .iter()
                    .enumerate()
                    .map(|(p, c)| if targets.contains(&p) { None } else { c.clone() })
                    .collect(),
            };
            let with_shards = missing_shards(&good_copies.copies, &targets, |p| self.shard_of(p, rotation));
            match self.rebuild(&good_copies, &layout, &with_shards).await {
                Ok(new) => {
                    for (pos, c) in new {
                        puts[pos].push(c);
                        report.repaired += 1;
                    }
                }
                Err(err) => {
                    tracing::warn!(%bucket, %key, error = %err, "heal could not rebuild a version");
                    report.failed += 1;
                }
            }
        }
        if puts.iter().any(|p| !p.is_empty()) {
            let k = object_key(bucket, key);
            let batches = records
                .into_iter()
                .zip(puts)
                .zip(hashes)
                .map(|((r, puts), hash)| {
                    if puts.is_empty() {
                        return None;
                    }
                    // A corrupt record is rewritten whatever it holds.
                    let hash = match &r {
                        Err(DriveError::Corrupt(_)) => return Some(corrupt_rewrite(bucket, &k, puts)),
                        _ => hash,
                    };
                    let old = r.ok().flatten().unwrap_or_default();
                    let mut rec = old.clone();
                    for v in puts {
                        rec.versions.retain(|x| !x.same_version(&v));
                        rec.add(v);
                    }
                    Some(record_ops(bucket, &k, hash, Weight::of(&old), &rec))
                })
                .collect();
            self.commit_each(batches).await;
        }
        report.removed = self.compact_locked(bucket, key).await;
        Ok(report)
    }
}

/// The ops that replace a record that does not decode with `puts`.
fn corrupt_rewrite(bucket: &str, k: &[u8], puts: Vec<Version>) -> Vec<RecordOp> {
    let mut rec = crate::meta::ObjectRecord::default();
    for v in puts {
        rec.add(v);
    }
    let mut ops = record_ops(bucket, k, None, Weight::default(), &rec);
    // No precondition: whatever is there does not decode.
    ops.retain(|op| !matches!(op, RecordOp::Check { .. }));
    ops
}

fn drive_err(e: DriveError) -> super::ObjectError {
    match e {
        DriveError::Full => super::ObjectError::DiskFull,
        other => super::ObjectError::Internal(other.to_string()),
    }
}

/// Progress of a heal walk, one line per event for `objd admin heal`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealProgress {
    pub bucket: String,
    pub objects: u64,
    #[serde(flatten)]
    pub totals: HealReport,
    pub done: bool,
}

impl ObjectLayer {
    /// Makes every drive hold exactly the buckets that exist, as they are.
    pub async fn heal_buckets(&self) -> ObjectResult<()> {
        // Under the bucket lock, towards what most drives hold now (in a
        // cluster this node's cache may trail another node's change).
        let _lock = self.coordinator().lock("buckets").await?;
        if self.shared {
            self.load_buckets().await?;
        }
        let buckets: Vec<(String, Vec<u8>)> = self
            .buckets
            .all()
            .into_iter()
            .map(|(n, r)| (n, r.encode()))
            .collect();
        for set in self.sets() {
            let buckets = buckets.clone();
            set.on_drives(move |_, d| {
                let held = d.scan(Table::Buckets, KeyRange::new(b"", b"\xff", usize::MAX))?;
                // Each change conditional on what the drive held.
                let check = |k: &[u8]| RecordOp::Check {
                    table: Table::Buckets,
                    key: k.to_vec(),
                    hash: held
                        .iter()
                        .find(|(hk, _)| hk.as_slice() == k)
                        .map(|(_, v)| crate::drive::value_hash(v)),
                };
                let mut ops: Vec<RecordOp> = Vec::new();
                for (n, v) in &buckets {
                    if !held.iter().any(|(k, hv)| k == n.as_bytes() && hv == v) {
                        ops.push(check(n.as_bytes()));
                        ops.push(RecordOp::Put {
                            table: Table::Buckets,
                            key: n.as_bytes().to_vec(),
                            value: v.clone(),
                        });
                    }
                }
                for (k, _) in &held {
                    if !buckets.iter().any(|(n, _)| n.as_bytes() == k.as_slice()) {
                        ops.push(check(k));
                        ops.push(RecordOp::Delete {
                            table: Table::Buckets,
                            key: k.clone(),
                        });
                    }
                }
                if ops.is_empty() {
                    Ok(())
                } else {
                    d.commit(ops).map(|_| ())
                }
            })
            .await;
        }
        Ok(())
    }

    /// Heals every object of `bucket` (or of all buckets), verifying shard
    /// checksums; calls `progress` after each bucket and every 1000 objects.
    /// `pace` sleeps that multiple of each object's heal time after it, so a
    /// background walk yields to client traffic.
    pub async fn heal_all(
        &self,
        bucket: Option<&str>,
        pace: f64,
        mut progress: impl FnMut(&HealProgress),
    ) -> ObjectResult<HealReport> {
        self.heal_buckets().await?;
        let buckets: Vec<String> = match bucket {
            Some(b) => {
                self.bucket(b)?;
                vec![b.to_owned()]
            }
            None => self.list_buckets().into_iter().map(|b| b.name).collect(),
        };
        let mut grand = HealReport::default();
        for b in buckets {
            let mut p = HealProgress {
                bucket: b.clone(),
                objects: 0,
                totals: HealReport::default(),
                done: false,
            };
            let mut after = String::new();
            loop {
                let keys = self.raw_keys(&b, &after, 1000).await?;
                let Some(last) = keys.last().cloned() else { break };
                for key in keys {
                    let t0 = std::time::Instant::now();
                    let set = Arc::clone(self.set_for(&b, &key));
                    let r = set.heal_object(&b, &key, true).await;
                    self.heal_counts.note(&r);
                    p.totals += r?;
                    p.objects += 1;
                    if p.objects.is_multiple_of(1000) {
                        progress(&p);
                    }
                    if pace > 0.0 {
                        tokio::time::sleep(t0.elapsed().mul_f64(pace)).await;
                    }
                }
                after = last;
            }
            p.done = true;
            progress(&p);
            grand += p.totals;
        }
        Ok(grand)
    }

    /// Runs the heal queue until the process ends.
    pub fn start_healer(self: &Arc<Self>) {
        let layer = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let keys = layer.heal.take(1, true).await;
                if keys.is_empty() {
                    return;
                }
                for (bucket, key) in keys {
                    let set = Arc::clone(layer.set_for(&bucket, &key));
                    if !set.all_online() {
                        layer.hints.add(&bucket, &key);
                    }
                    let r = set.heal_object(&bucket, &key, true).await;
                    layer.heal_counts.note(&r);
                    match r {
                        Ok(r) if r != HealReport::default() => {
                            tracing::info!(%bucket, %key, repaired = r.repaired, removed = r.removed, "healed");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(%bucket, %key, error = %e, "heal failed"),
                    }
                }
            }
        });
    }

    /// Walks every object every `interval`, healing at `pace` (see
    /// [`ObjectLayer::heal_all`]), then sweeps orphans older than
    /// [`ORPHAN_GRACE`]. Between walks it only sleeps.
    pub fn start_scanner(self: &Arc<Self>, interval: Duration, pace: f64) {
        let layer = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                match layer.heal_all(None, pace, |_| {}).await {
                    Ok(r) if r != HealReport::default() => {
                        tracing::info!(
                            repaired = r.repaired,
                            removed = r.removed,
                            failed = r.failed,
                            "scanner pass"
                        );
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "scanner pass failed"),
                }
                let cutoff = std::time::SystemTime::now() - ORPHAN_GRACE;
                layer.sweep_orphans(cutoff).await;
            }
        });
    }
}

/// How long the scanner leaves files no record names alone: longer than
/// any write takes between its first shard byte and its commit (a body
/// that stalls fails on the idle timeout long before).
pub const ORPHAN_GRACE: Duration = Duration::from_secs(3600);
