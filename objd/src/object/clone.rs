//! Clones: the current objects under a prefix of one bucket, copied under
//! another prefix (of the same bucket or another) as they are at that
//! moment, so later writes to either side change nothing on the other.
//! This is what volume snapshots, restores and clones are made of.
//!
//! A clone does not copy bytes where it can share them. When the new name
//! lives in the same erasure set as the old (always with one set), each
//! drive gets a new data directory whose shard files are hard links to the
//! origin's: shard files are never changed once written, so both names
//! read the same bytes, and removing either leaves the other whole. The
//! new record is the origin's version as each drive holds it (shard
//! index, checksums, ETag, metadata, tags, times), committed like any
//! write (write quorum, usage counted, quota checked). Where the new name
//! lives in another set, the object is copied through the write path.
//!
//! An encrypted version keeps its data key, which stays bound to the name
//! it was sealed for ([`crate::meta::EncryptionRecord::bound_name`]).
//!
//! Each key is cloned on its own: a key written during the clone is cloned
//! as it was before or after that write, never a mix, like a crash would
//! leave it. A crash part-way leaves directories of links no record names,
//! which the orphan sweep removes.

use super::set::{Change, next_mod_time};
use super::{ErasureSet, KeySource, ListOptions, ObjectError, ObjectLayer, ObjectResult, PutOptions};
use crate::drive::{DriveError, ShardFile};
use crate::meta::{DataLoc, Version, VersionId, Versioning};
use futures::StreamExt;
use std::sync::Arc;

/// Keys whose files are linked (or which are copied) at once.
const STAGE_CONCURRENCY: usize = 32;
/// Keys staged before their links are made durable and their records
/// committed: what a staged key holds (each drive's copy of its record,
/// with the data of an inline object) stays bounded, a few MiB.
const STAGED_AT_ONCE: usize = 128;
/// Clone records committed at once: the drives fold the commits waiting
/// at one moment into one transaction, so many at once share an fsync.
const COMMIT_CONCURRENCY: usize = 256;

/// What a clone did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct CloneReport {
    /// Objects cloned.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Objects whose shard files are shared with their origin.
    pub linked: u64,
    /// Objects copied through the write path (their new name lives in
    /// another erasure set).
    pub copied: u64,
}

impl CloneReport {
    fn count(&mut self, c: Cloned) {
        let size = match c {
            Cloned::Skipped => return,
            Cloned::Linked(size) => {
                self.linked += 1;
                size
            }
            Cloned::Copied(size) => {
                self.copied += 1;
                size
            }
        };
        self.objects += 1;
        self.bytes += size;
    }
}

/// How one key was cloned.
enum Cloned {
    /// Gone, or a delete marker, by the time it was read.
    Skipped,
    Linked(u64),
    Copied(u64),
}

impl ObjectLayer {
    /// Clones every current object under `src_prefix` of `src_bucket` to
    /// the same name with `dst_prefix` in its place in `dst_bucket`.
    /// `keys` opens encrypted versions that must be copied. Objects already
    /// under the target names are replaced. The prefixes of one bucket may
    /// not overlap. An object named exactly `src_prefix` (the marker of a
    /// directory) is cloned only under a non-empty `dst_prefix`.
    /// `progress` hears the figures so far after every page of keys.
    pub async fn clone_prefix(
        &self,
        (src_bucket, src_prefix): (&str, &str),
        (dst_bucket, dst_prefix): (&str, &str),
        keys: Arc<dyn KeySource>,
        progress: impl Fn(&CloneReport),
    ) -> ObjectResult<CloneReport> {
        let versioning = self.check_clone((src_bucket, src_prefix), (dst_bucket, dst_prefix))?;
        let mut report = CloneReport::default();
        let mut after = String::new();
        loop {
            let page = self
                .list_objects(
                    src_bucket,
                    ListOptions {
                        prefix: src_prefix.to_owned(),
                        start_after: after.clone(),
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .await?;
            // The object named by the source prefix itself (a directory
            // marker) has no name under an empty target prefix: it stays.
            let names: Vec<(String, String)> = page
                .objects
                .iter()
                .filter(|o| !(dst_prefix.is_empty() && o.key.len() == src_prefix.len()))
                .map(|o| {
                    (
                        o.key.clone(),
                        format!("{dst_prefix}{}", &o.key[src_prefix.len()..]),
                    )
                })
                .collect();
            for chunk in names.chunks(STAGED_AT_ONCE) {
                // Shard files linked (or objects copied), key by key...
                let work: Vec<_> = chunk
                    .iter()
                    .map(|(from, to)| {
                        let (from, to, keys) = (from.clone(), to.clone(), Arc::clone(&keys));
                        async move {
                            self.stage_key((src_bucket, &from), (dst_bucket, &to), versioning, keys)
                                .await
                        }
                    })
                    .collect();
                let staged: Vec<ObjectResult<Staged>> = futures::stream::iter(work)
                    .buffered(STAGE_CONCURRENCY)
                    .collect()
                    .await;
                // ...the links made durable, once per drive for the chunk...
                let mut synced: Vec<Vec<bool>> = Vec::new();
                if staged.iter().any(|s| matches!(s, Ok(Staged::Linked { .. }))) {
                    for set in self.sets() {
                        synced.push(set.sync_links().await);
                    }
                }
                let synced = &synced;
                // ...then the records that name them committed.
                let work: Vec<_> = staged
                    .into_iter()
                    .zip(chunk)
                    .map(|(s, (_, to))| async move {
                        match s? {
                            Staged::Linked {
                                set,
                                dir,
                                mut copies,
                                size,
                            } => {
                                // A drive whose links may not be durable takes
                                // no record naming them.
                                for (p, c) in copies.iter_mut().enumerate() {
                                    if !synced[set.index][p] {
                                        *c = None;
                                    }
                                }
                                let r = set.commit_clone(dst_bucket, to, copies).await;
                                if r.is_err() {
                                    set.discard_unreferenced(dst_bucket, to, dir).await;
                                }
                                r.map(|()| Cloned::Linked(size))
                            }
                            Staged::Done(c) => Ok(c),
                        }
                    })
                    .collect();
                let done: Vec<ObjectResult<Cloned>> = futures::stream::iter(work)
                    .buffered(COMMIT_CONCURRENCY)
                    .collect()
                    .await;
                for d in done {
                    report.count(d?);
                }
            }
            progress(&report);
            match page.next_marker.filter(|_| page.truncated) {
                Some(m) => after = m,
                None => return Ok(report),
            }
        }
    }

    /// Refuses a clone that cannot run (a bucket missing, prefixes of one
    /// bucket that overlap); returns the target bucket's versioning.
    pub fn check_clone(
        &self,
        (src_bucket, src_prefix): (&str, &str),
        (dst_bucket, dst_prefix): (&str, &str),
    ) -> ObjectResult<Versioning> {
        self.bucket(src_bucket)?;
        let versioning = self.bucket(dst_bucket)?.versioning;
        if src_bucket == dst_bucket
            && (src_prefix.starts_with(dst_prefix) || dst_prefix.starts_with(src_prefix))
        {
            return Err(ObjectError::InvalidRequest(
                "The source and target prefixes of a clone within one bucket may not overlap".into(),
            ));
        }
        Ok(versioning)
    }

    /// The first step of cloning one key: its shard files linked under a
    /// new directory where the new name lives in the same set (committed
    /// once the links are durable), else the object copied.
    async fn stage_key(
        &self,
        (src_bucket, src_key): (&str, &str),
        (dst_bucket, dst_key): (&str, &str),
        versioning: Versioning,
        keys: Arc<dyn KeySource>,
    ) -> ObjectResult<Staged> {
        super::check_key(dst_key)?;
        let set = self.set_for(src_bucket, src_key);
        if !Arc::ptr_eq(set, self.set_for(dst_bucket, dst_key)) {
            return self
                .clone_by_copy((src_bucket, src_key), (dst_bucket, dst_key), keys)
                .await
                .map(Staged::Done);
        }
        match set.link_clone((src_bucket, src_key), versioning).await? {
            Some(staged) => Ok(staged),
            // Data in a pool or remote tier is not shared: the clone gets
            // a copy, in the same place.
            None => self
                .clone_by_copy((src_bucket, src_key), (dst_bucket, dst_key), keys)
                .await
                .map(Staged::Done),
        }
    }

    /// Copies the current version of a key whose new name lives in
    /// another set, keeping its metadata, tags and data key.
    async fn clone_by_copy(
        &self,
        (src_bucket, src_key): (&str, &str),
        (dst_bucket, dst_key): (&str, &str),
        keys: Arc<dyn KeySource>,
    ) -> ObjectResult<Cloned> {
        let reader = match self.head_object(src_bucket, src_key, None).await {
            Ok(r) => r,
            Err(ObjectError::NoSuchKey | ObjectError::DeleteMarker { .. }) => return Ok(Cloned::Skipped),
            Err(e) => return Err(e),
        };
        let v = reader.version();
        let mut opts = PutOptions::default();
        if let Some(rec) = &v.extras.encryption {
            // The same data key, still bound to the name it was sealed for.
            let mut record = rec.clone();
            let (b, k) = rec.bound_name(src_bucket, src_key);
            record.bound = Some((b.to_owned(), k.to_owned()));
            opts.encryption = Some(super::Sealing {
                key: keys.data_key(src_bucket, src_key, rec).await?,
                record,
            });
        }
        opts.retention = super::lock::Retention::of(&v.extras);
        opts.legal_hold = v.extras.legal_hold;
        opts.acl = v.extras.acl.clone();
        // A copy of data kept in a pool or tier goes to the same place.
        opts.place = v.remote().map(|r| r.tier.clone());
        let src = super::CopySource {
            bucket: src_bucket.to_owned(),
            key: src_key.to_owned(),
            version: Some(v.id.to_api()),
            keys: Some(keys),
            ..Default::default()
        };
        let (source, _) = self
            .copy_object(&src, dst_bucket, dst_key, opts, true, true)
            .await?;
        Ok(Cloned::Copied(source.size))
    }
}

/// A key half cloned: its shard files linked (not yet durably) under
/// `dir` on each drive with a copy, or done already.
enum Staged {
    Linked {
        set: Arc<ErasureSet>,
        dir: [u8; 16],
        copies: Vec<Option<Version>>,
        size: u64,
    },
    Done(Cloned),
}

impl ErasureSet {
    /// Links the shard files of the current version of a key under a new
    /// data directory on each drive, and returns each drive's copy of the
    /// version as the clone's record will hold it. `None` when the
    /// version's data lives in a remote tier (nothing to link).
    async fn link_clone(
        self: &Arc<Self>,
        (src_bucket, src_key): (&str, &str),
        versioning: Versioning,
    ) -> ObjectResult<Option<Staged>> {
        let dir = *uuid::Uuid::new_v4().as_bytes();
        // Under the origin's lock, so its files stay until they are linked.
        let (version, mut copies) = {
            let _guard = self.locks.lock(src_bucket, src_key).await;
            let records = self.read_records(src_bucket, src_key).await;
            let res = match self.resolve(&records, None) {
                Ok(r) if !r.version.is_delete_marker() => r,
                Ok(_) | Err(ObjectError::NoSuchKey) => return Ok(Some(Staged::Done(Cloned::Skipped))),
                Err(e) => return Err(e),
            };
            if res.version.remote().is_some() {
                return Ok(None);
            }
            let files: Vec<ShardFile> = res.version.parts.iter().map(|p| p.file()).collect();
            let with_files: Vec<(usize, [u8; 16])> = res
                .copies
                .iter()
                .enumerate()
                .filter_map(|(p, c)| Some((p, c.as_ref()?.dir()?)))
                .collect();
            let positions: Vec<usize> = with_files.iter().map(|(p, _)| *p).collect();
            let linked = self
                .on_drives_in(&positions, move |p, d| {
                    let from = with_files
                        .iter()
                        .find(|(q, _)| *q == p)
                        .map(|(_, from)| *from)
                        .ok_or(DriveError::Offline)?;
                    d.link_data(&from, &dir, &files)
                })
                .await;
            let mut copies = res.copies;
            for (p, r) in positions.iter().zip(linked) {
                if let Err(e) = r {
                    tracing::warn!(bucket = src_bucket, key = src_key, error = %e, "a drive could not link a clone's files");
                    copies[*p] = None;
                }
            }
            (res.version, copies)
        };
        let (b, k) = (src_bucket.to_owned(), src_key.to_owned());
        for c in copies.iter_mut().flatten() {
            if let DataLoc::Dir(_) = c.data {
                c.data = DataLoc::Dir(dir);
            }
            if let Some(e) = &mut c.extras.encryption
                && e.bound.is_none()
            {
                e.bound = Some((b.clone(), k.clone()));
            }
            if versioning != Versioning::Enabled {
                c.id = VersionId::NULL;
            }
        }
        Ok(Some(Staged::Linked {
            set: Arc::clone(self),
            dir,
            copies,
            size: version.size,
        }))
    }

    /// Makes the links of the clones staged so far durable on every
    /// drive; which drives did.
    async fn sync_links(&self) -> Vec<bool> {
        let synced = self.on_drives(|_, d| d.sync_data()).await;
        synced
            .into_iter()
            .map(|r| {
                if let Err(e) = &r {
                    tracing::warn!(error = %e, "a drive could not make a clone's links durable");
                }
                r.is_ok()
            })
            .collect()
    }

    /// Commits each drive's copy of a cloned version as the newest entry
    /// of `bucket/key` (its links durable).
    async fn commit_clone(&self, bucket: &str, key: &str, copies: Vec<Option<Version>>) -> ObjectResult<()> {
        let _guard = self.locks.lock(bucket, key).await;
        let (records, hashes) = self.read_records_hashed(bucket, key).await;
        let view = self.view(&records);
        let stamp = next_mod_time(&view);
        let adds = copies
            .into_iter()
            .map(|c| {
                c.map(|mut c| {
                    c.stamp = stamp.max(c.stamp);
                    vec![c]
                })
            })
            .collect();
        self.apply_change(bucket, key, (records, hashes), &view, Change::new(adds))
            .await
    }
}
