//! A bounded cache, on disk, of the object bytes read through the mount:
//! blocks of [`BLOCK`] bytes of one version of an object (its key and
//! ETag), each version's blocks in a sparse file of its own in a directory
//! under `--cache-dir` that lives as long as the mount, at most
//! `--block-cache-mib` in all, the least recently used going first. A new
//! version of an object (another ETag) is another file, so what was cached
//! of the old one is never served for it, and ages out. It serves what
//! the kernel's page cache no longer holds (a file opened again after its
//! pages were dropped, random reads over a file read before) without a
//! request to the server.
//!
//! Every lookup, store and eviction runs under one lock, with the file I/O
//! it needs, so a block is never read while it is being dropped.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Bytes per cached block.
pub const BLOCK: u64 = 64 << 10;

/// One version of an object: its key and ETag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Version(u128);

impl Version {
    fn of(key: &str, etag: &str) -> Self {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(key.as_bytes());
        h.update(&[0]);
        h.update(etag.as_bytes());
        Self(h.digest128())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Block {
    version: Version,
    index: u64,
}

#[derive(Debug, Default)]
struct State {
    /// Each cached block and its last use.
    blocks: HashMap<Block, u64>,
    /// The same, by last use: the oldest first.
    lru: BTreeMap<u64, Block>,
    /// Blocks cached per version (its file goes with the last one).
    per_version: HashMap<Version, usize>,
    tick: u64,
}

#[derive(Debug)]
pub struct BlockCache {
    dir: tempfile::TempDir,
    /// Most blocks held.
    capacity: usize,
    state: Mutex<State>,
    /// Writes handed to the background and not done yet.
    pending: std::sync::atomic::AtomicUsize,
}

/// Background writes of fetched bytes waiting at most; past it, fetched
/// bytes are not cached (a slow cache disk costs hits, not memory).
const PENDING: usize = 4;

/// The block range `[first, last]` of the bytes `[start, end)`.
fn blocks(start: u64, end: u64) -> (u64, u64) {
    (start / BLOCK, (end - 1) / BLOCK)
}

impl BlockCache {
    /// A cache of at most `bytes` in a new directory under `parent`
    /// (removed with the cache); `None` for a size of zero.
    pub fn new(parent: &Path, bytes: u64) -> io::Result<Option<Self>> {
        let capacity = (bytes / BLOCK) as usize;
        if capacity == 0 {
            return Ok(None);
        }
        let dir = tempfile::Builder::new()
            .prefix(".strata-fuse-blocks-")
            .tempdir_in(parent)?;
        Ok(Some(Self {
            dir,
            capacity,
            state: Mutex::new(State::default()),
            pending: Default::default(),
        }))
    }

    fn path(&self, v: Version) -> PathBuf {
        self.dir.path().join(format!("{:032x}", v.0))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes `[start, end)` of version `etag` of `key` (an object of `size`
    /// bytes) if every block holding them is cached.
    pub fn get(&self, key: &str, etag: &str, start: u64, end: u64) -> Option<Bytes> {
        if end <= start {
            return None;
        }
        let version = Version::of(key, etag);
        let (first, last) = blocks(start, end);
        let mut s = self.lock();
        if !(first..=last).all(|index| s.blocks.contains_key(&Block { version, index })) {
            return None;
        }
        let mut buf = vec![0u8; (end - start) as usize];
        File::open(self.path(version))
            .and_then(|f| f.read_exact_at(&mut buf, start))
            .ok()?;
        for index in first..=last {
            s.touch(Block { version, index });
        }
        Some(Bytes::from(buf))
    }

    /// Keeps the whole blocks that `data`, bytes `[start, ..)` of version
    /// `etag` of `key` (an object of `size` bytes), holds: every block it
    /// covers from its start to the block's end (or the object's).
    /// [`BlockCache::put`] on a blocking thread, so the reader does not
    /// wait for the cache's disk; skipped while [`PENDING`] writes wait.
    pub fn put_later(
        self: &std::sync::Arc<Self>,
        key: &str,
        etag: &str,
        size: u64,
        start: u64,
        data: bytes::Bytes,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        if self.pending.fetch_add(1, SeqCst) >= PENDING {
            self.pending.fetch_sub(1, SeqCst);
            return;
        }
        let (c, k, e) = (std::sync::Arc::clone(self), key.to_owned(), etag.to_owned());
        tokio::task::spawn_blocking(move || {
            c.put(&k, &e, size, start, &data);
            c.pending.fetch_sub(1, SeqCst);
        });
    }

    /// Waits until the background writes are done (tests).
    #[cfg(test)]
    pub fn settle(&self) {
        while self.pending.load(std::sync::atomic::Ordering::SeqCst) > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    pub fn put(&self, key: &str, etag: &str, size: u64, start: u64, data: &[u8]) {
        let end = start + data.len() as u64;
        let first = start.div_ceil(BLOCK);
        let whole: Vec<u64> = (first..)
            .take_while(|i| i * BLOCK < size && ((i + 1) * BLOCK).min(size) <= end)
            .collect();
        if whole.is_empty() {
            return;
        }
        let version = Version::of(key, etag);
        let mut s = self.lock();
        let Ok(f) = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(self.path(version))
        else {
            return;
        };
        for index in whole {
            let block = Block { version, index };
            if s.blocks.contains_key(&block) {
                s.touch(block);
                continue;
            }
            let from = (index * BLOCK - start) as usize;
            let to = (((index + 1) * BLOCK).min(size) - start) as usize;
            if f.write_all_at(&data[from..to], index * BLOCK).is_err() {
                break;
            }
            s.touch(block);
            *s.per_version.entry(version).or_default() += 1;
            while s.blocks.len() > self.capacity {
                self.evict_oldest(&mut s);
            }
        }
    }

    fn evict_oldest(&self, s: &mut State) {
        let Some((_, block)) = s.lru.pop_first() else {
            return;
        };
        s.blocks.remove(&block);
        let path = self.path(block.version);
        let left = s.per_version.get_mut(&block.version).map(|n| {
            *n -= 1;
            *n
        });
        if left == Some(0) {
            s.per_version.remove(&block.version);
            let _ = std::fs::remove_file(&path);
        } else if let Ok(f) = OpenOptions::new().write(true).open(&path) {
            use rustix::fs::{FallocateFlags, fallocate};
            let flags = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
            let _ = fallocate(&f, flags, block.index * BLOCK, BLOCK);
        }
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.lock().blocks.len()
    }
}

impl State {
    /// Marks `block` cached and used now.
    fn touch(&mut self, block: Block) {
        self.tick += 1;
        if let Some(old) = self.blocks.insert(block, self.tick) {
            self.lru.remove(&old);
        }
        self.lru.insert(self.tick, block);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    #[test]
    fn whole_blocks_are_kept_and_served_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let c = BlockCache::new(dir.path(), 64 * BLOCK).unwrap().unwrap();
        let size = 3 * BLOCK + 100;
        let obj = data(size as usize, 1);
        // A window from mid-block: only the blocks it holds whole count.
        c.put("k", "e1", size, 1000, &obj[1000..(2 * BLOCK + 5) as usize]);
        assert_eq!(c.held(), 1, "block 1 only");
        assert_eq!(
            c.get("k", "e1", BLOCK + 7, 2 * BLOCK).unwrap(),
            &obj[(BLOCK + 7) as usize..(2 * BLOCK) as usize]
        );
        assert!(c.get("k", "e1", 0, 10).is_none());
        assert!(c.get("k", "e1", BLOCK, 2 * BLOCK + 1).is_none());
        // Another version of the key is another object.
        assert!(c.get("k", "e2", BLOCK, BLOCK + 10).is_none());
        assert!(c.get("other", "e1", BLOCK, BLOCK + 10).is_none());
        // The short last block is whole at the object's end.
        c.put("k", "e1", size, 2 * BLOCK, &obj[(2 * BLOCK) as usize..]);
        assert_eq!(c.get("k", "e1", BLOCK, size).unwrap(), &obj[BLOCK as usize..]);
        let other = data(size as usize, 9);
        c.put("k", "e2", size, 0, &other);
        assert_eq!(c.get("k", "e2", 5, size).unwrap(), &other[5..]);
        assert_eq!(c.get("k", "e1", BLOCK, size).unwrap(), &obj[BLOCK as usize..]);
    }

    #[test]
    fn the_least_recently_used_blocks_go_and_their_bytes_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let c = BlockCache::new(dir.path(), 4 * BLOCK).unwrap().unwrap();
        let size = 4 * BLOCK;
        let a = data(size as usize, 1);
        let b = data(size as usize, 2);
        c.put("a", "1", size, 0, &a);
        assert_eq!(c.held(), 4);
        // Use block 0 of a: it outlives the others.
        assert!(c.get("a", "1", 0, 10).is_some());
        c.put("b", "1", size, 0, &b[..(2 * BLOCK) as usize]);
        assert_eq!(c.held(), 4);
        assert!(c.get("a", "1", 0, BLOCK).is_some(), "used last, kept");
        assert!(c.get("a", "1", BLOCK, 2 * BLOCK).is_none(), "oldest, gone");
        assert_eq!(c.get("b", "1", 0, 2 * BLOCK).unwrap(), &b[..(2 * BLOCK) as usize]);
        // Everything of a goes: so does its file.
        c.put("b", "1", size, 2 * BLOCK, &b[(2 * BLOCK) as usize..]);
        c.put("c", "1", size, 0, &data(size as usize, 3));
        assert!(c.get("a", "1", 0, 1).is_none());
        let files = std::fs::read_dir(c.dir.path()).unwrap().count();
        assert_eq!(files, 1, "only c's file is left");
        assert!(BlockCache::new(dir.path(), BLOCK - 1).unwrap().is_none());
        let cache_dir = c.dir.path().to_path_buf();
        drop(c);
        assert!(!cache_dir.exists());
    }
}
