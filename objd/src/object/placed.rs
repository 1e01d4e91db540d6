//! Writes straight into a pool's or remote tier's store: a PUT (or copy)
//! whose storage class names a place other than the namespace pool sends
//! the body there as it arrives, and commits only the version's record
//! in the namespace pool.
//!
//! The order is a transition's ([`super::cold`]): a journal row naming
//! the new object on the key's set, the upload (the body's stored bytes,
//! sealed when encrypted, in checked frames), then the record, committed
//! with the row's removal in the same drive transactions and only while
//! the row's deadline has not passed. A write that fails before its commit
//! removes its object (or leaves it to the journal's sweep), so a crash
//! at any point leaves the key as it was or with the new version, and no
//! stored object that nothing references outlives the sweep.

use super::cold::{framed_len, row_key, row_put};
use super::put::{Block, BodyDigests, BodyReader, Pending, Stored, WrittenBody};
use super::{ByteStream, ErasureSet, ObjectError, ObjectLayer, ObjectResult, PutOptions, blocking, now_ns};
use crate::drive::{RecordOp, Table};
use crate::erasure::bitrot;
use crate::meta::{RemoteLoc, Version, Versioning};
use crate::sse::package::Sealer;
use bytes::{Bytes, BytesMut};

/// The longest a client's write into a store may take before its journal
/// row is settled (and its commit refused): a day, plus a second per MiB,
/// since the client sets the pace. A crashed write's object waits that
/// long before the sweep removes it.
fn upload_limit(len: u64) -> std::time::Duration {
    std::time::Duration::from_secs(24 * 3600 + len / (1 << 20))
}

/// Framed chunks queued for the store's upload, at most.
const QUEUE: usize = 4;

/// How the body's stream ended: its digests and sizes, or why it failed.
type Outcome = tokio::task::JoinHandle<ObjectResult<WrittenBody>>;

impl ObjectLayer {
    /// Moves a version just written to the namespace pool to `place`,
    /// where its storage class asked for it to be (a completed multipart
    /// upload, or a body of unknown length). A move that fails leaves the
    /// object where it is, durable and reported STANDARD, and is logged.
    pub(super) async fn place_written(&self, bucket: &str, key: &str, v: Version, place: &str) -> Version {
        if let Err(e) = self.transition(bucket, key, &v, place).await {
            tracing::warn!(%bucket, %key, %place, error = %e, "a new object stays in the namespace pool: moving it to its storage class failed");
        }
        v
    }
}

impl ErasureSet {
    /// [`ErasureSet::put_object`] for a version whose data goes to the
    /// store of `place` (the body's length known).
    pub(super) async fn put_placed(
        &self,
        bucket: &str,
        key: &str,
        body: ByteStream,
        mut opts: PutOptions,
        versioning: Versioning,
        place: String,
    ) -> ObjectResult<Version> {
        let Some(size) = opts.size else {
            return Err(ObjectError::Internal("a placed write without a length".into()));
        };
        if size > super::put::MAX_PUT_SIZE {
            return Err(ObjectError::EntityTooLarge);
        }
        let store = self.cold.get();
        let stored_len = opts
            .encryption
            .as_ref()
            .map_or(size, |s| s.record.sealed_len(size));
        let len = framed_len(stored_len);
        let loc = RemoteLoc {
            tier: place,
            id: *uuid::Uuid::new_v4().as_bytes(),
        };
        let algo = opts.stored_algo();
        let seal = opts
            .encryption
            .as_ref()
            .map(|s| Sealer::new(&s.key, &s.record, 1))
            .transpose()?;
        let _credit = self
            .config
            .budget
            .take(self.write_cost(Some(size), seal.is_some()))
            .await?;
        let deadline = now_ns() + upload_limit(len).as_nanos() as i64;
        self.journal(row_put(&loc, bucket, key, deadline)).await?;
        let take = seal.as_ref().map_or(self.layout.block_size as usize, |s| {
            s.plain_per(self.layout.block_size as usize)
        });
        let (stream, outcome) = framed_body(body, size, take, seal, algo);
        let uploaded = store.upload(&loc.tier, loc.id, stream, len).await;
        // Ends once the store has read it all or let the stream go.
        let ended = outcome
            .await
            .unwrap_or_else(|e| Err(ObjectError::Internal(format!("body task: {e}"))));
        let written = match (ended, uploaded) {
            (Ok(w), Ok(())) => w,
            // The body's own failure (a short body, a client gone) says
            // more than the store's answer to the stream it cut.
            (Err(e @ (ObjectError::IncompleteBody | ObjectError::Body(_))), _)
            | (_, Err(e))
            | (Err(e), Ok(())) => {
                self.forget(&store, &loc).await;
                return Err(e);
            }
        };
        if let Err(e) = written.verify(&mut opts) {
            self.forget(&store, &loc).await;
            return Err(e);
        }
        let condition = std::mem::take(&mut opts.condition);
        let pending = Pending {
            template: self.put_version(opts, versioning, written),
            rotation: self.rotation(bucket, key),
            stored: Stored::Remote(loc.clone()),
            dir: [0; 16],
            deadline: Some(deadline),
        };
        let row = RecordOp::Delete {
            table: Table::Config,
            key: row_key(&loc.id),
        };
        let r = self
            .commit_version(bucket, key, pending, vec![row], &condition)
            .await;
        if matches!(
            r,
            Err(ObjectError::PreconditionFailed | ObjectError::ObjectLocked)
        ) {
            // Refused before anything was committed. Any other failure
            // may have reached some drives: the row stays, and the sweep
            // settles it by what the drives reference.
            self.forget(&store, &loc).await;
        }
        r
    }
}

/// The stored bytes of `body` (sealed when `seal` is given) in checked
/// frames, as a stream for a store's upload, and the task producing it,
/// which ends with the body's digests and sizes or why it failed. The
/// plain body is read `take` bytes at a time.
fn framed_body(
    body: ByteStream,
    size: u64,
    take: usize,
    seal: Option<Sealer>,
    algo: super::checksum::ChecksumAlgo,
) -> (ByteStream, Outcome) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUE);
    let task = tokio::spawn(async move {
        let result = produce(body, size, take, seal, algo, &tx).await;
        if let Err(e) = &result {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
        result
    });
    let stream = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        Some((item, rx))
    }));
    (stream, task)
}

async fn produce(
    body: ByteStream,
    size: u64,
    take: usize,
    mut seal: Option<Sealer>,
    algo: super::checksum::ChecksumAlgo,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> ObjectResult<WrittenBody> {
    let frame = super::cold::FRAME as usize;
    let mut body = BodyReader::new(body, Some(size));
    let mut digests = Some(BodyDigests::new(&[algo], true));
    let mut pending = BytesMut::new();
    let (mut total, mut stored) = (0u64, 0u64);
    // An encrypted body has at least one package, even when empty.
    let mut next = Some(body.block(take).await?);
    while let Some(Block { data: block, last }) = next.take() {
        if block.is_empty() && seal.is_none() {
            break;
        }
        total += block.len() as u64;
        if total > size {
            return Err(ObjectError::IncompleteBody);
        }
        let mut d = digests.take().unwrap_or_else(|| BodyDigests::new(&[algo], true));
        let (d, s, out) = blocking(move || {
            d.update(&block);
            let out = match seal.as_mut() {
                Some(s) => crate::buffers::bytes(s.seal(&block, last)),
                None => block,
            };
            (d, seal, out)
        })
        .await?;
        digests = Some(d);
        seal = s;
        stored += out.len() as u64;
        pending.extend_from_slice(&out);
        while pending.len() >= frame {
            let f = Bytes::from(bitrot::frame(&pending.split_to(frame)));
            if tx.send(Ok(f)).await.is_err() {
                return Err(ObjectError::Internal("the store stopped reading".into()));
            }
        }
        if !last {
            next = Some(body.block(take).await?);
        }
    }
    if total != size {
        return Err(ObjectError::IncompleteBody);
    }
    if !pending.is_empty() && tx.send(Ok(Bytes::from(bitrot::frame(&pending)))).await.is_err() {
        return Err(ObjectError::Internal("the store stopped reading".into()));
    }
    let (md5, mut sums) = digests.map(BodyDigests::finish).unwrap_or_default();
    Ok(WrittenBody {
        size: total,
        stored_size: stored,
        md5,
        algo,
        digest: sums.pop().unwrap_or_default(),
    })
}
