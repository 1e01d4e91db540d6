//! The FUSE filesystem over a bucket: files are objects, directories are
//! key prefixes (or `dir/` markers), POSIX attributes come from the
//! `x-amz-meta-{mode,uid,gid,mtime}` metadata s3fs uses, with the mount's
//! defaults for objects that have none.
//!
//! This version serves reads: lookups (HEAD, then a one-key listing for
//! directories), attributes cached for `attr_ttl`, directory listings in
//! pages (a directory's entries are never all held at once), and reads by
//! ranged GETs with a read-ahead window per open file. Every change is
//! refused with `EROFS`. Opening a file fetches its attributes afresh
//! (close-to-open consistency).

use crate::inodes::{Attrs, Inodes, Kind, ROOT, child};
use bytes::Bytes;
use fuser::{
    Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo, OpenFlags, ReplyAttr,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, Request,
};
use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
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

/// An open file: its size at open, and the last range fetched.
struct OpenFile {
    path: String,
    size: u64,
    window: Option<(u64, Bytes)>,
}

pub struct StrataFs {
    client: Client,
    rt: tokio::runtime::Runtime,
    opts: Options,
    inodes: Inodes,
    dirs: Mutex<HashMap<u64, DirHandle>>,
    files: Mutex<HashMap<u64, OpenFile>>,
    next_fh: AtomicU64,
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
            client,
            rt,
            opts,
            inodes: Inodes::new(),
            dirs: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
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
        }
    }

    /// What `path` is now: an object (file), a prefix (directory), or
    /// nothing.
    fn stat(&self, path: &str) -> Result<Option<Attrs>, Errno> {
        if path.is_empty() {
            return Ok(Some(self.dir_attrs()));
        }
        let b = &self.opts.bucket;
        match self.rt.block_on(self.client.head_object(b, &self.key(path))) {
            Ok(info) => {
                let meta = |n: &str| info.meta(n).and_then(|v| v.parse::<u64>().ok());
                let mode = meta("mode").map(|m| m as u32);
                let kind = match mode.map(|m| m & libc::S_IFMT) {
                    Some(libc::S_IFLNK) => Kind::Symlink,
                    Some(libc::S_IFDIR) => Kind::Dir,
                    _ => Kind::File,
                };
                let mtime = meta("mtime")
                    .map(|s| SystemTime::UNIX_EPOCH + Duration::from_secs(s))
                    .unwrap_or(info.last_modified);
                return Ok(Some(Attrs {
                    kind,
                    size: info.size,
                    mtime,
                    mode: mode.map_or(self.opts.file_mode, |m| (m & 0o7777) as u16),
                    uid: meta("uid").map_or(self.opts.uid, |u| u as u32),
                    gid: meta("gid").map_or(self.opts.gid, |g| g as u32),
                }));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(errno(&e)),
        }
        let page = self
            .rt
            .block_on(self.client.list(b, &self.dir_prefix(path), Some("/"), None, 1))
            .map_err(|e| errno(&e))?;
        if page.objects.is_empty() && page.prefixes.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.dir_attrs()))
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

    fn refuse_write(&self) -> Errno {
        Errno::EROFS
    }
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
                let ino = self.inodes.remember(&path, a.clone());
                reply.entry(&self.opts.attr_ttl, &self.file_attr(ino, &a), Generation(0));
            }
            Ok(None) => reply.error(Errno::ENOENT),
            Err(e) => reply.error(e),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.attrs(ino.0) {
            Ok(a) => reply.attr(&self.opts.attr_ttl, &self.file_attr(ino.0, &a)),
            Err(e) => reply.error(e),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        if flags.0 & libc::O_ACCMODE != libc::O_RDONLY {
            return reply.error(self.refuse_write());
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
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.files).insert(
            fh,
            OpenFile {
                path,
                size: a.size,
                window: None,
            },
        );
        reply.opened(FileHandle(fh), FopenFlags::empty());
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
        let (path, file_size, hit) = {
            let files = lock(&self.files);
            let Some(f) = files.get(&fh.0) else {
                return reply.error(Errno::EBADF);
            };
            let end = (offset + u64::from(size)).min(f.size);
            let hit = f.window.as_ref().and_then(|(start, data)| {
                (offset >= *start && end <= start + data.len() as u64)
                    .then(|| data.slice((offset - start) as usize..(end - start) as usize))
            });
            (f.path.clone(), f.size, hit)
        };
        if let Some(data) = hit {
            return reply.data(&data);
        }
        if offset >= file_size {
            return reply.data(&[]);
        }
        let want = u64::from(size).max(self.opts.read_ahead);
        let end = (offset + want).min(file_size);
        let key = self.key(&path);
        match self
            .rt
            .block_on(self.client.get_range(&self.opts.bucket, &key, offset, end))
        {
            Ok(data) => {
                let n = (size as usize).min(data.len());
                reply.data(&data[..n]);
                if let Some(f) = lock(&self.files).get_mut(&fh.0) {
                    f.window = Some((offset, data));
                }
            }
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
        lock(&self.files).remove(&fh.0);
        reply.ok();
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
            let ino = self.inodes.ino(&child(&d.path, name));
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
        // objd reports no capacity to clients yet: a large, honest-looking
        // free space, so tools do not refuse to copy.
        let blocks = 1u64 << 40;
        reply.statfs(blocks, blocks, blocks, 1 << 32, 1 << 32, 4096, 1024, 4096);
    }

    fn mkdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, _m: u32, _u: u32, reply: ReplyEntry) {
        reply.error(self.refuse_write());
    }

    fn unlink(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse_write());
    }

    fn rmdir(&self, _req: &Request, _p: INodeNo, _n: &OsStr, reply: ReplyEmpty) {
        reply.error(self.refuse_write());
    }

    fn create(
        &self,
        _req: &Request,
        _p: INodeNo,
        _n: &OsStr,
        _m: u32,
        _u: u32,
        _f: i32,
        reply: fuser::ReplyCreate,
    ) {
        reply.error(self.refuse_write());
    }

    fn link(&self, _req: &Request, _i: INodeNo, _p: INodeNo, _n: &OsStr, reply: ReplyEntry) {
        // Hard links have no S3 equivalent, whatever the mode.
        reply.error(Errno::EPERM);
    }
}
