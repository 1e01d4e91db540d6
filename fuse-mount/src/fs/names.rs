//! Names created, removed and renamed: mkdir (a `dir/` marker), rmdir
//! (refused while anything but the marker is below), unlink, rename (a
//! copy then a delete, a directory key by key), symlinks (an object whose
//! body is the target, as s3fs stores them), special files (FIFOs,
//! sockets, device nodes: empty objects whose mode tells the type, as s3fs
//! stores them), and hard links (refused).

use super::attrs::new_entry;
use super::meta::{kind_of, posix_meta};
use super::{Fs, KEY_MAX, NewName, errno};
use crate::inodes::{Attrs, Kind};
use crate::store::Store;
use bytes::Bytes;
use fuser::Errno;
use std::ffi::OsStr;
use std::time::Instant;
use strata_s3client::ObjectInfo;

impl<S: Store> Fs<S> {
    /// Makes directory `n`; its inode and attributes.
    pub fn mkdir(&self, n: NewName) -> Result<(u64, Attrs), Errno> {
        let path = self.new_path(&n)?;
        // Nothing is below the name when nothing is there: the new
        // directory is empty as of when that was known.
        let since = self
            .inodes
            .absent_since(&path, self.opts.attr_ttl)
            .unwrap_or_else(Instant::now);
        if self.stat(&path)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let marker = self.dir_prefix(&path);
        if marker.len() > KEY_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let made = self.put_entry(&path, &marker, Bytes::new(), new_entry(Kind::Dir, 0, &n))?;
        self.inodes.made_empty(&path, since);
        Ok(made)
    }

    /// Removes the file, symlink or special file `name` from `parent`.
    /// Its open handles keep its bytes until closed.
    pub fn unlink(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let path = match self.existing_child(parent, name)? {
            (_, a, _) if a.kind == Kind::Dir => return Err(Errno::EISDIR),
            (p, ..) => p,
        };
        self.keep_open_copies(&path)?;
        self.rt
            .block_on(self.store.delete(&self.key(&path)))
            .map_err(|e| errno(&e))?;
        self.unlinked(&path);
        self.entry_changed(&path);
        Ok(())
    }

    /// Removes the empty directory `name` from `parent`.
    pub fn rmdir(&self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        let path = match self.existing_child(parent, name)? {
            (p, a, _) if a.kind == Kind::Dir => p,
            _ => return Err(Errno::ENOTDIR),
        };
        if !self.dir_is_empty(&path)? {
            return Err(Errno::ENOTEMPTY);
        }
        self.rt
            .block_on(self.store.delete(&self.dir_prefix(&path)))
            .map_err(|e| errno(&e))?;
        self.entry_changed(&path);
        Ok(())
    }

    /// Renames `name` in `parent` to `new_name` in `new_parent`. Files
    /// open at the old name follow it (what they hold is uploaded first,
    /// so the copy has it); a file the rename replaces keeps its bytes for
    /// its open handles.
    pub fn rename(&self, parent: u64, name: &OsStr, new_parent: u64, new_name: &OsStr) -> Result<(), Errno> {
        let (from, a, info) = self.existing_child(parent, name)?;
        let to = self.parent_child(new_parent, new_name)?;
        if from == to {
            return Ok(());
        }
        let dir = a.kind == Kind::Dir;
        self.flush_writers(&from, dir)?;
        if dir {
            self.rename_dir(&from, &to)?;
        } else {
            self.keep_open_copies(&to)?;
            self.rename_file(&from, &to, &a, info)?;
            self.unlinked(&to);
        }
        self.followed(&from, &to);
        self.entry_changed(&from);
        self.entry_changed(&to);
        Ok(())
    }

    /// Makes the file, FIFO, socket or device node `n`, of the type and
    /// permissions in its mode (and device number `rdev`); its inode and
    /// attributes.
    pub fn mknod(&self, n: NewName, rdev: u32) -> Result<(u64, Attrs), Errno> {
        let path = self.new_path(&n)?;
        let kind = match kind_of(n.mode) {
            // mknod(2) with no type makes a regular file.
            None if n.mode & libc::S_IFMT == 0 => Kind::File,
            Some(k @ (Kind::File | Kind::Fifo | Kind::Socket | Kind::CharDevice | Kind::BlockDevice)) => k,
            _ => return Err(Errno::EINVAL),
        };
        if self.stat(&path)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let mut a = new_entry(kind, 0, &n);
        if matches!(kind, Kind::CharDevice | Kind::BlockDevice) {
            a.rdev = rdev;
        }
        self.put_entry(&path, &self.key(&path), Bytes::new(), a)
    }

    /// Makes symlink `n` (its mode is ignored: symlinks are 0777)
    /// pointing at `target`; its inode and attributes.
    pub fn symlink(&self, n: NewName, target: &std::path::Path) -> Result<(u64, Attrs), Errno> {
        let path = self.new_path(&n)?;
        let target = target.to_str().ok_or(Errno::EINVAL)?;
        // As s3fs stores them: the object's body is the target.
        let full = NewName {
            mode: 0o777,
            umask: 0,
            ..n
        };
        let a = new_entry(Kind::Symlink, target.len() as u64, &full);
        let body = Bytes::copy_from_slice(target.as_bytes());
        self.put_entry(&path, &self.key(&path), body, a)
    }

    /// The target of symlink `ino`.
    pub fn readlink(&self, ino: u64) -> Result<Bytes, Errno> {
        let path = self.inodes.path(ino).ok_or(Errno::ENOENT)?;
        let a = match self.getattr(ino)? {
            a if a.kind == Kind::Symlink => a,
            _ => return Err(Errno::EINVAL),
        };
        self.rt
            .block_on(self.store.get_range(&self.key(&path), 0, a.size.max(1)))
            .map_err(|e| errno(&e))
    }

    /// Hard links have no S3 equivalent, whatever the mode.
    pub fn link(&self) -> Result<(u64, Attrs), Errno> {
        Err(Errno::EPERM)
    }

    /// Stores the new entry `a` of `path` as object `key` with `body`;
    /// its inode (counted as looked up) and attributes.
    fn put_entry(&self, path: &str, key: &str, body: Bytes, a: Attrs) -> Result<(u64, Attrs), Errno> {
        self.rt
            .block_on(self.store.put(key, body, &posix_meta(&a)))
            .map_err(|e| errno(&e))?;
        self.entry_changed(path);
        Ok((self.inodes.looked_up(path, a.clone()), a))
    }

    /// For a change to an existing entry: the mount is writable, and
    /// `name` in `parent` exists; its path and attributes, and what the
    /// server said of its object.
    fn existing_child(
        &self,
        parent: u64,
        name: &OsStr,
    ) -> Result<(String, Attrs, Option<ObjectInfo>), Errno> {
        self.writable()?;
        let path = self.parent_child(parent, name)?;
        let (a, info) = self.stat_object(&path)?.ok_or(Errno::ENOENT)?;
        Ok((path, a, info))
    }

    /// A file rename: a server-side copy, then the delete of the source.
    /// The copy keeps the object's metadata and content type, with its
    /// ctime (`a` being its attributes) set to now.
    fn rename_file(&self, from: &str, to: &str, a: &Attrs, info: Option<ObjectInfo>) -> Result<(), Errno> {
        if self.stat(to)?.is_some_and(|a| a.kind == Kind::Dir) {
            return Err(Errno::EISDIR);
        }
        let (src, dst) = (self.key(from), self.key(to));
        let moved = Attrs {
            ctime: std::time::SystemTime::now(),
            ..a.clone()
        };
        self.copy_with_attrs(&src, &dst, &moved, info)?;
        self.rt.block_on(self.store.delete(&src)).map_err(|e| errno(&e))
    }

    /// A directory rename: every key below it is copied to the new name,
    /// a page at a time, and the page's originals deleted after their
    /// copies. Not atomic: until it finishes, both names hold part of the
    /// tree, but every object is always under one of them.
    fn rename_dir(&self, from: &str, to: &str) -> Result<(), Errno> {
        if to.starts_with(&format!("{from}/")) {
            return Err(Errno::EINVAL);
        }
        match self.stat(to)? {
            Some(a) if a.kind != Kind::Dir => return Err(Errno::ENOTDIR),
            Some(_) if !self.dir_is_empty(to)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let (src, dst) = (self.dir_prefix(from), self.dir_prefix(to));
        self.rt
            .block_on(async {
                let mut token: Option<String> = None;
                loop {
                    let page = self.store.list(&src, None, token.as_deref(), 1000).await?;
                    for o in &page.objects {
                        let target = format!("{dst}{}", &o.key[src.len()..]);
                        self.store.copy(&o.key, &target).await?;
                    }
                    for o in &page.objects {
                        self.store.delete(&o.key).await?;
                    }
                    if !page.truncated {
                        return Ok(());
                    }
                    token = page.next_token;
                }
            })
            .map_err(|e| errno(&e))
    }

    /// Whether a directory holds anything but its own marker.
    fn dir_is_empty(&self, path: &str) -> Result<bool, Errno> {
        let prefix = self.dir_prefix(path);
        let page = self
            .rt
            .block_on(self.store.list(&prefix, Some("/"), None, 2))
            .map_err(|e| errno(&e))?;
        Ok(page.prefixes.is_empty() && page.objects.iter().all(|o| o.key == prefix))
    }
}
