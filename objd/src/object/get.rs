//! The read path: resolve the version by quorum, then stream the requested
//! byte range block by block. Each block needs any `k` shards whose
//! checksums match; data shards are tried first (no decode needed), a
//! missing or corrupt shard is replaced by a parity shard, the block is
//! rebuilt, and the object is queued for healing. Only the blocks that
//! overlap the range are read. An encrypted version streams only once its
//! data key is in hand ([`ObjectReader::unlock`]); its range maps to the
//! packages that hold it, and only those are read and opened.

use super::cold::{self, RemoteRead};
use super::encryption::KeySource;
use super::leases::Lease;
use super::set::Resolved;
use super::{ByteStream, ErasureSet, ObjectError, ObjectResult};
use crate::buffers;
use crate::drive::DriveError;
use crate::erasure::{self, Layout, bitrot};
use crate::meta::{DataLoc, PartInfo, Version, VersionId};
use crate::sse::{DataKey, package::Opener};
use bytes::Bytes;
use std::sync::Arc;

use super::budget::{Credit, READ_BATCH, READ_QUEUE};

/// A byte range of an object, as `Range:` asks for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GetRange {
    /// `bytes=first-last` (last inclusive) or `bytes=first-`.
    From { first: u64, last: Option<u64> },
    /// `bytes=-n`: the last n bytes.
    Suffix(u64),
}

impl GetRange {
    /// Resolves against an object of `size` bytes into `[start, end)`.
    pub fn resolve(self, size: u64) -> ObjectResult<(u64, u64)> {
        match self {
            GetRange::From { first, last } => {
                if first >= size {
                    return Err(ObjectError::InvalidRange);
                }
                let end = last.map_or(size, |l| (l + 1).min(size));
                if end <= first {
                    return Err(ObjectError::InvalidRange);
                }
                Ok((first, end))
            }
            GetRange::Suffix(n) => {
                if n == 0 {
                    return Err(ObjectError::InvalidRange);
                }
                Ok((size.saturating_sub(n), size))
            }
        }
    }
}

/// Where a read of stored bytes `[from, to)` of a part stands.
struct Cursor {
    from: u64,
    to: u64,
    /// Next block to read, and the end.
    block: u64,
    last: u64,
}

impl Cursor {
    fn new(layout: &Layout, from: u64, to: u64) -> Self {
        let bs = u64::from(layout.block_size);
        Self {
            from,
            to,
            block: from / bs,
            last: to.div_ceil(bs),
        }
    }
}

/// A source of a part's stored bytes.
enum Source {
    Local(Cursor),
    Remote(RemoteRead),
}

/// Where a producer sends a stream's chunks.
type Chunks = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A stream of what `start` (called at the first poll, to start a
/// producer) sends; `credit` is held as long as the stream.
fn produced(credit: Credit, start: impl FnOnce(Chunks) + Send + Sync + 'static) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel(READ_QUEUE as usize - 1);
    let start = move || start(tx);
    Box::pin(futures::stream::unfold(
        (rx, Some(start), credit),
        |(mut rx, start, credit)| async move {
            if let Some(start) = start {
                start();
            }
            let item = rx.recv().await?;
            Some((item, (rx, None, credit)))
        },
    ))
}

/// Sends chunks to the reader; false once it went away.
async fn send_all(tx: &Chunks, chunks: Vec<Bytes>) -> bool {
    for c in chunks {
        if !c.is_empty() && tx.send(Ok(c)).await.is_err() {
            return false;
        }
    }
    true
}

/// Sealed bytes of one part on their way to plain bytes `[from, to)`.
struct Packages {
    opener: Opener,
    pending: bytes::BytesMut,
    /// Index of the package at the start of `pending`.
    index: u64,
    payload: u64,
    from: u64,
    to: u64,
}

impl Packages {
    /// Adds sealed bytes read; a block read whole is taken over without a
    /// copy (packages are then opened where they lie).
    fn take(&mut self, chunk: Bytes) {
        if self.pending.is_empty() {
            match chunk.try_into_mut() {
                Ok(m) => self.pending = m,
                Err(c) => self.pending.extend_from_slice(&c),
            }
        } else {
            self.pending.extend_from_slice(&chunk);
        }
    }

    /// Opens the whole packages pending (with `all`, also the shorter last
    /// one) and returns their bytes that fall in the range.
    fn open(&mut self, all: bool) -> ObjectResult<Vec<Bytes>> {
        let pkg = self.opener.package();
        let take = if all {
            self.pending.len()
        } else {
            self.pending.len() / pkg * pkg
        };
        if take == 0 {
            return Ok(vec![]);
        }
        let plain = self.opener.open_run(self.index, self.pending.split_to(take))?;
        let at = self.index * self.payload;
        self.index += take.div_ceil(pkg) as u64;
        let lo = self.from.max(at) - at;
        let hi = self.to.min(at + plain.len() as u64).saturating_sub(at);
        Ok(if lo < hi {
            vec![plain.slice(lo as usize..hi as usize)]
        } else {
            vec![]
        })
    }
}

/// A resolved object version, ready to stream.
#[derive(Debug, Clone)]
pub struct ObjectReader {
    set: Arc<ErasureSet>,
    bucket: String,
    key: String,
    resolved: Resolved,
    /// The data key of an encrypted version, once unlocked.
    data_key: Option<DataKey>,
    /// The hold on the version's data directory while it is read.
    _lease: Option<Arc<Lease>>,
}

impl ErasureSet {
    pub(super) async fn open_object(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        version: Option<VersionId>,
    ) -> ObjectResult<ObjectReader> {
        let records = self.read_records(bucket, key).await;
        let view = self.view(&records);
        let resolved = view.resolve(version)?;
        let total = self.drives.len();
        if records.iter().filter(|r| r.is_ok()).count() == total
            && resolved.copies.iter().flatten().count() < total
            && !resolved.version.is_delete_marker()
        {
            self.heal.queue(bucket, key);
        }
        if view.has_garbage() {
            self.compact.queue(bucket, key);
        }
        let lease = resolved.version.dir().map(|d| Arc::new(Lease::take(self, d)));
        Ok(ObjectReader {
            set: Arc::clone(self),
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            resolved,
            data_key: None,
            _lease: lease,
        })
    }
}

impl ObjectReader {
    pub fn version(&self) -> &Version {
        &self.resolved.version
    }

    /// Whether the version's data is encrypted.
    pub fn encrypted(&self) -> bool {
        self.resolved.version.extras.encryption.is_some()
    }

    /// Gets the data key of an encrypted version from `keys` (nothing to
    /// do for a plain one).
    pub async fn unlock(&mut self, keys: &dyn KeySource) -> ObjectResult<()> {
        if let Some(rec) = &self.resolved.version.extras.encryption
            && self.data_key.is_none()
        {
            self.data_key = Some(keys.data_key(&self.bucket, &self.key, rec).await?);
        }
        Ok(())
    }

    /// The bytes of buffer a read of `[start, end)` holds at most (see
    /// [`super::budget::read_cost`]).
    pub fn read_cost(&self, start: u64, end: u64) -> u64 {
        let v = &self.resolved.version;
        let e = v.erasure;
        let Ok(layout) = Layout::new(e.data.into(), e.parity.into(), e.block_size) else {
            return 0;
        };
        let part = v.parts.iter().map(|p| p.size).max().unwrap_or(0);
        super::budget::read_cost(&layout, end.saturating_sub(start), part)
    }

    /// [`ObjectReader::stream`], once the buffer budget has granted the
    /// read its working set; the stream holds the credit until dropped.
    pub async fn stream_charged(self, start: u64, end: u64) -> ObjectResult<ByteStream> {
        let credit = self.set.config.budget.take(self.read_cost(start, end)).await?;
        if self.resolved.version.remote().is_none() {
            return Ok(self.stream_paid(start, end, credit));
        }
        // A tier that does not serve the first bytes fails the request
        // before it is answered (503), not part-way through the body.
        let mut s = self.stream_paid(start, end, credit);
        match futures::StreamExt::next(&mut s).await {
            None => Ok(Box::pin(futures::stream::empty())),
            Some(Ok(first)) => Ok(Box::pin(futures::StreamExt::chain(
                futures::stream::iter([Ok(first)]),
                s,
            ))),
            Some(Err(e)) => Err(match e.downcast::<ObjectError>() {
                Ok(e) => e,
                Err(e) => ObjectError::TierUnavailable(e.to_string()),
            }),
        }
    }

    /// Streams plain bytes `[start, end)` of the object (an encrypted one
    /// must be unlocked first, or the stream fails). Nothing is read until
    /// the stream is first polled. Takes no buffer credit: for reads whose
    /// working set was paid for with another's (a copy's).
    pub fn stream(self, start: u64, end: u64) -> ByteStream {
        self.stream_paid(start, end, Credit::none())
    }

    fn stream_paid(self, start: u64, end: u64, credit: Credit) -> ByteStream {
        produced(credit, move |tx| {
            tokio::spawn(async move {
                if let Err(e) = self.produce(start, end, &tx).await {
                    tracing::warn!(bucket = %self.bucket, key = %self.key, error = %e, "read failed mid-stream");
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                }
                // The data directory's lease goes before the reader sees
                // the end of the stream.
                drop(self);
                drop(tx);
            });
        })
    }

    async fn produce(&self, start: u64, end: u64, tx: &Chunks) -> ObjectResult<()> {
        let v = &self.resolved.version;
        let e = v.erasure;
        let layout = Layout::new(e.data.into(), e.parity.into(), e.block_size)?;
        let sealed = match (&v.extras.encryption, &self.data_key) {
            (None, _) => None,
            (Some(rec), Some(key)) => Some((rec, key)),
            (Some(_), None) => {
                return Err(ObjectError::Internal(
                    "encrypted version read without its key".into(),
                ));
            }
        };
        let mut part_start = 0u64;
        for part in &v.parts {
            let plain = v.plain_part_size(part);
            let part_end = part_start + plain;
            if part_end <= start || plain == 0 {
                part_start = part_end;
                continue;
            }
            if part_start >= end {
                break;
            }
            let from = start.max(part_start) - part_start;
            let to = end.min(part_end) - part_start;
            let more = match sealed {
                None => {
                    let mut src = self.source(&layout, part, from, to)?;
                    let mut more = true;
                    while more && let Some(chunks) = self.next_from(&layout, part, &mut src).await? {
                        more = send_all(tx, chunks).await;
                    }
                    more
                }
                Some((rec, key)) => {
                    let opener = Opener::new(key, rec, part.number, part.size)?;
                    let (s, e, first) = opener.sealed_range(from, to, part.size);
                    let mut packages = Packages {
                        opener,
                        pending: bytes::BytesMut::new(),
                        index: first,
                        payload: rec.payload(),
                        from,
                        to,
                    };
                    let mut src = self.source(&layout, part, s, e)?;
                    let mut more = true;
                    while more && let Some(chunks) = self.next_from(&layout, part, &mut src).await? {
                        let mut plain = Vec::with_capacity(chunks.len());
                        for c in chunks {
                            // Opened block by block, so each block read
                            // whole is taken over without a copy.
                            packages.take(c);
                            plain.extend(packages.open(false)?);
                        }
                        more = send_all(tx, plain).await;
                    }
                    more && send_all(tx, packages.open(true)?).await
                }
            };
            if !more {
                return Ok(()); // client went away
            }
            part_start = part_end;
        }
        Ok(())
    }

    /// Where stored bytes `[from, to)` of a part come from: the drives, or
    /// the remote tier holding the version's data.
    fn source(&self, layout: &Layout, part: &PartInfo, from: u64, to: u64) -> ObjectResult<Source> {
        Ok(match self.resolved.version.remote() {
            Some(loc) => Source::Remote(RemoteRead::new(
                &self.set.cold.get(),
                loc,
                &self.resolved.version,
                part,
                (from, to),
            )),
            None => Source::Local(Cursor::new(layout, from, to)),
        })
    }

    async fn next_from(
        &self,
        layout: &Layout,
        part: &PartInfo,
        src: &mut Source,
    ) -> ObjectResult<Option<Vec<Bytes>>> {
        match src {
            Source::Local(cur) => self.next_chunks(layout, part, cur).await,
            Source::Remote(r) => r.next().await,
        }
    }

    /// The next batch of stored bytes of a part range, in order; `None`
    /// once the range is read.
    async fn next_chunks(
        &self,
        layout: &Layout,
        part: &PartInfo,
        cur: &mut Cursor,
    ) -> ObjectResult<Option<Vec<Bytes>>> {
        if cur.block >= cur.last {
            return Ok(None);
        }
        let bs = u64::from(layout.block_size);
        let count = (cur.last - cur.block).min(READ_BATCH);
        if count == 1 {
            // A range inside one block reads only the data shards it
            // overlaps (a small ranged GET: one shard of k).
            let bstart = cur.block * bs;
            let lo = cur.from.max(bstart) - bstart;
            let hi = cur.to.min(bstart + bs) - bstart;
            if let Some(data) = self.read_block_part(layout, part, cur.block, lo, hi).await {
                cur.block += 1;
                return Ok(Some(vec![Bytes::from(data)]));
            }
        }
        let mut out = Vec::with_capacity(count as usize);
        for (i, data) in self
            .read_block_run(layout, part, cur.block, count)
            .await?
            .into_iter()
            .enumerate()
        {
            let bstart = (cur.block + i as u64) * bs;
            let lo = cur.from.max(bstart) - bstart;
            let hi = cur.to.min(bstart + data.len() as u64) - bstart;
            out.push(buffers::bytes(data).slice(lo as usize..hi as usize));
        }
        cur.block += count;
        Ok(Some(out))
    }

    /// The version's stored bytes (sealed, for an encrypted one) framed
    /// for a remote tier ([`cold`]), part after part.
    /// Nothing is read until the stream is first polled.
    pub fn framed(self) -> ByteStream {
        produced(Credit::none(), move |tx| {
            tokio::spawn(async move {
                if let Err(e) = self.produce_framed(&tx).await {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                }
                drop(self);
                drop(tx);
            });
        })
    }

    async fn produce_framed(&self, tx: &Chunks) -> ObjectResult<()> {
        let e = self.resolved.version.erasure;
        let layout = Layout::new(e.data.into(), e.parity.into(), e.block_size)?;
        let frame = cold::FRAME as usize;
        for part in &self.resolved.version.parts {
            let mut src = self.source(&layout, part, 0, part.size)?;
            let mut pending = bytes::BytesMut::new();
            while let Some(chunks) = self.next_from(&layout, part, &mut src).await? {
                let mut framed = Vec::new();
                for c in chunks {
                    pending.extend_from_slice(&c);
                    while pending.len() >= frame {
                        framed.push(Bytes::from(bitrot::frame(&pending.split_to(frame))));
                    }
                }
                if !send_all(tx, framed).await {
                    return Ok(());
                }
            }
            if !pending.is_empty() && !send_all(tx, vec![Bytes::from(bitrot::frame(&pending))]).await {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads `count` consecutive blocks of a part with one read per data
    /// shard (the blocks are contiguous in each shard file), verifies every
    /// shard block, and falls back to [`ObjectReader::read_block`] (parity,
    /// rebuild, heal) for any block with a bad or missing shard.
    async fn read_block_run(
        &self,
        layout: &Layout,
        part: &PartInfo,
        first: u64,
        count: u64,
    ) -> ObjectResult<Vec<Vec<u8>>> {
        let k = layout.data;
        let last = first + count - 1;
        let framed = |b: u64| layout.shard_len(layout.block_len(part.size, b)) + bitrot::HASH_LEN;
        let span_start = layout.shard_offset(first);
        let span_len = (layout.shard_offset(last) - span_start) as usize + framed(last);
        let reads: Vec<_> = (0..k)
            .map(|idx| self.shard_span(idx, part, span_start, span_len))
            .collect();
        let spans: Vec<Option<Vec<u8>>> = futures::future::join_all(reads).await;
        let mut out = Vec::with_capacity(count as usize);
        for b in first..=last {
            let off = (layout.shard_offset(b) - span_start) as usize;
            let len = framed(b);
            let mut data = buffers::take_empty(layout.block_len(part.size, b));
            let mut whole = true;
            for span in &spans {
                match span
                    .as_ref()
                    .and_then(|s| s.get(off..off + len))
                    .and_then(bitrot::open)
                {
                    Some(payload) => data.extend_from_slice(payload),
                    None => {
                        whole = false;
                        break;
                    }
                }
            }
            if whole {
                data.truncate(layout.block_len(part.size, b));
                out.push(data);
            } else {
                buffers::give(data);
                out.push(self.read_block(layout, part, b).await?);
            }
        }
        spans.into_iter().flatten().for_each(buffers::give);
        Ok(out)
    }

    /// `len` stored bytes from `start` of the stream of data shard `idx`
    /// of a part (framing included); `None` when its holder is missing or
    /// the read fails.
    async fn shard_span(&self, idx: usize, part: &PartInfo, start: u64, len: usize) -> Option<Vec<u8>> {
        let copies = &self.resolved.copies;
        let pos = copies.iter().position(|c| {
            c.as_ref()
                .is_some_and(|c| usize::from(c.erasure.shard_index) == idx)
        })?;
        let copy = copies[pos].clone()?;
        let drive = self.set.drives[pos].clone()?;
        let number = part.file();
        match copy.data {
            DataLoc::Inline(bytes) => {
                let o = start as usize;
                bytes.get(o..o + len).map(<[u8]>::to_vec)
            }
            DataLoc::Dir(dir) => self
                .set
                .drive_task(pos, move || {
                    drive
                        .read_shard(&dir, number, erasure::SHARD_HEADER_LEN + start, len)
                        .ok()
                })
                .await
                .ok()
                .flatten(),
            DataLoc::None | DataLoc::Remote(_) => None,
        }
    }

    /// Bytes `[lo, hi)` of one block, from the data shards that hold them
    /// only, each checked against its checksum; `None` when the range
    /// spans the whole block or any of those shards is missing or bad (the
    /// caller then reads the block whole, with parity if need be).
    async fn read_block_part(
        &self,
        layout: &Layout,
        part: &PartInfo,
        block: u64,
        lo: u64,
        hi: u64,
    ) -> Option<Vec<u8>> {
        if hi <= lo {
            return None;
        }
        let sl = layout.shard_len(layout.block_len(part.size, block)) as u64;
        let (first, last) = (lo / sl, (hi - 1) / sl);
        if first == 0 && last + 1 >= layout.data as u64 {
            return None;
        }
        let framed = sl as usize + bitrot::HASH_LEN;
        let at = layout.shard_offset(block);
        let reads: Vec<_> = (first..=last)
            .map(|idx| self.shard_span(idx as usize, part, at, framed))
            .collect();
        let mut out = Vec::with_capacity((hi - lo) as usize);
        for (idx, span) in (first..=last).zip(futures::future::join_all(reads).await) {
            let span = span?;
            let payload = bitrot::open(&span)?;
            let s0 = idx * sl;
            let from = lo.max(s0) - s0;
            let to = hi.min(s0 + sl) - s0;
            out.extend_from_slice(payload.get(from as usize..to as usize)?);
        }
        Some(out)
    }

    /// Reads and, if needed, rebuilds one block of a part.
    async fn read_block(&self, layout: &Layout, part: &PartInfo, block: u64) -> ObjectResult<Vec<u8>> {
        let block_len = layout.block_len(part.size, block);
        let shards = read_shards(&self.set, &self.resolved, layout, part, block, false).await?;
        let (mut shards, damaged) = shards;
        if damaged {
            self.set.heal.queue(&self.bucket, &self.key);
        }
        erasure::reconstruct(layout, &mut shards, false)?;
        let mut out = Vec::with_capacity(block_len);
        for s in shards.iter().take(layout.data).flatten() {
            out.extend_from_slice(s);
        }
        out.truncate(block_len);
        Ok(out)
    }
}

/// Reads the shards of one block: all data shards (or every shard with
/// `all`), then parity shards in place of any that are missing or corrupt,
/// until `k` good ones are in hand. Returns the payloads by shard index and
/// whether any shard was bad.
pub(super) async fn read_shards(
    set: &Arc<ErasureSet>,
    resolved: &Resolved,
    layout: &Layout,
    part: &PartInfo,
    block: u64,
    all: bool,
) -> ObjectResult<(Vec<Option<Vec<u8>>>, bool)> {
    let n = layout.total();
    let mut holder: Vec<Option<usize>> = vec![None; n];
    for (pos, c) in resolved.copies.iter().enumerate() {
        if let Some(c) = c {
            let idx = usize::from(c.erasure.shard_index);
            if idx < n {
                holder[idx] = Some(pos);
            }
        }
    }
    let block_len = layout.block_len(part.size, block);
    let framed_len = layout.shard_len(block_len) + bitrot::HASH_LEN;
    let offset = layout.shard_offset(block);
    let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
    let mut damaged = holder.iter().any(Option::is_none);
    let mut tried = vec![false; n];
    let mut good = 0usize;
    let want = if all { n } else { layout.data };
    loop {
        if good >= want {
            break;
        }
        let batch: Vec<usize> = (0..n).filter(|i| !tried[*i]).take(want - good).collect();
        if batch.is_empty() {
            break;
        }
        let reads: Vec<_> = batch
            .iter()
            .map(|&idx| {
                tried[idx] = true;
                let pos = holder[idx];
                let copy = pos.and_then(|p| resolved.copies[p].clone());
                let drive = pos.and_then(|p| set.drives[p].clone());
                let number = part.file();
                async move {
                    let (Some(copy), Some(drive), Some(pos)) = (copy, drive, pos) else {
                        return (idx, Err(DriveError::Offline));
                    };
                    let r = match copy.data {
                        DataLoc::Inline(bytes) => {
                            let o = offset as usize;
                            bytes
                                .get(o..o + framed_len)
                                .map(<[u8]>::to_vec)
                                .ok_or(DriveError::NotFound)
                        }
                        DataLoc::Dir(dir) => set
                            .drive_task(pos, move || {
                                drive.read_shard(&dir, number, erasure::SHARD_HEADER_LEN + offset, framed_len)
                            })
                            .await
                            .unwrap_or(Err(DriveError::Offline)),
                        DataLoc::None | DataLoc::Remote(_) => Err(DriveError::NotFound),
                    };
                    (idx, r)
                }
            })
            .collect();
        for (idx, r) in futures::future::join_all(reads).await {
            match r.ok().as_deref().and_then(bitrot::open) {
                Some(payload) => {
                    shards[idx] = Some(payload.to_vec());
                    good += 1;
                }
                None => damaged = true,
            }
        }
    }
    if good < layout.data {
        return Err(ObjectError::ReadQuorum);
    }
    Ok((shards, damaged))
}
