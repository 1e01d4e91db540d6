//! Directory reads: a directory handle holds a window of its entries,
//! fetched a listing page at a time, so a directory's entries are never
//! all held at once. From a server that lists metadata (objd), each file
//! comes with its attributes, so readdirplus gives the kernel every
//! entry's attributes and `ls -l` costs one listing per page, not a
//! lookup per entry. And statfs, from the bucket's usage and quota.

use super::{Fs, NAME_MAX, errno, lock};
use crate::inodes::{Attrs, Kind, ROOT, child};
use crate::store::Store;
use fuser::Errno;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::time::Duration;
use strata_s3client::{DetailedPage, ListFrom};

/// One entry of a directory window: its name, its kind and, from a
/// listing with metadata, its attributes (`None` for a directory, whose
/// marker the listing folds away, or a file whose metadata the server
/// left out).
struct Entry {
    name: String,
    kind: Kind,
    attrs: Option<Attrs>,
}

/// A directory being read: a window of its entries, fetched page by page.
pub(super) struct DirHandle {
    path: String,
    /// Index (readdir offset) of `entries[0]`.
    base: u64,
    entries: Vec<Entry>,
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

/// An entry readdirplus hands the kernel: attributes and how long they
/// hold (zero: the kernel asks for them afresh before it uses them).
pub struct PlusEntry<'a> {
    pub ino: u64,
    pub next: u64,
    pub name: &'a str,
    pub attrs: Attrs,
    pub ttl: Duration,
}

/// The names in directory `prefix` of listed keys or common prefixes,
/// without the directory's own marker.
pub(super) fn names<'a, K: AsRef<str> + 'a>(
    prefix: &'a str,
    keys: impl IntoIterator<Item = K> + 'a,
) -> impl Iterator<Item = String> + 'a {
    keys.into_iter().filter_map(move |k| {
        let name = k.as_ref().get(prefix.len()..)?.trim_end_matches('/');
        (!name.is_empty()).then(|| name.to_owned())
    })
}

impl<S: Store> Fs<S> {
    /// A page of a listing with metadata of directory `prefix` as its
    /// entries: the subdirectories' names, and the files' with their
    /// attributes (`None` where the server left the metadata out).
    pub(super) fn page_entries(
        &self,
        prefix: &str,
        page: &DetailedPage,
    ) -> (Vec<String>, Vec<(String, Option<Attrs>)>) {
        let dirs = names(prefix, &page.prefixes).collect();
        let files = page
            .objects
            .iter()
            .filter_map(|o| {
                let name = names(prefix, [&o.key]).next()?;
                Some((name, o.has_metadata.then(|| self.attrs_of(&o.info, Kind::File))))
            })
            .collect();
        (dirs, files)
    }

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

    /// Whether the server lists keys with their metadata, so that
    /// [`Fs::readdirplus`] tells the kernel every entry's attributes
    /// without a request per entry (asked once, when the mount starts).
    pub fn lists_attributes(&self) -> bool {
        let prefix = self.opts.prefix.clone();
        let r = self.rt.block_on(
            self.store
                .list_detailed(&prefix, Some("/"), ListFrom::default(), 1),
        );
        if let Err(e) = &r {
            tracing::info!(error = %e, "the server lists no metadata: directory entries are looked up one by one");
        }
        self.detailed.store(r.is_ok(), Ordering::Relaxed);
        r.is_ok()
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
        let dots = [(ino, "."), (ROOT, "..")];
        for (i, (dot, name)) in dots.into_iter().enumerate().skip(offset as usize) {
            if add(dot, i as u64 + 1, Kind::Dir, name) {
                return Ok(());
            }
        }
        self.entries_from(fh, offset.max(2), |next, path, e| {
            // A plain listing tells files from directories only; a symlink
            // or special file the mount has seen gets its own type.
            let kind = match (&e.attrs, e.kind) {
                (Some(a), _) => a.kind,
                (None, Kind::File) => self
                    .inodes
                    .known_kind(path)
                    .filter(|k| *k != Kind::Dir)
                    .unwrap_or(Kind::File),
                (None, k) => k,
            };
            add(self.inodes.listed(path), next, kind, &e.name)
        })
    }

    /// Like [`Fs::readdir`], each entry with its attributes, which the
    /// kernel keeps as if it had looked the entry up (each entry passed
    /// counts as a lookup; `add` says whether the reply was full, and
    /// then the entry was not taken).
    pub fn readdirplus(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        mut add: impl FnMut(PlusEntry) -> bool,
    ) -> Result<(), Errno> {
        for (i, name) in [".", ".."].into_iter().enumerate().skip(offset as usize) {
            // The kernel takes no lookup of these.
            let attrs = self.dir_attrs();
            let dot = if i == 0 { ino } else { ROOT };
            let next = i as u64 + 1;
            if add(PlusEntry {
                ino: dot,
                next,
                name,
                attrs,
                ttl: Duration::ZERO,
            }) {
                return Ok(());
            }
        }
        let writing = self.writing_paths();
        self.entries_from(fh, offset.max(2), |next, path, e| {
            let Some((attrs, ttl)) = self.entry_attrs(path, e, &writing) else {
                // Gone since it was listed: left out.
                return false;
            };
            let ino = if ttl.is_zero() {
                self.inodes.entered(path)
            } else {
                self.inodes.looked_up(path, attrs.clone())
            };
            let name = &e.name;
            let full = add(PlusEntry {
                ino,
                next,
                name,
                attrs,
                ttl,
            });
            if full {
                self.inodes.not_taken(ino);
            }
            full
        })
    }

    /// The attributes readdirplus gives for entry `e` at `path`, and how
    /// long they hold: an open writer's (`writing` names the paths open
    /// for writing), the listing's, the mount's for a directory (asked
    /// afresh before use), else what a lookup finds now (`None`: nothing
    /// is there any more).
    fn entry_attrs(&self, path: &str, e: &Entry, writing: &HashSet<String>) -> Option<(Attrs, Duration)> {
        let ttl = self.opts.attr_ttl;
        if writing.contains(path)
            && let Some(a) = self.writer_attrs(path)
        {
            return Some((a, ttl));
        }
        match (&e.attrs, e.kind) {
            (Some(a), _) => Some((a.clone(), ttl)),
            (None, Kind::Dir) => {
                let ino = self.inodes.listed(path);
                match self.inodes.cached(ino, ttl) {
                    Some(a) if a.kind == Kind::Dir => Some((a, ttl)),
                    _ => Some((self.dir_attrs(), Duration::ZERO)),
                }
            }
            (None, _) => self.stat(path).ok().flatten().map(|a| (a, ttl)),
        }
    }

    /// Passes the listing's entries of handle `fh` from readdir offset
    /// `offset` (at least 2) on to `each(next offset, path, entry)` until
    /// it says it is full.
    fn entries_from(
        &self,
        fh: u64,
        offset: u64,
        mut each: impl FnMut(u64, &str, &Entry) -> bool,
    ) -> Result<(), Errno> {
        let mut dirs = lock(&self.dirs);
        let d = dirs.get_mut(&fh).ok_or(Errno::EBADF)?;
        let mut index = offset - 2;
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
            let e = &d.entries[(index - d.base) as usize];
            let path = child(&d.path, &e.name);
            if each(index + 3, &path, e) {
                return Ok(());
            }
            index += 1;
        }
    }

    pub fn releasedir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }

    /// Fetches the next page of a directory into its window, dropping what
    /// was before `keep_from`: with each file's attributes when the server
    /// lists metadata.
    fn fill(&self, d: &mut DirHandle, keep_from: u64) -> Result<(), Errno> {
        let drop = (keep_from.saturating_sub(d.base) as usize).min(d.entries.len());
        d.entries.drain(..drop);
        d.base += drop as u64;
        let prefix = self.dir_prefix(&d.path);
        let (token, max) = (d.token.as_deref(), self.opts.list_page);
        let (dirs, files, truncated, next) = if self.detailed.load(Ordering::Relaxed) {
            let page = self
                .rt
                .block_on(
                    self.store
                        .list_detailed(&prefix, Some("/"), ListFrom::token(token), max),
                )
                .map_err(|e| errno(&e))?;
            let (dirs, files) = self.page_entries(&prefix, &page);
            (dirs, files, page.truncated, page.next_token)
        } else {
            let page = self
                .rt
                .block_on(self.store.list(&prefix, Some("/"), token, max))
                .map_err(|e| errno(&e))?;
            let dirs = names(&prefix, &page.prefixes).collect();
            let keys = page.objects.iter().map(|o| &o.key);
            let files = names(&prefix, keys).map(|n| (n, None)).collect();
            (dirs, files, page.truncated, page.next_token)
        };
        for name in dirs {
            let (kind, attrs) = (Kind::Dir, None);
            d.entries.push(Entry { name, kind, attrs });
        }
        for (name, attrs) in files {
            let kind = attrs.as_ref().map_or(Kind::File, |a| a.kind);
            d.entries.push(Entry { name, kind, attrs });
        }
        d.done = !truncated;
        d.token = next;
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
