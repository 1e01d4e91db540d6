//! The inode table: a stable inode number per path below the mount's
//! prefix, with the attributes last seen for it and when. Paths are keys
//! relative to the prefix, without a trailing slash; the root is "".
//! Entries live while the kernel holds references to them (lookups not yet
//! forgotten), so walking a huge tree does not grow the table for good.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Instant, SystemTime};

pub const ROOT: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    /// Special files: empty objects whose mode metadata tells the type.
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

/// What the mount knows of one path.
#[derive(Debug, Clone)]
pub struct Attrs {
    pub kind: Kind,
    pub size: u64,
    pub mtime: SystemTime,
    /// Last access: set by utimens only (reads do not change it, as with
    /// the `noatime` mount option); the mtime when never set.
    pub atime: SystemTime,
    /// Last change of the contents or attributes.
    pub ctime: SystemTime,
    pub mode: u16,
    pub uid: u32,
    pub gid: u32,
    /// The device number of a device node, 0 otherwise.
    pub rdev: u32,
    /// The object's ETag when read from the server: which version of the
    /// contents these attributes describe.
    pub etag: Option<String>,
}

#[derive(Debug)]
struct Node {
    path: String,
    attrs: Option<(Attrs, Instant)>,
    /// Lookups the kernel has not forgotten yet.
    lookups: u64,
    /// The version (ETag) whose contents the kernel's page cache may hold
    /// for this inode: the one last opened for reading.
    page_cache: Option<String>,
    /// Its name was unlinked (it lives on while the kernel holds it).
    unlinked: bool,
    /// For a directory: when an entry in it was last made, removed or
    /// renamed through the mount. Its mtime and ctime are at least this,
    /// whatever its marker says, while the kernel holds it.
    changed: Option<SystemTime>,
    /// For a directory this mount made: what it knows of its entries.
    made: Option<Made>,
}

/// A directory the mount made, known to hold only what the mount put in
/// it since: `since` is when the server last said its key prefix was
/// empty, `touched` the names the mount has made, removed or renamed in
/// it since. A lookup of any other name in it, within the attribute TTL
/// of `since`, finds nothing without asking the server (as a lookup the
/// server answered with nothing is trusted for the TTL).
#[derive(Debug)]
struct Made {
    since: Instant,
    touched: HashSet<String>,
}

/// Most names a made directory remembers as touched; past them, lookups
/// in it ask the server again.
pub const MADE_NAMES: usize = 4096;

impl Node {
    fn new(path: String) -> Self {
        Node {
            path,
            attrs: None,
            lookups: 0,
            page_cache: None,
            unlinked: false,
            changed: None,
            made: None,
        }
    }
}

impl Attrs {
    /// A directory's times after an entry change at `at`.
    fn entry_changed(&mut self, at: SystemTime) {
        if self.kind == Kind::Dir {
            self.mtime = self.mtime.max(at);
            self.ctime = self.ctime.max(at);
        }
    }
}

#[derive(Debug, Default)]
struct Table {
    nodes: HashMap<u64, Node>,
    by_path: HashMap<String, u64>,
    next: u64,
}

/// Inode numbers and cached attributes, shared by the FUSE worker threads.
#[derive(Debug)]
pub struct Inodes {
    t: Mutex<Table>,
}

impl Inodes {
    pub fn new() -> Self {
        let mut t = Table {
            next: ROOT + 1,
            ..Default::default()
        };
        t.nodes.insert(
            ROOT,
            Node {
                lookups: 1,
                ..Node::new(String::new())
            },
        );
        t.by_path.insert(String::new(), ROOT);
        Self { t: Mutex::new(t) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.t.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn path(&self, ino: u64) -> Option<String> {
        self.lock().nodes.get(&ino).map(|n| n.path.clone())
    }

    /// The inode of `path`, created on first sight.
    pub fn ino(&self, path: &str) -> u64 {
        let mut t = self.lock();
        if let Some(i) = t.by_path.get(path) {
            return *i;
        }
        let i = t.next;
        t.next += 1;
        t.nodes.insert(i, Node::new(path.to_owned()));
        t.by_path.insert(path.to_owned(), i);
        i
    }

    /// Records the attributes of `path`; returns its inode.
    pub fn remember(&self, path: &str, attrs: Attrs) -> u64 {
        let i = self.ino(path);
        if let Some(n) = self.lock().nodes.get_mut(&i) {
            n.attrs = Some((attrs, Instant::now()));
        }
        i
    }

    /// Directory `path`'s attributes as the server tells them, with the
    /// times of the entry changes made through the mount since.
    pub fn with_changes(&self, path: &str, attrs: &mut Attrs) {
        let t = self.lock();
        if let Some(at) = t.by_path.get(path).and_then(|i| t.nodes.get(i)?.changed) {
            attrs.entry_changed(at);
        }
    }

    /// An entry of directory `path` was made, removed or renamed at `at`:
    /// its mtime and ctime become `at` (in this mount's memory: what a
    /// directory marker stores changes only with chmod, chown or utimens).
    pub fn dir_changed(&self, path: &str, at: SystemTime) {
        let mut t = self.lock();
        let Some(i) = t.by_path.get(path).copied() else {
            return;
        };
        if let Some(n) = t.nodes.get_mut(&i) {
            n.changed = Some(at);
            if let Some((a, _)) = n.attrs.as_mut() {
                a.entry_changed(at);
            }
        }
    }

    /// Directory `path` was made by the mount, its key prefix empty as
    /// the server said at `since`.
    pub fn made_empty(&self, path: &str, since: Instant) {
        let i = self.ino(path);
        if let Some(n) = self.lock().nodes.get_mut(&i) {
            let touched = HashSet::new();
            n.made = Some(Made { since, touched });
        }
    }

    /// The entry `path` is made, removed or renamed by the mount: a lookup
    /// of it asks the server from now on, and so do lookups below it (a
    /// directory removed or renamed holds what the server says).
    pub fn touched(&self, path: &str) {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let mut t = self.lock();
        if let Some(i) = t.by_path.get(path).copied()
            && let Some(n) = t.nodes.get_mut(&i)
        {
            n.made = None;
        }
        let Some(i) = t.by_path.get(dir).copied() else {
            return;
        };
        if let Some(n) = t.nodes.get_mut(&i)
            && let Some(m) = n.made.as_mut()
        {
            m.touched.insert(name.to_owned());
            if m.touched.len() > MADE_NAMES {
                n.made = None;
            }
        }
    }

    /// When the server last said the directory of `path` was empty, if
    /// that was less than `ttl` ago and the mount has not touched `path`
    /// since: then nothing is at `path` (see [`Made`]).
    pub fn absent_since(&self, path: &str, ttl: std::time::Duration) -> Option<Instant> {
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let t = self.lock();
        let m = t.nodes.get(t.by_path.get(dir)?)?.made.as_ref()?;
        (m.since.elapsed() < ttl && !m.touched.contains(name)).then_some(m.since)
    }

    /// Whether directory `dir` was made by the mount, its knowledge is
    /// older than `ttl`, and `name` was not touched in it: what a listing
    /// could renew ([`Inodes::renew_made`]).
    pub fn made_stale(&self, dir: &str, name: &str, ttl: std::time::Duration) -> bool {
        let t = self.lock();
        let made = t.by_path.get(dir).and_then(|i| t.nodes.get(i)?.made.as_ref());
        made.is_some_and(|m| m.since.elapsed() >= ttl && !m.touched.contains(name))
    }

    /// The server listed `names` in directory `dir` at `since` (or after;
    /// `None`: too many to list): if the mount touched each of them, the
    /// directory still holds only what the mount put there, as of
    /// `since`; else the mount stops assuming anything of it.
    pub fn renew_made(&self, dir: &str, names: Option<&[String]>, since: Instant) {
        let mut t = self.lock();
        let Some(i) = t.by_path.get(dir).copied() else {
            return;
        };
        if let Some(n) = t.nodes.get_mut(&i) {
            match n.made.as_mut() {
                Some(m) if names.is_some_and(|l| l.iter().all(|name| m.touched.contains(name))) => {
                    m.since = since
                }
                _ => n.made = None,
            }
        }
    }

    /// Directory `path`'s times were stored on its marker (chmod, chown,
    /// utimens): they supersede the entry changes remembered before.
    pub fn dir_times_stored(&self, path: &str) {
        let mut t = self.lock();
        if let Some(i) = t.by_path.get(path).copied()
            && let Some(n) = t.nodes.get_mut(&i)
        {
            n.changed = None;
        }
    }

    /// The kind last seen for `path`, however long ago (what a directory
    /// listing, which tells no kinds, reports for an entry).
    pub fn known_kind(&self, path: &str) -> Option<Kind> {
        let t = self.lock();
        let i = t.by_path.get(path)?;
        t.nodes.get(i)?.attrs.as_ref().map(|(a, _)| a.kind)
    }

    /// Records the attributes of `path` for an entry the kernel is told of
    /// (lookup, create, mkdir, symlink), which it will forget later.
    pub fn looked_up(&self, path: &str, attrs: Attrs) -> u64 {
        self.remember(path, attrs);
        self.entered(path)
    }

    /// Counts a lookup of `path` for an entry the kernel is told of
    /// without attributes to keep (a directory listed with its attributes
    /// unknown: the kernel asks for them).
    pub fn entered(&self, path: &str) -> u64 {
        let i = self.ino(path);
        if let Some(n) = self.lock().nodes.get_mut(&i) {
            n.lookups += 1;
        }
        i
    }

    /// The kernel did not take the entry just counted as looked up (its
    /// reply was full).
    pub fn not_taken(&self, ino: u64) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.lookups = n.lookups.saturating_sub(1);
        }
    }

    /// `path` was unlinked: a new file there gets a new inode (the old one
    /// lives on, under its last path, until the kernel forgets it).
    pub fn unlinked(&self, path: &str) {
        let mut t = self.lock();
        if let Some(i) = t.by_path.remove(path)
            && let Some(n) = t.nodes.get_mut(&i)
        {
            n.unlinked = true;
        }
    }

    /// Whether `ino`'s name was unlinked.
    pub fn is_unlinked(&self, ino: u64) -> bool {
        self.lock().nodes.get(&ino).is_some_and(|n| n.unlinked)
    }

    /// `from` was renamed to `to`: its inode, and those of the paths
    /// below it, have their new paths (and replace what was there).
    pub fn renamed(&self, from: &str, to: &str) {
        let mut t = self.lock();
        let moved: Vec<(String, String, u64)> = t
            .by_path
            .iter()
            .filter_map(|(p, i)| Some((p.clone(), moved_path(p, from, to)?, *i)))
            .collect();
        for (old, ..) in &moved {
            t.by_path.remove(old);
        }
        for (_, path, i) in moved {
            if let Some(n) = t.nodes.get_mut(&i) {
                n.path = path.clone();
            }
            t.by_path.insert(path, i);
        }
    }

    /// The kernel forgot `n` lookups of `ino`; the entry goes with the last.
    pub fn forget(&self, ino: u64, n: u64) {
        let mut t = self.lock();
        let Some(node) = t.nodes.get_mut(&ino) else { return };
        node.lookups = node.lookups.saturating_sub(n);
        if node.lookups == 0 && ino != ROOT {
            let path = node.path.clone();
            t.nodes.remove(&ino);
            if t.by_path.get(&path) == Some(&ino) {
                t.by_path.remove(&path);
            }
        }
    }

    /// The inode a directory listing reports for `path`: the known one, or
    /// a number derived from the path that is not entered in the table (a
    /// listing does not make the kernel hold the entry).
    pub fn listed(&self, path: &str) -> u64 {
        if let Some(i) = self.lock().by_path.get(path) {
            return *i;
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        h.finish() | (1 << 63)
    }

    /// Whether the kernel may keep the pages it cached for `ino` when it is
    /// opened at version `etag`: only if the last opening for reading saw
    /// the same version. Records `etag` as the cached version otherwise.
    pub fn reuse_page_cache(&self, ino: u64, etag: Option<&str>) -> bool {
        let mut t = self.lock();
        let Some(n) = t.nodes.get_mut(&ino) else {
            return false;
        };
        if etag.is_some() && n.page_cache.as_deref() == etag {
            return true;
        }
        n.page_cache = etag.map(str::to_owned);
        false
    }

    /// The inode's contents change through the mount: the pages cached for
    /// its last version are not to be reused.
    pub fn drop_page_cache(&self, ino: u64) {
        if let Some(n) = self.lock().nodes.get_mut(&ino) {
            n.page_cache = None;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().nodes.len()
    }

    /// Cached attributes younger than `ttl`.
    pub fn cached(&self, ino: u64, ttl: std::time::Duration) -> Option<Attrs> {
        let t = self.lock();
        let (a, at) = t.nodes.get(&ino)?.attrs.as_ref()?;
        (at.elapsed() < ttl).then(|| a.clone())
    }
}

/// The path `path` has once `from` is renamed to `to`, if it is `from` or
/// a path below it.
pub fn moved_path(path: &str, from: &str, to: &str) -> Option<String> {
    let rest = path.strip_prefix(from)?;
    (rest.is_empty() || rest.starts_with('/')).then(|| format!("{to}{rest}"))
}

/// The path of `name` in the directory at `parent`.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inodes_are_stable_per_path() {
        let t = Inodes::new();
        assert_eq!(t.ino(""), ROOT);
        let a = t.ino("a/b");
        assert_eq!(t.ino("a/b"), a);
        assert_ne!(t.ino("a"), a);
        assert_eq!(t.path(a).as_deref(), Some("a/b"));
        assert_eq!(child("", "x"), "x");
        assert_eq!(child("a", "x"), "a/x");
        let attrs = Attrs {
            kind: Kind::File,
            size: 1,
            mtime: SystemTime::UNIX_EPOCH,
            atime: SystemTime::UNIX_EPOCH,
            ctime: SystemTime::UNIX_EPOCH,
            mode: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
            etag: None,
        };
        let i = t.remember("f", attrs.clone());
        assert!(t.cached(i, std::time::Duration::from_secs(60)).is_some());
        assert!(t.cached(i, std::time::Duration::ZERO).is_none());
        // Entries go when the kernel forgets its last lookup.
        let before = t.len();
        let g = t.looked_up("g", attrs.clone());
        t.looked_up("g", attrs);
        t.forget(g, 1);
        assert_eq!(t.path(g).as_deref(), Some("g"));
        t.forget(g, 1);
        assert_eq!(t.path(g), None);
        assert_eq!(t.len(), before);
        t.forget(ROOT, 5);
        assert_eq!(t.path(ROOT).as_deref(), Some(""));
        // Listings do not add entries.
        let n = t.listed("never/looked/up");
        assert_eq!(t.listed("never/looked/up"), n);
        assert_eq!(t.len(), before);
        assert_eq!(t.listed("a/b"), a);
        // Cached pages are reused only for the version they were read at.
        assert!(!t.reuse_page_cache(a, Some("e1")));
        assert!(t.reuse_page_cache(a, Some("e1")));
        assert!(!t.reuse_page_cache(a, Some("e2")));
        assert!(t.reuse_page_cache(a, Some("e2")));
        t.drop_page_cache(a);
        assert!(!t.reuse_page_cache(a, Some("e2")));
        assert!(!t.reuse_page_cache(a, None));
        assert!(!t.reuse_page_cache(a, None));
    }
}
