//! The FUSE filesystem over a bucket: files are objects, directories are
//! key prefixes (or `dir/` markers), POSIX attributes come from the
//! `x-amz-meta-{mode,uid,gid,mtime}` metadata s3fs uses, with the mount's
//! defaults for objects that have none.
//!
//! Reads: lookups (HEAD, then a one-key listing for directories),
//! attributes cached for `attr_ttl`, directory listings in pages (a
//! directory's entries are never all held at once), ranged GETs through
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

use crate::inodes::{Attrs, Inodes, Kind, ROOT, child};
use crate::readahead::Reader;
use crate::writeback::{Uploader, WriteBack};
use bytes::Bytes;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use strata_s3client::{Client, Error};

/// Settings of a mount.
#[derive(Debug, Clone)]
pub struct Options {
    pub bucket: String,
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
}

/// A directory being read: a window of its entries, fetched page by page.
struct DirHandle {
    path: String,
    /// Index (readdir offset) of `entries[0]`.
    base: u64,
    entries: Vec<(String, Kind)>,
    token: Option<String>,
    done: bool,
}

/// An open file: its size at open, the last range fetched, and for
/// writers the write-back file and the attributes to upload with it.
struct OpenFile {
    path: String,
    size: u64,
    reader: Reader,
    writer: Option<WriteBack>,
    attrs: Attrs,
    /// Write-back bytes this handle holds against the cache budget.
    charged: u64,
}

type Open = Arc<Mutex<OpenFile>>;

/// An entry of the handle table: what can be known of a handle without
/// locking it (an upload may hold that lock for a while).
struct Handle {
    path: String,
    writes: bool,
    file: Open,
}

/// Parts held in memory while they are sent, across the whole mount.
const PARTS_IN_MEMORY: usize = 16;

pub struct StrataFs {
    client: Client,
    uploader: Uploader,
    rt: tokio::runtime::Runtime,
    opts: Options,
    inodes: Inodes,
    dirs: Mutex<HashMap<u64, DirHandle>>,
    files: Mutex<HashMap<u64, Handle>>,
    next_fh: AtomicU64,
    /// Files open now, and write-back bytes held now.
    open_files: std::sync::atomic::AtomicUsize,
    cached_bytes: AtomicU64,
}

/// The errno for a failed S3 call.
fn errno(e: &Error) -> Errno {
    match e.status() {
        404 => Errno::ENOENT,
        403 => Errno::EACCES,
        _ => {
            tracing::warn!(error = %e, "S3 request failed");
            Errno::EIO
        }
    }
}

/// The errno for a failed upload: EDQUOT when the bucket's quota refused
/// it, EIO otherwise.
fn upload_errno(e: &std::io::Error) -> Errno {
    let s3 = e.get_ref().and_then(|inner| inner.downcast_ref::<Error>());
    match s3 {
        Some(Error::S3 { code, .. }) if code == "QuotaExceeded" => Errno::EDQUOT,
        _ => Errno::EIO,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl StrataFs {
    pub fn new(client: Client, opts: Options) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        Ok(Self {
            uploader: Uploader::new(client.clone(), opts.bucket.clone(), PARTS_IN_MEMORY),
            client,
            rt,
            opts,
            inodes: Inodes::new(),
            dirs: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            open_files: std::sync::atomic::AtomicUsize::new(0),
            cached_bytes: AtomicU64::new(0),
        })
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

    fn dir_attrs(&self) -> Attrs {
        Attrs {
            kind: Kind::Dir,
            size: 0,
            mtime: SystemTime::UNIX_EPOCH,
            mode: self.opts.dir_mode,
            uid: self.opts.uid,
            gid: self.opts.gid,
            etag: None,
        }
    }

    /// Whether the bucket can be listed with the mount's credentials.
    pub fn check_bucket(&self) -> Result<(), Error> {
        let prefix = &self.opts.prefix;
        self.rt
            .block_on(self.client.list(&self.opts.bucket, prefix, Some("/"), None, 1))
            .map(|_| ())
    }

    /// What `path` is now: an object (file), a prefix (directory), or
    /// nothing.
    fn stat(&self, path: &str) -> Result<Option<Attrs>, Errno> {
        if path.is_empty() {
            return Ok(Some(self.dir_attrs()));
        }
        // A file open for writing is what its writer says, uploaded or not.
        if let Some(a) = self.writer_attrs(path) {
            return Ok(Some(a));
        }
        let b = &self.opts.bucket;
        match self.rt.block_on(self.client.head_object(b, &self.key(path))) {
            Ok(info) => return Ok(Some(self.attrs_of(&info, Kind::File))),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(errno(&e)),
        }
        // A directory: any key below `path/`. One listing tells whether
        // there is one (so a name about to be created costs two requests),
        // and whether the first is the `path/` marker, which keeps the
        // directory's attributes.
        let prefix = self.dir_prefix(path);
        let page = self
            .rt
            .block_on(self.client.list(b, &prefix, Some("/"), None, 1))
            .map_err(|e| errno(&e))?;
        if page.objects.is_empty() && page.prefixes.is_empty() {
            return Ok(None);
        }
        if page.objects.first().is_some_and(|o| o.key == prefix) {
            match self.rt.block_on(self.client.head_object(b, &prefix)) {
                Ok(info) => return Ok(Some(self.attrs_of(&info, Kind::Dir))),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(errno(&e)),
            }
        }
        Ok(Some(self.dir_attrs()))
    }

    /// Attributes from an object's s3fs-style metadata; `kind` is what the
    /// object is when its mode does not say (a file, or a dir marker).
    fn attrs_of(&self, info: &strata_s3client::ObjectInfo, kind: Kind) -> Attrs {
        let meta = |n: &str| info.meta(n).and_then(|v| v.parse::<u64>().ok());
        let mode = meta("mode").map(|m| m as u32);
        let kind = match mode.map(|m| m & libc::S_IFMT) {
            Some(libc::S_IFLNK) => Kind::Symlink,
            Some(libc::S_IFDIR) => Kind::Dir,
            Some(libc::S_IFREG) if kind == Kind::File => Kind::File,
            _ => kind,
        };
        let default_mode = if kind == Kind::Dir {
            self.opts.dir_mode
        } else {
            self.opts.file_mode
        };
        Attrs {
            kind,
            size: if kind == Kind::Dir { 0 } else { info.size },
            mtime: meta("mtime")
                .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                .unwrap_or(info.last_modified),
            mode: mode.map_or(default_mode, |m| (m & 0o7777) as u16),
            uid: meta("uid").map_or(self.opts.uid, |u| u as u32),
            gid: meta("gid").map_or(self.opts.gid, |g| g as u32),
            etag: Some(info.etag.clone()),
        }
    }

    fn file_attr(&self, ino: u64, a: &Attrs) -> FileAttr {
        let kind = match a.kind {
            Kind::File => FileType::RegularFile,
            Kind::Dir => FileType::Directory,
            Kind::Symlink => FileType::Symlink,
        };
        FileAttr {
            ino: INodeNo(ino),
            size: a.size,
            blocks: a.size.div_ceil(512),
            atime: a.mtime,
            mtime: a.mtime,
            ctime: a.mtime,
            crtime: a.mtime,
            kind,
            perm: a.mode,
            nlink: if a.kind == Kind::Dir { 2 } else { 1 },
            uid: a.uid,
            gid: a.gid,
            rdev: 0,
            blksize: 1 << 20,
            flags: 0,
        }
    }

    /// Attributes of an inode, from the cache or afresh.
    fn attrs(&self, ino: u64) -> Result<Attrs, Errno> {
        if let Some(a) = self.inodes.cached(ino, self.opts.attr_ttl) {
            return Ok(a);
        }
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        let a = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        self.inodes.remember(&path, a.clone());
        Ok(a)
    }

    /// Fetches the next page of a directory into its window, dropping what
    /// was before `keep_from`.
    fn fill(&self, d: &mut DirHandle, keep_from: u64) -> Result<(), Errno> {
        let drop = (keep_from.saturating_sub(d.base) as usize).min(d.entries.len());
        d.entries.drain(..drop);
        d.base += drop as u64;
        let prefix = self.dir_prefix(&d.path);
        let page = self
            .rt
            .block_on(self.client.list(
                &self.opts.bucket,
                &prefix,
                Some("/"),
                d.token.as_deref(),
                self.opts.list_page,
            ))
            .map_err(|e| errno(&e))?;
        for p in page.prefixes {
            let name = p[prefix.len()..].trim_end_matches('/');
            if !name.is_empty() {
                d.entries.push((name.to_owned(), Kind::Dir));
            }
        }
        for o in page.objects {
            let name = &o.key[prefix.len()..];
            // The directory's own marker is not an entry.
            if !name.is_empty() {
                d.entries.push((name.to_owned(), Kind::File));
            }
        }
        d.done = !page.truncated;
        d.token = page.next_token;
        Ok(())
    }

    /// A handle that has `path` open for writing.
    fn writer_handle(&self, path: &str) -> Option<Open> {
        lock(&self.files)
            .values()
            .find(|h| h.writes && h.path == path)
            .map(|h| Arc::clone(&h.file))
    }

    /// The attributes of `path` held by a handle open for writing.
    fn writer_attrs(&self, path: &str) -> Option<Attrs> {
        self.writer_handle(path).map(|h| lock(&h).attrs.clone())
    }

    fn handle(&self, fh: u64) -> Result<Open, Errno> {
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
    fn charge(&self, f: &mut OpenFile, size: u64) -> Result<(), Errno> {
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

    fn new_handle(&self, f: OpenFile) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let h = Handle {
            path: f.path.clone(),
            writes: f.writer.is_some(),
            file: Arc::new(Mutex::new(f)),
        };
        lock(&self.files).insert(fh, h);
        fh
    }

    /// Uploads a handle's write-back file if it changed.
    fn upload(&self, f: &mut OpenFile) -> Result<(), Errno> {
        let Some(w) = f.writer.as_mut().filter(|w| w.dirty) else {
            return Ok(());
        };
        let key = self.key(&f.path);
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

    /// For a change to an existing entry: the mount is writable, and
    /// `name` in `parent` exists; its path and attributes.
    fn existing_child(&self, parent: INodeNo, name: &OsStr) -> Result<(String, Attrs), Errno> {
        self.writable()?;
        let path = self.parent_child(parent, name)?;
        let a = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        Ok((path, a))
    }

    /// A file rename: a server-side copy, then the delete of the source.
    fn rename_file(&self, from: &str, to: &str) -> Result<(), Errno> {
        if from == to {
            return Ok(());
        }
        if self.stat(to)?.is_some_and(|a| a.kind == Kind::Dir) {
            return Err(Errno::EISDIR);
        }
        let b = &self.opts.bucket;
        let (src, dst) = (self.key(from), self.key(to));
        self.rt
            .block_on(async {
                self.client.copy_object(b, &src, &dst, None).await?;
                self.client.delete_object(b, &src).await
            })
            .map_err(|e| errno(&e))
    }

    /// A directory rename: every key below it is copied to the new name,
    /// a page at a time, and the page's originals deleted after their
    /// copies. Not atomic: until it finishes, both names hold part of the
    /// tree, but every object is always under one of them.
    fn rename_dir(&self, from: &str, to: &str) -> Result<(), Errno> {
        if from == to {
            return Ok(());
        }
        if to.starts_with(&format!("{from}/")) {
            return Err(Errno::EINVAL);
        }
        match self.stat(to)? {
            Some(a) if a.kind != Kind::Dir => return Err(Errno::ENOTDIR),
            Some(_) if !self.dir_is_empty(to)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let b = &self.opts.bucket;
        let (src, dst) = (self.dir_prefix(from), self.dir_prefix(to));
        self.rt
            .block_on(async {
                let mut token: Option<String> = None;
                loop {
                    let page = self.client.list(b, &src, None, token.as_deref(), 1000).await?;
                    for o in &page.objects {
                        let target = format!("{dst}{}", &o.key[src.len()..]);
                        self.client.copy_object(b, &o.key, &target, None).await?;
                    }
                    for o in &page.objects {
                        self.client.delete_object(b, &o.key).await?;
                    }
                    if !page.truncated {
                        return Ok(());
                    }
                    token = page.next_token;
                }
            })
            .map_err(|e| errno(&e))
    }

    fn writable(&self) -> Result<(), Errno> {
        if self.opts.read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    fn parent_child(&self, parent: INodeNo, name: &OsStr) -> Result<String, Errno> {
        let parent_path = self.inodes.path(parent.0).ok_or(Errno::ENOENT)?;
        let name = name.to_str().ok_or(Errno::EINVAL)?;
        Ok(child(&parent_path, name))
    }

    /// Whether a directory holds anything but its own marker.
    fn dir_is_empty(&self, path: &str) -> Result<bool, Errno> {
        let prefix = self.dir_prefix(path);
        let page = self
            .rt
            .block_on(self.client.list(&self.opts.bucket, &prefix, Some("/"), None, 2))
            .map_err(|e| errno(&e))?;
        Ok(page.prefixes.is_empty() && page.objects.iter().all(|o| o.key == prefix))
    }
}

/// The attributes of an entry the caller of `req` creates now.
fn new_entry(kind: Kind, size: u64, mode: u16, req: &Request) -> Attrs {
    Attrs {
        kind,
        size,
        mtime: SystemTime::now(),
        mode,
        uid: req.uid(),
        gid: req.gid(),
        etag: None,
    }
}

/// POSIX attributes as the user metadata s3fs uses.
fn posix_meta(a: &Attrs) -> Vec<(String, String)> {
    let kind = match a.kind {
        Kind::File => libc::S_IFREG,
        Kind::Dir => libc::S_IFDIR,
        Kind::Symlink => libc::S_IFLNK,
    };
    let mtime = a
        .mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    vec![
        ("mode".into(), (kind | u32::from(a.mode)).to_string()),
        ("uid".into(), a.uid.to_string()),
        ("gid".into(), a.gid.to_string()),
        ("mtime".into(), mtime.to_string()),
    ]
}

impl Filesystem for StrataFs {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let Some(parent_path) = self.inodes.path(parent.0) else {
            return reply.error(Errno::ENOENT);
        };
        let Some(name) = name.to_str() else {
            return reply.error(Errno::ENOENT);
        };
        let path = child(&parent_path, name);
        match self.stat(&path) {
            Ok(Some(a)) => {
                let ino = self.inodes.looked_up(&path, a.clone());
                reply.entry(&self.opts.attr_ttl, &self.file_attr(ino, &a), Generation(0));
            }
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.inodes.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attrs(ino.0) {
            Ok(a) => reply.attr(&self.opts.attr_ttl, &self.file_attr(ino.0, &a)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        let write = flags.0 & libc::O_ACCMODE != libc::O_RDONLY;
        if write && let Err(e) = self.writable() {
            return reply.error(e);
        }
        let Some(path) = self.inodes.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        // Close-to-open: what the file is now, not what was cached.
        let a = match self.stat(&path) {
            Ok(Some(a)) if a.kind != Kind::Dir => a,
            Ok(Some(_)) => return reply.error(Errno::EISDIR),
            Ok(None) => return reply.error(Errno::ENOENT),
            Err(e) => return reply.error(e),
        };
        self.inodes.remember(&path, a.clone());
        if let Err(e) = self.reserve_open() {
            return reply.error(e);
        }
        let mut f = OpenFile {
            path: path.clone(),
            size: a.size,
            reader: Reader::default(),
            writer: None,
            attrs: a.clone(),
            charged: 0,
        };
        let truncating = flags.0 & libc::O_TRUNC != 0;
        if write && let Err(e) = self.charge(&mut f, if truncating { 0 } else { a.size }) {
            self.release_budget(&mut f);
            return reply.error(e);
        }
        let writer = if !write {
            None
        } else if truncating {
            match WriteBack::empty(&self.opts.cache_dir) {
                Ok(w) => Some(w),
                Err(_) => {
                    self.release_budget(&mut f);
                    return reply.error(Errno::EIO);
                }
            }
        } else {
            let key = self.key(&path);
            let load = WriteBack::load(
                &self.opts.cache_dir,
                &self.client,
                &self.opts.bucket,
                &key,
                a.size,
            );
            match self.rt.block_on(load) {
                Ok(w) => Some(w),
                Err(_) => {
                    self.release_budget(&mut f);
                    return reply.error(Errno::EIO);
                }
            }
        };
        f.writer = writer;
        // Pages the kernel cached at an earlier opening stay valid while
        // the object is the same version (close-to-open: the HEAD above
        // tells); a writer changes it, so its pages go.
        let keep = if write {
            self.inodes.drop_page_cache(ino.0);
            false
        } else {
            self.inodes.reuse_page_cache(ino.0, a.etag.as_deref())
        };
        let fh = self.new_handle(f);
        let flags = if keep {
            FopenFlags::FOPEN_KEEP_CACHE
        } else {
            FopenFlags::empty()
        };
        reply.opened(FileHandle(fh), flags);
    }

    fn read(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: ReplyData,
    ) {
        let open = match self.handle(fh.0) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let mut f = lock(&open);
        if let Some(w) = &f.writer {
            return match w.read(offset, size as usize) {
                Ok(data) => reply.data(&data),
                Err(_) => reply.error(Errno::EIO),
            };
        }
        let (file_size, key) = (f.size, self.key(&f.path));
        let (client, bucket) = (&self.client, &self.opts.bucket);
        // The handle stays locked while it fetches: reads of one handle
        // take turns, so two of them never fetch the same window.
        let got = f.reader.read(
            &self.rt,
            offset,
            size,
            file_size,
            self.opts.read_ahead,
            |start, end| {
                let (client, bucket, key) = (client.clone(), bucket.clone(), key.clone());
                async move { client.get_range(&bucket, &key, start, end).await }
            },
        );
        drop(f);
        match got {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        let Some(open) = lock(&self.files).get(&fh.0).map(|h| Arc::clone(&h.file)) else {
            return reply.ok();
        };
        // Upload before the handle leaves the table, so that a lookup in
        // between still sees the file.
        let result = {
            let mut f = lock(&open);
            let r = self.upload(&mut f);
            self.release_budget(&mut f);
            r
        };
        lock(&self.files).remove(&fh.0);
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn write(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: fuser::WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<fuser::LockOwner>,
        reply: fuser::ReplyWrite,
    ) {
        let open = match self.handle(fh.0) {
            Ok(o) => o,
            Err(e) => return reply.error(e),
        };
        let mut f = lock(&open);
        let Some(w) = f.writer.as_mut() else {
            return reply.error(Errno::EBADF);
        };
        let end = offset + data.len() as u64;
        let need = w.held_after(end);
        if let Err(e) = self.charge(&mut f, need) {
            // Out of write-back space: a file written in order drops the
            // parts it has sent, and goes on.
            let Some(w) = f.writer.as_mut() else {
                return reply.error(e);
            };
            if !matches!(self.rt.block_on(w.release_sent()), Ok(true)) {
                return reply.error(e);
            }
            let need = w.held_after(end);
            if let Err(e) = self.charge(&mut f, need) {
                return reply.error(e);
            }
        }
        let Some(w) = f.writer.as_mut() else {
            return reply.error(Errno::EBADF);
        };
        let now = match w.write(offset, data) {
            Ok(now) => now,
            Err(e) => {
                tracing::warn!(error = %e, path = %f.path, "write failed");
                return reply.error(Errno::EIO);
            }
        };
        f.attrs.size = w.size();
        f.attrs.mtime = now;
        self.inodes.remember(&f.path, f.attrs.clone());
        // A file written in order sends its full parts as it goes.
        let (key, meta) = (self.key(&f.path), posix_meta(&f.attrs));
        if let Some(w) = f.writer.as_mut() {
            self.rt.block_on(w.stream_parts(&self.uploader, &key, &meta));
        }
        reply.written(data.len() as u32);
    }

    fn flush(&self, _req: &Request, _ino: INodeNo, fh: FileHandle, _lo: fuser::LockOwner, reply: ReplyEmpty) {
        match self.handle(fh.0).and_then(|o| self.upload(&mut lock(&o))) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn fsync(&self, req: &Request, ino: INodeNo, fh: FileHandle, _datasync: bool, reply: ReplyEmpty) {
        // objd acknowledges an upload only once it is durable, so the
        // upload a flush does is what fsync promises.
        self.flush(req, ino, fh, fuser::LockOwner(0), reply);
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let Some(path) = self.inodes.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.dirs).insert(
            fh,
            DirHandle {
                path,
                base: 0,
                entries: Vec::new(),
                token: None,
                done: false,
            },
        );
        reply.opened(FileHandle(fh), FopenFlags::empty());
    }

    fn readdir(&self, _req: &Request, ino: INodeNo, fh: FileHandle, offset: u64, mut reply: ReplyDirectory) {
        // Offsets 0 and 1 are "." and ".."; entry i of the listing is i + 2.
        let mut off = offset;
        if off == 0 {
            if reply.add(ino, 1, FileType::Directory, ".") {
                return reply.ok();
            }
            off = 1;
        }
        if off == 1 {
            if reply.add(INodeNo(ROOT), 2, FileType::Directory, "..") {
                return reply.ok();
            }
            off = 2;
        }
        let mut dirs = lock(&self.dirs);
        let Some(d) = dirs.get_mut(&fh.0) else {
            return reply.error(Errno::EBADF);
        };
        let mut index = off - 2;
        if index < d.base {
            // Read again from the start (rewinddir).
            d.base = 0;
            d.entries.clear();
            d.token = None;
            d.done = false;
        }
        loop {
            while index >= d.base + d.entries.len() as u64 {
                if d.done {
                    return reply.ok();
                }
                if let Err(e) = self.fill(d, index) {
                    return reply.error(e);
                }
            }
            let (name, kind) = &d.entries[(index - d.base) as usize];
            let ino = self.inodes.listed(&child(&d.path, name));
            let ft = if *kind == Kind::Dir {
                FileType::Directory
            } else {
                FileType::RegularFile
            };
            if reply.add(INodeNo(ino), index + 3, ft, name) {
                return reply.ok();
            }
            index += 1;
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.dirs).remove(&fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        // objd tells a bucket's usage and quota: the quota is the size,
        // what is left of it the free space. Without a quota, or from a
        // server that does not tell, the free space is large, so tools do
        // not refuse to copy.
        const BLOCK: u64 = 4096;
        const UNBOUNDED: u64 = 1 << 52;
        let usage = self.rt.block_on(self.client.bucket_usage(&self.opts.bucket)).ok();
        let (size, free, files) = match usage {
            Some(u) => match u.quota {
                Some(q) => (q, q.saturating_sub(u.bytes), u.versions),
                None => (u.bytes + UNBOUNDED, UNBOUNDED, u.versions),
            },
            None => (UNBOUNDED, UNBOUNDED, 0),
        };
        let free_files = 1u64 << 32;
        reply.statfs(
            size.div_ceil(BLOCK),
            free / BLOCK,
            free / BLOCK,
            files + free_files,
            free_files,
            BLOCK as u32,
            1024,
            BLOCK as u32,
        );
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        _flags: i32,
        reply: fuser::ReplyCreate,
    ) {
        if let Err(e) = self.writable() {
            return reply.error(e);
        }
        let path = match self.parent_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        if let Err(e) = self.reserve_open() {
            return reply.error(e);
        }
        let writer = match WriteBack::empty(&self.opts.cache_dir) {
            Ok(w) => w,
            Err(_) => {
                self.open_files.fetch_sub(1, Ordering::Relaxed);
                return reply.error(Errno::EIO);
            }
        };
        let attrs = new_entry(Kind::File, 0, (mode & !umask & 0o7777) as u16, req);
        let ino = self.inodes.looked_up(&path, attrs.clone());
        let attr = self.file_attr(ino, &attrs);
        let fh = self.new_handle(OpenFile {
            path,
            size: 0,
            reader: Reader::default(),
            writer: Some(writer),
            attrs,
            charged: 0,
        });
        reply.created(
            &self.opts.attr_ttl,
            &attr,
            Generation(0),
            FileHandle(fh),
            FopenFlags::empty(),
        );
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        _atime: Option<fuser::TimeOrNow>,
        mtime: Option<fuser::TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        if let Err(e) = self.writable() {
            return reply.error(e);
        }
        let Some(path) = self.inodes.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        // fchmod, fchown and futimens arrive without the file handle.
        let open = fh
            .and_then(|h| self.handle(h.0).ok())
            .or_else(|| self.writer_handle(&path));
        let mut a = match (self.stat(&path), &open) {
            // An open writer knows best (it may not be uploaded yet).
            (_, Some(o)) if lock(o).writer.is_some() => lock(o).attrs.clone(),
            (Ok(Some(a)), _) => a,
            (Ok(None), _) => return reply.error(Errno::ENOENT),
            (Err(e), _) => return reply.error(e),
        };
        if let Some(m) = mode {
            a.mode = (m & 0o7777) as u16;
        }
        a.uid = uid.unwrap_or(a.uid);
        a.gid = gid.unwrap_or(a.gid);
        match mtime {
            Some(fuser::TimeOrNow::SpecificTime(t)) => a.mtime = t,
            Some(fuser::TimeOrNow::Now) => a.mtime = SystemTime::now(),
            None => {}
        }
        let result = match (&open, size) {
            // An open writer takes everything; it uploads on close.
            (Some(o), _) if lock(o).writer.is_some() => {
                let mut f = lock(o);
                if let Some(n) = size
                    && let Err(e) = self.charge(&mut f, n)
                {
                    return reply.error(e);
                }
                if let Some(w) = f.writer.as_mut() {
                    if let Some(n) = size
                        && w.truncate(n).is_err()
                    {
                        return reply.error(Errno::EIO);
                    }
                    w.dirty = true;
                    a.size = w.size();
                }
                f.attrs = a.clone();
                Ok(())
            }
            // Truncating a closed file: rewrite it.
            (_, Some(n)) if a.kind == Kind::File => {
                let key = self.key(&path);
                let b = &self.opts.bucket;
                let meta = posix_meta(&a);
                let r = self.rt.block_on(async {
                    let mut w =
                        WriteBack::load(&self.opts.cache_dir, &self.client, b, &key, a.size.min(n)).await?;
                    w.truncate(n)?;
                    w.upload(&self.uploader, &key, &meta, false).await
                });
                a.size = n;
                r.map_err(|e| upload_errno(&e))
            }
            // Attributes only: rewrite the metadata in place (a symlink's
            // too: it is an object like a file).
            _ if a.kind != Kind::Dir => {
                let key = self.key(&path);
                self.rt
                    .block_on(
                        self.client
                            .copy_object(&self.opts.bucket, &key, &key, Some(&posix_meta(&a))),
                    )
                    .map_err(|e| errno(&e))
            }
            // A directory keeps its attributes on its marker.
            _ => {
                let key = self.dir_prefix(&path);
                self.rt
                    .block_on(
                        self.client
                            .put_object(&self.opts.bucket, &key, Bytes::new(), &posix_meta(&a)),
                    )
                    .map(|_| ())
                    .map_err(|e| errno(&e))
            }
        };
        match result {
            Ok(()) => {
                self.inodes.remember(&path, a.clone());
                reply.attr(&self.opts.attr_ttl, &self.file_attr(ino.0, &a));
            }
            Err(e) => reply.error(e),
        }
    }

    fn mkdir(&self, req: &Request, parent: INodeNo, name: &OsStr, mode: u32, umask: u32, reply: ReplyEntry) {
        if let Err(e) = self.writable() {
            return reply.error(e);
        }
        let path = match self.parent_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        match self.stat(&path) {
            Ok(Some(_)) => return reply.error(Errno::EEXIST),
            Ok(None) => {}
            Err(e) => return reply.error(e),
        }
        let a = new_entry(Kind::Dir, 0, (mode & !umask & 0o7777) as u16, req);
        let marker = self.dir_prefix(&path);
        match self.rt.block_on(self.client.put_object(
            &self.opts.bucket,
            &marker,
            Bytes::new(),
            &posix_meta(&a),
        )) {
            Ok(_) => {
                let ino = self.inodes.looked_up(&path, a.clone());
                reply.entry(&self.opts.attr_ttl, &self.file_attr(ino, &a), Generation(0));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let path = match self.existing_child(parent, name) {
            Ok((_, a)) if a.kind == Kind::Dir => return reply.error(Errno::EISDIR),
            Ok((p, _)) => p,
            Err(e) => return reply.error(e),
        };
        match self
            .rt
            .block_on(self.client.delete_object(&self.opts.bucket, &self.key(&path)))
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        let path = match self.existing_child(parent, name) {
            Ok((p, a)) if a.kind == Kind::Dir => p,
            Ok(_) => return reply.error(Errno::ENOTDIR),
            Err(e) => return reply.error(e),
        };
        match self.dir_is_empty(&path) {
            Ok(true) => {}
            Ok(false) => return reply.error(Errno::ENOTEMPTY),
            Err(e) => return reply.error(e),
        }
        match self.rt.block_on(
            self.client
                .delete_object(&self.opts.bucket, &self.dir_prefix(&path)),
        ) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        _flags: fuser::RenameFlags,
        reply: ReplyEmpty,
    ) {
        let (from, kind) = match self.existing_child(parent, name) {
            Ok((p, a)) => (p, a.kind),
            Err(e) => return reply.error(e),
        };
        let to = match self.parent_child(newparent, newname) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let r = if kind == Kind::Dir {
            self.rename_dir(&from, &to)
        } else {
            self.rename_file(&from, &to)
        };
        match r {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        target: &std::path::Path,
        reply: ReplyEntry,
    ) {
        if let Err(e) = self.writable() {
            return reply.error(e);
        }
        let path = match self.parent_child(parent, name) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let Some(target) = target.to_str() else {
            return reply.error(Errno::EINVAL);
        };
        // As s3fs stores them: the object's body is the target.
        let a = new_entry(Kind::Symlink, target.len() as u64, 0o777, req);
        let body = Bytes::copy_from_slice(target.as_bytes());
        match self.rt.block_on(self.client.put_object(
            &self.opts.bucket,
            &self.key(&path),
            body,
            &posix_meta(&a),
        )) {
            Ok(_) => {
                let ino = self.inodes.looked_up(&path, a.clone());
                reply.entry(&self.opts.attr_ttl, &self.file_attr(ino, &a), Generation(0));
            }
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        let Some(path) = self.inodes.path(ino.0) else {
            return reply.error(Errno::ENOENT);
        };
        let a = match self.attrs(ino.0) {
            Ok(a) if a.kind == Kind::Symlink => a,
            Ok(_) => return reply.error(Errno::EINVAL),
            Err(e) => return reply.error(e),
        };
        match self.rt.block_on(
            self.client
                .get_range(&self.opts.bucket, &self.key(&path), 0, a.size.max(1)),
        ) {
            Ok(target) => reply.data(&target),
            Err(e) => reply.error(errno(&e)),
        }
    }

    fn link(&self, _req: &Request, _i: INodeNo, _p: INodeNo, _n: &OsStr, reply: ReplyEntry) {
        // Hard links have no S3 equivalent, whatever the mode.
        reply.error(Errno::EPERM);
    }
}
