//! The object layer: buckets, objects, versions, multipart uploads and
//! listing over erasure sets of drives. It knows nothing of HTTP; the S3 API
//! maps its [`ObjectError`] to S3 error codes in one place.
//!
//! Placement: an object lives on one erasure set, chosen by a stable hash of
//! `bucket/key` seeded with the deployment id. Inside the set, shard `i` of
//! an object sits on drive `(i + r) % n` where `r` is derived from the same
//! hash, so parity load spreads across drives.

mod buckets;
pub mod budget;
pub mod checksum;
mod clone;
pub mod cold;
mod compact;
pub mod conditions;
pub mod config;
pub mod coord;
mod copy;
pub mod encryption;
mod get;
pub mod heal;
mod hints;
mod leases;
mod list;
pub mod lock;
mod locks;
mod multipart;
mod orphans;
mod placed;
pub mod placement;
mod put;
pub mod queue;
mod resolve;
mod set;
mod tagging;
pub mod usage;

pub use budget::{Budget, Credit};
pub use clone::CloneReport;
pub use conditions::{EtagMatch, ReadConditions, WriteCondition};
pub use copy::{CopySource, MAX_COPY_SIZE};
pub use encryption::{KeySource, NoKeys, Sealing};
pub use get::{GetRange, ObjectReader};
pub use list::{ListOptions, ListPage, ListedObject};
pub use multipart::{CompletePart, MultipartUpload, UploadedPart};
pub use orphans::SweepReport;
pub use put::PutOptions;
pub use set::ErasureSet;

use crate::drive::{Drive, DriveError, DriveResult, KeyRange, RecordOp, Table};
use crate::meta::{BucketRecord, Version, Versioning};
use bytes::Bytes;
use futures::Stream;
use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A request or object body: a stream of byte chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Sync>>;

/// S3's limit on key length, in bytes.
pub const MAX_KEY_LEN: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("bucket does not exist")]
    NoSuchBucket,
    #[error("bucket already exists")]
    BucketExists,
    #[error("bucket is not empty")]
    BucketNotEmpty,
    #[error("invalid bucket name")]
    InvalidBucketName,
    #[error("object does not exist")]
    NoSuchKey,
    #[error("version does not exist")]
    NoSuchVersion,
    /// The version asked for (or the latest, when `requested` is false) is
    /// a delete marker.
    #[error("the version is a delete marker")]
    DeleteMarker { version_id: String, requested: bool },
    #[error("precondition failed")]
    PreconditionFailed,
    /// Object Lock protects the version from this change.
    #[error("the object is protected by Object Lock")]
    ObjectLocked,
    #[error("{0}")]
    InvalidBucketState(String),
    /// A read's condition says the client has this version already: its
    /// ETag and modification time, which the 304 answer carries.
    #[error("not modified")]
    NotModified { etag: String, modified_ns: i64 },
    #[error("invalid tag: {0}")]
    InvalidTag(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("invalid version id")]
    InvalidVersionId,
    #[error("upload does not exist")]
    NoSuchUpload,
    #[error("key is longer than 1024 bytes")]
    KeyTooLong,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("parts are not in ascending order")]
    InvalidPartOrder,
    #[error("part is smaller than the 5 MiB minimum")]
    EntityTooSmall,
    #[error("object is larger than allowed")]
    EntityTooLarge,
    #[error("range not satisfiable")]
    InvalidRange,
    #[error("body shorter than its declared length")]
    IncompleteBody,
    #[error("Content-MD5 does not match the body")]
    BadDigest,
    /// The body's checksum in this algorithm differs from the client's.
    #[error("the {0} checksum does not match the body")]
    BadChecksum(&'static str),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("not enough drives online to write ({ok} of {need})")]
    WriteQuorum { ok: usize, need: usize },
    #[error("not enough drives online to read")]
    ReadQuorum,
    /// The cluster's coordination service cannot be reached (or the lock
    /// it keeps stayed taken too long).
    #[error("coordination: {0}")]
    Coordination(String),
    #[error("drives are full")]
    DiskFull,
    /// The buffer budget stayed spent longer than a request may wait.
    #[error("{0}")]
    SlowDown(budget::Saturated),
    /// The change would take the bucket beyond its quota.
    #[error("the bucket quota of {quota} bytes would be exceeded ({used} bytes used)")]
    QuotaExceeded { quota: u64, used: u64 },
    #[error("reading the request body: {0}")]
    Body(std::io::Error),
    /// Encryption refused the request or failed (see `sse::SseError`).
    #[error("encryption: {0}")]
    Encryption(crate::sse::SseError),
    /// A remote tier holding the version's data did not serve it (down,
    /// refusing, or answering bytes that fail their checksums). The
    /// message names the tier and the cause, never a credential.
    #[error("remote tier: {0}")]
    TierUnavailable(String),
    #[error("internal: {0}")]
    Internal(String),
}

pub type ObjectResult<T> = Result<T, ObjectError>;

impl From<budget::Saturated> for ObjectError {
    fn from(e: budget::Saturated) -> Self {
        ObjectError::SlowDown(e)
    }
}

impl From<crate::erasure::ErasureError> for ObjectError {
    fn from(e: crate::erasure::ErasureError) -> Self {
        match e {
            crate::erasure::ErasureError::NotEnoughShards { .. } => ObjectError::ReadQuorum,
            other => ObjectError::Internal(other.to_string()),
        }
    }
}

/// Collapses per-drive failures into the one error a client should see.
pub(crate) fn quorum_error(errs: &[DriveError], ok: usize, need: usize) -> ObjectError {
    if errs.iter().filter(|e| matches!(e, DriveError::Full)).count() > 0 {
        ObjectError::DiskFull
    } else {
        ObjectError::WriteQuorum { ok, need }
    }
}

pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> ObjectResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ObjectError::Internal(format!("worker: {e}")))
}

/// Checks a bucket name against S3's rules for new buckets.
pub fn valid_bucket_name(name: &str) -> bool {
    let b = name.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let ok_chars = b
        .iter()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'.' || *c == b'-');
    let ends = b[0].is_ascii_alphanumeric() && b[b.len() - 1].is_ascii_alphanumeric();
    let ip_like = name.split('.').count() == 4 && name.split('.').all(|p| p.parse::<u8>().is_ok());
    ok_chars && ends && !name.contains("..") && !ip_like && !name.starts_with("xn--")
}

pub(crate) fn check_key(key: &str) -> ObjectResult<()> {
    if key.is_empty() {
        return Err(ObjectError::InvalidArgument(
            "object key must not be empty".into(),
        ));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(ObjectError::KeyTooLong);
    }
    Ok(())
}

/// The bucket setting holding the quota, in bytes as decimal text.
const QUOTA_SETTING: &str = "quota";

/// Tunables of the object layer.
#[derive(Debug, Clone)]
pub struct LayerConfig {
    pub block_size: u32,
    /// Objects up to this size keep their shards inside the metadata record.
    pub inline_limit: usize,
    /// How long a write waits for a drive's shard write or commit before it
    /// counts the drive as failed (and goes on with the others, if they
    /// make write quorum); `None`: no limit.
    pub drive_timeout: Option<std::time::Duration>,
    /// Other nodes share the drives (a cluster).
    pub cluster: bool,
    /// The buffer credits that streaming reads and writes draw from.
    pub budget: Budget,
    /// Uploads hand their MD5 to the process's hashing lanes
    /// ([`crate::digest::pool`]) where the CPU has them; off, each upload
    /// hashes its own blocks.
    pub md5_lanes: bool,
}

/// Waits for `fut` at most `limit` (when there is one).
pub(crate) async fn within<F: std::future::Future>(
    limit: Option<std::time::Duration>,
    fut: F,
) -> Result<F::Output, tokio::time::error::Elapsed> {
    match limit {
        Some(d) => tokio::time::timeout(d, fut).await,
        None => Ok(fut.await),
    }
}

impl Default for LayerConfig {
    fn default() -> Self {
        Self {
            block_size: crate::erasure::DEFAULT_BLOCK_SIZE,
            inline_limit: 128 * 1024,
            drive_timeout: Some(std::time::Duration::from_secs(30)),
            cluster: false,
            budget: Budget::default(),
            md5_lanes: true,
        }
    }
}

/// Summary of a bucket for ListBuckets.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    pub name: String,
    pub created_ns: i64,
    pub versioning: Versioning,
}

/// The whole namespace: every erasure set of the deployment.
#[derive(Debug)]
pub struct ObjectLayer {
    sets: Vec<Arc<ErasureSet>>,
    seed: u64,
    buckets: Arc<buckets::BucketCache>,
    coord: std::sync::OnceLock<Arc<dyn coord::Coordinator>>,
    /// Other nodes change buckets too (a cluster): the cache is not the
    /// only writer's.
    shared: bool,
    /// Keys to heal.
    pub heal: queue::KeyQueue,
    /// What healing has done since start.
    pub heal_counts: heal::HealCounts,
    /// Keys to heal again when an unreachable node returns.
    hints: hints::Hints,
    /// Keys whose records hold settled entries to drop.
    pub compact: queue::KeyQueue,
    usage: Arc<usage::Usage>,
    /// What to reload when another node changes a configuration topic.
    hooks: config::Hooks,
    /// The remote tiers' store and the sweep of what they may hold in vain.
    cold: cold::ColdSlot,
}

impl ObjectLayer {
    /// The buffer credits streaming requests draw from.
    pub fn budget(&self) -> &Budget {
        &self.sets[0].config.budget
    }

    /// Builds the layer over formatted sets (`drives[set][index]`, `None`
    /// for an offline drive) and loads the bucket list.
    pub async fn open(
        deployment_id: &str,
        drives: Vec<Vec<Option<Arc<dyn Drive>>>>,
        parity: usize,
        config: LayerConfig,
    ) -> ObjectResult<Arc<Self>> {
        let seed = xxhash_rust::xxh3::xxh3_64(deployment_id.as_bytes());
        let heal = queue::KeyQueue::new();
        let compact = queue::KeyQueue::new();
        let usage = Arc::new(usage::Usage::default());
        let bucket_cache = Arc::new(buckets::BucketCache::default());
        let cold = cold::ColdSlot::default();
        let sets: Vec<Arc<ErasureSet>> = drives
            .into_iter()
            .enumerate()
            .map(|(i, d)| {
                let parts = set::SetParts {
                    heal: heal.sender(),
                    compact: compact.sender(),
                    usage: Arc::clone(&usage),
                    buckets: Arc::clone(&bucket_cache),
                    cold: cold.clone(),
                };
                ErasureSet::new(i, d, parity, config.clone(), seed, parts).map(Arc::new)
            })
            .collect::<ObjectResult<_>>()?;
        let layer = Arc::new(Self {
            sets,
            seed,
            buckets: bucket_cache,
            coord: std::sync::OnceLock::new(),
            shared: config.cluster,
            heal,
            heal_counts: heal::HealCounts::default(),
            hints: hints::Hints::default(),
            compact,
            usage,
            hooks: config::Hooks::default(),
            cold,
        });
        layer.load_buckets().await?;
        layer.load_usage().await?;
        Ok(layer)
    }

    /// Whether every set has a write quorum of reachable drives (what a
    /// readiness probe reports).
    pub fn has_write_quorum(&self) -> bool {
        self.sets.iter().all(|s| {
            let online = s.drives().iter().flatten().filter(|d| d.is_online()).count();
            online >= s.write_quorum()
        })
    }

    /// Keys waiting for an unreachable node to return.
    pub fn hinted(&self) -> usize {
        self.hints.len()
    }

    pub fn sets(&self) -> &[Arc<ErasureSet>] {
        &self.sets
    }

    /// The set holding `bucket/key`.
    pub fn set_for(&self, bucket: &str, key: &str) -> &Arc<ErasureSet> {
        let h = placement_hash(self.seed, bucket, key);
        &self.sets[(h % self.sets.len() as u64) as usize]
    }

    /// Runs a quick metadata operation on every drive of every set (each
    /// set's drives in one task, or all at once where they are other
    /// nodes').
    async fn each_drive<T, F>(&self, f: F) -> Vec<DriveResult<T>>
    where
        T: Send + 'static,
        F: Fn(&dyn Drive) -> DriveResult<T> + Send + Sync + Clone + 'static,
    {
        let per_set = self.sets.iter().map(|set| {
            let f = f.clone();
            set.on_drives_seq(move |_, d| f(d))
        });
        futures::future::join_all(per_set)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    pub(crate) async fn load_buckets(&self) -> ObjectResult<()> {
        let lists = self
            .each_drive(|d| d.scan(Table::Buckets, KeyRange::new(b"", b"\xff", usize::MAX)))
            .await;
        self.buckets.replace(majority_buckets(lists));
        Ok(())
    }

    /// In a cluster, makes sure the cache knows a bucket another node
    /// created: a name the cache lacks is looked up on the drives. Changes
    /// to known buckets reach the cache through [`ObjectLayer::reload_bucket`]
    /// on the coordinator's notices; while those do not arrive, every
    /// request reads its bucket from the drives.
    pub async fn ensure_bucket(&self, name: &str) {
        if self.shared
            && (!self.coordinator().coherent() || self.bucket(name).is_err())
            && valid_bucket_name(name)
            && let Err(e) = self.reload_bucket(name).await
        {
            tracing::debug!(bucket = name, error = %e, "bucket lookup failed");
        }
    }

    /// In a cluster, reads the bucket list from the drives again (before a
    /// ListBuckets: other nodes create and delete buckets too).
    pub async fn refresh_buckets(&self) {
        if self.shared
            && let Err(e) = self.load_buckets().await
        {
            tracing::debug!(error = %e, "bucket list refresh failed");
        }
    }

    /// Reads one bucket's record from the drives into the cache (or drops
    /// it from the cache when the drives no longer hold it).
    pub async fn reload_bucket(&self, name: &str) -> ObjectResult<()> {
        if self.reload_topic(name).await {
            return Ok(());
        }
        let key = name.as_bytes().to_vec();
        let lists = self
            .each_drive(move |d| {
                d.get(Table::Buckets, &key)
                    .map(|v| v.map(|v| (key.clone(), v)).into_iter().collect())
            })
            .await;
        let found = majority_buckets(lists).remove(name);
        match found {
            Some(rec) => {
                let quota = rec
                    .settings
                    .get(QUOTA_SETTING)
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(|v| v.parse().ok());
                self.usage.set_quota(name, quota);
                let deleting = rec.settings.contains_key(buckets::DELETING);
                self.buckets.insert(name, rec);
                if deleting {
                    // Acknowledged (by the caller) once the commits this
                    // node admitted before the mark are done.
                    self.buckets.drain(name, buckets::DRAIN_WAIT).await;
                }
            }
            None => {
                if self.buckets.remove(name) {
                    self.usage.remove(name);
                }
            }
        }
        Ok(())
    }

    /// Uses `c` for deployment-wide locks and change notices (once, before
    /// serving; a single node keeps the in-process default).
    pub fn set_coordinator(&self, c: Arc<dyn coord::Coordinator>) {
        let _ = self.coord.set(c);
    }

    pub(crate) fn coordinator(&self) -> &Arc<dyn coord::Coordinator> {
        self.coord
            .get_or_init(|| Arc::new(coord::LocalCoordinator::default()) as Arc<dyn coord::Coordinator>)
    }

    /// A bucket's quota in bytes, if it has one.
    pub fn quota(&self, name: &str) -> ObjectResult<Option<u64>> {
        Ok(self
            .bucket_setting(name, QUOTA_SETTING)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok()))
    }

    /// Sets (or with `None` removes) a bucket's quota in bytes. Lowering it
    /// below the bucket's usage refuses further growth, deletes nothing.
    pub async fn set_quota(&self, name: &str, quota: Option<u64>) -> ObjectResult<()> {
        let value = quota.map(|q| q.to_string().into_bytes());
        self.set_bucket_setting(name, QUOTA_SETTING, value).await?;
        self.usage.set_quota(name, quota);
        Ok(())
    }

    /// A bucket's stored bytes and versions, and its quota.
    pub fn usage(&self, name: &str) -> ObjectResult<usage::BucketUsage> {
        self.bucket(name)?;
        Ok(self.usage.get(name))
    }

    pub fn bucket(&self, name: &str) -> ObjectResult<BucketRecord> {
        self.buckets.get(name).ok_or(ObjectError::NoSuchBucket)
    }

    pub fn list_buckets(&self) -> Vec<BucketInfo> {
        self.buckets
            .all()
            .into_iter()
            .filter(|(_, r)| !r.settings.contains_key(buckets::DELETING))
            .map(|(name, r)| BucketInfo {
                name,
                created_ns: r.created_ns,
                versioning: r.versioning,
            })
            .collect()
    }

    /// Replaces (or with `None` deletes) a bucket's record on every drive,
    /// each drive's change conditional on the record it holds now, plus
    /// `extra` ops; a write quorum of every set must take it (so that it
    /// is the record every node reads back, see [`buckets`]).
    async fn commit_bucket(
        &self,
        name: &str,
        rec: Option<&BucketRecord>,
        extra: Vec<RecordOp>,
    ) -> ObjectResult<()> {
        self.commit_everywhere(
            Table::Buckets,
            name.as_bytes(),
            rec.map(BucketRecord::encode),
            extra,
        )
        .await
    }

    /// Puts (or deletes) `key` of `table` on a write quorum of every set,
    /// each drive's change a compare-and-set against what it held just
    /// before, with `extra` in the same commit.
    pub(crate) async fn commit_everywhere(
        &self,
        table: Table,
        key: &[u8],
        value: Option<Vec<u8>>,
        extra: Vec<RecordOp>,
    ) -> ObjectResult<()> {
        let key = key.to_vec();
        let change = match value {
            Some(value) => RecordOp::Put {
                table,
                key: key.clone(),
                value,
            },
            None => RecordOp::Delete {
                table,
                key: key.clone(),
            },
        };
        let (mut short, mut errs) = (None, Vec::new());
        for set in &self.sets {
            let (key, change, extra) = (key.clone(), change.clone(), extra.clone());
            let results = set
                .on_drives_seq(move |_, d| {
                    let now = d.get(table, &key)?;
                    let mut ops = vec![
                        RecordOp::Check {
                            table,
                            key: key.clone(),
                            hash: now.as_deref().map(crate::drive::value_hash),
                        },
                        change.clone(),
                    ];
                    ops.extend(extra.iter().cloned());
                    d.commit(ops)
                })
                .await;
            let ok = results.iter().filter(|r| r.is_ok()).count();
            if ok < set.write_quorum() {
                short.get_or_insert((ok, set.write_quorum()));
                errs.extend(results.into_iter().filter_map(Result::err));
            }
        }
        match short {
            Some((ok, need)) => Err(quorum_error(&errs, ok, need)),
            None => Ok(()),
        }
    }

    /// Runs a change of the bucket list or a bucket's settings under the
    /// deployment-wide bucket lock, on the bucket's record as the drives
    /// hold it now, and tells the other nodes once it is committed.
    async fn change_bucket<T>(
        &self,
        name: &str,
        change: impl AsyncFnOnce(Option<BucketRecord>) -> ObjectResult<T>,
    ) -> ObjectResult<T> {
        let coord = Arc::clone(self.coordinator());
        let _lock = coord.lock("buckets").await?;
        if self.shared {
            self.reload_bucket(name).await?;
        }
        let r = change(self.bucket(name).ok()).await;
        if self.shared {
            coord.bucket_changed(name).await;
        }
        r
    }

    pub async fn make_bucket(&self, name: &str) -> ObjectResult<()> {
        self.make_bucket_with(name, Vec::new()).await
    }

    /// Makes a bucket with its first settings (ownership, ACL), in one
    /// record: a bucket never exists without them.
    pub async fn make_bucket_with(&self, name: &str, settings: Vec<(String, Vec<u8>)>) -> ObjectResult<()> {
        if !valid_bucket_name(name) {
            return Err(ObjectError::InvalidBucketName);
        }
        self.change_bucket(name, async |now| {
            if now.is_some() {
                return Err(ObjectError::BucketExists);
            }
            let rec = BucketRecord {
                created_ns: now_ns(),
                settings: settings.into_iter().collect(),
                ..Default::default()
            };
            self.store_bucket(name, rec).await
        })
        .await
    }

    pub async fn set_versioning(&self, name: &str, v: Versioning) -> ObjectResult<()> {
        if v != Versioning::Enabled && self.lock_config(name)?.is_some() {
            return Err(ObjectError::InvalidBucketState(
                "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed".into(),
            ));
        }
        self.update_bucket(name, |rec| rec.versioning = v).await
    }

    /// A bucket setting (`tagging`, `policy`, ...) in its stored encoding.
    pub fn bucket_setting(&self, name: &str, setting: &str) -> ObjectResult<Option<Vec<u8>>> {
        Ok(self.bucket(name)?.settings.get(setting).cloned())
    }

    /// Stores (or with `None` removes) a bucket setting.
    pub async fn set_bucket_setting(
        &self,
        name: &str,
        setting: &str,
        value: Option<Vec<u8>>,
    ) -> ObjectResult<()> {
        let setting = setting.to_owned();
        self.update_bucket(name, move |rec| match value {
            Some(v) => {
                rec.settings.insert(setting, v);
            }
            None => {
                rec.settings.remove(&setting);
            }
        })
        .await
    }

    /// Read-modify-write of a bucket record; bucket updates are serialized
    /// so that two changes to different settings do not undo each other.
    async fn update_bucket(&self, name: &str, change: impl FnOnce(&mut BucketRecord)) -> ObjectResult<()> {
        self.change_bucket(name, async |now| {
            let mut rec = now.ok_or(ObjectError::NoSuchBucket)?;
            change(&mut rec);
            self.store_bucket(name, rec).await
        })
        .await
    }

    /// Writes a bucket record on every drive and into the cache.
    async fn store_bucket(&self, name: &str, rec: BucketRecord) -> ObjectResult<()> {
        self.commit_bucket(name, Some(&rec), vec![]).await?;
        self.buckets.insert(name, rec);
        Ok(())
    }

    pub async fn delete_bucket(&self, name: &str) -> ObjectResult<()> {
        self.change_bucket(name, async |now| {
            let rec = now.ok_or(ObjectError::NoSuchBucket)?;
            // Mark it first: no write decided from here on lands in it
            // (see `buckets`); then check that it is empty.
            let mut marked = rec.clone();
            marked.settings.insert(buckets::DELETING.into(), vec![1]);
            self.store_bucket(name, marked).await?;
            self.buckets.drain(name, buckets::DRAIN_WAIT).await;
            if self.shared {
                self.coordinator().bucket_changed(name).await;
            }
            let r = self.delete_bucket_marked(name).await;
            if r.is_err() {
                // Still there: take the mark off.
                self.store_bucket(name, rec).await?;
            }
            r
        })
        .await
    }

    async fn delete_bucket_marked(&self, name: &str) -> ObjectResult<()> {
        let page = self
            .list_objects(
                name,
                ListOptions {
                    max_keys: 1,
                    versions: true,
                    ..Default::default()
                },
            )
            .await?;
        if !page.objects.is_empty() {
            return Err(ObjectError::BucketNotEmpty);
        }
        // Unfinished multipart uploads go with the bucket, as in S3.
        loop {
            let uploads = self.list_uploads(name, "", None, 1000).await?;
            if uploads.is_empty() {
                break;
            }
            for u in uploads {
                match self.abort_multipart(name, &u.key, &u.upload_id).await {
                    Ok(()) | Err(ObjectError::NoSuchUpload) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        let usage = RecordOp::Delete {
            table: Table::Usage,
            key: name.as_bytes().to_vec(),
        };
        self.commit_bucket(name, None, vec![usage]).await?;
        self.buckets.remove(name);
        self.usage.remove(name);
        Ok(())
    }

    /// Writes an object; returns the version written.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        mut opts: PutOptions,
    ) -> ObjectResult<Version> {
        let b = self.bucket(bucket)?;
        check_key(key)?;
        (opts.retention, opts.legal_hold) = self.lock_for_write(bucket, opts.retention, opts.legal_hold)?;
        let set = self.set_for(bucket, key);
        set.fit_sealing(&mut opts);
        // A body of unknown length cannot be framed for a store as it
        // streams: it is written here first, then moved.
        let later = if opts.size.is_none() {
            opts.place.take()
        } else {
            None
        };
        let v = set.put_object(bucket, key, body, opts, b.versioning).await?;
        Ok(match later {
            Some(place) => self.place_written(bucket, key, v, &place).await,
            None => v,
        })
    }

    /// Resolves the version a GET or HEAD would return: the latest, or the
    /// one `version` names. A delete marker is an error.
    pub async fn head_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
    ) -> ObjectResult<ObjectReader> {
        self.bucket(bucket)?;
        check_key(key)?;
        let vid = parse_version(version)?;
        let reader = self.set_for(bucket, key).open_object(bucket, key, vid).await?;
        let v = reader.version();
        if v.is_delete_marker() {
            return Err(ObjectError::DeleteMarker {
                version_id: v.id.to_api(),
                requested: vid.is_some(),
            });
        }
        Ok(reader)
    }

    /// Deletes the latest version (unversioned bucket) or adds a delete
    /// marker (versioned bucket), or deletes one version by id. Returns the
    /// version id deleted or created and whether it is a delete marker.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version: Option<&str>,
        bypass_governance: bool,
    ) -> ObjectResult<(Option<String>, bool)> {
        let b = self.bucket(bucket)?;
        check_key(key)?;
        let vid = parse_version(version)?;
        self.set_for(bucket, key)
            .delete_object(bucket, key, vid, b.versioning, bypass_governance, None)
            .await
    }

    /// Removes `v` of `key` as a lifecycle rule decided: as the key's
    /// current version (`current`: deleted, or hidden behind a delete
    /// marker in a versioned bucket), or as that version. Only while `v`
    /// is still what it was (`PreconditionFailed` once a write changed
    /// it); Object Lock refuses as it refuses clients (no bypass).
    pub async fn expire(&self, bucket: &str, key: &str, v: &Version, current: bool) -> ObjectResult<()> {
        let b = self.bucket(bucket)?;
        let version = (!current).then_some(v.id);
        self.set_for(bucket, key)
            .delete_object(
                bucket,
                key,
                version,
                b.versioning,
                false,
                Some((v.id, v.mod_time_ns)),
            )
            .await
            .map(|_| ())
    }
}

/// The buckets that the drives' answers (each drive's bucket entries, or
/// its error) hold. Creates and deletes commit on a majority of all
/// drives, so a bucket exists when more than half of the drives that
/// answered hold it: a drive that missed a create does not hide it, and a
/// drive that was offline during a delete does not bring it back. Heal
/// then brings every drive in line. A change of a bucket's record is
/// acknowledged on a majority too: the value most drives hold is the
/// bucket's (ties, from a change that was never acknowledged, go to the
/// same value every time).
fn majority_buckets(lists: Vec<Result<crate::drive::Entries, DriveError>>) -> BTreeMap<String, BucketRecord> {
    majority(lists, |v| BucketRecord::decode(v).is_ok())
        .into_iter()
        .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, BucketRecord::decode(&v).ok()?)))
        .collect()
}

/// What most answering drives hold: per key, the value most of them hold
/// (the first in byte order among equal counts), for keys more than half
/// of them hold at all. Values `valid` refuses do not count.
pub(crate) fn majority(
    lists: Vec<Result<crate::drive::Entries, DriveError>>,
    valid: impl Fn(&[u8]) -> bool,
) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let answered = lists.iter().filter(|l| l.is_ok()).count();
    let mut counts: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
    let mut values: BTreeMap<(Vec<u8>, Vec<u8>), usize> = BTreeMap::new();
    for l in lists.into_iter().flatten() {
        for (k, v) in l {
            if valid(&v) {
                *counts.entry(k.clone()).or_default() += 1;
                *values.entry((k, v)).or_default() += 1;
            }
        }
    }
    // Values in order, so the first of equal counts wins every time.
    let mut best: BTreeMap<Vec<u8>, (Vec<u8>, usize)> = BTreeMap::new();
    for ((k, v), n) in values {
        if best.get(&k).is_none_or(|(_, b)| n > *b) {
            best.insert(k, (v, n));
        }
    }
    best.into_iter()
        .filter(|(k, _)| counts.get(k).is_some_and(|c| *c * 2 > answered))
        .map(|(k, (v, _))| (k, v))
        .collect()
}

pub(crate) fn parse_version(version: Option<&str>) -> ObjectResult<Option<crate::meta::VersionId>> {
    version
        .map(|v| crate::meta::VersionId::from_api(v).ok_or(ObjectError::InvalidVersionId))
        .transpose()
}

pub(crate) fn placement_hash(seed: u64, bucket: &str, key: &str) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::with_seed(seed);
    h.update(bucket.as_bytes());
    h.update(b"/");
    h.update(key.as_bytes());
    h.digest()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_clone;
#[cfg(test)]
mod tests_cold;
#[cfg(test)]
mod tests_expire;
#[cfg(test)]
mod tests_list;
#[cfg(test)]
mod tests_parts;
#[cfg(test)]
mod tests_pools;
#[cfg(test)]
mod tests_sse;

#[cfg(test)]
mod crash;
