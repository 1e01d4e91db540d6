//! The write path: a body stream is cut into blocks, each block encoded and
//! its shards streamed to the set's drives in parallel (one blocking writer
//! per drive behind a small bounded queue, so memory stays at a few blocks
//! whatever the object size). Shard files are fsynced with their directory
//! entries before the metadata commit; a write that cannot reach write
//! quorum removes what it wrote.

use super::checksum::{ChecksumAlgo, ChecksumCheck, ChecksumKind, Hasher};
use super::conditions::WriteCondition;
use super::set::{Change, Records, discard_dir, next_mod_time};
use super::{ByteStream, ErasureSet, ObjectError, ObjectResult, blocking};
use crate::digest::Md5;
use crate::drive::{DriveError, DriveResult, ShardFile, ShardWriter};
use crate::erasure::{self, EncodedBlock, Encoder, bitrot};
use crate::meta::{DataLoc, ErasureInfo, PartInfo, Version, VersionId, VersionKind, Versioning};
use crate::sse::package::Sealer;
use futures::StreamExt;
use std::sync::Arc;

/// S3's largest single PUT.
pub const MAX_PUT_SIZE: u64 = 5 << 30;

#[derive(Debug, Default)]
pub struct PutOptions {
    /// System headers to store (`content-type`, ...), lower-case names.
    pub headers: Vec<(String, String)>,
    /// `x-amz-meta-*` values, names without the prefix.
    pub user_meta: Vec<(String, String)>,
    /// Declared body length, when the client sent one.
    pub size: Option<u64>,
    /// Expected MD5 of the body (`Content-MD5`).
    pub content_md5: Option<[u8; 16]>,
    /// Object tags.
    pub tags: Vec<(String, String)>,
    /// Preconditions on the key's current version.
    pub condition: WriteCondition,
    /// The checksum algorithm to store (`x-amz-checksum-algorithm`); by
    /// default that of `checksum`, else CRC64NVME.
    pub checksum_algo: Option<ChecksumAlgo>,
    /// For multipart uploads: the checksum type asked for.
    pub checksum_kind: Option<ChecksumKind>,
    /// A checksum the client sent with the body, verified before commit.
    pub checksum: Option<ChecksumCheck>,
    /// Object Lock retention and legal hold of the new version.
    pub retention: Option<super::lock::Retention>,
    pub legal_hold: bool,
    /// Encrypt the new version (or upload) so.
    pub encryption: Option<super::Sealing>,
    /// The access control list of the new version, as stored codes
    /// ([`crate::acl::Acl::to_codes`]; empty: the default).
    pub acl: Vec<(u8, u8)>,
    /// The pool or remote tier (by name) to keep the data in, when the
    /// storage class asked for is not the namespace pool's.
    pub place: Option<String>,
    /// Compute neither the MD5 (the ETag is zeroes) nor a checksum: for
    /// the objects of a pool's store, whose framed bytes carry checksums
    /// of their own and whose ETag nobody sees.
    pub undigested: bool,
}

impl PutOptions {
    /// The algorithm of the object's stored checksum.
    pub fn stored_algo(&self) -> ChecksumAlgo {
        self.checksum
            .as_ref()
            .map(|c| c.algo)
            .or(self.checksum_algo)
            .unwrap_or(ChecksumAlgo::Crc64Nvme)
    }
}

/// A version whose shards are stored and which waits for its commit.
pub(super) struct Pending {
    pub template: Version,
    /// Shard rotation of the key.
    pub rotation: usize,
    pub stored: Stored,
    /// Data directory of `stored` when it is files.
    pub dir: [u8; 16],
    /// For data in a pool's or tier's store: the time (ns since the
    /// epoch) after which the commit is refused, as its journal row says.
    pub deadline: Option<i64>,
}

/// Where a written part's shards ended up.
pub(super) enum Stored {
    /// Per drive position, the framed shard stream (empty for failed drives).
    Inline(Vec<Option<Vec<u8>>>),
    /// Shard files in the data directory; `true` where the drive has it.
    Files(Vec<bool>),
    /// One object in a pool's or remote tier's store.
    Remote(crate::meta::RemoteLoc),
}

/// What a single PUT's body came to.
pub(super) struct WrittenBody {
    /// Plain size.
    pub size: u64,
    /// Bytes stored (the sealed size when encrypted).
    pub stored_size: u64,
    pub md5: [u8; 16],
    /// The object's stored checksum: its algorithm and digest.
    pub algo: ChecksumAlgo,
    pub digest: Vec<u8>,
}

impl WrittenBody {
    /// Checks the body against the digests the client sent.
    pub(super) fn verify(&self, opts: &mut PutOptions) -> ObjectResult<()> {
        if opts.content_md5.is_some_and(|m| m != self.md5) {
            return Err(ObjectError::BadDigest);
        }
        opts.checksum.take().map_or(Ok(()), |c| c.verify(&self.digest))
    }
}

pub(super) struct WrittenPart {
    /// Plain size of the body.
    pub size: u64,
    /// Bytes stored (the sealed size when encrypted).
    pub stored_size: u64,
    pub md5: [u8; 16],
    /// Digests of the body in the algorithms the spec asked for, in order.
    pub checksums: Vec<Vec<u8>>,
    pub stored: Stored,
}

/// The digests a write computes over the body as it streams: the MD5 of
/// the ETag and the checksums asked for.
pub(super) struct BodyDigests {
    /// `None` for a write that needs no ETag (a pool's internal object).
    md5: Option<Md5>,
    sums: Vec<Hasher>,
}

impl BodyDigests {
    pub(super) fn new(algos: &[ChecksumAlgo], md5: bool) -> Self {
        Self {
            md5: md5.then(Md5::new),
            sums: algos.iter().map(|a| Hasher::new(*a)).collect(),
        }
    }

    pub(super) fn update(&mut self, data: &[u8]) {
        if let Some(m) = &mut self.md5 {
            m.update(data);
        }
        self.update_sums(data);
    }

    fn update_sums(&mut self, data: &[u8]) {
        for s in &mut self.sums {
            s.update(data);
        }
    }

    pub(super) fn finish(self) -> ([u8; 16], Vec<Vec<u8>>) {
        (
            self.md5.map_or([0; 16], Md5::finish),
            self.sums.into_iter().map(Hasher::finish).collect(),
        )
    }
}

/// Where a part's shards go.
pub(super) struct PartSpec {
    /// Data directory.
    pub dir: [u8; 16],
    /// The shard file of the part.
    pub file: ShardFile,
    /// Shard rotation of the object's key.
    pub rotation: usize,
    /// Small bodies may be kept inline in the metadata (single PUTs only).
    pub allow_inline: bool,
    /// Checksums to compute over the body.
    pub checksums: Vec<ChecksumAlgo>,
    /// Compute the body's MD5 (the ETag).
    pub md5: bool,
    /// Seals the body in packages before it is erasure-coded.
    pub seal: Option<Sealer>,
}

/// A request body read block by block, each block into a buffer taken
/// from the kept data buffers ([`crate::buffers`]) and handed on as
/// [`Bytes`](bytes::Bytes) that give it back once the last of its users
/// (encoder, hashing lanes, drive writers) lets it go. A chunk that reaches
/// past the block being filled is split and its rest kept for the next
/// block, so a block's buffer is taken once, at its size, and never grows.
pub(super) struct BodyReader {
    body: ByteStream,
    carry: bytes::Bytes,
    /// Bytes the client declared and that are not read yet: a short body's
    /// block is taken at its size, not a whole block's.
    expect: Option<u64>,
}

/// One block of a body, and whether the body ends with it.
pub(super) struct Block {
    pub data: bytes::Bytes,
    pub last: bool,
}

impl BodyReader {
    pub(super) fn new(body: ByteStream, expect: Option<u64>) -> Self {
        Self {
            body,
            carry: bytes::Bytes::new(),
            expect,
        }
    }

    /// Waits for more of the body unless some is at hand; false at its end.
    async fn more(&mut self) -> ObjectResult<bool> {
        while self.carry.is_empty() {
            match self.body.next().await {
                Some(Ok(chunk)) => self.carry = chunk,
                Some(Err(e)) => return Err(ObjectError::Body(e)),
                None => return Ok(false),
            }
        }
        Ok(true)
    }

    /// The next `want` bytes of the body (fewer at its end). A block is
    /// `last` when nothing follows it, which the reader learns by waiting
    /// for the next chunk once the block is full.
    pub(super) async fn block(&mut self, want: usize) -> ObjectResult<Block> {
        let room = self
            .expect
            .map_or(want, |e| want.min(usize::try_from(e).unwrap_or(want)));
        let mut data = crate::buffers::take_empty(room);
        while data.len() < want {
            if !self.more().await? {
                return Ok(self.taken(data, true));
            }
            let n = (want - data.len()).min(self.carry.len());
            data.extend_from_slice(&self.carry.split_to(n));
        }
        let last = !self.more().await?;
        Ok(self.taken(data, last))
    }

    /// `data`, read, as the next block: counted off what is declared.
    fn taken(&mut self, data: Vec<u8>, last: bool) -> Block {
        if let Some(e) = &mut self.expect {
            *e = e.saturating_sub(data.len() as u64);
        }
        Block {
            data: crate::buffers::bytes(data),
            last,
        }
    }
}

/// A block being written: the task gives the writer back with its result.
type InFlight = tokio::task::JoinHandle<(Box<dyn ShardWriter>, DriveResult<()>)>;

/// The shard writer of one drive during a write. Each block is written by
/// a short blocking task; a sink has at most one block in flight, so the
/// next block is read and encoded while the drives write the previous one,
/// and no thread is held for the life of an upload (a long upload from a
/// slow client costs no blocking thread while it waits for the network).
struct ShardSink {
    shard: usize,
    /// The drive's I/O slots: a block write or flush takes one.
    slots: Arc<tokio::sync::Semaphore>,
    /// How long one block write or the final flush may take.
    timeout: Option<std::time::Duration>,
    writer: Option<Box<dyn ShardWriter>>,
    pending: Option<InFlight>,
    failed: Option<DriveError>,
}

impl ShardSink {
    /// Waits for the block in flight; false once the sink has failed.
    async fn settle(&mut self) -> bool {
        if let Some(h) = self.pending.take() {
            // A drive that hangs is left behind with its writer.
            match super::within(self.timeout, h).await {
                Ok(Ok((w, Ok(())))) => self.writer = Some(w),
                Ok(Ok((_, Err(e)))) => self.failed = Some(e),
                Ok(Err(_)) => self.failed = Some(DriveError::Offline),
                Err(_) => self.failed = Some(DriveError::Timeout),
            }
        }
        self.failed.is_none() && self.writer.is_some()
    }

    /// Waits for one of the drive's I/O slots (within the drive timeout).
    async fn slot(&mut self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        match super::within(self.timeout, Arc::clone(&self.slots).acquire_owned()).await {
            Ok(Ok(p)) => Some(p),
            Ok(Err(_)) => {
                self.failed = Some(DriveError::Offline);
                None
            }
            Err(_) => {
                self.failed = Some(DriveError::Timeout);
                None
            }
        }
    }

    /// Starts writing `block` once the previous one is done; false if the
    /// sink has failed.
    async fn send(&mut self, block: &Arc<EncodedBlock>) -> bool {
        if !self.settle().await {
            return false;
        }
        let Some(slot) = self.slot().await else {
            return false;
        };
        let Some(mut w) = self.writer.take() else {
            return false;
        };
        let (b, shard) = (Arc::clone(block), self.shard);
        self.pending = Some(tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let r = b.write_framed(shard, &mut |s: &[u8]| w.write_all(s));
            (w, r)
        }));
        true
    }

    /// Makes the shard durable.
    async fn finish(&mut self) -> DriveResult<()> {
        if !self.settle().await {
            return Err(self.failed.take().unwrap_or(DriveError::Offline));
        }
        let slot = self.slot().await;
        let slot = slot.ok_or_else(|| self.failed.take().unwrap_or(DriveError::Offline))?;
        let w = self.writer.take().ok_or(DriveError::Offline)?;
        let flush = tokio::task::spawn_blocking(move || {
            let _slot = slot;
            w.finish()
        });
        match super::within(self.timeout, flush).await {
            Ok(r) => r.unwrap_or(Err(DriveError::Offline)),
            Err(_) => Err(DriveError::Timeout),
        }
    }
}

impl ErasureSet {
    /// Sizes the packages of an encrypted write to this set's blocks.
    pub(super) fn fit_sealing(&self, opts: &mut PutOptions) {
        if let Some(s) = opts.encryption.as_mut() {
            s.record.package = crate::sse::package::package_size(self.layout.block_size);
        }
    }

    /// The buffer a write of one part into this set holds at most (see
    /// [`super::budget::write_cost`]).
    pub(super) fn write_cost(&self, expect: Option<u64>, sealed: bool) -> u64 {
        super::budget::write_cost(&self.layout, expect, sealed, self.drives.len())
    }

    pub(super) fn erasure_info(&self, shard_index: usize) -> ErasureInfo {
        ErasureInfo {
            data: self.layout.data as u8,
            parity: self.layout.parity as u8,
            shard_index: shard_index as u8,
            hash_algo: bitrot::ALGO_XXH3_64,
            block_size: self.layout.block_size,
        }
    }

    async fn open_sinks(&self, dir: [u8; 16], file: ShardFile, rotation: usize) -> Vec<Option<ShardSink>> {
        let layout = self.layout;
        let opened = self
            .on_drives(move |pos, d| {
                let shard = (pos + rotation) % layout.total();
                let mut w = d.create_shard(&dir, file)?;
                w.write_all(&erasure::shard_header(&layout, shard))?;
                Ok((shard, w))
            })
            .await;
        opened
            .into_iter()
            .enumerate()
            .map(|(pos, r)| {
                let (shard, w) = r.ok()?;
                Some(ShardSink {
                    shard,
                    slots: self.slots(pos),
                    timeout: self.config.drive_timeout,
                    writer: Some(w),
                    pending: None,
                    failed: None,
                })
            })
            .collect()
    }

    /// Streams `body` into the part `spec` names (or, when the spec allows
    /// it and the body is small, into per-drive inline streams).
    pub(super) async fn write_part(
        &self,
        body: ByteStream,
        expect: Option<u64>,
        spec: PartSpec,
    ) -> ObjectResult<WrittenPart> {
        let PartSpec {
            dir,
            file,
            rotation,
            allow_inline,
            checksums,
            md5: want_md5,
            seal,
        } = spec;
        let max_size = MAX_PUT_SIZE;
        if expect.is_some_and(|s| s > max_size) {
            return Err(ObjectError::EntityTooLarge);
        }
        let bs = self.layout.block_size as usize;
        // Plain bytes per erasure block: a block holds whole packages.
        let take = seal.as_ref().map_or(bs, |s| s.plain_per(bs));
        // The write's whole working set, before it reads a byte.
        let _credit = self
            .config
            .budget
            .take(self.write_cost(expect, seal.is_some()))
            .await?;
        let mut body = BodyReader::new(body, expect);
        let first = body.block(take).await?;
        let mut encoder = Encoder::new(self.layout);

        if allow_inline && first.last && first.data.len() <= self.config.inline_limit {
            let data = first.data;
            let size = data.len() as u64;
            let layout = self.layout;
            let n = self.drives.len();
            let rotations: Vec<usize> = (0..n).map(|p| self.shard_of(p, rotation)).collect();
            let online: Vec<bool> = self.drives.iter().map(Option::is_some).collect();
            let (digests, stored_size, streams) = blocking(move || -> ObjectResult<_> {
                let mut encoder = encoder;
                let mut digests = BodyDigests::new(&checksums, want_md5);
                digests.update(&data);
                let data = match seal {
                    Some(mut s) => crate::buffers::bytes(s.seal(&data, true)),
                    None => data,
                };
                let mut per_shard = vec![Vec::new(); layout.total()];
                let bs = layout.block_size as usize;
                for start in (0..data.len()).step_by(bs) {
                    let b = encoder.encode_block(data.slice(start..(start + bs).min(data.len())))?;
                    for (i, stream) in per_shard.iter_mut().enumerate() {
                        b.append_framed(i, stream);
                    }
                }
                let streams = (0..n)
                    .map(|p| online[p].then(|| per_shard[rotations[p]].clone()))
                    .collect::<Vec<_>>();
                Ok((digests.finish(), data.len() as u64, streams))
            })
            .await??;
            if expect.is_some_and(|e| e != size) {
                return Err(ObjectError::IncompleteBody);
            }
            let (md5, checksums) = digests;
            return Ok(WrittenPart {
                size,
                stored_size,
                md5,
                checksums,
                stored: Stored::Inline(streams),
            });
        }

        let mut sinks = self.open_sinks(dir, file, rotation).await;
        let mut total: u64 = 0;
        let mut stored_size: u64 = 0;
        let mut seal = seal;
        let result: ObjectResult<BodyDigests> = async {
            let mut md5 = BodyDigests::new(&checksums, want_md5);
            // An encrypted part has at least one package, even when empty.
            let mut next = Some(first);
            while let Some(Block { data: block, last }) = next.take() {
                if block.is_empty() && seal.is_none() {
                    break;
                }
                total += block.len() as u64;
                if total > max_size {
                    return Err(ObjectError::EntityTooLarge);
                }
                // The MD5 goes to the hashing lanes, beside the encoding,
                // where the CPU has them.
                let lanes = match (
                    self.config.md5_lanes.then(crate::digest::pool).flatten(),
                    md5.md5.take(),
                ) {
                    (Some(p), Some(m)) => Some(p.update(m, block.clone())),
                    (_, m) => {
                        md5.md5 = m;
                        None
                    }
                };
                let here = lanes.is_none();
                let (enc, md, sl, len, shards) = blocking(move || {
                    if here {
                        md5.update(&block);
                    } else {
                        md5.update_sums(&block);
                    }
                    let block = match seal.as_mut() {
                        Some(s) => crate::buffers::bytes(s.seal(&block, last)),
                        None => block,
                    };
                    let len = block.len() as u64;
                    let r = encoder.encode_block(block);
                    (encoder, md5, seal, len, r)
                })
                .await?;
                encoder = enc;
                md5 = md;
                seal = sl;
                let shards = shards?;
                stored_size += len;
                let shards = Arc::new(shards);
                let mut live = 0;
                for s in sinks.iter_mut().flatten() {
                    if s.send(&shards).await {
                        live += 1;
                    }
                }
                if live < self.write_quorum() {
                    return Err(ObjectError::WriteQuorum {
                        ok: live,
                        need: self.write_quorum(),
                    });
                }
                // The block's buffer is let go before the next is read.
                if let Some(hashed) = lanes {
                    md5.md5 = Some(
                        hashed
                            .await
                            .ok_or_else(|| ObjectError::Internal("md5 lanes stopped".into()))?,
                    );
                }
                if !last {
                    next = Some(body.block(take).await?);
                }
            }
            if expect.is_some_and(|e| e != total) {
                return Err(ObjectError::IncompleteBody);
            }
            Ok(md5)
        }
        .await;

        let finish = result.is_ok();
        let mut ok = vec![false; self.drives.len()];
        let mut errs = Vec::new();
        if finish {
            let results = futures::future::join_all(sinks.iter_mut().map(|s| async move {
                match s {
                    Some(s) => Some(s.finish().await),
                    None => None,
                }
            }))
            .await;
            for (pos, r) in results.into_iter().enumerate() {
                match r {
                    Some(Ok(())) => ok[pos] = true,
                    Some(Err(e)) => errs.push(e),
                    None => {}
                }
            }
        } else {
            for s in sinks.iter_mut().flatten() {
                s.settle().await;
                if let Some(e) = s.failed.take() {
                    errs.push(e);
                }
            }
        }
        let good = ok.iter().filter(|b| **b).count();
        let md5 = match result {
            Ok(m) => m,
            Err(e) => {
                discard_dir(self, dir).await;
                // Writers that stopped early say why (a full disk, say).
                return Err(match e {
                    ObjectError::WriteQuorum { ok, need } => super::quorum_error(&errs, ok, need),
                    other => other,
                });
            }
        };
        if good < self.write_quorum() {
            discard_dir(self, dir).await;
            return Err(super::quorum_error(&errs, good, self.write_quorum()));
        }
        let (md5, checksums) = md5.finish();
        Ok(WrittenPart {
            size: total,
            stored_size,
            md5,
            checksums,
            stored: Stored::Files(ok),
        })
    }

    pub(super) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        mut opts: PutOptions,
        versioning: Versioning,
    ) -> ObjectResult<Version> {
        if !opts.condition.is_empty() {
            // Checked again under the commit lock; this spares the upload.
            let records = self.read_records(bucket, key).await;
            opts.condition.check(self.current(&records)?.as_ref())?;
        }
        if let Some(place) = opts.place.take() {
            return self.put_placed(bucket, key, body, opts, versioning, place).await;
        }
        let rotation = self.rotation(bucket, key);
        let dir = VersionId::random().0;
        let algo = opts.stored_algo();
        let mut written = self
            .write_part(
                body,
                opts.size,
                PartSpec {
                    dir,
                    file: ShardFile::new(1, 0),
                    rotation,
                    allow_inline: true,
                    checksums: if opts.undigested { vec![] } else { vec![algo] },
                    md5: !opts.undigested,
                    seal: opts
                        .encryption
                        .as_ref()
                        .map(|s| Sealer::new(&s.key, &s.record, 1))
                        .transpose()?,
                },
            )
            .await?;
        let is_files = matches!(written.stored, Stored::Files(_));
        let body = WrittenBody {
            size: written.size,
            stored_size: written.stored_size,
            md5: written.md5,
            algo,
            digest: written.checksums.pop().unwrap_or_default(),
        };
        if let Err(e) = body.verify(&mut opts) {
            if is_files {
                discard_dir(self, dir).await;
            }
            return Err(e);
        }
        let condition = std::mem::take(&mut opts.condition);
        let pending = Pending {
            template: self.put_version(opts, versioning, body),
            rotation,
            stored: written.stored,
            dir,
            deadline: None,
        };
        let r = self
            .commit_version(bucket, key, pending, vec![], &condition)
            .await;
        if r.is_err() && is_files {
            self.discard_unreferenced(bucket, key, dir).await;
        }
        r
    }

    /// The version a single PUT of `body` makes (its data location is set
    /// at commit).
    pub(super) fn put_version(&self, opts: PutOptions, versioning: Versioning, body: WrittenBody) -> Version {
        let algo = body.algo;
        let etag = match &opts.encryption {
            Some(s) => s.etag(&body.md5),
            None => hex::encode(body.md5),
        };
        let id = if versioning == Versioning::Enabled {
            VersionId::random()
        } else {
            VersionId::NULL
        };
        Version {
            id,
            mod_time_ns: 0,
            stamp: 0,
            kind: VersionKind::Object,
            size: body.size,
            etag: etag.clone(),
            headers: opts.headers,
            user_meta: opts.user_meta,
            erasure: self.erasure_info(0),
            parts: vec![PartInfo {
                number: 1,
                size: body.stored_size,
                etag,
                tag: 0,
            }],
            data: DataLoc::None,
            extras: crate::meta::Extras {
                tags: opts.tags,
                checksum: Some(crate::meta::ChecksumRecord {
                    algo: algo as u8,
                    kind: ChecksumKind::FullObject as u8,
                    digest: body.digest,
                    parts: 0,
                }),
                retention: opts.retention.map(|r| (r.mode as u8, r.until_ns)),
                legal_hold: opts.legal_hold,
                encryption: opts.encryption.map(|s| s.record),
                acl: opts.acl,
                ..Default::default()
            },
        }
    }

    /// Commits a new version whose shards are stored (inline streams or
    /// files in `dir`) with `extra_ops` in the same transactions, under the
    /// key lock and if `condition` holds. The version it replaces (the
    /// `null` version) stays on the drives until compaction finds the new
    /// one on write quorum.
    pub(super) async fn commit_version(
        &self,
        bucket: &str,
        key: &str,
        pending: Pending,
        extra_ops: Vec<crate::drive::RecordOp>,
        condition: &WriteCondition,
    ) -> ObjectResult<Version> {
        let Pending {
            mut template,
            rotation,
            stored,
            dir,
            deadline,
        } = pending;
        let _guard = self.locks.lock(bucket, key).await;
        // A minute's margin for clocks of other nodes that sweep the
        // journal row of the stored data.
        if deadline.is_some_and(|d| super::now_ns() >= d - 60_000_000_000) {
            return Err(ObjectError::Internal(
                "the write took longer than its data may wait for its commit".into(),
            ));
        }
        let (records, hashes): (Records, _) = self.read_records_hashed(bucket, key).await;
        let view = self.view(&records);
        if !condition.is_empty() {
            condition.check(self.current(&records)?.as_ref())?;
        }
        template.mod_time_ns = next_mod_time(&view);
        template.stamp = template.mod_time_ns;
        let adds = (0..self.drives.len())
            .map(|pos| {
                let mut v = template.clone();
                v.erasure.shard_index = self.shard_of(pos, rotation) as u8;
                v.data = match &stored {
                    Stored::Inline(streams) => DataLoc::Inline(streams[pos].clone()?),
                    Stored::Files(ok) if ok[pos] => DataLoc::Dir(dir),
                    Stored::Remote(loc) => DataLoc::Remote(loc.clone()),
                    // The drive missed the write: it cannot take the version.
                    Stored::Files(_) => return None,
                };
                Some(vec![v])
            })
            .collect();
        let change = Change { adds, extra_ops };
        self.apply_change(bucket, key, (records, hashes), &view, change)
            .await?;
        template.data = match stored {
            Stored::Remote(loc) => DataLoc::Remote(loc),
            _ => DataLoc::Dir(dir),
        };
        Ok(template)
    }
}
