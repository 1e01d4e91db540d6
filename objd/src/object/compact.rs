//! Compaction, the second step of every change: once a change is on write
//! quorum, the entries it superseded (and tombstones that have done their
//! work) are dropped from each drive's record, then the data directories
//! only they referenced. A change queues its key here after it commits;
//! the next change of the key does the same work in its own commit, and
//! reads, listings, heal and the scanner queue keys they find untidy (after
//! a crash, say). What may be dropped is decided by [`super::resolve`]; a
//! crash at any point of a compaction leaves every answer as it was.

use super::set::record_ops;
use super::usage::Weight;
use super::{ErasureSet, ObjectLayer};
use crate::drive::{Table, object_key};
use crate::meta::{ObjectRecord, Version};
use futures::StreamExt;
use std::sync::Arc;

/// Keys compacted at once by the worker, so that their commits share
/// transactions on each drive.
const CONCURRENCY: usize = 32;

impl ErasureSet {
    /// Compacts one key under its lock; returns the entries dropped.
    pub(super) async fn compact_key(&self, bucket: &str, key: &str) -> usize {
        let _guard = self.locks.lock(bucket, key).await;
        self.compact_locked(bucket, key).await
    }

    /// [`ErasureSet::compact_key`] for a caller holding the key lock. A
    /// tombstone goes one pass after the entries it hid, so this repeats
    /// while passes make progress (three at most).
    pub(super) async fn compact_locked(&self, bucket: &str, key: &str) -> usize {
        let k = object_key(bucket, key);
        let mut total = 0;
        for _ in 0..3 {
            let (records, hashes) = self.read_records_hashed(bucket, key).await;
            let drops = self.view(&records).drops();
            let mut distinct: Vec<&Version> = Vec::new();
            for v in drops.iter().flatten() {
                if !distinct.iter().any(|d| d.same_version(v)) {
                    distinct.push(v);
                }
            }
            if distinct.is_empty() {
                break;
            }
            let count = distinct.len();
            let plans: Vec<Option<(ObjectRecord, ObjectRecord)>> = records
                .into_iter()
                .zip(&drops)
                .map(|(r, d)| match r {
                    Ok(Some(old)) if !d.is_empty() => {
                        let mut rec = old.clone();
                        rec.versions.retain(|v| !d.iter().any(|x| x.same_version(v)));
                        Some((old, rec))
                    }
                    _ => None,
                })
                .collect();
            let results = self
                .commit_each(
                    plans
                        .iter()
                        .zip(&hashes)
                        .zip(&drops)
                        .map(|((p, h), dropped)| {
                            p.as_ref().map(|(old, new)| {
                                let mut ops = record_ops(bucket, &k, *h, Weight::of(old), new);
                                ops.extend(super::cold::drop_rows(bucket, key, dropped, new));
                                ops
                            })
                        })
                        .collect(),
                )
                .await;
            let committed: Vec<Option<(Vec<Version>, ObjectRecord)>> = plans
                .into_iter()
                .zip(results)
                .zip(drops)
                .map(|((p, r), d)| match (p, r) {
                    (Some((_, rec)), Ok(_)) => Some((d, rec)),
                    _ => None,
                })
                .collect();
            if committed.iter().all(Option::is_none) {
                break;
            }
            self.remove_dropped_data(bucket, key, committed).await;
            total += count;
        }
        total
    }

    /// After drives committed records without the `dropped` entries:
    /// removes, on each of those drives, the data directories that only
    /// dropped entries referenced (not one a remaining entry uses, nor the
    /// directory of an upload of this key the drive still records).
    pub(super) async fn remove_dropped_data(
        &self,
        bucket: &str,
        key: &str,
        committed: Vec<Option<(Vec<Version>, ObjectRecord)>>,
    ) {
        let per_drive: Vec<Vec<[u8; 16]>> = committed
            .iter()
            .map(|c| {
                let Some((dropped, rec)) = c else {
                    return vec![];
                };
                let mut dirs: Vec<[u8; 16]> = dropped
                    .iter()
                    .filter_map(Version::dir)
                    .filter(|d| !rec.versions.iter().any(|v| v.dir() == Some(*d)))
                    .collect();
                dirs.sort_unstable();
                dirs.dedup();
                dirs
            })
            .collect();
        if committed
            .iter()
            .flatten()
            .any(|(dropped, rec)| super::cold::orphaned(dropped, rec).next().is_some())
        {
            self.wake_cold_sweep();
        }
        // Directories being streamed go when their last reader is done.
        let mut per_drive = per_drive;
        let mut all: Vec<[u8; 16]> = per_drive.iter().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        for dir in all {
            let at: Vec<usize> = (0..per_drive.len())
                .filter(|p| per_drive[*p].contains(&dir))
                .collect();
            if self.leases.defer(dir, bucket, key, &at) {
                for dirs in &mut per_drive {
                    dirs.retain(|d| *d != dir);
                }
            }
        }
        self.remove_dirs(bucket, key, per_drive).await;
    }

    /// Removes data directories of `bucket/key` (`per_drive[position]`),
    /// but not the directory of an upload of this key a drive still
    /// records.
    pub(super) async fn remove_dirs(&self, bucket: &str, key: &str, per_drive: Vec<Vec<[u8; 16]>>) {
        if per_drive.iter().all(Vec::is_empty) {
            return;
        }
        let per_drive = Arc::new(per_drive);
        let (b, k) = (bucket.to_owned(), key.to_owned());
        self.on_drives(move |pos, d| {
            for dir in &per_drive[pos] {
                if d.get(Table::Uploads, &super::multipart::upload_key(&b, &k, dir))?
                    .is_none()
                {
                    d.remove_data_dir(dir)?;
                }
            }
            Ok(())
        })
        .await;
    }
}

impl ObjectLayer {
    async fn compact_keys(&self, keys: Vec<(String, String)>) -> usize {
        futures::stream::iter(keys)
            .map(|(b, k)| async move {
                let set = Arc::clone(self.set_for(&b, &k));
                set.compact_key(&b, &k).await
            })
            .buffer_unordered(CONCURRENCY)
            .fold(0, |acc, n| async move { acc + n })
            .await
    }

    /// Compacts every key queued so far; returns the entries dropped. The
    /// worker does this in the background; tests call it to finish the
    /// second step of the changes they made.
    pub async fn compact_queued(&self) -> usize {
        let mut total = 0;
        loop {
            let keys = self.compact.take(256, false).await;
            if keys.is_empty() {
                return total;
            }
            total += self.compact_keys(keys).await;
        }
    }

    /// Runs the compaction queue until the process ends.
    pub fn start_compactor(self: &Arc<Self>) {
        let layer = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let keys = layer.compact.take(256, true).await;
                if keys.is_empty() {
                    return;
                }
                layer.compact_keys(keys).await;
            }
        });
    }
}
