//! The FUSE filesystem over a bucket: files are objects, directories are
//! key prefixes (or `dir/` markers), POSIX attributes come from the
//! `x-amz-meta-{mode,uid,gid,mtime}` metadata s3fs uses, with the mount's
//! defaults for objects that have none.
//!
//! Reads: lookups (HEAD, then a one-key listing for directories),
//! attributes cached for `attr_ttl`, directory listings in pages (a
//! directory's entries are never all held at once; from objd with each
//! file's metadata, so readdirplus answers `ls -l`), ranged GETs through
//! [`crate::readahead`]. Opening a file fetches its attributes afresh
//! (close-to-open consistency), and the kernel keeps the pages it cached
//! for the file only if its ETag is unchanged.
//!
//! Writes: a file open for writing is a write-back temporary file
//! ([`crate::writeback`]) uploaded on flush, fsync and close, with its POSIX
//! attributes as metadata; chmod/chown/utimens rewrite the metadata in
//! place (a copy onto itself); mkdir writes a `dir/` marker; rmdir refuses
//! non-empty directories; rename of a file is a copy then a delete, of a
//! directory the same for every key below it (neither is atomic: for a
//! while both names exist, but no object is ever lost). With `--read-only`
//! every change fails with EROFS.
//!
//! The layers: [`Fs`] is the filesystem, generic over the object calls it
//! makes ([`Store`]) and free of the kernel, its calls answering values or
//! errnos: attributes and lookups ([`attrs`]) and their form as object
//! metadata ([`meta`]), directory reads ([`dir`]), names created, removed
//! and renamed ([`names`]), open files ([`file`]) and what unlinks and
//! renames do to them ([`detach`]).
//! [`adapter`] only translates the kernel's FUSE calls to them and their
//! answers to replies.

mod adapter;
mod attrs;
mod detach;
mod dir;
mod file;
mod lookahead;
mod meta;
mod names;
#[cfg(test)]
mod tests;

pub use adapter::Adapter;
pub use attrs::{SetAttrs, SetTime};

use crate::blockcache::BlockCache;
use crate::inodes::{Inodes, child};
use crate::store::Store;
use crate::writeback::Uploader;
use fuser::Errno;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use strata_s3client::Error;

/// Settings of a mount.
#[derive(Debug, Clone)]
pub struct Options {
    /// Key prefix the mount shows, empty or ending in `/`.
    pub prefix: String,
    pub uid: u32,
    pub gid: u32,
    pub file_mode: u16,
    pub dir_mode: u16,
    /// How long attributes and lookups are trusted.
    pub attr_ttl: Duration,
    /// Bytes fetched ahead of a read.
    pub read_ahead: u64,
    /// Entries per listing request.
    pub list_page: usize,
    pub read_only: bool,
    /// Where write-back files live.
    pub cache_dir: std::path::PathBuf,
    /// Most files open at once (EMFILE beyond).
    pub max_open_files: usize,
    /// Most bytes held in write-back files at once (ENOSPC beyond).
    pub write_cache_bytes: u64,
    /// Most bytes of the block cache of what was read (0: none).
    pub block_cache_bytes: u64,
}

/// Who makes a call: the owner of what it creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
}

/// A name a call makes: who makes it, in which directory, and the mode
/// and umask the kernel passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewName<'a> {
    pub caller: Caller,
    pub parent: u64,
    pub name: &'a OsStr,
    pub mode: u32,
    pub umask: u32,
}

impl NewName<'_> {
    /// The permission bits the new entry gets.
    fn perm(&self) -> u16 {
        (self.mode & !self.umask & 0o7777) as u16
    }
}

/// Parts held in memory while they are sent, across the whole mount.
const PARTS_IN_MEMORY: usize = 16;

/// The longest name of a directory entry, in bytes (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// S3's longest object key, in bytes.
const KEY_MAX: usize = 1024;

/// The filesystem over the objects of `S`.
pub struct Fs<S: Store> {
    store: S,
    uploader: Uploader<S>,
    rt: tokio::runtime::Runtime,
    opts: Options,
    inodes: Inodes,
    dirs: Mutex<HashMap<u64, dir::DirHandle>>,
    files: Mutex<HashMap<u64, file::Handle>>,
    next_fh: AtomicU64,
    /// Files open now, and write-back bytes held now.
    open_files: AtomicUsize,
    cached_bytes: AtomicU64,
    /// What was read, kept for reads the kernel's page cache misses.
    blocks: Option<Arc<BlockCache>>,
    /// Lookups in a row that found nothing (see `Fs::stat_server`).
    misses: AtomicU64,
    /// The server lists metadata ([`Fs::lists_attributes`]).
    detailed: AtomicBool,
    /// Changes made through the mount so far (names, attributes,
    /// contents): a listing fetched before one answers no lookup.
    changes: AtomicU64,
    /// Lookups answered from listing pages ([`lookahead`]).
    lookahead: Mutex<lookahead::Lookahead>,
}

/// The errno for a failed S3 call.
fn errno(e: &Error) -> Errno {
    let code = match e {
        Error::S3 { code, .. } => code.as_str(),
        _ => "",
    };
    match (e.status(), code) {
        (_, "QuotaExceeded") => Errno::EDQUOT,
        (_, "KeyTooLongError") => Errno::ENAMETOOLONG,
        (404, _) => Errno::ENOENT,
        (403, _) => Errno::EACCES,
        _ => {
            tracing::warn!(error = %e, "S3 request failed");
            Errno::EIO
        }
    }
}

/// The errno for a failed upload: as [`errno`] says for what the server
/// refused, but EIO for a missing object or upload (the file is there:
/// its upload went wrong) and for local failures.
fn upload_errno(e: &std::io::Error) -> Errno {
    match e.get_ref().and_then(|inner| inner.downcast_ref::<Error>()) {
        Some(s3) if !s3.is_not_found() => errno(s3),
        _ => Errno::EIO,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: Store> Fs<S> {
    pub fn new(store: S, opts: Options) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let blocks = BlockCache::new(&opts.cache_dir, opts.block_cache_bytes)?.map(Arc::new);
        Ok(Self {
            blocks,
            uploader: Uploader::new(store.clone(), PARTS_IN_MEMORY),
            store,
            rt,
            opts,
            inodes: Inodes::new(),
            dirs: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            open_files: AtomicUsize::new(0),
            cached_bytes: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            detailed: AtomicBool::new(false),
            changes: AtomicU64::new(0),
            lookahead: Mutex::default(),
        })
    }

    /// How long the kernel may trust what it is told.
    pub fn attr_ttl(&self) -> Duration {
        self.opts.attr_ttl
    }

    /// Whether the bucket can be listed with the mount's credentials.
    pub fn check_bucket(&self) -> Result<(), Error> {
        let prefix = &self.opts.prefix;
        self.rt
            .block_on(self.store.list(prefix, Some("/"), None, 1))
            .map(|_| ())
    }

    fn key(&self, path: &str) -> String {
        format!("{}{path}", self.opts.prefix)
    }

    /// The listing prefix of a directory.
    fn dir_prefix(&self, path: &str) -> String {
        if path.is_empty() {
            self.opts.prefix.clone()
        } else {
            format!("{}{path}/", self.opts.prefix)
        }
    }

    /// The path of a name a call makes, on a writable mount.
    /// An entry `path` was made, removed or renamed: its directory's
    /// mtime and ctime are now.
    fn entry_changed(&self, path: &str) {
        self.changed();
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        self.inodes.dir_changed(dir, std::time::SystemTime::now());
        self.inodes.touched(path);
    }

    fn new_path(&self, n: &NewName) -> Result<String, Errno> {
        self.writable()?;
        self.parent_child(n.parent, n.name)
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.opts.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// The path of `name` in directory `parent`, for a call that makes
    /// or changes it: ENAMETOOLONG for a name past [`NAME_MAX`] or a key
    /// past S3's limit, EINVAL for a name that is not UTF-8.
    fn parent_child(&self, parent: u64, name: &OsStr) -> Result<String, Errno> {
        self.child_path(parent, name, Errno::EINVAL)
    }

    /// [`Fs::parent_child`], with `not_utf8` for a name that is not UTF-8.
    fn child_path(&self, parent: u64, name: &OsStr, not_utf8: Errno) -> Result<String, Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let parent_path = self.inodes.path(parent).ok_or(Errno::ENOENT)?;
        let path = child(&parent_path, name.to_str().ok_or(not_utf8)?);
        if self.key(&path).len() > KEY_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        Ok(path)
    }
}
