//! Write-back of files open for writing: the file's bytes live in an
//! anonymous temporary file (on disk, so memory stays bounded whatever the
//! size) that takes writes at any offset, appends and truncation; flush,
//! fsync and close upload it as one object (one PUT, or a multipart upload
//! in parts of `PART` bytes read from the file, a few in flight at once).
//!
//! A file written in order from its start streams: once it holds a full
//! part beyond what was sent, a multipart upload starts and each full part
//! is sent while the writer goes on, so closing a large file only sends
//! its tail. A write that goes back into sent parts marks them to be sent
//! again; a truncation below what was sent, or attributes that differ
//! from those the upload was started with, abandon the stream and the file
//! is uploaded whole at close (its bytes are all still here).
//!
//! The object in the bucket changes only when an upload completes, so a
//! crash of the mount never leaves a torn object: the previous version
//! stays. Parts in flight are bounded mount-wide ([`Uploader`]).

use crate::store::Store;
use bytes::Bytes;
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::SystemTime;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Size of the parts of large uploads, and of the chunks files are
/// downloaded in.
pub const PART: u64 = 8 << 20;

/// Parts of one upload sent at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Where uploads go, and the mount-wide bound on parts in memory.
#[derive(Clone)]
pub struct Uploader<S> {
    pub store: S,
    /// One permit per part held in memory while it is sent.
    permits: Arc<Semaphore>,
}

impl<S: Store> Uploader<S> {
    /// At most `parts` parts in flight across every file of the mount.
    pub fn new(store: S, parts: usize) -> Self {
        Self {
            store,
            permits: Arc::new(Semaphore::new(parts.max(1))),
        }
    }
}

/// The parts of a multipart upload sent, or being sent, while the file is
/// written.
struct Stream {
    id: String,
    /// The metadata the upload was created with (no `mtime`: the object
    /// takes its modification time from the upload's completion).
    meta: Vec<(String, String)>,
    sent: Vec<(u32, String)>,
    running: JoinSet<(u32, Result<String, strata_s3client::Error>)>,
    /// Bytes `[0, upto)` are in sent or running parts.
    upto: u64,
    /// Parts written again after they were sent.
    resend: BTreeSet<u32>,
}

pub struct WriteBack {
    file: File,
    size: u64,
    /// Changed since the last upload.
    pub dirty: bool,
    /// Written only in order from the start since the last upload.
    in_order: bool,
    /// When the last write happened.
    last_write: Option<SystemTime>,
    stream: Option<Stream>,
    /// Bytes `[0, released)` were sent in parts and dropped from the
    /// temporary file to stay within the write-back budget.
    released: u64,
}

/// Part `n` (from 1) covers bytes `[(n - 1) * PART, n * PART)`.
fn part_of(offset: u64) -> u32 {
    (offset / PART) as u32 + 1
}

impl WriteBack {
    /// An empty file (create, or open with O_TRUNC).
    pub fn empty(dir: &std::path::Path) -> io::Result<Self> {
        Ok(Self {
            file: tempfile::tempfile_in(dir)?,
            size: 0,
            dirty: true,
            in_order: true,
            last_write: None,
            stream: None,
            released: 0,
        })
    }

    /// The current content of an object, fetched in parts.
    pub async fn load(dir: &std::path::Path, store: &impl Store, key: &str, size: u64) -> io::Result<Self> {
        let file = tempfile::tempfile_in(dir)?;
        let mut at = 0;
        while at < size {
            let end = (at + PART).min(size);
            let data = store.get_range(key, at, end).await.map_err(io::Error::other)?;
            if data.is_empty() {
                break;
            }
            file.write_all_at(&data, at)?;
            at += data.len() as u64;
        }
        Ok(Self {
            file,
            size: at,
            dirty: false,
            in_order: false,
            last_write: None,
            stream: None,
            released: 0,
        })
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// When the last write happened (the file's implicit mtime).
    pub fn last_write(&self) -> Option<SystemTime> {
        self.last_write
    }

    /// Bytes the temporary file holds once it reaches `end` (what the
    /// write-back budget counts).
    pub fn held_after(&self, end: u64) -> u64 {
        self.size.max(end).saturating_sub(self.released)
    }

    /// A range that starts in bytes already sent and dropped cannot be
    /// read or rewritten before the upload completes.
    fn check_held(&self, offset: u64) -> io::Result<()> {
        if offset < self.released {
            return Err(io::Error::other(
                "the start of this file was already uploaded and dropped from the write-back cache",
            ));
        }
        Ok(())
    }

    pub fn write(&mut self, offset: u64, data: &[u8]) -> io::Result<SystemTime> {
        self.check_held(offset)?;
        self.file.write_all_at(data, offset)?;
        if offset != self.size {
            self.in_order = false;
        }
        if let Some(s) = &mut self.stream
            && offset < s.upto
        {
            let last = (offset + data.len() as u64).min(s.upto) - 1;
            s.resend.extend(part_of(offset)..=part_of(last));
        }
        self.size = self.size.max(offset + data.len() as u64);
        self.dirty = true;
        let now = SystemTime::now();
        self.last_write = Some(now);
        Ok(now)
    }

    pub fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        self.check_held(offset)?;
        let end = (offset + len as u64).min(self.size);
        let mut buf = vec![0u8; end.saturating_sub(offset) as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Truncates to `size`; a stream that sent bytes beyond it is given up
    /// (the caller aborts it with [`WriteBack::abandon`]).
    pub fn truncate(&mut self, size: u64) -> io::Result<()> {
        if self.released > 0 && self.stream.as_ref().is_some_and(|s| s.upto > size) {
            return self.check_held(0);
        }
        self.file.set_len(size)?;
        if self.stream.as_ref().is_some_and(|s| s.upto > size) {
            self.in_order = false;
        }
        self.size = size;
        self.dirty = true;
        Ok(())
    }

    fn chunk(&self, at: u64) -> io::Result<Bytes> {
        let end = (at + PART).min(self.size);
        let mut buf = vec![0u8; (end - at) as usize];
        self.file.read_exact_at(&mut buf, at)?;
        Ok(Bytes::from(buf))
    }

    /// Sends the full parts written in order beyond what was sent, starting
    /// the multipart upload with `meta` first if needed. Waits only when
    /// `PARTS_IN_FLIGHT` parts of this file are already on their way.
    /// If sending fails the stream is given up and the file will be
    /// uploaded whole at close, which reports the error.
    pub async fn stream_parts<S: Store>(&mut self, up: &Uploader<S>, key: &str, meta: &[(String, String)]) {
        if let Err(e) = self.try_stream_parts(up, key, meta).await {
            tracing::debug!(error = %e, "streaming upload given up");
            self.in_order = false;
            self.abandon(up, key).await;
        }
    }

    async fn try_stream_parts<S: Store>(
        &mut self,
        up: &Uploader<S>,
        key: &str,
        meta: &[(String, String)],
    ) -> io::Result<()> {
        if !self.in_order {
            return Ok(());
        }
        let upto = self.stream.as_ref().map_or(0, |s| s.upto);
        if self.size < upto + PART || self.size <= PART {
            return Ok(());
        }
        if self.stream.is_none() {
            let meta: Vec<_> = meta.iter().filter(|(k, _)| k != "mtime").cloned().collect();
            let id = up
                .store
                .create_multipart(key, &meta)
                .await
                .map_err(io::Error::other)?;
            self.stream = Some(Stream {
                id,
                meta,
                sent: Vec::new(),
                running: JoinSet::new(),
                upto: 0,
                resend: BTreeSet::new(),
            });
        }
        while let Some(at) = self.stream.as_ref().map(|s| s.upto)
            && self.size >= at + PART
        {
            let body = self.chunk(at)?;
            let s = self.stream.as_mut().expect("stream started above");
            while s.running.len() >= PARTS_IN_FLIGHT {
                collect(s).await?;
            }
            spawn_part(up, key, s, part_of(at), body).await;
            s.upto = at + PART;
        }
        Ok(())
    }

    /// Makes room in the write-back cache: waits for the parts on their
    /// way, then drops every sent part from the temporary file. Only for a
    /// file written in order whose sent parts need no resending; returns
    /// whether anything was dropped.
    pub async fn release_sent(&mut self) -> io::Result<bool> {
        let Some(s) = self.stream.as_mut().filter(|s| s.resend.is_empty()) else {
            return Ok(false);
        };
        if !self.in_order {
            return Ok(false);
        }
        while !s.running.is_empty() {
            collect(s).await?;
        }
        if s.upto <= self.released {
            return Ok(false);
        }
        use rustix::fs::{FallocateFlags, fallocate};
        let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
        fallocate(&self.file, flags, self.released, s.upto - self.released)?;
        self.released = s.upto;
        Ok(true)
    }

    /// Aborts a stream that cannot be completed any more.
    pub async fn abandon<S: Store>(&mut self, up: &Uploader<S>, key: &str) {
        if let Some(mut s) = self.stream.take() {
            if self.released > 0 {
                // Sent bytes were dropped: this handle cannot upload again.
                self.released = u64::MAX;
            }
            s.running.abort_all();
            while s.running.join_next().await.is_some() {}
            let _ = up.store.abort_multipart(key, &s.id).await;
        }
    }

    /// Uploads the file as `key` with `meta`; clean afterwards.
    /// `implicit_mtime` says the file's mtime is that of its last write
    /// (not set explicitly), which a stream may leave to the server.
    pub async fn upload<S: Store>(
        &mut self,
        up: &Uploader<S>,
        key: &str,
        meta: &[(String, String)],
        implicit_mtime: bool,
    ) -> io::Result<()> {
        let same_meta = |s: &Stream| {
            let mut m: Vec<_> = meta.iter().filter(|(k, _)| k != "mtime").cloned().collect();
            m.sort();
            let mut sm = s.meta.clone();
            sm.sort();
            implicit_mtime && m == sm
        };
        let keep = self.in_order || self.stream.as_ref().is_some_and(|s| s.upto <= self.size);
        let restamp = self.stream.as_ref().is_some_and(|s| !same_meta(s));
        if self.released == 0 && self.stream.is_some() && (!keep || restamp) {
            self.abandon(up, key).await;
        }
        if self.stream.is_none() && self.released > 0 {
            return Err(io::Error::other(
                "the upload of this file failed after its start was dropped from the write-back cache",
            ));
        }
        let result = if self.stream.is_some() {
            // Bytes dropped after sending cannot be sent again: complete
            // the stream, then set the attributes by a copy onto itself.
            let r = self.finish_stream(up, key).await;
            match r {
                Ok(()) if restamp => up
                    .store
                    .copy_as(key, key, meta, None)
                    .await
                    .map(|_| ())
                    .map_err(io::Error::other),
                r => r,
            }
        } else if self.size <= PART {
            let body = self.chunk(0)?;
            up.store
                .put(key, body, meta)
                .await
                .map(|_| ())
                .map_err(io::Error::other)
        } else {
            self.upload_whole(up, key, meta).await
        };
        if result.is_err() {
            self.abandon(up, key).await;
        }
        result?;
        self.dirty = false;
        self.in_order = false;
        if self.released > 0 {
            // What was dropped is in the object now, and another upload
            // from this handle would need it: the handle takes no more
            // reads or writes (the file can be opened again).
            self.released = u64::MAX;
        }
        Ok(())
    }

    /// Sends what the stream has not sent (the tail, and parts written
    /// again), then completes it.
    async fn finish_stream<S: Store>(&mut self, up: &Uploader<S>, key: &str) -> io::Result<()> {
        let Some(mut s) = self.stream.take() else {
            return Ok(());
        };
        let result = async {
            // Parts written again wait for their first sending to end.
            while !s.running.is_empty() {
                collect(&mut s).await?;
            }
            let mut todo: Vec<u64> = s.resend.iter().map(|n| u64::from(n - 1) * PART).collect();
            todo.extend((s.upto..self.size).step_by(PART as usize));
            for at in todo {
                let body = self.chunk(at)?;
                while s.running.len() >= PARTS_IN_FLIGHT {
                    collect(&mut s).await?;
                }
                spawn_part(up, key, &mut s, part_of(at), body).await;
            }
            while !s.running.is_empty() {
                collect(&mut s).await?;
            }
            // A part sent twice counts once, with its last ETag (sent
            // lists them in the order they finished; resends last).
            s.sent.reverse();
            s.sent.sort_by_key(|(n, _)| *n);
            s.sent.dedup_by_key(|(n, _)| *n);
            up.store
                .complete_multipart(key, &s.id, &s.sent)
                .await
                .map_err(io::Error::other)
        }
        .await;
        if result.is_err() {
            self.stream = Some(s);
        }
        result
    }

    /// A multipart upload of the whole file.
    async fn upload_whole<S: Store>(
        &mut self,
        up: &Uploader<S>,
        key: &str,
        meta: &[(String, String)],
    ) -> io::Result<()> {
        let id = up
            .store
            .create_multipart(key, meta)
            .await
            .map_err(io::Error::other)?;
        self.stream = Some(Stream {
            id,
            meta: Vec::new(),
            sent: Vec::new(),
            running: JoinSet::new(),
            upto: 0,
            resend: BTreeSet::new(),
        });
        self.finish_stream(up, key).await
    }
}

/// Starts sending part `n` once a mount-wide permit is free.
async fn spawn_part<S: Store>(up: &Uploader<S>, key: &str, s: &mut Stream, n: u32, body: Bytes) {
    let permit = Arc::clone(&up.permits).acquire_owned().await;
    let (store, k, id) = (up.store.clone(), key.to_owned(), s.id.clone());
    s.running.spawn(async move {
        let _permit = permit;
        (n, store.upload_part(&k, &id, n, body).await)
    });
}

/// Waits for one running part and records it.
async fn collect(s: &mut Stream) -> io::Result<()> {
    if let Some(done) = s.running.join_next().await {
        let (n, etag) = done.map_err(io::Error::other)?;
        s.sent.push((n, etag.map_err(io::Error::other)?));
    }
    Ok(())
}
