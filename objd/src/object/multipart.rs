//! Multipart uploads. An upload owns a data directory named by its id; each
//! part is written there as its own shard file (`part.N`) and recorded in
//! the parts table. Completing writes the object version that lists the
//! chosen parts and, in the same atomic commit per drive, deletes the upload
//! and part records: no data is copied.

use super::checksum::{self, Checksum, ChecksumAlgo, ChecksumCheck, ChecksumKind};
use super::conditions::WriteCondition;
use super::encryption::{KeySource, etag_for};
use super::put::{PartSpec, Pending, Stored};
use super::{ByteStream, ErasureSet, ObjectError, ObjectLayer, ObjectResult, PutOptions, check_key};
use crate::drive::{DriveError, KeyRange, RecordOp, ShardFile, Table, object_key};
use crate::meta::{
    ChecksumRecord, PartInfo, PartRecord, UploadRecord, Version, VersionId, VersionKind, Versioning,
};
use crate::sse::package::Sealer;
use md5::{Digest, Md5};
use std::collections::BTreeMap;

/// Smallest part S3 accepts, except for the last one.
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

#[derive(Debug, Clone)]
pub struct MultipartUpload {
    pub key: String,
    pub upload_id: String,
    pub initiated_ns: i64,
}

#[derive(Debug, Clone)]
pub struct UploadedPart {
    pub number: u32,
    pub size: u64,
    pub etag: String,
    pub mod_time_ns: i64,
}

#[derive(Debug, Clone)]
pub struct CompletePart {
    pub number: u32,
    pub etag: String,
    /// The part's checksum in the upload's algorithm, if the client sent it.
    pub checksum: Option<String>,
}

/// The checksum an upload was created with: its algorithm and kind.
fn upload_checksum(u: &UploadRecord) -> Option<(ChecksumAlgo, ChecksumKind)> {
    let c = u.extras.checksum.as_ref()?;
    let kind = if c.kind == ChecksumKind::Composite as u8 {
        ChecksumKind::Composite
    } else {
        ChecksumKind::FullObject
    };
    Some((ChecksumAlgo::from_u8(c.algo)?, kind))
}

/// The checksum of a completed upload from its parts' checksums (`None`
/// when the upload has none or a part lacks it).
fn object_checksum(upload: &UploadRecord, parts: Option<Vec<(Vec<u8>, u64)>>) -> Option<Checksum> {
    let (algo, kind) = upload_checksum(upload)?;
    let parts = parts?;
    let digest = match kind {
        ChecksumKind::FullObject => checksum::combine(algo, &parts)?,
        ChecksumKind::Composite => {
            checksum::composite(algo, &parts.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        }
    };
    Some(Checksum {
        algo,
        kind,
        digest,
        parts: parts.len() as u32,
    })
}

/// Validates the checksum algorithm and kind asked for at creation; the
/// default is a full-object CRC64NVME, and for other algorithms a
/// composite checksum, as S3 has them.
pub fn upload_checksum_kind(
    algo: Option<ChecksumAlgo>,
    kind: Option<ChecksumKind>,
) -> ObjectResult<(ChecksumAlgo, ChecksumKind)> {
    let algo = algo.unwrap_or(ChecksumAlgo::Crc64Nvme);
    let kind = kind.unwrap_or(if algo == ChecksumAlgo::Crc64Nvme {
        ChecksumKind::FullObject
    } else {
        ChecksumKind::Composite
    });
    match (algo, kind) {
        (a, ChecksumKind::FullObject) if !a.combinable() => Err(ObjectError::InvalidRequest(format!(
            "The {} checksum algorithm does not support the FULL_OBJECT checksum type",
            a.name()
        ))),
        (ChecksumAlgo::Crc64Nvme, ChecksumKind::Composite) => Err(ObjectError::InvalidRequest(
            "The CRC64NVME checksum algorithm supports only the FULL_OBJECT checksum type".into(),
        )),
        ok => Ok(ok),
    }
}

pub(super) fn upload_key(bucket: &str, key: &str, id: &[u8; 16]) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(hex::encode(id).as_bytes());
    k
}

/// `upload id ‖ part number ‖ file tag`: each upload of a part has a row
/// of its own until a newer one is on write quorum. (Rows written before
/// format 3 have no tag in the key; the record says which file.)
fn part_key(id: &[u8; 16], number: u32, tag: u64) -> Vec<u8> {
    let mut k = id.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    k.extend_from_slice(&tag.to_be_bytes());
    k
}

/// The part rows of an upload with part numbers in `from..to`.
fn part_rows(
    d: &dyn crate::drive::Drive,
    id: &[u8; 16],
    from: u32,
    to: u32,
) -> crate::drive::DriveResult<Vec<(Vec<u8>, Vec<u8>)>> {
    let (start, end) = (parts_start(id, from), parts_start(id, to));
    d.scan(Table::Parts, KeyRange::new(&start, &end, usize::MAX))
}

/// The start of the rows of part `number` of an upload, or of all its
/// parts with `number` 0.
fn parts_start(id: &[u8; 16], number: u32) -> Vec<u8> {
    let mut k = id.to_vec();
    k.extend_from_slice(&number.to_be_bytes());
    k
}

fn parse_upload_id(s: &str) -> ObjectResult<[u8; 16]> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(s, &mut id).map_err(|_| ObjectError::NoSuchUpload)?;
    Ok(id)
}

/// Strips surrounding quotes from an ETag as clients send it.
fn bare_etag(e: &str) -> &str {
    e.trim().trim_matches('"')
}

impl ErasureSet {
    /// The upload record as read quorum of the drives hold it.
    async fn get_upload(&self, bucket: &str, key: &str, id: [u8; 16]) -> ObjectResult<UploadRecord> {
        let k = upload_key(bucket, key, &id);
        let recs = self
            .on_drives(move |_, d| {
                d.get(Table::Uploads, &k)?
                    .map(|b| UploadRecord::decode(&b).map_err(|e| DriveError::Corrupt(e.to_string())))
                    .transpose()
            })
            .await;
        let found: Vec<UploadRecord> = recs.into_iter().filter_map(|r| r.ok().flatten()).collect();
        let completed = found.iter().filter(|u| u.completed).count();
        // Completed once read quorum marks it so; a completion that did not
        // reach quorum leaves it usable (every record counts).
        if found.len() < self.read_quorum() || completed >= self.read_quorum() {
            return Err(ObjectError::NoSuchUpload);
        }
        found
            .into_iter()
            .find(|u| !u.completed)
            .ok_or(ObjectError::NoSuchUpload)
    }

    /// The version a completed upload became, while its upload record may
    /// still be around (a crash before the records were cleaned up).
    pub(super) async fn completed_version(
        &self,
        bucket: &str,
        key: &str,
        id: [u8; 16],
    ) -> ObjectResult<Option<Version>> {
        let records = self.read_records(bucket, key).await;
        let view = self.view(&records);
        if let Err(e @ ObjectError::ReadQuorum) = view.resolve(None) {
            return Err(e);
        }
        Ok(view
            .live()
            .into_iter()
            .find(|e| e.version.dir() == Some(id))
            .map(|e| e.version.clone()))
    }

    /// Marks a completed upload's record completed on every drive that holds
    /// one unmarked, the first step of forgetting it: once no unmarked
    /// record is left, deleting the records in any order never makes the
    /// upload usable again. True when every drive answered.
    pub(super) async fn mark_completed(&self, bucket: &str, key: &str, id: [u8; 16]) -> bool {
        let uk = upload_key(bucket, key, &id);
        let results = self
            .on_drives(move |_, d| {
                let Some(b) = d.get(Table::Uploads, &uk)? else {
                    return Ok(());
                };
                let mut u = UploadRecord::decode(&b).map_err(|e| DriveError::Corrupt(e.to_string()))?;
                if !u.completed {
                    u.completed = true;
                    d.commit(vec![RecordOp::Put {
                        table: Table::Uploads,
                        key: uk.clone(),
                        value: u.encode(),
                    }])?;
                }
                Ok(())
            })
            .await;
        results.iter().all(Result::is_ok)
    }

    /// Removes the records of an upload that completed (its version is on
    /// write quorum) or is aborted; with `keep`, the files of its parts
    /// other than those; with `remove_dir`, its data directory, once write
    /// quorum of drives dropped the records (so that an upload still
    /// readable keeps its parts). Fails with `WriteQuorum` when too few
    /// drives committed.
    pub(super) async fn forget_upload(
        &self,
        bucket: &str,
        key: &str,
        id: [u8; 16],
        remove_dir: bool,
        keep: Option<Vec<ShardFile>>,
    ) -> ObjectResult<()> {
        let uk = upload_key(bucket, key, &id);
        let results = self
            .on_drives(move |_, d| {
                let rows = part_rows(d, &id, 0, u32::MAX)?;
                let mut ops = vec![RecordOp::Delete {
                    table: Table::Uploads,
                    key: uk.clone(),
                }];
                let files: Vec<ShardFile> = rows
                    .iter()
                    .filter_map(|(_, v)| PartRecord::decode(v).ok())
                    .map(|p| ShardFile::new(p.number, p.tag))
                    .collect();
                ops.extend(rows.into_iter().map(|(k, _)| RecordOp::Delete {
                    table: Table::Parts,
                    key: k,
                }));
                d.commit(ops)?;
                if let Some(keep) = &keep {
                    for f in files.iter().filter(|f| !keep.contains(f)) {
                        d.remove_part(&id, *f)?;
                    }
                }
                Ok(())
            })
            .await;
        let ok = results.iter().filter(|r| r.is_ok()).count();
        if ok < self.write_quorum() {
            let errs: Vec<DriveError> = results.into_iter().filter_map(Result::err).collect();
            return Err(super::quorum_error(&errs, ok, self.write_quorum()));
        }
        if remove_dir {
            // Not on a drive where a version (of a completion that reached
            // it) names the directory.
            self.discard_unreferenced_locked(bucket, key, id).await;
        }
        Ok(())
    }

    /// Part records of an upload (every upload of each part), per drive
    /// position.
    async fn read_parts(&self, id: [u8; 16]) -> Vec<Option<Vec<PartRecord>>> {
        self.on_drives(move |_, d| {
            let rows = part_rows(d, &id, 0, u32::MAX)?;
            Ok(rows
                .into_iter()
                .filter_map(|(_, v)| PartRecord::decode(&v).ok())
                .collect::<Vec<_>>())
        })
        .await
        .into_iter()
        .map(Result::ok)
        .collect()
    }

    /// Per part number, its newest upload that read quorum of drives hold
    /// (same file, size and ETag): an upload of a part that did not reach
    /// quorum leaves the one before it in place.
    fn agreed_parts(&self, per_drive: &[Option<Vec<PartRecord>>]) -> BTreeMap<u32, PartRecord> {
        let same = |a: &PartRecord, b: &PartRecord| {
            a.number == b.number && a.tag == b.tag && a.etag == b.etag && a.size == b.size
        };
        let mut out: BTreeMap<u32, PartRecord> = BTreeMap::new();
        for p in per_drive.iter().flatten().flatten() {
            let agree = per_drive
                .iter()
                .flatten()
                .filter(|o| o.iter().any(|q| same(p, q)))
                .count();
            if agree >= self.read_quorum()
                && out
                    .get(&p.number)
                    .is_none_or(|b| (p.mod_time_ns, p.tag) > (b.mod_time_ns, b.tag))
            {
                out.insert(p.number, p.clone());
            }
        }
        out
    }
}

impl ObjectLayer {
    pub async fn create_multipart(
        &self,
        bucket: &str,
        key: &str,
        mut opts: PutOptions,
    ) -> ObjectResult<String> {
        self.bucket(bucket)?;
        check_key(key)?;
        let set = self.set_for(bucket, key);
        set.fit_sealing(&mut opts);
        let id = VersionId::random().0;
        let (algo, kind) = upload_checksum_kind(opts.checksum_algo, opts.checksum_kind)?;
        let (retention, legal_hold) = self.lock_for_write(bucket, opts.retention, opts.legal_hold)?;
        let rec = UploadRecord {
            upload_id: id,
            initiated_ns: super::now_ns(),
            headers: opts.headers,
            user_meta: opts.user_meta,
            erasure: set.erasure_info(0),
            extras: crate::meta::Extras {
                tags: opts.tags,
                checksum: Some(ChecksumRecord {
                    algo: algo as u8,
                    kind: kind as u8,
                    digest: vec![],
                    parts: 0,
                }),
                retention: retention.map(|r| (r.mode as u8, r.until_ns)),
                legal_hold,
                encryption: opts.encryption.map(|s| s.record),
                acl: opts.acl,
                place: opts.place,
                ..Default::default()
            },
            completed: false,
        };
        let op = RecordOp::Put {
            table: Table::Uploads,
            key: upload_key(bucket, key, &id),
            value: rec.encode(),
        };
        let _admitted = self.buckets.admit(bucket)?;
        set.commit_quorum(vec![Some(vec![op]); set.drive_count()]).await?;
        Ok(hex::encode(id))
    }

    #[allow(clippy::too_many_arguments)]
    /// The checksum algorithm of an upload in progress.
    pub async fn upload_checksum_algo(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> ObjectResult<Option<ChecksumAlgo>> {
        self.bucket(bucket)?;
        let id = parse_upload_id(upload_id)?;
        let upload = self.set_for(bucket, key).get_upload(bucket, key, id).await?;
        Ok(upload_checksum(&upload).map(|(a, _)| a))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        number: u32,
        body: ByteStream,
        size: Option<u64>,
        content_md5: Option<[u8; 16]>,
        check: Option<ChecksumCheck>,
        keys: &dyn KeySource,
    ) -> ObjectResult<(String, Option<Checksum>)> {
        self.bucket(bucket)?;
        check_key(key)?;
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(ObjectError::InvalidArgument(
                "part number must be between 1 and 10000".into(),
            ));
        }
        let id = parse_upload_id(upload_id)?;
        let set = self.set_for(bucket, key);
        let upload = set.get_upload(bucket, key, id).await?;
        let upload_algo = upload_checksum(&upload).map(|(a, _)| a);
        // The upload's checksum for the record, and the client's own (which
        // may use another algorithm) to verify the body against.
        let mut algos: Vec<ChecksumAlgo> = upload_algo.into_iter().collect();
        if let Some(c) = &check
            && Some(c.algo) != upload_algo
        {
            algos.push(c.algo);
        }
        let rotation = set.rotation(bucket, key);
        // Each upload of a part has a file of its own: a part uploaded again
        // never overwrites the file the drives' records name until then.
        let tag = rand::random::<u64>().max(1);
        // Of several uploads of one part number, the one that started last
        // wins, whichever finishes last (as S3): records carry the start.
        let started = super::now_ns();
        // An encrypted upload seals every part with its data key.
        let data_key = match &upload.extras.encryption {
            Some(rec) => Some((keys.data_key(bucket, key, rec).await?, rec)),
            None => None,
        };
        let seal = data_key
            .as_ref()
            .map(|(k, rec)| Sealer::new(k, rec, number))
            .transpose()?;
        let written = set
            .write_part(
                body,
                size,
                PartSpec {
                    dir: id,
                    file: ShardFile::new(number, tag),
                    rotation,
                    allow_inline: false,
                    checksums: algos.clone(),
                    md5: true,
                    seal,
                },
            )
            .await?;
        if content_md5.is_some_and(|m| m != written.md5) {
            return Err(ObjectError::BadDigest);
        }
        // The checksum to report: in the client's algorithm, else the upload's.
        let reported = check.as_ref().map(|c| c.algo).or(upload_algo).map(|algo| {
            let at = algos.iter().position(|a| *a == algo).unwrap_or(0);
            Checksum {
                algo,
                kind: ChecksumKind::FullObject,
                digest: written.checksums[at].clone(),
                parts: 0,
            }
        });
        if let (Some(c), Some(r)) = (check, &reported) {
            c.verify(&r.digest)?;
        }
        let part_sum = upload_algo.map(|a| ChecksumRecord {
            algo: a as u8,
            kind: ChecksumKind::FullObject as u8,
            digest: written.checksums[0].clone(),
            parts: 0,
        });
        let Stored::Files(ok) = written.stored else {
            return Err(ObjectError::Internal("part stored inline".into()));
        };
        let etag = match &data_key {
            Some((k, rec)) => etag_for(rec, k, &written.md5),
            None => hex::encode(written.md5),
        };
        let rec = PartRecord {
            number,
            size: written.size,
            etag: etag.clone(),
            mod_time_ns: started,
            checksum: part_sum,
            tag,
        };
        let op = RecordOp::Put {
            table: Table::Parts,
            key: part_key(&id, number, tag),
            value: rec.encode(),
        };
        // Only drives that hold the part's shard file record it.
        let results = set
            .commit_each(ok.iter().map(|has| has.then(|| vec![op.clone()])).collect())
            .await;
        let committed = results.iter().filter(|r| r.is_ok()).count();
        if committed < set.write_quorum() {
            let errs: Vec<DriveError> = results.into_iter().filter_map(Result::err).collect();
            return Err(super::quorum_error(&errs, committed, set.write_quorum()));
        }
        // On quorum: the uploads of the part that started earlier go, rows
        // then files; or this one, if one that started later is there.
        let ours = (started, tag);
        set.on_drives(move |_, d| {
            let rows: Vec<(Vec<u8>, PartRecord)> = part_rows(d, &id, number, number + 1)?
                .into_iter()
                .filter_map(|(k, v)| PartRecord::decode(&v).ok().map(|p| (k, p)))
                .collect();
            let lost = rows.iter().any(|(_, p)| (p.mod_time_ns, p.tag) > ours);
            let old: Vec<(Vec<u8>, ShardFile)> = rows
                .into_iter()
                .filter(|(_, p)| {
                    let theirs = (p.mod_time_ns, p.tag);
                    if lost { theirs == ours } else { theirs < ours }
                })
                .map(|(k, p)| (k, ShardFile::new(p.number, p.tag)))
                .collect();
            if old.is_empty() {
                return Ok(());
            }
            d.commit(
                old.iter()
                    .map(|(k, _)| RecordOp::Delete {
                        table: Table::Parts,
                        key: k.clone(),
                    })
                    .collect(),
            )?;
            for (_, f) in &old {
                d.remove_part(&id, *f)?;
            }
            Ok(())
        })
        .await;
        Ok((etag, reported))
    }

    pub async fn complete_multipart(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<CompletePart>,
        condition: &WriteCondition,
        whole: Option<ChecksumCheck>,
    ) -> ObjectResult<Version> {
        let b = self.bucket(bucket)?;
        check_key(key)?;
        let id = parse_upload_id(upload_id)?;
        let set = self.set_for(bucket, key);
        // A completion asked again (its answer lost) answers the same.
        let upload = match set.get_upload(bucket, key, id).await {
            Err(ObjectError::NoSuchUpload) => {
                return set
                    .completed_version(bucket, key, id)
                    .await?
                    .ok_or(ObjectError::NoSuchUpload);
            }
            other => other?,
        };
        let upload_place = upload.extras.place.clone();
        if parts.is_empty() {
            return Err(ObjectError::InvalidArgument(
                "the list of parts must not be empty".into(),
            ));
        }
        if parts.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(ObjectError::InvalidPartOrder);
        }
        let per_drive = set.read_parts(id).await;
        let agreed = set.agreed_parts(&per_drive);
        let mut chosen = Vec::with_capacity(parts.len());
        let mut sums = Vec::with_capacity(parts.len());
        let mut md5s = Md5::new();
        let mut plain_size = 0u64;
        for (i, p) in parts.iter().enumerate() {
            let rec = agreed
                .get(&p.number)
                .filter(|r| r.etag == bare_etag(&p.etag))
                .ok_or_else(|| {
                    ObjectError::InvalidPart(format!(
                        "part {} was not uploaded or its ETag differs",
                        p.number
                    ))
                })?;
            if i + 1 < parts.len() && rec.size < MIN_PART_SIZE {
                return Err(ObjectError::EntityTooSmall);
            }
            let raw = hex::decode(&rec.etag).map_err(|_| ObjectError::Internal("bad part etag".into()))?;
            md5s.update(&raw);
            let part_sum = rec.checksum.as_ref().map(|c| c.digest.clone());
            if let (Some((algo, _)), Some(sent)) = (upload_checksum(&upload), &p.checksum)
                && part_sum.as_deref() != Some(&checksum::decode_value(algo, sent)?[..])
            {
                return Err(ObjectError::InvalidPart(format!(
                    "the {} checksum of part {} differs from the one uploaded",
                    algo.name(),
                    p.number
                )));
            }
            sums.push(part_sum.map(|d| (d, rec.size)));
            plain_size += rec.size;
            chosen.push(PartInfo {
                number: rec.number,
                // Encrypted parts are stored sealed.
                size: upload
                    .extras
                    .encryption
                    .as_ref()
                    .map_or(rec.size, |e| e.sealed_len(rec.size)),
                etag: rec.etag.clone(),
                tag: rec.tag,
            });
        }
        let size = plain_size;
        let etag = format!("{}-{}", hex::encode(md5s.finalize()), chosen.len());
        let object_sum = object_checksum(&upload, sums.into_iter().collect::<Option<Vec<_>>>());
        if let Some(w) = whole {
            match &object_sum {
                Some(c) if c.algo == w.algo && c.kind == ChecksumKind::FullObject => w.verify(&c.digest)?,
                // A composite checksum is not known to the client up front,
                // and one in another algorithm cannot be checked.
                _ => {
                    return Err(ObjectError::InvalidRequest(format!(
                        "The upload was not created with a FULL_OBJECT {} checksum",
                        w.algo.name()
                    )));
                }
            }
        }
        // A drive can take the version only if it holds every chosen part.
        let ok: Vec<bool> = per_drive
            .iter()
            .map(|m| {
                m.as_ref().is_some_and(|m| {
                    chosen.iter().all(|c| {
                        m.iter()
                            .any(|r| r.number == c.number && r.etag == c.etag && r.tag == c.tag)
                    })
                })
            })
            .collect();
        let versioning = b.versioning;
        let vid = if versioning == Versioning::Enabled {
            VersionId::random()
        } else {
            VersionId::NULL
        };
        let template = Version {
            id: vid,
            mod_time_ns: 0,
            stamp: 0,
            kind: VersionKind::Object,
            size,
            etag,
            headers: upload.headers.clone(),
            user_meta: upload.user_meta.clone(),
            erasure: upload.erasure,
            parts: chosen.clone(),
            data: crate::meta::DataLoc::None,
            extras: crate::meta::Extras {
                checksum: object_sum.map(|c| ChecksumRecord {
                    algo: c.algo as u8,
                    kind: c.kind as u8,
                    digest: c.digest,
                    parts: c.parts,
                }),
                place: None,
                ..upload.extras.clone()
            },
        };
        let rotation = set.rotation(bucket, key);
        let pending = Pending {
            template,
            rotation,
            stored: Stored::Files(ok),
            dir: id,
            deadline: None,
        };
        // The upload's records go only once its version is on write quorum,
        // so that a completion cut short can be asked again; the version's
        // commit marks them completed.
        let done = RecordOp::Put {
            table: Table::Uploads,
            key: upload_key(bucket, key, &id),
            value: UploadRecord {
                completed: true,
                ..upload
            }
            .encode(),
        };
        let v = set
            .commit_version(bucket, key, pending, vec![done], condition)
            .await?;
        let keep: Vec<ShardFile> = chosen.iter().map(PartInfo::file).collect();
        // The object is written; its upload's records are cleaned up now or,
        // should that fail, by the orphan sweep.
        let forgotten = if set.mark_completed(bucket, key, id).await {
            set.forget_upload(bucket, key, id, false, Some(keep)).await
        } else {
            Err(ObjectError::ReadQuorum)
        };
        if let Err(e) = forgotten {
            tracing::warn!(%bucket, %key, error = %e, "completed upload left records behind");
        }
        // The parts were written to the namespace pool; an upload meant
        // for another place moves there before the answer.
        Ok(match &upload_place {
            Some(place) => self.place_written(bucket, key, v, place).await,
            None => v,
        })
    }

    pub async fn abort_multipart(&self, bucket: &str, key: &str, upload_id: &str) -> ObjectResult<()> {
        self.bucket(bucket)?;
        let id = parse_upload_id(upload_id)?;
        let set = self.set_for(bucket, key);
        let _guard = set.locks.lock(bucket, key).await;
        // Not a completed one: its data belongs to the object now.
        set.get_upload(bucket, key, id).await?;
        set.forget_upload(bucket, key, id, true, None).await
    }

    /// Parts of an upload after `marker`, at most `max`; and whether more remain.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> ObjectResult<(Vec<UploadedPart>, bool)> {
        self.bucket(bucket)?;
        let id = parse_upload_id(upload_id)?;
        let set = self.set_for(bucket, key);
        set.get_upload(bucket, key, id).await?;
        let agreed = set.agreed_parts(&set.read_parts(id).await);
        let mut parts: Vec<UploadedPart> = agreed
            .into_values()
            .filter(|p| p.number > marker)
            .map(|p| UploadedPart {
                number: p.number,
                size: p.size,
                etag: p.etag,
                mod_time_ns: p.mod_time_ns,
            })
            .collect();
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((parts, truncated))
    }

    /// Uploads in progress whose key starts with `prefix`, in key order.
    /// Uploads in progress under `prefix`, ordered by key and then by
    /// initiation, after the `(key, upload id)` marker (a key alone: after
    /// every upload of that key), at most `max`.
    pub async fn list_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        after: Option<(&str, Option<&str>)>,
        max: usize,
    ) -> ObjectResult<Vec<MultipartUpload>> {
        self.bucket(bucket)?;
        let mut start = object_key(bucket, prefix);
        if let Some((k, _)) = after
            && k > prefix
        {
            start = object_key(bucket, k);
        }
        let prefix_start = object_key(bucket, prefix);
        let end = match crate::drive::prefix_end(&prefix_start) {
            Some(e) => e,
            None => return Ok(vec![]),
        };
        let mut end_b = bucket.as_bytes().to_vec();
        end_b.push(1);
        let end = end.min(end_b);
        let base = bucket.len() + 1;
        // Uploads as read quorum of their set's drives hold them (one that
        // fewer hold cannot be used, and is swept), unless completed.
        let mut found: BTreeMap<(String, i64, String), (usize, usize)> = BTreeMap::new();
        for set in self.sets() {
            let rows = set
                .on_drives({
                    let (start, end) = (start.clone(), end.clone());
                    move |_, d| {
                        d.scan(
                            Table::Uploads,
                            KeyRange::new(&start, &end, max.saturating_mul(2).max(16)),
                        )
                    }
                })
                .await;
            for (k, v) in rows.into_iter().flatten().flatten() {
                let Ok(rec) = UploadRecord::decode(&v) else {
                    continue;
                };
                let rest = &k[base..];
                let Some(sep) = rest.iter().rposition(|b| *b == 0) else {
                    continue;
                };
                let key = String::from_utf8_lossy(&rest[..sep]).into_owned();
                let n = found
                    .entry((key, rec.initiated_ns, hex::encode(rec.upload_id)))
                    .or_default();
                n.0 += 1;
                n.1 += usize::from(rec.completed);
            }
            let q = set.read_quorum();
            found.retain(|_, (all, done)| *all >= q && *done < q);
        }
        let mut listed: Vec<(String, i64, String)> = found.into_keys().collect();
        if let Some((k, id)) = after {
            // Uploads of the marker key up to and including the marker id
            // (all of them without one) were listed already.
            listed.retain(|(key, _, _)| key.as_str() >= k);
            let of_key = listed.iter().take_while(|(key, _, _)| key == k).count();
            let skip = id
                .and_then(|id| listed[..of_key].iter().position(|(_, _, u)| u == id))
                .map_or(of_key, |i| i + 1);
            listed.drain(..skip);
        }
        Ok(listed
            .into_iter()
            .take(max)
            .map(|(key, initiated_ns, upload_id)| MultipartUpload {
                key,
                upload_id,
                initiated_ns,
            })
            .collect())
    }
}
