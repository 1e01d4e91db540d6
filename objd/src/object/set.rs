//! One erasure set: `n` drives holding `k` data + `m` parity shards of each
//! object placed on it. Owns quorum rules (write quorum `k`, or `k + 1` when
//! `k == m`; read quorum `k`), the resolution of per-drive records into one
//! answer, and deletes. Writes, reads, multipart and heal extend it in their
//! own modules.

use super::locks::KeyLocks;
use super::queue::KeySender;
use super::resolve::KeyView;
use super::usage::{Usage, Weight};
use super::{LayerConfig, ObjectError, ObjectResult, quorum_error};
use crate::drive::{CommitResult, Drive, DriveError, DriveResult, RecordOp, Table, object_key};
use crate::erasure::Layout;
use crate::meta::{Extras, ObjectRecord, Version, VersionId, VersionKind, Versioning};
use std::sync::Arc;

#[derive(Debug)]
pub struct ErasureSet {
    pub index: usize,
    pub(super) drives: Vec<Option<Arc<dyn Drive>>>,
    pub(super) layout: Layout,
    pub(super) config: LayerConfig,
    pub(super) seed: u64,
    pub(super) locks: KeyLocks,
    pub(super) heal: KeySender,
    pub(super) compact: KeySender,
    usage: Arc<Usage>,
    pub(super) buckets: Arc<super::buckets::BucketCache>,
    /// The remote tiers' store, for versions whose data lives there.
    pub(super) cold: super::cold::ColdSlot,
    /// Data directories readers are streaming.
    pub(super) leases: super::leases::Leases,
    /// Some drives are other nodes'.
    has_remote: bool,
    /// Per drive position, the I/O calls it may run at once.
    slots: Vec<Arc<tokio::sync::Semaphore>>,
}

/// I/O calls one local drive runs at once. More wait their turn without
/// holding a thread: many streams do not thrash one disk, and a slow or
/// hung disk holds at most this many threads.
const LOCAL_DRIVE_SLOTS: usize = 8;
/// The same for another node's drive, whose calls mostly wait on the
/// network.
const REMOTE_DRIVE_SLOTS: usize = 32;

/// What a set shares with the rest of the layer.
pub struct SetParts {
    pub heal: KeySender,
    pub compact: KeySender,
    pub usage: Arc<Usage>,
    pub buckets: Arc<super::buckets::BucketCache>,
    pub cold: super::cold::ColdSlot,
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
        let has_remote = drives.iter().flatten().any(|d| d.is_remote());
        let slots = drives
            .iter()
            .map(|d| {
                let n = match d {
                    Some(d) if d.is_remote() => REMOTE_DRIVE_SLOTS,
                    _ => LOCAL_DRIVE_SLOTS,
                };
                Arc::new(tokio::sync::Semaphore::new(n))
            })
            .collect();
        Ok(Self {
            index,
            drives,
            layout,
            config,
            seed,
            locks: KeyLocks::new(),
            heal: parts.heal,
            compact: parts.compact,
            usage: parts.usage,
            buckets: parts.buckets,
            cold: parts.cold,
            leases: Default::default(),
            has_remote,
            slots,
        })
    }

    pub fn drive_count(&self) -> usize {
        self.drives.len()
    }

    pub fn drives(&self) -> &[Option<Arc<dyn Drive>>] {
        &self.drives
    }

    /// Whether every drive of the set is there and reachable.
    pub fn all_online(&self) -> bool {
        self.drives
            .iter()
            .all(|d| d.as_ref().is_some_and(|d| d.is_online()))
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

    /// The I/O slots of drive position `pos`.
    pub(super) fn slots(&self, pos: usize) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.slots[pos])
    }

    /// Runs blocking I/O `f` of drive position `pos` on a blocking thread
    /// once one of the drive's slots is free. The slot is held until `f`
    /// returns, also when the caller stopped waiting for it.
    pub(super) async fn drive_task<T: Send + 'static>(
        &self,
        pos: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> DriveResult<T> {
        let slot = self
            .slots(pos)
            .acquire_owned()
            .await
            .map_err(|_| DriveError::Offline)?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f()
        })
        .await
        .map_err(|_| DriveError::Offline)
    }

    /// Runs `f` on every drive in parallel; offline drives yield `Offline`,
    /// and drives that do not answer within the drive timeout `Timeout`.
    pub(super) async fn on_drives<T, F>(&self, f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(usize, &dyn Drive) -> DriveResult<T> + Send + Sync + Clone + 'static,
    {
        let all: Vec<usize> = (0..self.drives.len()).collect();
        self.on_drives_in(&all, f).await
    }

    /// [`ErasureSet::on_drives`] on the drive positions `which`, answers in
    /// that order.
    pub(super) async fn on_drives_in<T, F>(&self, which: &[usize], f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(usize, &dyn Drive) -> DriveResult<T> + Send + Sync + Clone + 'static,
    {
        let timeout = self.config.drive_timeout;
        let tasks: Vec<_> = which
            .iter()
            .map(|&i| {
                let d = self.drives[i].clone();
                let f = f.clone();
                async move {
                    match d {
                        None => Err(DriveError::Offline),
                        Some(d) => {
                            let task = self.drive_task(i, move || f(i, d.as_ref()));
                            match super::within(timeout, task).await {
                                Ok(r) => r.unwrap_or(Err(DriveError::Offline)),
                                Err(_) => Err(DriveError::Timeout),
                            }
                        }
                    }
                }
            })
            .collect();
        futures::future::join_all(tasks).await
    }

    /// Runs a quick metadata operation on every drive, one after the other
    /// in a single blocking task: for index lookups that take microseconds,
    /// one thread hand-off beats one per drive. When some drives are other
    /// nodes' (a network round trip each), they all run at once instead.
    pub(super) async fn on_drives_seq<T, F>(&self, f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(usize, &dyn Drive) -> DriveResult<T> + Send + Sync + Clone + 'static,
    {
        if self.has_remote {
            return self.on_drives(f).await;
        }
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
    /// while the drives fsync. A drive that does not answer within the
    /// drive timeout counts as failed (its commit may still land later: a
    /// change short of quorum is invisible, and compaction settles it).
    pub(super) async fn commit_each(&self, ops: Vec<Option<Vec<RecordOp>>>) -> Vec<CommitResult> {
        let timeout = self.config.drive_timeout;
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
                async move {
                    match super::within(timeout, rx).await {
                        Ok(r) => r.unwrap_or(Err(DriveError::Offline)),
                        Err(_) => Err(DriveError::Timeout),
                    }
                }
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
        self.read_records_with(bucket, key, false).await.0
    }

    /// [`ErasureSet::read_records`], with the hash of each record as read
    /// (for the precondition of a change computed from it).
    pub(super) async fn read_records_hashed(&self, bucket: &str, key: &str) -> (Records, Vec<Option<u64>>) {
        self.read_records_with(bucket, key, true).await
    }

    /// Reads, the hashes only when asked (reads that change nothing skip
    /// hashing every record).
    async fn read_records_with(&self, bucket: &str, key: &str, hash: bool) -> (Records, Vec<Option<u64>>) {
        let k = object_key(bucket, key);
        let read = self
            .on_drives_seq(move |_, d| {
                let raw = d.get(Table::Objects, &k)?;
                let h = raw.as_deref().filter(|_| hash).map(crate::drive::value_hash);
                let rec = raw
                    .map(|b| ObjectRecord::decode(&b).map_err(|e| DriveError::Corrupt(e.to_string())))
                    .transpose()?;
                Ok((rec, h))
            })
            .await;
        let hashes = read
            .iter()
            .map(|r| r.as_ref().ok().and_then(|(_, h)| *h))
            .collect();
        (read.into_iter().map(|r| r.map(|(rec, _)| rec)).collect(), hashes)
    }

    /// The key as these records show it (see [`super::resolve`]).
    pub(super) fn view(&self, records: &Records) -> KeyView {
        KeyView::new(records, self.read_quorum(), self.write_quorum())
    }

    /// Picks the version (latest, or `want`) by quorum.
    pub(super) fn resolve(&self, records: &Records, want: Option<VersionId>) -> ObjectResult<Resolved> {
        self.view(records).resolve(want)
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
    /// latest when `version` is `None`) under the key lock, after `check`
    /// accepts the version as it is; returns the changed version. The
    /// change is a newer entry of the version on each drive that holds it,
    /// sharing its data.
    pub(super) async fn update_extras<C, A>(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        check: C,
        apply: A,
    ) -> ObjectResult<Version>
    where
        C: FnOnce(&Version) -> ObjectResult<()>,
        A: Fn(&mut Extras),
    {
        self.update_entry(bucket, key, version, check, |v| apply(&mut v.extras), vec![])
            .await
    }

    /// [`ErasureSet::update_extras`] for any change of a version's entry
    /// that keeps its id and times (its extras, where its data lives),
    /// with `extra_ops` in each drive's commit.
    pub(super) async fn update_entry<C, A>(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        check: C,
        apply: A,
        extra_ops: Vec<RecordOp>,
    ) -> ObjectResult<Version>
    where
        C: FnOnce(&Version) -> ObjectResult<()>,
        A: Fn(&mut Version),
    {
        let mut guard = self.locks.lock(bucket, key).await;
        let (mut records, mut hashes) = self.read_records_hashed(bucket, key).await;
        let mut view = self.view(&records);
        let mut target = view.resolve(version)?;
        if target.copies.iter().flatten().count() < self.write_quorum() {
            // Readable, but on too few drives to take a change (after a
            // crash, say): heal it first.
            drop(guard);
            self.heal_object(bucket, key, false).await?;
            guard = self.locks.lock(bucket, key).await;
            (records, hashes) = self.read_records_hashed(bucket, key).await;
            view = self.view(&records);
            target = view.resolve(version)?;
        }
        let _guard = guard;
        if target.version.is_delete_marker() {
            return Err(ObjectError::DeleteMarker {
                version_id: target.version.id.to_api(),
                requested: version.is_some(),
            });
        }
        check(&target.version)?;
        let stamp = next_mod_time(&view);
        let adds = target
            .copies
            .iter()
            .map(|c| {
                c.as_ref().map(|c| {
                    let mut c = c.clone();
                    c.stamp = stamp;
                    apply(&mut c);
                    vec![c]
                })
            })
            .collect();
        let mut change = Change::new(adds);
        change.extra_ops = extra_ops;
        self.apply_change(bucket, key, (records, hashes), &view, change)
            .await?;
        let mut changed = target.version;
        changed.stamp = stamp;
        apply(&mut changed);
        Ok(changed)
    }

    /// Commits `change` on each drive that takes it: the drive's record
    /// gains the change's entries and loses the entries `view` finds
    /// settled (compaction riding along). Needs write quorum of drives;
    /// when fewer commit, those that did are put back to what they held.
    /// The caller holds the key lock and passes the records it read under
    /// it and their view.
    pub(super) async fn apply_change(
        &self,
        bucket: &str,
        key: &str,
        (records, hashes): (Records, Vec<Option<u64>>),
        view: &KeyView,
        change: Change,
    ) -> ObjectResult<()> {
        let k = object_key(bucket, key);
        // Held until the commit (or its undo) is done.
        let _admitted = self.buckets.admit(bucket)?;
        let drops = view.drops();
        let delta = change.delta(view);
        let supersedes = change
            .adds
            .iter()
            .flatten()
            .flatten()
            .any(|a| a.is_tombstone() || view.entries.iter().any(|e| e.version.id == a.id));
        let mut plans: Vec<Option<ObjectRecord>> = Vec::with_capacity(records.len());
        // What each drive's record weighed before, for its usage counters.
        let mut olds: Vec<Weight> = Vec::with_capacity(records.len());
        for (pos, (r, add)) in records.into_iter().zip(change.adds).enumerate() {
            // A drive that did not answer (or whose record does not decode)
            // does not take the change.
            let (answered, old) = match r {
                Ok(rec) => (true, rec.unwrap_or_default()),
                Err(_) => (false, ObjectRecord::default()),
            };
            olds.push(Weight::of(&old));
            plans.push(add.filter(|_| answered).map(|add| {
                let mut rec = old;
                rec.versions
                    .retain(|v| !drops[pos].iter().any(|d| d.same_version(v)));
                for v in add {
                    rec.add(v);
                }
                rec
            }));
        }
        let planned = plans.iter().flatten().count();
        if planned < self.write_quorum() {
            return Err(ObjectError::WriteQuorum {
                ok: planned,
                need: self.write_quorum(),
            });
        }
        // Admitted against the bucket's quota before anything is committed.
        let reservation = self.usage.reserve(bucket, delta)?;
        let batches: Vec<Option<Vec<RecordOp>>> = plans
            .iter()
            .zip(&olds)
            .zip(&hashes)
            .zip(&drops)
            .map(|(((p, old), hash), dropped)| {
                p.as_ref().map(|rec| {
                    let mut all = record_ops(bucket, &k, *hash, *old, rec);
                    all.extend(change.extra_ops.iter().cloned());
                    all.extend(super::cold::drop_rows(bucket, key, dropped, rec));
                    all
                })
            })
            .collect();
        let results = self.commit_each(batches.clone()).await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok < self.write_quorum() {
            // Put back what the drives that did commit held before, every op
            // of the change. Should this fail too (or the process die
            // first), the entries left behind lack quorum and change nothing
            // any reader sees.
            let undo: Vec<Option<Vec<RecordOp>>> = results
                .iter()
                .zip(&batches)
                .map(|(r, ops)| {
                    let (prev, ops) = (r.as_ref().ok()?, ops.as_ref()?);
                    // Only while the drive still holds what was committed.
                    let mut undo: Vec<RecordOp> = ops
                        .iter()
                        .filter_map(|op| match op {
                            RecordOp::Put { table, key, value } if *table == Table::Objects => {
                                Some(RecordOp::Check {
                                    table: *table,
                                    key: key.clone(),
                                    hash: Some(crate::drive::value_hash(value)),
                                })
                            }
                            RecordOp::Delete { table, key } if *table == Table::Objects => {
                                Some(RecordOp::Check {
                                    table: *table,
                                    key: key.clone(),
                                    hash: None,
                                })
                            }
                            _ => None,
                        })
                        .collect();
                    undo.extend(
                        ops.iter()
                            .zip(prev)
                            .filter(|(op, _)| !matches!(op, RecordOp::Check { .. }))
                            .map(|(op, p)| undo_op(op, p.clone())),
                    );
                    Some(undo)
                })
                .collect();
            self.commit_each(undo).await;
            let errs: Vec<DriveError> = results.into_iter().filter_map(Result::err).collect();
            return Err(quorum_error(&errs, ok, self.write_quorum()));
        }
        reservation.apply();
        let committed: Vec<Option<(Vec<Version>, ObjectRecord)>> = plans
            .into_iter()
            .zip(&results)
            .zip(drops)
            .map(|((p, r), d)| match (p, r) {
                (Some(rec), Ok(_)) => Some((d, rec)),
                _ => None,
            })
            .collect();
        self.remove_dropped_data(bucket, key, committed).await;
        if ok < self.drives.len() {
            self.heal.queue(bucket, key);
        }
        if supersedes {
            self.compact.queue(bucket, key);
        }
        Ok(())
    }

    /// Deletes `version` of `key` (`None`: the key, as DELETE without a
    /// version id does in the bucket's versioning state). With `expect`,
    /// only while the version acted on (the latest, for `None`) is still
    /// that version id with that modification time: `PreconditionFailed`
    /// otherwise.
    pub(super) async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
        versioning: Versioning,
        bypass_governance: bool,
        expect: Option<(VersionId, i64)>,
    ) -> ObjectResult<(Option<String>, bool)> {
        let _guard = self.locks.lock(bucket, key).await;
        let (records, hashes) = self.read_records_hashed(bucket, key).await;
        let view = self.view(&records);
        if let Some((id, modified)) = expect {
            let now = view.resolve(version).map_err(|e| match e {
                ObjectError::NoSuchKey | ObjectError::NoSuchVersion => ObjectError::PreconditionFailed,
                e => e,
            })?;
            if (now.version.id, now.version.mod_time_ns) != (id, modified) {
                return Err(ObjectError::PreconditionFailed);
            }
        }
        let stamp = next_mod_time(&view);
        let layout = self.layout;
        let erasure = crate::meta::ErasureInfo {
            data: layout.data as u8,
            parity: layout.parity as u8,
            shard_index: 0,
            hash_algo: crate::erasure::bitrot::ALGO_XXH3_64,
            block_size: layout.block_size,
        };
        let everywhere = |v: Version| -> Vec<Option<Vec<Version>>> {
            records
                .iter()
                .map(|r| r.is_ok().then(|| vec![v.clone()]))
                .collect()
        };
        match version {
            Some(id) => {
                // Deleting a version that does not exist is not an error in S3.
                let resolved = match view.resolve(Some(id)) {
                    Ok(r) => r,
                    Err(ObjectError::NoSuchVersion) => return Ok((Some(id.to_api()), false)),
                    Err(e) => return Err(e),
                };
                if !resolved.version.is_delete_marker() {
                    super::lock::check_delete(&resolved.version, bypass_governance)?;
                }
                let adds = everywhere(Version::tombstone(id, stamp, erasure));
                self.apply_change(bucket, key, (records, hashes), &view, Change::new(adds))
                    .await?;
                Ok((Some(id.to_api()), resolved.version.is_delete_marker()))
            }
            None if versioning == Versioning::Unversioned => {
                match view.resolve(Some(VersionId::NULL)) {
                    Ok(_) => {
                        let adds = everywhere(Version::tombstone(VersionId::NULL, stamp, erasure));
                        self.apply_change(bucket, key, (records, hashes), &view, Change::new(adds))
                            .await?;
                    }
                    Err(ObjectError::NoSuchVersion) => {}
                    Err(e) => return Err(e),
                }
                Ok((None, false))
            }
            None => {
                let id = if versioning == Versioning::Enabled {
                    VersionId::random()
                } else {
                    VersionId::NULL
                };
                let marker = Version::without_data(VersionKind::DeleteMarker, id, stamp, erasure);
                let adds = everywhere(marker);
                self.apply_change(bucket, key, (records, hashes), &view, Change::new(adds))
                    .await?;
                Ok((Some(id.to_api()), true))
            }
        }
    }
}

/// A change of one key: new entries per drive, and record ops to commit
/// with them.
pub(super) struct Change {
    /// Entries each drive position adds; `None`: that drive cannot take
    /// the change (it missed the data, or did not answer).
    pub adds: Vec<Option<Vec<Version>>>,
    /// Ops committed in the same transaction on every drive that takes it.
    pub extra_ops: Vec<RecordOp>,
}

impl Change {
    pub fn new(adds: Vec<Option<Vec<Version>>>) -> Self {
        Self {
            adds,
            extra_ops: vec![],
        }
    }

    /// What the change does to the bucket's usage: each new entry replaces
    /// the present winner of its version id.
    fn delta(&self, view: &KeyView) -> Weight {
        let weight = |v: &Version| match v.kind {
            VersionKind::Object => Weight {
                bytes: v.size as i64,
                versions: 1,
            },
            _ => Weight::default(),
        };
        let Some(adds) = self.adds.iter().flatten().next() else {
            return Weight::default();
        };
        adds.iter().fold(Weight::default(), |acc, a| {
            let before = view
                .winners()
                .into_iter()
                .find(|e| e.version.id == a.id)
                .map_or_else(Weight::default, |e| weight(&e.version));
            let w = weight(a).minus(before);
            Weight {
                bytes: acc.bytes + w.bytes,
                versions: acc.versions + w.versions,
            }
        })
    }
}

/// The op that puts back what `op` changed, given the value it replaced.
fn undo_op(op: &RecordOp, prev: Option<Vec<u8>>) -> RecordOp {
    let (table, key) = match op {
        RecordOp::Put { table, key, .. }
        | RecordOp::Delete { table, key }
        | RecordOp::Check { table, key, .. } => (*table, key.clone()),
        // Counters others may have moved meanwhile: take the delta back.
        RecordOp::Add { table, key, delta } => {
            return RecordOp::Add {
                table: *table,
                key: key.clone(),
                delta: [-delta[0], -delta[1]],
            };
        }
    };
    match prev {
        Some(value) => RecordOp::Put { table, key, value },
        None => RecordOp::Delete { table, key },
    }
}

/// The ops that replace `old` with `new` as the record of `k` in `bucket`
/// on one drive: the record, and the change of the drive's usage counters
/// in the same transaction.
/// `hash` is that of the record the change was computed from: the commit
/// fails unless the drive still holds it.
pub(super) fn record_ops(
    bucket: &str,
    k: &[u8],
    hash: Option<u64>,
    before: Weight,
    new: &ObjectRecord,
) -> Vec<RecordOp> {
    let mut ops = vec![
        RecordOp::Check {
            table: Table::Objects,
            key: k.to_vec(),
            hash,
        },
        record_op(k, new),
    ];
    let d = Weight::of(new).minus(before);
    if d != Weight::default() {
        ops.push(RecordOp::Add {
            table: Table::Usage,
            key: bucket.as_bytes().to_vec(),
            delta: [d.bytes, d.versions],
        });
    }
    ops
}

/// The op that stores `rec` under `k` (or removes it when empty).
pub(super) fn record_op(k: &[u8], rec: &ObjectRecord) -> RecordOp {
    if rec.versions.is_empty() {
        RecordOp::Delete {
            table: Table::Objects,
            key: k.to_vec(),
        }
    } else {
        RecordOp::Put {
            table: Table::Objects,
            key: k.to_vec(),
            value: rec.encode(),
        }
    }
}

/// A stamp later than every entry the drives hold, so the newest change is
/// also the newest entry even if the clock stepped back.
pub(super) fn next_mod_time(view: &KeyView) -> i64 {
    super::now_ns().max(view.max_time().map_or(0, |t| t + 1))
}

/// Rolls back shard files written for a version that did not commit.
pub(super) async fn discard_dir(set: &ErasureSet, dir: [u8; 16]) {
    set.on_drives(move |_, d| d.remove_data_dir(&dir)).await;
}

impl ErasureSet {
    /// Rolls back shard files of a version whose commit failed, on each
    /// drive whose record of the key does not name them (a commit that
    /// reached a drive and could not be put back keeps its data there, for
    /// compaction to settle).
    pub(super) async fn discard_unreferenced(&self, bucket: &str, key: &str, dir: [u8; 16]) {
        let _guard = self.locks.lock(bucket, key).await;
        self.discard_unreferenced_locked(bucket, key, dir).await;
    }

    /// [`ErasureSet::discard_unreferenced`] for a caller holding the key lock.
    pub(super) async fn discard_unreferenced_locked(&self, bucket: &str, key: &str, dir: [u8; 16]) {
        let k = object_key(bucket, key);
        self.on_drives(move |_, d| {
            let referenced = match d.get(Table::Objects, &k)? {
                Some(b) => {
                    ObjectRecord::decode(&b).map_or(true, |r| r.versions.iter().any(|v| v.dir() == Some(dir)))
                }
                None => false,
            };
            if !referenced {
                d.remove_data_dir(&dir)?;
            }
            Ok(())
        })
        .await;
    }
}
