//! What unlinks and renames do to open files, as POSIX has it: a file's
//! open descriptors outlive its name. The handles of a file whose name is
//! unlinked (or replaced by a rename) keep reading and writing their
//! bytes, from a local copy, until closed, and upload nothing; the
//! handles of a renamed file follow it, and upload under the new name.

use super::file::Open;
use super::{Fs, lock};
use crate::inodes::moved_path;
use crate::store::Store;
use crate::writeback::WriteBack;
use fuser::Errno;
use std::sync::Arc;

/// Whether `path` is `at`, or with `below`, a path under it.
fn at_or_below(path: &str, at: &str, below: bool) -> bool {
    path == at || below && moved_path(path, at, at).is_some()
}

impl<S: Store> Fs<S> {
    /// The files open at `path` (and with `below`, under it).
    fn open_at(&self, path: &str, below: bool) -> Vec<Open> {
        lock(&self.files)
            .values()
            .filter(|h| h.path.as_deref().is_some_and(|p| at_or_below(p, path, below)))
            .map(|h| Arc::clone(&h.file))
            .collect()
    }

    /// Before the object of `path` is deleted or replaced: each handle
    /// that only reads it takes a copy of its bytes into a write-back
    /// file (local disk), so that it reads them after the object is gone.
    pub(super) fn keep_open_copies(&self, path: &str) -> Result<(), Errno> {
        for open in self.open_at(path, false) {
            let mut f = lock(&open);
            if f.writer.is_some() {
                continue;
            }
            let key = self.key(&f.path);
            let load = WriteBack::load(&self.opts.cache_dir, &self.store, &key, f.size);
            f.writer = Some(self.rt.block_on(load).map_err(|_| Errno::EIO)?);
        }
        Ok(())
    }

    /// After the object of `path` was deleted or replaced: its handles
    /// have no name any more, and the path no inode.
    pub(super) fn unlinked(&self, path: &str) {
        let mut gone = Vec::new();
        for h in lock(&self.files).values_mut() {
            if h.path.as_deref() == Some(path) {
                h.path = None;
                gone.push(Arc::clone(&h.file));
            }
        }
        for open in gone {
            lock(&open).unlinked = true;
        }
        self.inodes.unlinked(path);
    }

    /// Uploads what the files open for writing at `path` (and with
    /// `below`, under it) hold, so that a copy of their objects has it.
    pub(super) fn flush_writers(&self, path: &str, below: bool) -> Result<(), Errno> {
        for open in self.open_at(path, below) {
            self.upload(&mut lock(&open))?;
        }
        Ok(())
    }

    /// After `from` was renamed to `to`: the files open at or under it,
    /// and its inodes, have their new paths.
    pub(super) fn followed(&self, from: &str, to: &str) {
        let mut moved = Vec::new();
        for h in lock(&self.files).values_mut() {
            if let Some(new) = h.path.as_deref().and_then(|p| moved_path(p, from, to)) {
                h.path = Some(new);
                moved.push(Arc::clone(&h.file));
            }
        }
        for open in moved {
            let mut f = lock(&open);
            if let Some(new) = moved_path(&f.path, from, to) {
                f.path = new;
            }
        }
        self.inodes.renamed(from, to);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn paths_at_or_below() {
        use super::at_or_below;
        assert!(at_or_below("a/b", "a/b", false));
        assert!(!at_or_below("a/b/c", "a/b", false));
        assert!(at_or_below("a/b/c", "a/b", true));
        assert!(!at_or_below("a/bc", "a/b", true));
        assert!(!at_or_below("a", "a/b", true));
    }
}
