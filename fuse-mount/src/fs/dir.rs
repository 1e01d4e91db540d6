//! Directory reads: a directory handle holds a window of its entries,
//! fetched a listing page at a time, so a directory's entries are never
//! all held at once; and statfs, from the bucket's usage and quota.

use super::{Fs, NAME_MAX, errno, lock};
use crate::inodes::{Kind, ROOT, child};
use crate::store::Store;
use fuser::Errno;
use std::sync::atomic::Ordering;

/// A directory being read: a window of its entries, fetched page by page.
pub(super) struct DirHandle {
    path: String,
    /// Index (readdir offset) of `entries[0]`.
    base: u64,
    entries: Vec<(String, Kind)>,
    token: Option<String>,
    done: bool,
}

/// What statfs answers, in the kernel's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Statfs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

impl<S: Store> Fs<S> {
    /// Opens directory `ino` for reading; the handle.
    pub fn opendir(&self, ino: u64) -> Result<u64, Errno> {
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let d = DirHandle {
            path,
            base: 0,
            entries: Vec::new(),
            token: None,
            done: false,
        };
        lock(&self.dirs).insert(fh, d);
        Ok(fh)
    }

    /// Passes the entries of directory `ino` from readdir offset `offset`
    /// on to `add(ino, next offset, kind, name)` until it says it is full.
    /// Offsets 0 and 1 are "." and ".."; entry i of the listing is i + 2.
    pub fn readdir(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(u64, u64, Kind, &str) -> bool,
    ) -> Result<(), Errno> {
        let mut off = offset;
        if off == 0 {
            if add(ino, 1, Kind::Dir, ".") {
                return Ok(());
            }
            off = 1;
        }
        if off == 1 {
            if add(ROOT, 2, Kind::Dir, "..") {
                return Ok(());
            }
            off = 2;
        }
        let mut dirs = lock(&self.dirs);
        let d = dirs.get_mut(&fh).ok_or(Errno::EBADF)?;
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
                    return Ok(());
                }
                self.fill(d, index)?;
            }
            let (name, listed) = &d.entries[(index - d.base) as usize];
            let path = child(&d.path, name);
            let ino = self.inodes.listed(&path);
            // A listing tells files from directories only; a symlink or
            // special file the mount has seen gets its own type.
            let kind = match listed {
                Kind::File => self
                    .inodes
                    .known_kind(&path)
                    .filter(|k| *k != Kind::Dir)
                    .unwrap_or(Kind::File),
                k => *k,
            };
            if add(ino, index + 3, kind, name) {
                return Ok(());
            }
            index += 1;
        }
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
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
            .block_on(
                self.store
                    .list(&prefix, Some("/"), d.token.as_deref(), self.opts.list_page),
            )
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

    /// The bucket's size and free space. objd tells a bucket's usage and
    /// quota: the quota is the size, what is left of it the free space.
    /// Without a quota, or from a server that does not tell, the free
    /// space is large, so tools do not refuse to copy.
    pub fn statfs(&self) -> Statfs {
        const BLOCK: u64 = 4096;
        const UNBOUNDED: u64 = 1 << 52;
        let usage = self.rt.block_on(self.store.usage()).ok();
        let (size, free, files) = match usage {
            Some(u) => match u.quota {
                Some(q) => (q, q.saturating_sub(u.bytes), u.versions),
                None => (u.bytes + UNBOUNDED, UNBOUNDED, u.versions),
            },
            None => (UNBOUNDED, UNBOUNDED, 0),
        };
        let free_files = 1u64 << 32;
        Statfs {
            blocks: size.div_ceil(BLOCK),
            bfree: free / BLOCK,
            bavail: free / BLOCK,
            files: files + free_files,
            ffree: free_files,
            bsize: BLOCK as u32,
            namelen: NAME_MAX as u32,
            frsize: BLOCK as u32,
        }
    }
}
