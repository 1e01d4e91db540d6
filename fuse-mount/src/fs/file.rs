//! Open files: the handle table, reads through [`crate::readahead`],
//! writes into write-back files ([`crate::writeback`]) uploaded on flush,
//! fsync and close, and the mount's bounds on open files (EMFILE) and
//! write-back bytes (ENOSPC).

use super::attrs::new_entry;
use super::meta::posix_meta;
use super::{Fs, NewName, SetAttrs, errno, lock, upload_errno};
use crate::blockcache::{BLOCK, BlockCache};
use crate::inodes::{Attrs, Kind};
use crate::readahead::{self, Reader};
use crate::store::Store;
use crate::writeback::WriteBack;
use bytes::Bytes;
use fuser::Errno;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

/// An open file: its size at open, the last range fetched, and for
/// writers the write-back file and the attributes to upload with it.
pub(super) struct OpenFile {
    pub(super) path: String,
    pub(super) size: u64,
    reader: Reader,
    pub(super) writer: Option<WriteBack>,
    pub(super) attrs: Attrs,
    /// Write-back bytes this handle holds against the cache budget.
    charged: u64,
    /// Its name was unlinked (or replaced by a rename) while it was open:
    /// it keeps its bytes until closed and uploads nothing.
    pub(super) unlinked: bool,
    /// The process (thread group) that opened it; 0 when not known.
    opener: u32,
}

impl OpenFile {
    fn new(path: String, attrs: Attrs, writer: Option<WriteBack>) -> Self {
        Self {
            path,
            size: attrs.size,
            reader: Reader::default(),
            writer,
            attrs,
            charged: 0,
            unlinked: false,
            opener: 0,
        }
    }
}

pub(super) type Open = Arc<Mutex<OpenFile>>;

/// An entry of the handle table: what can be known of a handle without
/// locking it (an upload may hold that lock for a while).
pub(super) struct Handle {
    /// `None` once the file's name is gone.
    pub(super) path: Option<String>,
    ino: u64,
    writes: bool,
    pub(super) file: Open,
}

/// What an open tells the kernel besides the handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    /// The pages the kernel cached for the file are still the object's.
    pub keep_cache: bool,
}

impl<S: Store> Fs<S> {
    /// Opens file `ino` with `open(2)` `flags`.
    pub fn open(&self, ino: u64, flags: i32) -> Result<Opened, Errno> {
        let write = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if write {
            self.writable()?;
        }
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        let truncating = flags & libc::O_TRUNC != 0;
        // Close-to-open: what the file is now, not what was cached.
        let mut a = match self.stat_fresh(&path)? {
            Some(a) if a.kind != Kind::Dir => a,
            Some(_) => return Err(Errno::EISDIR),
            // The kernel still holds the name, but there is no object (a
            // create whose upload failed, or a file removed elsewhere
            // within the TTL): opened to be truncated, the file starts
            // anew, as creating it would.
            None if write && truncating => {
                let known = self.inodes.cached(ino, std::time::Duration::MAX);
                Attrs {
                    atime: std::time::SystemTime::now(),
                    ..known.unwrap_or_else(|| self.file_defaults())
                }
            }
            None => return Err(Errno::ENOENT),
        };
        // The kernel leaves O_TRUNC to the filesystem (atomic O_TRUNC): a
        // writer starts from an empty file, uploaded at close; a reader
        // that truncates (Linux allows it) empties the object first.
        if truncating && !write {
            let empty = SetAttrs {
                size: Some(0),
                ..SetAttrs::default()
            };
            a = self.setattr(ino, empty, None)?;
        } else if truncating {
            let now = std::time::SystemTime::now();
            (a.size, a.etag, a.mtime, a.ctime) = (0, None, now, now);
        }
        self.inodes.remember(&path, a.clone());
        self.reserve_open()?;
        let mut f = OpenFile::new(path.clone(), a.clone(), None);
        if write && let Err(e) = self.charge(&mut f, if truncating { 0 } else { a.size }) {
            self.release_budget(&mut f);
            return Err(e);
        }
        if write {
            let writer = if truncating {
                WriteBack::empty(&self.opts.cache_dir)
            } else {
                let key = self.key(&path);
                self.rt
                    .block_on(WriteBack::load(&self.opts.cache_dir, &self.store, &key, a.size))
            };
            match writer {
                Ok(w) => f.writer = Some(w),
                Err(_) => {
                    self.release_budget(&mut f);
                    return Err(Errno::EIO);
                }
            }
        }
        // Pages the kernel cached at an earlier opening stay valid while
        // the object is the same version (close-to-open: the HEAD above
        // tells); a writer changes it, so its pages go.
        let keep_cache = if write {
            self.inodes.drop_page_cache(ino);
            false
        } else {
            self.inodes.reuse_page_cache(ino, a.etag.as_deref())
        };
        let fh = self.new_handle(ino, f);
        Ok(Opened { fh, keep_cache })
    }

    /// Creates and opens file `n`; its inode, attributes and handle.
    pub fn create(&self, n: NewName) -> Result<(u64, Attrs, u64), Errno> {
        let path = self.new_path(&n)?;
        self.reserve_open()?;
        let writer = match WriteBack::empty(&self.opts.cache_dir) {
            Ok(w) => w,
            Err(_) => {
                self.open_files.fetch_sub(1, Ordering::Relaxed);
                return Err(Errno::EIO);
            }
        };
        let attrs = new_entry(Kind::File, 0, &n);
        self.entry_changed(&path);
        let ino = self.inodes.looked_up(&path, attrs.clone());
        let fh = self.new_handle(ino, OpenFile::new(path, attrs.clone(), Some(writer)));
        Ok((ino, attrs, fh))
    }

    /// Up to `size` bytes at `offset` of the file open as `fh`.
    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<Bytes, Errno> {
        let open = self.handle(fh)?;
        let f = lock(&open);
        if let Some(w) = &f.writer {
            return w
                .read(offset, size as usize)
                .map(Bytes::from)
                .map_err(|_| Errno::EIO);
        }
        let (file_size, key) = (f.size, self.key(&f.path));
        // The block cache holds versions known by their ETag only.
        let blocks = self.blocks.clone().zip(f.attrs.etag.clone());
        drop(f);
        let store = &self.store;
        let fetch = |start, end| {
            let (store, key, blocks) = (store.clone(), key.clone(), blocks.clone());
            async move {
                match blocks {
                    Some((cache, etag)) => {
                        fetch_cached(&store, &cache, &key, &etag, file_size, start, end).await
                    }
                    None => store.get_range(&key, start, end).await,
                }
            }
        };
        // The handle is locked while a read decides what to fetch and takes
        // its bytes, not while it waits for a window: the handle's other
        // reads are served from the windows already there meanwhile.
        readahead::read_locked(
            &self.rt,
            |go| go(&mut lock(&open).reader),
            offset,
            size,
            file_size,
            self.opts.read_ahead,
            &fetch,
        )
        .map_err(|e| errno(&e))
    }

    /// Writes `data` at `offset` of the file open as `fh`; the bytes
    /// written.
    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        let open = self.handle(fh)?;
        let mut f = lock(&open);
        let w = f.writer.as_mut().ok_or(Errno::EBADF)?;
        let end = offset + data.len() as u64;
        let need = w.held_after(end);
        if let Err(e) = self.charge(&mut f, need) {
            // Out of write-back space: a file written in order drops the
            // parts it has sent, and goes on.
            let w = f.writer.as_mut().ok_or(e)?;
            if !matches!(self.rt.block_on(w.release_sent()), Ok(true)) {
                return Err(e);
            }
            let need = w.held_after(end);
            self.charge(&mut f, need)?;
        }
        let w = f.writer.as_mut().ok_or(Errno::EBADF)?;
        let now = match w.write(offset, data) {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, path = %f.path, "write failed");
                return Err(Errno::EIO);
            }
        };
        f.attrs.size = w.size();
        f.attrs.mtime = now;
        f.attrs.ctime = now;
        if f.unlinked {
            return Ok(data.len() as u32);
        }
        self.inodes.remember(&f.path, f.attrs.clone());
        // A file written in order sends its full parts as it goes.
        let (key, meta) = (self.key(&f.path), posix_meta(&f.attrs));
        if let Some(w) = f.writer.as_mut() {
            self.rt.block_on(w.stream_parts(&self.uploader, &key, &meta));
        }
        Ok(data.len() as u32)
    }

    /// Uploads what was written through `fh`. objd acknowledges an upload
    /// only once it is durable, so this is also what fsync promises.
    pub fn flush(&self, fh: u64) -> Result<(), Errno> {
        let open = self.handle(fh)?;
        self.upload(&mut lock(&open))
    }

    /// Records the process (thread group id) that opened `fh`.
    pub fn opened_by(&self, fh: u64, process: u32) {
        if let Ok(open) = self.handle(fh) {
            lock(&open).opener = process;
        }
    }

    /// A close of a descriptor of `fh` by `process`: uploads like
    /// [`Fs::flush`], unless another process than the one that opened it
    /// closes it. Such a close is a copy of the descriptor going away (a
    /// child forked while the file was being written closes its copy when
    /// it execs), and uploading then would store the file half written;
    /// the opener's own close, or the release of the last descriptor,
    /// uploads it. A process not known (0) uploads.
    pub fn close(&self, fh: u64, process: u32) -> Result<(), Errno> {
        let open = self.handle(fh)?;
        let mut f = lock(&open);
        if f.opener != 0 && process != 0 && process != f.opener {
            tracing::debug!(path = %f.path, process, opener = f.opener, "close of a copy of the descriptor: no upload");
            return Ok(());
        }
        self.upload(&mut f)
    }

    /// Closes `fh`, uploading what was written through it.
    pub fn release(&self, fh: u64) -> Result<(), Errno> {
        let Ok(open) = self.handle(fh) else {
            return Ok(());
        };
        // Upload before the handle leaves the table, so that a lookup in
        // between still sees the file.
        let result = {
            let mut f = lock(&open);
            let r = self.upload(&mut f);
            self.release_budget(&mut f);
            r
        };
        lock(&self.files).remove(&fh);
        result
    }

    /// A handle that has `path` open for writing.
    pub(super) fn writer_handle(&self, path: &str) -> Option<Open> {
        lock(&self.files)
            .values()
            .find(|h| h.writes && h.path.as_deref() == Some(path))
            .map(|h| Arc::clone(&h.file))
    }

    /// The paths handles are open for writing on now (usually none), for
    /// a directory read to ask once instead of scanning the handles for
    /// each entry.
    pub(super) fn writing_paths(&self) -> HashSet<String> {
        lock(&self.files)
            .values()
            .filter(|h| h.writes)
            .filter_map(|h| h.path.clone())
            .collect()
    }

    /// The attributes of `path` held by a handle open for writing.
    pub(super) fn writer_attrs(&self, path: &str) -> Option<Attrs> {
        self.writer_handle(path).map(|h| lock(&h).attrs.clone())
    }

    /// A handle open on inode `ino` after its name was unlinked, one
    /// open for writing if there is one: what the inode is now.
    pub(super) fn unlinked_handle(&self, ino: u64) -> Option<Open> {
        lock(&self.files)
            .values()
            .filter(|h| h.ino == ino && h.path.is_none())
            .max_by_key(|h| h.writes)
            .map(|h| Arc::clone(&h.file))
    }

    pub(super) fn handle(&self, fh: u64) -> Result<Open, Errno> {
        lock(&self.files)
            .get(&fh)
            .map(|h| Arc::clone(&h.file))
            .ok_or(Errno::EBADF)
    }

    /// Takes one of the open-file slots.
    fn reserve_open(&self) -> Result<(), Errno> {
        let n = self.open_files.fetch_add(1, Ordering::Relaxed);
        if n >= self.opts.max_open_files {
            self.open_files.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::EMFILE);
        }
        Ok(())
    }

    /// Adjusts the write-back bytes a handle holds to `size`; refuses
    /// growth beyond the cache budget with ENOSPC.
    pub(super) fn charge(&self, f: &mut OpenFile, size: u64) -> Result<(), Errno> {
        if size > f.charged {
            let grow = size - f.charged;
            let before = self.cached_bytes.fetch_add(grow, Ordering::Relaxed);
            if before + grow > self.opts.write_cache_bytes {
                self.cached_bytes.fetch_sub(grow, Ordering::Relaxed);
                return Err(Errno::ENOSPC);
            }
        } else {
            self.cached_bytes.fetch_sub(f.charged - size, Ordering::Relaxed);
        }
        f.charged = size;
        Ok(())
    }

    /// Gives back what a closed handle held.
    fn release_budget(&self, f: &mut OpenFile) {
        self.cached_bytes.fetch_sub(f.charged, Ordering::Relaxed);
        f.charged = 0;
        self.open_files.fetch_sub(1, Ordering::Relaxed);
    }

    fn new_handle(&self, ino: u64, f: OpenFile) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let h = Handle {
            path: Some(f.path.clone()),
            ino,
            writes: f.writer.is_some(),
            file: Arc::new(Mutex::new(f)),
        };
        lock(&self.files).insert(fh, h);
        fh
    }

    /// Uploads a handle's write-back file if it changed (and still has a
    /// name: an unlinked file's upload in progress is given up instead).
    pub(super) fn upload(&self, f: &mut OpenFile) -> Result<(), Errno> {
        let Some(w) = f.writer.as_mut().filter(|w| w.dirty) else {
            return Ok(());
        };
        let key = self.key(&f.path);
        if f.unlinked {
            self.rt.block_on(w.abandon(&self.uploader, &key));
            return Ok(());
        }
        self.changed();
        let meta = posix_meta(&f.attrs);
        let implicit_mtime = w.last_write() == Some(f.attrs.mtime);
        tracing::debug!(path = %f.path, size = w.size(), "uploading");
        self.rt
            .block_on(w.upload(&self.uploader, &key, &meta, implicit_mtime))
            .map_err(|e| {
                tracing::warn!(error = %e, path = %f.path, "upload failed");
                upload_errno(&e)
            })
    }
}

/// Bytes `[start, end)` of version `etag` of `key` (`size` bytes): from
/// the block cache when it holds them, else fetched from the server
/// widened to whole blocks, which the cache keeps (written to it in the
/// background: a reader does not wait for the cache's disk).
async fn fetch_cached<S: Store>(
    store: &S,
    cache: &Arc<BlockCache>,
    key: &str,
    etag: &str,
    size: u64,
    start: u64,
    end: u64,
) -> Result<Bytes, strata_s3client::Error> {
    if let Some(hit) = cache.get(key, etag, start, end) {
        return Ok(hit);
    }
    let from = start / BLOCK * BLOCK;
    let to = end.div_ceil(BLOCK).saturating_mul(BLOCK).min(size);
    // Only bytes of the version the cache files them under are kept.
    let data = match store.get_range_of(key, from, to, etag).await {
        Ok(d) if d.len() as u64 == to - from => d,
        Ok(_) | Err(strata_s3client::Error::S3 { status: 412, .. }) => {
            // The object changed on the server since it was opened: read
            // on as without the cache.
            return store.get_range(key, start, end).await;
        }
        Err(e) => return Err(e),
    };
    cache.put_later(key, etag, size, from, data.clone());
    Ok(data.slice((start - from) as usize..(end - from) as usize))
}
