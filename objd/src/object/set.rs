//! One erasure set: `n` drives holding `k` data + `m` parity shards of each
//! object placed on it. Owns quorum rules (write quorum `k`, or `k + 1` when
//! `k == m`; read quorum `k`), the resolution of per-drive records into one
//! answer, and deletes. Writes, reads, multipart and heal extend it in their
//! own modules.

use super::heal::HealSender;
use super::locks::KeyLocks;
use super::usage::{Usage, Weight};
use super::{LayerConfig, ObjectError, ObjectResult, quorum_error};
use crate::drive::{CommitResult, Drive, DriveError, DriveResult, RecordOp, Table, object_key};
use crate::erasure::Layout;
use crate::meta::{DataLoc, Extras, ObjectRecord, Version, VersionId, VersionKind, Versioning};
use std::sync::Arc;

#[derive(Debug)]
pub struct ErasureSet {
    pub index: usize,
    pub(super) drives: Vec<Option<Arc<dyn Drive>>>,
    pub(super) layout: Layout,
    pub(super) config: LayerConfig,
    pub(super) seed: u64,
    pub(super) locks: KeyLocks,
    pub(super) heal: HealSender,
    usage: Arc<Usage>,
}

/// What a set shares with the rest of the layer.
pub struct SetParts {
    pub heal: HealSender,
    pub usage: Arc<Usage>,
}

/// What each drive holds for one key.
pub(super) type Records = Vec<DriveResult<Option<ObjectRecord>>>;

/// A version resolved by quorum, with each agreeing drive's own copy
/// (copies differ in shard index and inline bytes).
#[derive(Debug, Clone)]
pub struct Resolved {
    pub version: Version,
    /// `copies[drive position]`: that drive's copy if it agrees.
    pub copies: Vec<Option<Version>>,
}

impl ErasureSet {
    pub fn new(
        index: usize,
        drives: Vec<Option<Arc<dyn Drive>>>,
        parity: usize,
        config: LayerConfig,
        seed: u64,
        parts: SetParts,
    ) -> ObjectResult<Self> {
        let n = drives.len();
        let layout = Layout::new(n - parity, parity, config.block_size)
            .map_err(|e| ObjectError::Internal(e.to_string()))?;
        Ok(Self {
            index,
            drives,
            layout,
            config,
            seed,
            locks: KeyLocks::new(),
            heal: parts.heal,
            usage: parts.usage,
        })
    }

    pub fn drive_count(&self) -> usize {
        self.drives.len()
    }

    pub fn drives(&self) -> &[Option<Arc<dyn Drive>>] {
        &self.drives
    }

    pub fn online_drives(&self) -> Vec<Arc<dyn Drive>> {
        self.drives.iter().flatten().cloned().collect()
    }

    pub fn parity(&self) -> usize {
        self.layout.parity
    }

    pub fn write_quorum(&self) -> usize {
        if self.layout.data == self.layout.parity {
            self.layout.data + 1
        } else {
            self.layout.data
        }
    }

    pub fn read_quorum(&self) -> usize {
        self.layout.data
    }

    /// Rotation of shards over drives for a key.
    pub(super) fn rotation(&self, bucket: &str, key: &str) -> usize {
        (super::placement_hash(self.seed ^ 0x9e37_79b9, bucket, key) % self.drives.len() as u64) as usize
    }

    /// Shard index held by drive `pos` for an object with `rotation`.
    pub(super) fn shard_of(&self, pos: usize, rotation: usize) -> usize {
        (pos + rotation) % self.drives.len()
    }

    /// Runs `f` on every drive in parallel; offline drives yield `Offline`.
    pub(super) async fn on_drives<T, F>(&self, f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(usize, &dyn Drive) -> DriveResult<T> + Send + Sync + Clone + 'static,
    {
        let tasks: Vec<_> = self
            .drives
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let d = d.clone();
                let f = f.clone();
                async move {
                    match d {
                        None => Err(DriveError::Offline),
                        Some(d) => tokio::task::spawn_blocking(move || f(i, d.as_ref()))
                            .await
                            .unwrap_or(Err(DriveError::Offline)),
                    }
                }
            })
            .collect();
        futures::future::join_all(tasks).await
    }

    /// Runs a quick metadata operation on every drive, one after the other
    /// in a single blocking task: for index lookups that take microseconds,
    /// one thread hand-off beats one per drive.
    pub(super) async fn on_drives_seq<T, F>(&self, f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(usize, &dyn Drive) -> DriveResult<T> + Send + 'static,
    {
        let drives = self.drives.clone();
        tokio::task::spawn_blocking(move || {
            drives
                .iter()
                .enumerate()
                .map(|(i, d)| match d {
                    Some(d) => f(i, d.as_ref()),
                    None => Err(DriveError::Offline),
                })
                .collect()
        })
        .await
        .unwrap_or_else(|_| (0..self.drives.len()).map(|_| Err(DriveError::Offline)).collect())
    }

    /// Commits `ops[i]` on drive `i` (where given) without holding threads
    /// while the drives fsync.
    pub(super) async fn commit_each(&self, ops: Vec<Option<Vec<RecordOp>>>) -> Vec<CommitResult> {
        let waits: Vec<_> = self
            .drives
            .iter()
            .zip(ops)
            .map(|(d, ops)| {
                let (tx, rx) = tokio::sync::oneshot::channel();
                match (d, ops) {
                    (Some(d), Some(ops)) => d.commit_async(
                        ops,
                        Box::new(move |r| {
                            let _ = tx.send(r);
                        }),
                    ),
                    _ => {
                        let _ = tx.send(Err(DriveError::Offline));
                    }
                }
                async move { rx.await.unwrap_or(Err(DriveError::Offline)) }
            })
            .collect();
        futures::future::join_all(waits).await
    }

    /// Commits `ops[i]` on drive `i` and requires write quorum of them.
    pub(super) async fn commit_quorum(&self, ops: Vec<Option<Vec<RecordOp>>>) -> ObjectResult<()> {
        let results = self.commit_each(ops).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok < self.write_quorum() {
            let errs: Vec<DriveError> = results.into_iter().filter_map(Result::err).collect();
            return Err(quorum_error(&errs, ok, self.write_quorum()));
        }
        Ok(())
    }

    pub(super) async fn read_records(&self, bucket: &str, key: &str) -> Records {
        let k = object_key(bucket, key);
        self.on_drives_seq(move |_, d| {
            d.get(Table::Objects, &k)?
                .map(|b| ObjectRecord::decode(&b).map_err(|e| DriveError::Corrupt(e.to_string())))
                .transpose()
        })
        .await
    }

    /// Picks the version (latest, or `want`) that at least read-quorum
    /// drives agree on.
    pub(super) fn resolve(&self, records: &Records, want: Option<VersionId>) -> ObjectResult<Resolved> {
        let n = self.drives.len();
        let pick = |r: &ObjectRecord| -> Option<Version> {
            match want {
                None => r.latest().cloned(),
                Some(id) => r.versions.iter().find(|v| v.id == id).cloned(),
            }
        };
        let mut absent = 0usize;
        let mut candidates: Vec<(usize, Version)> = Vec::new();
        for (i, r) in records.iter().enumerate() {
            match r {
                Ok(Some(rec)) => match pick(rec) {
                    Some(v) => candidates.push((i, v)),
                    None => absent += 1,
                },
                Ok(None) => absent += 1,
                Err(_) => {}
            }
        }
        let mut best: Option<Resolved> = None;
        for (_, v) in &candidates {
            let copies: Vec<Option<Version>> = (0..n)
                .map(|i| {
                    candidates
                        .iter()
                        .find(|(j, c)| *j == i && c.same_version(v))
                        .map(|(_, c)| c.clone())
                })
                .collect();
            let count = copies.iter().flatten().count();
            if count >= self.read_quorum()
                && best
                    .as_ref()
                    .is_none_or(|b| v.mod_time_ns > b.version.mod_time_ns)
            {
                best = Some(Resolved {
                    version: v.clone(),
                    copies,
                });
            }
        }
        match best {
            Some(b) => Ok(b),
            None if absent > n - self.read_quorum() || candidates.is_empty() && absent > 0 => {
                Err(if want.is_some() {
                    ObjectError::NoSuchVersion
                } else {
                    ObjectError::NoSuchKey
                })
            }
            None => Err(ObjectError::ReadQuorum),
        }
    }

    /// Every version that read-quorum drives agree on, newest first.
    pub(super) fn resolve_all(&self, records: &Records) -> Vec<Version> {
        let mut seen: Vec<(Version, usize)> = Vec::new();
        for rec in records
            .iter()
            .filter_map(|r| r.as_ref().ok().and_then(|r| r.as_ref()))
        {
            for v in &rec.versions {
                match seen.iter_mut().find(|(s, _)| s.same_version(v)) {
                    Some((_, n)) => *n += 1,
                    None => seen.push((v.clone(), 1)),
                }
            }
        }
        let mut out: Vec<Version> = seen
            .into_iter()
            .filter(|(_, n)| *n >= self.read_quorum())
            .map(|(v, _)| v)
            .collect();
        out.sort_by_key(|v| std::cmp::Reverse(v.mod_time_ns));
        out
    }

    /// The key's current object (`None`: no key, or a delete marker).
    pub(super) fn current(&self, records: &Records) -> ObjectResult<Option<Version>> {
        match self.resolve(records, None) {
            Ok(r) if !r.version.is_delete_marker() => Ok(Some(r.version)),
            Ok(_) | Err(ObjectError::NoSuchKey) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Changes the extras (tags, retention, legal hold) of one version (the
    /// latest when `version` is `None`) in place, under the key lock, after
    /// `check` accepts the version as it is; returns the changed version.
    pub(super) async fn update_extras<C, A>(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        check: C,
        apply: A,
    ) -> ObjectResult<Version>
    where
        C: FnOnce(&Version) -> ObjectResult<()>,
        A: Fn(&mut Extras) + Send + Sync + Clone + 'static,
    {
        let _guard = self.locks.lock(bucket, key).await;
        let records = self.read_records(bucket, key).await;
        let mut target = self.resolve(&records, version)?.version;
        if target.is_delete_marker() {
            return Err(ObjectError::DeleteMarker {
                version_id: target.id.to_api(),
                requested: version.is_some(),
            });
        }
        check(&target)?;
        let id = target.id;
        let change = apply.clone();
        self.update_record(bucket, key, records, vec![], move |_, rec| {
            let v = rec
                .versions
                .iter_mut()
                .find(|v| v.id == id)
                .ok_or(ObjectError::NoSuchVersion)?;
            change(&mut v.extras);
            Ok(vec![])
        })
        .await?;
        apply(&mut target.extras);
        Ok(target)
    }

    /// Applies `change` to each drive's record of the key and commits it. Rolls back when fewer than write-quorum drives
    /// commit. Returns the versions `change` removed (from the first drive
    /// that committed), whose data the caller may now delete.
    /// The caller holds the key lock and passes the records it read under it.
    pub(super) async fn update_record<F>(
        &self,
        bucket: &str,
        key: &str,
        records: Records,
        extra_ops: Vec<RecordOp>,
        change: F,
    ) -> ObjectResult<Vec<Version>>
    where
        F: Fn(usize, &mut ObjectRecord) -> ObjectResult<Vec<Version>> + Send + Sync + Clone + 'static,
    {
        let k = object_key(bucket, key);
        let mut plans: Vec<Option<(RecordOp, Vec<Version>)>> = Vec::with_capacity(records.len());
        let mut deltas: Vec<Weight> = Vec::new();
        let mut first_err = None;
        for (i, r) in records.into_iter().enumerate() {
            let plan = match r {
                Ok(rec) => {
                    let mut rec = rec.unwrap_or_default();
                    let before = Weight::of(&rec);
                    match change(i, &mut rec) {
                        Ok(removed) => {
                            deltas.push(Weight::of(&rec).minus(before));
                            let op = if rec.versions.is_empty() {
                                RecordOp::Delete {
                                    table: Table::Objects,
                                    key: k.clone(),
                                }
                            } else {
                                RecordOp::Put {
                                    table: Table::Objects,
                                    key: k.clone(),
                                    value: rec.encode(),
                                }
                            };
                            Some((op, removed))
                        }
                        Err(e) => {
                            first_err.get_or_insert(e);
                            None
                        }
                    }
                }
                Err(_) => None,
            };
            plans.push(plan);
        }
        let planned = plans.iter().flatten().count();
        if planned < self.write_quorum() {
            return Err(first_err.unwrap_or(ObjectError::WriteQuorum {
                ok: planned,
                need: self.write_quorum(),
            }));
        }
        // The change's weight, as most drives see it (a drive that missed
        // earlier changes may differ until healed); admitted against the
        // bucket's quota before anything is committed.
        let reservation = self.usage.reserve(bucket, most_common(&deltas))?;
        let ops: Vec<Option<RecordOp>> = plans
            .iter()
            .map(|p| p.as_ref().map(|(op, _)| op.clone()))
            .collect();
        let batches = ops
            .into_iter()
            .map(|op| {
                op.map(|op| {
                    let mut all = vec![op];
                    all.extend(extra_ops.iter().cloned());
                    all
                })
            })
            .collect();
        let results: Vec<DriveResult<Option<Vec<u8>>>> = self
            .commit_each(batches)
            .await
            .into_iter()
            .map(|r| r.map(|mut prev| prev.swap_remove(0)))
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok < self.write_quorum() {
            // Put back what the drives that did commit held before.
            let prev: Vec<Option<RecordOp>> = results
                .iter()
                .map(|r| {
                    r.as_ref().ok().map(|p| match p {
                        Some(v) => RecordOp::Put {
                            table: Table::Objects,
                            key: k.clone(),
                            value: v.clone(),
                        },
                        None => RecordOp::Delete {
                            table: Table::Objects,
                            key: k.clone(),
                        },
                    })
                })
                .collect();
            self.commit_each(prev.into_iter().map(|op| op.map(|op| vec![op])).collect())
                .await;
            let errs: Vec<DriveError> = results.into_iter().filter_map(Result::err).collect();
            return Err(quorum_error(&errs, ok, self.write_quorum()));
        }
        reservation.apply();
        if ok < self.drives.len() {
            self.heal.queue(bucket, key);
        }
        let removed = plans
            .into_iter()
            .zip(&results)
            .find(|(_, r)| r.is_ok())
            .and_then(|(p, _)| p.map(|(_, rm)| rm))
            .unwrap_or_default();
        Ok(removed)
    }

    /// Deletes the data directories of versions that are no longer referenced.
    pub(super) async fn remove_data(&self, removed: Vec<Version>) {
        let dirs: Vec<[u8; 16]> = removed
            .iter()
            .filter_map(|v| match v.data {
                DataLoc::Dir(d) => Some(d),
                _ => None,
            })
            .collect();
        if dirs.is_empty() {
            return;
        }
        self.on_drives(move |_, d| {
            for dir in &dirs {
                d.remove_data_dir(dir)?;
            }
            Ok(())
        })
        .await;
    }

    pub(super) async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        versioning: Versioning,
        bypass_governance: bool,
    ) -> ObjectResult<(Option<String>, bool)> {
        let _guard = self.locks.lock(bucket, key).await;
        let records = self.read_records(bucket, key).await;
        match version {
            Some(id) => {
                // Deleting a version that does not exist is not an error in S3.
                let resolved = match self.resolve(&records, Some(id)) {
                    Ok(r) => r,
                    Err(ObjectError::NoSuchVersion) => return Ok((Some(id.to_api()), false)),
                    Err(e) => return Err(e),
                };
                if !resolved.version.is_delete_marker() {
                    super::lock::check_delete(&resolved.version, bypass_governance)?;
                }
                let removed = self
                    .update_record(bucket, key, records, vec![], move |_, rec| {
                        Ok(rec.remove_version(id).into_iter().collect())
                    })
                    .await?;
                self.remove_data(removed).await;
                Ok((Some(id.to_api()), resolved.version.is_delete_marker()))
            }
            None if versioning == Versioning::Unversioned => {
                match self.resolve(&records, None) {
                    Ok(_) | Err(ObjectError::NoSuchKey) => {}
                    Err(e) => return Err(e),
                }
                let removed = self
                    .update_record(bucket, key, records, vec![], |_, rec| {
                        Ok(rec.remove_version(VersionId::NULL).into_iter().collect())
                    })
                    .await?;
                self.remove_data(removed).await;
                Ok((None, false))
            }
            None => {
                let id = if versioning == Versioning::Enabled {
                    VersionId::random()
                } else {
                    VersionId::NULL
                };
                let mod_time_ns = next_mod_time(&records);
                let layout = self.layout;
                let marker = Version {
                    id,
                    mod_time_ns,
                    kind: VersionKind::DeleteMarker,
                    size: 0,
                    etag: String::new(),
                    headers: vec![],
                    user_meta: vec![],
                    erasure: crate::meta::ErasureInfo {
                        data: layout.data as u8,
                        parity: layout.parity as u8,
                        shard_index: 0,
                        hash_algo: crate::erasure::bitrot::ALGO_XXH3_64,
                        block_size: layout.block_size,
                    },
                    parts: vec![],
                    data: DataLoc::None,
                    extras: Default::default(),
                };
                let removed = self
                    .update_record(bucket, key, records, vec![], move |_, rec| {
                        Ok(rec.put_version(marker.clone()).into_iter().collect())
                    })
                    .await?;
                self.remove_data(removed).await;
                Ok((Some(id.to_api()), true))
            }
        }
    }
}

/// A modification time later than every version the drives hold, so the
/// newest write is also the latest version even if the clock stepped back.
pub(super) fn next_mod_time(records: &Records) -> i64 {
    let latest = records
        .iter()
        .filter_map(|r| r.as_ref().ok().and_then(|r| r.as_ref()).and_then(|r| r.latest()))
        .map(|v| v.mod_time_ns)
        .max();
    super::now_ns().max(latest.map_or(0, |t| t + 1))
}

/// Rolls back shard files written for a version that did not commit.
pub(super) async fn discard_dir(set: &ErasureSet, dir: [u8; 16]) {
    set.on_drives(move |_, d| d.remove_data_dir(&dir)).await;
}

/// The value most of `values` have (the first of equally common ones).
fn most_common(values: &[Weight]) -> Weight {
    let mut best = (Weight::default(), 0);
    for v in values {
        let n = values.iter().filter(|x| *x == v).count();
        if n > best.1 {
            best = (*v, n);
        }
    }
    best.0
}
