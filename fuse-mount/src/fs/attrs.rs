//! Attributes and lookups: what a path is (an object, a prefix, an open
//! writer's file, or nothing), POSIX attributes read from and written to
//! s3fs-style object metadata, the attribute cache, and setattr.

use super::file::Open;
use super::lookahead::Known;
use super::meta::{kind_of, parse_time, posix_meta, with_posix};
use super::{Fs, NewName, errno, lock, upload_errno};
use crate::inodes::{Attrs, Kind};
use crate::store::Store;
use crate::writeback::WriteBack;
use bytes::Bytes;
use fuser::Errno;
use std::ffi::OsStr;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use strata_s3client::ObjectInfo;

/// Lookups in a row that found nothing after which a lookup asks for the
/// object and the directory below its name at once.
const EAGER_AFTER: u64 = 2;

/// A time setattr sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    Now,
    At(SystemTime),
}

/// What a setattr changes; `None` leaves it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<SetTime>,
    pub mtime: Option<SetTime>,
}

/// The attributes of an entry made now as `n` asks.
pub(super) fn new_entry(kind: Kind, size: u64, n: &NewName) -> Attrs {
    let now = SystemTime::now();
    Attrs {
        kind,
        size,
        mtime: now,
        atime: now,
        ctime: now,
        mode: n.perm(),
        uid: n.caller.uid,
        gid: n.caller.gid,
        rdev: 0,
        etag: None,
    }
}

impl<S: Store> Fs<S> {
    /// `name` in directory `parent`: its inode (counted as looked up) and
    /// attributes.
    pub fn lookup(&self, parent: u64, name: &OsStr) -> Result<(u64, Attrs), Errno> {
        let path = self.child_path(parent, name, Errno::ENOENT)?;
        let a = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        Ok((self.inodes.looked_up(&path, a.clone()), a))
    }

    /// The kernel dropped `n` lookups of `ino`.
    pub fn forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    /// Attributes of an inode, from the cache or afresh; of an unlinked
    /// file still open, what its handle holds (which outlives the name).
    pub fn getattr(&self, ino: u64) -> Result<Attrs, Errno> {
        if self.inodes.is_unlinked(ino) {
            let open = self.unlinked_handle(ino).ok_or(Errno::ENOENT)?;
            return Ok(lock(&open).attrs.clone());
        }
        if let Some(a) = self.inodes.cached(ino, self.opts.attr_ttl) {
            return Ok(a);
        }
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        let a = self.stat(&path)?.ok_or(Errno::ENOENT)?;
        self.inodes.remember(&path, a.clone());
        Ok(a)
    }

    /// The attributes of a file without POSIX metadata: the mount's file
    /// mode and owner (also sent with negative lookup entries, whose
    /// attributes the kernel does not read).
    pub fn file_defaults(&self) -> Attrs {
        Attrs {
            kind: Kind::File,
            mode: self.opts.file_mode,
            ..self.dir_attrs()
        }
    }

    pub(super) fn dir_attrs(&self) -> Attrs {
        Attrs {
            kind: Kind::Dir,
            size: 0,
            mtime: SystemTime::UNIX_EPOCH,
            atime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            mode: self.opts.dir_mode,
            uid: self.opts.uid,
            gid: self.opts.gid,
            rdev: 0,
            etag: None,
        }
    }

    /// What `path` is now: an object (file), a prefix (directory), or
    /// nothing.
    pub(super) fn stat(&self, path: &str) -> Result<Option<Attrs>, Errno> {
        Ok(self.stat_object(path)?.map(|(a, _)| a))
    }

    /// [`Fs::stat`] as the server says it now, never from a listing page
    /// fetched before (an open: close-to-open consistency).
    pub(super) fn stat_fresh(&self, path: &str) -> Result<Option<Attrs>, Errno> {
        let mut found = self.stat_server(path, false)?.map(|(a, _)| a);
        if let Some(a) = &mut found {
            self.inodes.with_changes(path, a);
        }
        Ok(found)
    }

    /// [`Fs::stat`], with what the server said of the object when `path`
    /// is one (its metadata and content type, for calls that rewrite it).
    pub(super) fn stat_object(&self, path: &str) -> Result<Option<(Attrs, Option<ObjectInfo>)>, Errno> {
        let mut found = self.stat_server(path, true)?;
        if let Some((a, _)) = &mut found {
            self.inodes.with_changes(path, a);
        }
        Ok(found)
    }

    /// [`Fs::stat_object`] as the server tells it (or, with `listed`, a
    /// listing page fetched within the TTL: [`super::lookahead`]).
    fn stat_server(&self, path: &str, listed: bool) -> Result<Option<(Attrs, Option<ObjectInfo>)>, Errno> {
        if path.is_empty() {
            return Ok(Some((self.dir_attrs(), None)));
        }
        // A file open for writing is what its writer says, uploaded or not.
        if let Some(a) = self.writer_attrs(path) {
            return Ok(Some((a, None)));
        }
        // Nothing is there in a directory the mount made, unless the mount
        // put it there (`tar x`, a build: names about to be created).
        if self.absent(path) {
            return Ok(None);
        }
        match self.looked_ahead(path) {
            Known::File(a) if listed => return Ok(Some((a, None))),
            Known::Absent if listed => return Ok(None),
            _ => {}
        }
        let found = self.stat_asking(path);
        self.asked_server(path);
        found
    }

    /// [`Fs::stat_server`], asking the server.
    fn stat_asking(&self, path: &str) -> Result<Option<(Attrs, Option<ObjectInfo>)>, Errno> {
        // A directory: any key below `path/`. One listing tells whether
        // there is one, and whether the first is the `path/` marker, which
        // keeps the directory's attributes. While lookups keep finding
        // nothing (names about to be created: `tar x`, a build), the
        // listing is asked beside the HEAD, so a miss costs one round
        // trip, not two.
        let (key, prefix) = (self.key(path), self.dir_prefix(path));
        let eager = self.misses.load(Ordering::Relaxed) >= EAGER_AFTER;
        let (head, listed) = if eager {
            let (h, l) = self.rt.block_on(async {
                tokio::join!(
                    self.store.head(&key),
                    self.store.list(&prefix, Some("/"), None, 1)
                )
            });
            (h, Some(l))
        } else {
            (self.rt.block_on(self.store.head(&key)), None)
        };
        match head {
            Ok(info) => {
                self.misses.store(0, Ordering::Relaxed);
                return Ok(Some((self.attrs_of(&info, Kind::File), Some(info))));
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(errno(&e)),
        }
        let page = match listed {
            Some(l) => l,
            None => self.rt.block_on(self.store.list(&prefix, Some("/"), None, 1)),
        }
        .map_err(|e| errno(&e))?;
        if page.objects.is_empty() && page.prefixes.is_empty() {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Ok(None);
        }
        self.misses.store(0, Ordering::Relaxed);
        if page.objects.first().is_some_and(|o| o.key == prefix) {
            match self.rt.block_on(self.store.head(&prefix)) {
                Ok(info) => return Ok(Some((self.attrs_of(&info, Kind::Dir), None))),
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(errno(&e)),
            }
        }
        Ok(Some((self.dir_attrs(), None)))
    }

    /// Whether nothing is at `path`, in a directory the mount made, by what
    /// the mount knows of it ([`Inodes::absent_since`]). When that
    /// knowledge has passed the TTL, one listing of the directory renews
    /// it if the directory holds only names the mount touched: a directory
    /// filled for longer than the TTL (`tar x`, a build) costs a listing
    /// per TTL, not a lookup per name.
    fn absent(&self, path: &str) -> bool {
        let ttl = self.opts.attr_ttl;
        if self.inodes.absent_since(path, ttl).is_some() {
            return true;
        }
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        if !self.inodes.made_stale(dir, name, ttl) {
            return false;
        }
        let since = std::time::Instant::now();
        let prefix = self.dir_prefix(dir);
        let (mut names, mut token) = (Vec::new(), None);
        loop {
            let page = match self
                .rt
                .block_on(self.store.list(&prefix, Some("/"), token.as_deref(), 1000))
            {
                Ok(p) => p,
                Err(_) => return false,
            };
            let keys = page.objects.iter().map(|o| &o.key).chain(&page.prefixes);
            names.extend(super::dir::names(&prefix, keys));
            if !page.truncated {
                break;
            }
            // More than the mount can have touched: not only its names.
            if names.len() > crate::inodes::MADE_NAMES {
                self.inodes.renew_made(dir, None, since);
                return false;
            }
            token = page.next_token;
        }
        self.inodes.renew_made(dir, Some(&names), since);
        self.inodes.absent_since(path, ttl).is_some()
    }

    /// Attributes from an object's s3fs-style metadata; `kind` is what the
    /// object is when its mode does not say (a file, or a dir marker).
    pub(super) fn attrs_of(&self, info: &ObjectInfo, kind: Kind) -> Attrs {
        let meta = |n: &str| info.meta(n).and_then(|v| v.parse::<u64>().ok());
        let time = |n: &str| info.meta(n).and_then(parse_time);
        let mtime = time("mtime").unwrap_or(info.last_modified);
        let mode = meta("mode").map(|m| m as u32);
        // A `dir/` marker is a directory whatever its mode says; an object
        // is what its mode says it is, a file when it says nothing.
        let kind = match mode.and_then(kind_of) {
            Some(k) if kind == Kind::File => k,
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
            mtime,
            atime: time("atime").unwrap_or(mtime),
            ctime: time("ctime").unwrap_or(mtime),
            mode: mode.map_or(default_mode, |m| (m & 0o7777) as u16),
            uid: meta("uid").map_or(self.opts.uid, |u| u as u32),
            gid: meta("gid").map_or(self.opts.gid, |g| g as u32),
            rdev: meta("rdev").map_or(0, |r| r as u32),
            etag: Some(info.etag.clone()),
        }
    }

    /// chmod, chown, utimens and truncate of `ino`, through the handle
    /// `fh` when there is one; the attributes after.
    pub fn setattr(&self, ino: u64, set: SetAttrs, fh: Option<u64>) -> Result<Attrs, Errno> {
        self.writable()?;
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        // fchmod, fchown and futimens arrive without the file handle.
        let writer = fh
            .and_then(|h| self.handle(h).ok())
            .or_else(|| self.writer_handle(&path))
            .filter(|o| lock(o).writer.is_some());
        // An open writer knows best (it may not be uploaded yet).
        let (mut a, info) = match &writer {
            Some(o) => (lock(o).attrs.clone(), None),
            None => self.stat_object(&path)?.ok_or(Errno::ENOENT)?,
        };
        if let Some(m) = set.mode {
            a.mode = (m & 0o7777) as u16;
        }
        a.uid = set.uid.unwrap_or(a.uid);
        a.gid = set.gid.unwrap_or(a.gid);
        // Every change of attributes is a change: ctime is now.
        let now = SystemTime::now();
        let time = |t| match t {
            SetTime::At(t) => t,
            SetTime::Now => now,
        };
        a.atime = set.atime.map_or(a.atime, time);
        a.mtime = set.mtime.map_or(a.mtime, time);
        a.ctime = now;
        self.changed();
        self.apply_attrs(&path, &mut a, set.size, writer.as_ref(), info)?;
        self.inodes.remember(&path, a.clone());
        Ok(a)
    }

    /// Stores the attributes `a` of `path` (and its new `size`, when
    /// truncated) where they live: the open `writer`, or the object
    /// (`info`: what the server said of it, when already asked).
    fn apply_attrs(
        &self,
        path: &str,
        a: &mut Attrs,
        size: Option<u64>,
        writer: Option<&Open>,
        info: Option<ObjectInfo>,
    ) -> Result<(), Errno> {
        match (writer, size) {
            // An open writer takes everything; it uploads on close.
            (Some(o), _) => {
                let mut f = lock(o);
                if let Some(n) = size {
                    self.charge(&mut f, n)?;
                }
                if let Some(w) = f.writer.as_mut() {
                    if let Some(n) = size
                        && w.truncate(n).is_err()
                    {
                        return Err(Errno::EIO);
                    }
                    w.dirty = true;
                    a.size = w.size();
                }
                f.attrs = a.clone();
                Ok(())
            }
            // Truncating a closed file: rewrite it.
            (_, Some(n)) if a.kind == Kind::File => {
                let key = self.key(path);
                let meta = posix_meta(a);
                let r = self.rt.block_on(async {
                    let mut w =
                        WriteBack::load(&self.opts.cache_dir, &self.store, &key, a.size.min(n)).await?;
                    w.truncate(n)?;
                    w.upload(&self.uploader, &key, &meta, false).await
                });
                a.size = n;
                r.map_err(|e| upload_errno(&e))
            }
            // Attributes only: rewrite the metadata in place (a symlink's
            // too: it is an object like a file), keeping what S3 clients
            // set beside the POSIX attributes: their metadata, the
            // content type.
            _ if a.kind != Kind::Dir => {
                let key = self.key(path);
                self.copy_with_attrs(&key, &key, a, info)
            }
            // A directory keeps its attributes on its marker, times
            // included: they replace the entry changes remembered so far.
            _ => {
                let key = self.dir_prefix(path);
                self.rt
                    .block_on(self.store.put(&key, Bytes::new(), &posix_meta(a)))
                    .map_err(|e| errno(&e))?;
                self.inodes.dir_times_stored(path);
                Ok(())
            }
        }
    }

    /// Copies object `src` to `dst` (onto itself: rewrites it) with the
    /// POSIX attributes `a`, keeping what S3 clients set beside them:
    /// their metadata, the content type (`info`: what the server said of
    /// `src`, when already asked).
    pub(super) fn copy_with_attrs(
        &self,
        src: &str,
        dst: &str,
        a: &Attrs,
        info: Option<ObjectInfo>,
    ) -> Result<(), Errno> {
        self.rt
            .block_on(async {
                let info = match info {
                    Some(info) => info,
                    None => self.store.head(src).await?,
                };
                let meta = with_posix(&info.metadata, a);
                let content_type = info.content_type.as_deref();
                self.store.copy_as(src, dst, &meta, content_type).await
            })
            .map_err(|e| errno(&e))
    }
}
