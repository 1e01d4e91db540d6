//! Data in remote tiers. A version whose data was moved to a remote tier
//! keeps its place in the namespace (its key, version id, times, ETag,
//! metadata, tags, checksums, retention, legal hold and encryption all stay
//! in its record); only its data location changes, from a data directory
//! (or inline shard bytes) to a [`RemoteLoc`]: an object under an opaque
//! name in the tier's bucket.
//!
//! The remote object holds the version's stored bytes (for an encrypted
//! version its sealed packages: data leaves encrypted), part after part,
//! in frames of 64 KiB, each behind an XXH3-64 checksum as shard blocks
//! are on a drive. A ranged read fetches the frames that hold the range,
//! up to 2 MiB per request with three requests under way, and checks each:
//! bytes the tier damaged are an error, never an answer.
//!
//! A transition writes the remote object first and then commits the new
//! location as a metadata change of the version, only if its data is still
//! what was copied; the local data goes with the entry it replaced
//! (compaction). Every remote object that could be left behind is named
//! by a journal row kept on the drives of the key's set: one written
//! before a transition uploads (removed in the commit that references the
//! object), and one written in the same drive transaction as each commit
//! that drops the last entry referencing a remote object. The sweep
//! ([`ObjectLayer::sweep_cold`]) settles rows: a row whose object no entry
//! of its key references on any drive has its object removed from the
//! tier, then the row goes; a tier that is down keeps the row for a later
//! sweep. Nothing is removed from a tier while any drive of the key's set
//! cannot be read, and a transition's row waits out the time the
//! transition may take.

use super::{ByteStream, ErasureSet, ObjectError, ObjectLayer, ObjectResult, now_ns};
use crate::drive::{KeyRange, RecordOp, Table, prefix_end};
use crate::erasure::bitrot::HASH_LEN;
use crate::meta::{DataLoc, ObjectRecord, RemoteLoc, Version};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where the object layer sends and fetches data kept in remote tiers
/// (`crate::tier::Tiers` over S3; a memory store in tests).
#[async_trait::async_trait]
pub trait ColdStore: Send + Sync {
    /// Stores the `len` bytes of `body` as object `id` of tier `tier`.
    async fn upload(&self, tier: &str, id: [u8; 16], body: ByteStream, len: u64) -> ObjectResult<()>;
    /// Bytes `[start, end)` of object `id`.
    async fn read(&self, tier: &str, id: [u8; 16], start: u64, end: u64) -> ObjectResult<Bytes>;
    /// Removes object `id`; one that is not there is removed already.
    async fn delete(&self, tier: &str, id: [u8; 16]) -> ObjectResult<()>;
    /// Whether a tier of this name exists.
    async fn has_tier(&self, tier: &str) -> ObjectResult<bool>;
}

/// The stores of data kept outside the namespace pool: the other pools'
/// (from start) and the remote tiers' (once they are loaded), and what
/// wakes the sweep. As a [`ColdStore`] it hands each call to the store of
/// the place it names.
#[derive(Clone, Default)]
pub struct ColdSlot {
    tiers: Arc<OnceLock<Arc<dyn ColdStore>>>,
    pub(super) placement: Arc<OnceLock<super::placement::Placement>>,
    wake: Arc<tokio::sync::Notify>,
}

impl std::fmt::Debug for ColdSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ColdSlot")
    }
}

impl ColdSlot {
    /// The stores as one, each call handed to its place's.
    pub(super) fn get(&self) -> Arc<dyn ColdStore> {
        Arc::new(self.clone())
    }

    pub(super) fn placement(&self) -> &super::placement::Placement {
        static DEFAULT: OnceLock<super::placement::Placement> = OnceLock::new();
        self.placement
            .get()
            .unwrap_or_else(|| DEFAULT.get_or_init(Default::default))
    }

    /// The store holding place `name`'s objects.
    fn store(&self, name: &str) -> ObjectResult<&Arc<dyn ColdStore>> {
        if let Some(p) = self.placement().pool(name) {
            return Ok(p);
        }
        self.tiers
            .get()
            .ok_or_else(|| ObjectError::TierUnavailable("no remote tier store is configured".into()))
    }
}

#[async_trait::async_trait]
impl ColdStore for ColdSlot {
    async fn upload(&self, tier: &str, id: [u8; 16], body: ByteStream, len: u64) -> ObjectResult<()> {
        self.store(tier)?.upload(tier, id, body, len).await
    }
    async fn read(&self, tier: &str, id: [u8; 16], start: u64, end: u64) -> ObjectResult<Bytes> {
        self.store(tier)?.read(tier, id, start, end).await
    }
    async fn delete(&self, tier: &str, id: [u8; 16]) -> ObjectResult<()> {
        self.store(tier)?.delete(tier, id).await
    }
    async fn has_tier(&self, tier: &str) -> ObjectResult<bool> {
        match self.store(tier) {
            Ok(s) => s.has_tier(tier).await,
            Err(_) => Ok(false),
        }
    }
}

/// Prefix of the journal rows (`config` table of each drive of a set).
const JOURNAL: &str = "cold-journal/";

/// The longest a transition may take before its journal row is settled
/// (and its commit refused): an hour, plus a second per 10 MiB.
pub(super) fn transfer_limit(len: u64) -> Duration {
    Duration::from_secs(3600 + len / (10 << 20))
}

/// A journal row: a remote object that may be left behind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Pending {
    tier: String,
    bucket: String,
    key: String,
    /// Settled no earlier than this (ns since the epoch).
    not_before_ns: i64,
}

pub(super) fn row_key(id: &[u8; 16]) -> Vec<u8> {
    format!("{JOURNAL}{}", hex::encode(id)).into_bytes()
}

pub(super) fn row_put(loc: &RemoteLoc, bucket: &str, key: &str, not_before_ns: i64) -> RecordOp {
    let p = Pending {
        tier: loc.tier.clone(),
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        not_before_ns,
    };
    RecordOp::Put {
        table: Table::Config,
        key: row_key(&loc.id),
        value: serde_json::to_vec(&p).unwrap_or_default(),
    }
}

/// Journal rows for the remote objects that `dropped` entries reference
/// and no entry of `kept` (a drive's record after the commit) does: added
/// to that drive's commit.
pub(super) fn drop_rows(bucket: &str, key: &str, dropped: &[Version], kept: &ObjectRecord) -> Vec<RecordOp> {
    let mut locs: Vec<&RemoteLoc> = orphaned(dropped, kept).collect();
    locs.sort();
    locs.dedup();
    let now = now_ns();
    locs.into_iter().map(|l| row_put(l, bucket, key, now)).collect()
}

/// The remote objects `dropped` entries reference and no entry of `kept`
/// does.
pub(super) fn orphaned<'a>(
    dropped: &'a [Version],
    kept: &'a ObjectRecord,
) -> impl Iterator<Item = &'a RemoteLoc> {
    dropped
        .iter()
        .filter_map(Version::remote)
        .filter(|l| !kept.versions.iter().any(|v| v.remote() == Some(*l)))
}

/// Payload bytes of a frame of a remote object (the last of a part is
/// shorter): small, so a small range costs a small read.
pub const FRAME: u64 = 64 * 1024;
/// A frame's length with its checksum.
const FRAMED: u64 = FRAME + HASH_LEN as u64;
/// Frames fetched by one ranged read (2 MiB of payload).
const FRAMES_PER_READ: u64 = 32;
/// Ranged reads under way at once for one stream.
const READS_AHEAD: usize = 3;

/// Length of a part's stored bytes once framed.
pub(super) fn framed_len(size: u64) -> u64 {
    size + size.div_ceil(FRAME) * HASH_LEN as u64
}

/// Where part `number` of `v` starts in its remote object.
fn part_base(v: &Version, number: u32) -> u64 {
    v.parts
        .iter()
        .take_while(|p| p.number != number)
        .map(|p| framed_len(p.size))
        .sum()
}

/// Length of the remote object of `v`.
pub fn remote_len(v: &Version) -> u64 {
    v.parts.iter().map(|p| framed_len(p.size)).sum()
}

/// A read of stored bytes `[from, to)` of one part of a version whose data
/// is in a tier: a few frames per request, each checked, the next request
/// under way while the bytes of the last one are used.
pub(super) struct RemoteRead {
    store: Arc<dyn ColdStore>,
    loc: RemoteLoc,
    /// Where the part starts in the remote object, and its stored size.
    base: u64,
    size: u64,
    /// Where the range starts, where the read is, where the range ends.
    start: u64,
    pos: u64,
    to: u64,
    /// Reads under way: the first frame each starts at, in order.
    ahead: std::collections::VecDeque<(u64, tokio::task::JoinHandle<ObjectResult<Bytes>>)>,
}

impl Drop for RemoteRead {
    fn drop(&mut self) {
        for (_, h) in self.ahead.drain(..) {
            h.abort();
        }
    }
}

impl RemoteRead {
    pub(super) fn new(
        store: &Arc<dyn ColdStore>,
        loc: &RemoteLoc,
        v: &Version,
        part: &crate::meta::PartInfo,
        (from, to): (u64, u64),
    ) -> Self {
        RemoteRead {
            store: Arc::clone(store),
            loc: loc.clone(),
            base: part_base(v, part.number),
            size: part.size,
            start: from,
            pos: from,
            to,
            ahead: Default::default(),
        }
    }

    /// The frames `[first, first + FRAMES_PER_READ)` that hold bytes
    /// before `to` (the last frame of the part shorter).
    fn span(&self, first: u64) -> (u64, u64, u64) {
        // The first read of a range is small, so its first bytes come soon.
        let frames = if first * FRAME <= self.start {
            FRAMES_PER_READ / 4
        } else {
            FRAMES_PER_READ
        };
        let last = (first + frames).min(self.to.div_ceil(FRAME));
        let start = self.base + first * FRAMED;
        let payload_end = (last * FRAME).min(self.size);
        let end = self.base + payload_end + last * HASH_LEN as u64;
        (last, start, end)
    }

    fn fetch(&self, first: u64) -> tokio::task::JoinHandle<ObjectResult<Bytes>> {
        let (_, start, end) = self.span(first);
        let (store, loc) = (Arc::clone(&self.store), self.loc.clone());
        tokio::spawn(async move {
            let raw = store.read(&loc.tier, loc.id, start, end).await?;
            if raw.len() as u64 != end - start {
                return Err(ObjectError::TierUnavailable(format!(
                    "tier {} answered {} bytes of {}",
                    loc.tier,
                    raw.len(),
                    end - start
                )));
            }
            Ok(raw)
        })
    }

    /// The next bytes of the range, in order; `None` once it is read.
    pub(super) async fn next(&mut self) -> ObjectResult<Option<Vec<Bytes>>> {
        if self.pos >= self.to {
            return Ok(None);
        }
        let first = self.pos / FRAME;
        if self.ahead.front().is_none_or(|(f, _)| *f != first) {
            for (_, h) in self.ahead.drain(..) {
                h.abort();
            }
            self.ahead.push_back((first, self.fetch(first)));
        }
        // Keep the next reads under way while this one's bytes are used.
        while self.ahead.len() < READS_AHEAD {
            let (at, _, _) = self.ahead.back().map(|(f, _)| self.span(*f)).unwrap_or_default();
            if at * FRAME >= self.to {
                break;
            }
            self.ahead.push_back((at, self.fetch(at)));
        }
        let (_, handle) = self
            .ahead
            .pop_front()
            .unwrap_or_else(|| (first, self.fetch(first)));
        let raw = handle
            .await
            .map_err(|e| ObjectError::Internal(format!("remote read task: {e}")))??;
        let (last, _, _) = self.span(first);
        let mut out = Vec::with_capacity((last - first) as usize);
        let mut off = 0usize;
        for f in first..last {
            let payload = FRAME.min(self.size - f * FRAME);
            let len = payload as usize + HASH_LEN;
            if crate::erasure::bitrot::open(&raw[off..off + len]).is_none() {
                return Err(ObjectError::TierUnavailable(format!(
                    "tier {} answered bytes that fail their checksum",
                    self.loc.tier
                )));
            }
            let fstart = f * FRAME;
            let lo = self.pos.max(fstart) - fstart;
            let hi = self.to.min(fstart + payload) - fstart;
            let at = off + HASH_LEN;
            out.push(raw.slice(at + lo as usize..at + hi as usize));
            off += len;
        }
        self.pos = (last * FRAME).min(self.to);
        Ok(Some(out))
    }
}

/// What a transition did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The data now lives in the tier.
    Done { bytes: u64 },
    /// The version changed (or went) meanwhile, or is there already:
    /// nothing moved.
    Skipped,
}

/// What a sweep of the journal did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ColdSweep {
    /// Remote objects removed from their tier.
    pub removed: u64,
    /// Rows dropped because an entry still references their object.
    pub referenced: u64,
    /// Rows kept: the tier or a drive failed.
    pub failed: u64,
    /// Rows whose time has not come (transitions under way).
    pub waiting: u64,
}

/// Same data: the version id, its time and ETag, and where its bytes are.
fn same_data(a: &Version, b: &Version) -> bool {
    a.id == b.id
        && a.mod_time_ns == b.mod_time_ns
        && a.etag == b.etag
        && a.dir() == b.dir()
        && a.remote() == b.remote()
}

impl ObjectLayer {
    /// Makes `store` the remote tiers' store (once; later calls change
    /// nothing).
    pub fn set_cold_store(&self, store: Arc<dyn ColdStore>) {
        let _ = self.cold.tiers.set(store);
        self.cold.wake.notify_one();
    }

    /// Whether remote tier `tier` exists (none does without a store).
    pub async fn tier_exists(&self, tier: &str) -> ObjectResult<bool> {
        self.cold.has_tier(tier).await
    }

    /// Moves the data of version `expect` of `bucket/key` to the store of
    /// `tier` (a pool's or a remote tier's), if the version still holds
    /// the data it held when `expect` was read and is not there already.
    pub async fn transition(
        &self,
        bucket: &str,
        key: &str,
        expect: &Version,
        tier: &str,
    ) -> ObjectResult<Moved> {
        let store = self.cold.get();
        let set = Arc::clone(self.set_for(bucket, key));
        let reader = match set.open_object(bucket, key, Some(expect.id)).await {
            Ok(r) => r,
            Err(ObjectError::NoSuchKey | ObjectError::NoSuchVersion) => return Ok(Moved::Skipped),
            Err(e) => return Err(e),
        };
        let v = reader.version().clone();
        let there = v.remote().is_some_and(|r| r.tier == tier);
        if v.is_delete_marker() || there || !same_data(&v, expect) {
            return Ok(Moved::Skipped);
        }
        let loc = RemoteLoc {
            tier: tier.to_owned(),
            id: *uuid::Uuid::new_v4().as_bytes(),
        };
        let len = remote_len(&v);
        let deadline = now_ns() + transfer_limit(len).as_nanos() as i64;
        set.journal(row_put(&loc, bucket, key, deadline)).await?;
        if let Err(e) = store.upload(tier, loc.id, reader.framed(), len).await {
            set.forget(&store, &loc).await;
            return Err(e);
        }
        let committed = set.relocate(bucket, key, &v, &loc, deadline).await;
        match committed {
            Ok(true) => Ok(Moved::Done { bytes: v.size }),
            Ok(false) => {
                set.forget(&store, &loc).await;
                Ok(Moved::Skipped)
            }
            // The commit may have reached some drives: the row stays, and
            // the sweep settles it once the deadline passed.
            Err(e) => Err(e),
        }
    }

    /// Settles the journal rows of every set whose time has come (at
    /// `now_ns`): remote objects no entry references are removed from
    /// their tiers.
    pub async fn sweep_cold(&self, now_ns: i64) -> ColdSweep {
        let mut report = ColdSweep::default();
        let store = self.cold.get();
        for set in &self.sets {
            set.sweep_rows(&store, now_ns, &mut report).await;
        }
        report
    }

    /// Sweeps the journal whenever a change dropped a remote object, at
    /// start, and again while rows wait or fail (backing off to a
    /// minute); until the process ends.
    pub fn start_cold_sweeper(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let wake = Arc::clone(&self.cold.wake);
        tokio::spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(layer) = weak.upgrade() else { return };
                let r = layer.sweep_cold(now_ns()).await;
                drop(layer);
                if r.removed > 0 || r.failed > 0 {
                    tracing::info!(
                        removed = r.removed,
                        failed = r.failed,
                        "remote tier objects swept"
                    );
                }
                let wait = if r.failed > 0 {
                    backoff = (backoff * 2).min(Duration::from_secs(60));
                    Some(backoff)
                } else {
                    backoff = Duration::from_secs(1);
                    (r.waiting > 0).then_some(Duration::from_secs(60))
                };
                match wait {
                    Some(d) => {
                        let _ = tokio::time::timeout(d, wake.notified()).await;
                    }
                    None => wake.notified().await,
                }
            }
        });
    }
}

impl ErasureSet {
    /// Commits a journal row on a write quorum of the set's drives.
    pub(super) async fn journal(&self, row: RecordOp) -> ObjectResult<()> {
        self.commit_quorum(vec![Some(vec![row]); self.drive_count()])
            .await
    }

    /// Removes a remote object nothing references yet, then its row (both
    /// left for the sweep should either fail).
    pub(super) async fn forget(&self, store: &Arc<dyn ColdStore>, loc: &RemoteLoc) {
        if store.delete(&loc.tier, loc.id).await.is_ok() {
            self.drop_row(&loc.id).await;
        }
    }

    async fn drop_row(&self, id: &[u8; 16]) {
        let op = RecordOp::Delete {
            table: Table::Config,
            key: row_key(id),
        };
        self.commit_each(vec![Some(vec![op]); self.drive_count()]).await;
    }

    /// Commits `loc` as where version `v` keeps its data, only while its
    /// data is still what was copied and the transition's time has not
    /// run out; the journal row goes in the same commit. False when the
    /// version changed (or went) meanwhile.
    async fn relocate(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        v: &Version,
        loc: &RemoteLoc,
        deadline: i64,
    ) -> ObjectResult<bool> {
        let unchanged = |now: &Version| {
            // A minute's margin for clocks of other nodes that sweep.
            if same_data(now, v) && now_ns() < deadline - 60_000_000_000 {
                Ok(())
            } else {
                Err(ObjectError::PreconditionFailed)
            }
        };
        let row = RecordOp::Delete {
            table: Table::Config,
            key: row_key(&loc.id),
        };
        let moved = self
            .update_entry(
                bucket,
                key,
                Some(v.id),
                unchanged,
                |c| c.data = DataLoc::Remote(loc.clone()),
                vec![row],
            )
            .await;
        match moved {
            Ok(_) => Ok(true),
            Err(
                ObjectError::PreconditionFailed
                | ObjectError::NoSuchKey
                | ObjectError::NoSuchVersion
                | ObjectError::DeleteMarker { .. },
            ) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The journal rows any drive of the set holds.
    pub(super) async fn rows(&self) -> BTreeMap<[u8; 16], Pending> {
        let start = JOURNAL.as_bytes().to_vec();
        let end = prefix_end(&start).unwrap_or_default();
        let lists = self
            .on_drives(move |_, d| d.scan(Table::Config, KeyRange::new(&start, &end, usize::MAX)))
            .await;
        let mut rows = BTreeMap::new();
        for (k, v) in lists.into_iter().flatten().flatten() {
            let id = std::str::from_utf8(&k[JOURNAL.len()..])
                .ok()
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| <[u8; 16]>::try_from(b).ok());
            match (id, serde_json::from_slice::<Pending>(&v)) {
                (Some(id), Ok(p)) => {
                    rows.entry(id).or_insert(p);
                }
                _ => {
                    tracing::error!(row = %String::from_utf8_lossy(&k), "unreadable remote tier journal row")
                }
            }
        }
        rows
    }

    async fn sweep_rows(&self, store: &Arc<dyn ColdStore>, now: i64, report: &mut ColdSweep) {
        for (id, p) in self.rows().await {
            if p.not_before_ns > now {
                report.waiting += 1;
                continue;
            }
            let loc = RemoteLoc { tier: p.tier, id };
            match self.referenced(&p.bucket, &p.key, &loc).await {
                Some(true) => {
                    report.referenced += 1;
                    self.drop_row(&id).await;
                }
                Some(false) => match store.delete(&loc.tier, id).await {
                    Ok(()) => {
                        report.removed += 1;
                        self.drop_row(&id).await;
                    }
                    Err(e) => {
                        tracing::warn!(tier = %loc.tier, error = %e, "a remote tier object could not be removed; retrying later");
                        report.failed += 1;
                    }
                },
                None => report.failed += 1,
            }
        }
    }

    /// Whether any entry of `bucket/key` on any drive references `loc`;
    /// `None` when a drive cannot tell.
    async fn referenced(&self, bucket: &str, key: &str, loc: &RemoteLoc) -> Option<bool> {
        // Under the key lock, so a commit naming it is on the drives or
        // has not happened. No new reference can appear afterwards: only
        // a transition makes one, and its row waits out its deadline.
        let _guard = self.locks.lock(bucket, key).await;
        let records = self.read_records(bucket, key).await;
        let mut found = false;
        for r in records {
            let Ok(rec) = r else { return None };
            found |= rec
                .iter()
                .flat_map(|r| &r.versions)
                .any(|v| v.remote() == Some(loc));
        }
        Some(found)
    }

    /// Wakes the sweep (a commit dropped a remote object's last entry).
    pub(super) fn wake_cold_sweep(&self) {
        self.cold.wake.notify_one();
    }
}

/// A cold store in memory, for tests: one tier map, and switches that make
/// it fail or damage what it answers.
#[cfg(test)]
pub(crate) mod memory {
    use super::*;
    use futures::StreamExt;
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Objects by tier and id.
    type Objects = Mutex<BTreeMap<(String, [u8; 16]), Vec<u8>>>;
    /// Told when an upload starts; waited for before it ends.
    type Gate = Mutex<Option<(Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>)>>;

    #[derive(Default)]
    pub struct MemoryStore {
        pub objects: Objects,
        pub down: AtomicBool,
        pub damaged: AtomicBool,
        /// When set, the next upload says it started and waits to be let go.
        pub gate: Gate,
    }

    impl MemoryStore {
        fn check(&self, tier: &str) -> ObjectResult<()> {
            if self.down.load(Ordering::SeqCst) {
                return Err(ObjectError::TierUnavailable(format!("tier {tier}: unreachable")));
            }
            Ok(())
        }
        pub fn count(&self) -> usize {
            self.objects.lock().unwrap().len()
        }
    }

    #[async_trait::async_trait]
    impl ColdStore for MemoryStore {
        async fn upload(&self, tier: &str, id: [u8; 16], mut body: ByteStream, len: u64) -> ObjectResult<()> {
            self.check(tier)?;
            let mut all = Vec::new();
            while let Some(c) = body.next().await {
                all.extend_from_slice(&c.map_err(ObjectError::Body)?);
            }
            assert_eq!(all.len() as u64, len, "the framed length announced");
            let gate = self.gate.lock().unwrap().take();
            if let Some((started, release)) = gate {
                started.notify_one();
                release.notified().await;
            }
            self.check(tier)?;
            self.objects.lock().unwrap().insert((tier.to_owned(), id), all);
            Ok(())
        }
        async fn read(&self, tier: &str, id: [u8; 16], start: u64, end: u64) -> ObjectResult<Bytes> {
            self.check(tier)?;
            let objects = self.objects.lock().unwrap();
            let o = objects
                .get(&(tier.to_owned(), id))
                .ok_or_else(|| ObjectError::TierUnavailable("no such object".into()))?;
            let end = (end as usize).min(o.len());
            let mut out = o[(start as usize).min(end)..end].to_vec();
            if self.damaged.load(Ordering::SeqCst)
                && let Some(b) = out.last_mut()
            {
                *b ^= 1;
            }
            Ok(Bytes::from(out))
        }
        async fn delete(&self, tier: &str, id: [u8; 16]) -> ObjectResult<()> {
            self.check(tier)?;
            self.objects.lock().unwrap().remove(&(tier.to_owned(), id));
            Ok(())
        }
        async fn has_tier(&self, tier: &str) -> ObjectResult<bool> {
            Ok(tier == "cold")
        }
    }
}
