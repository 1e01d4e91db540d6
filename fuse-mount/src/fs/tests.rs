//! The filesystem core over an in-memory bucket ([`Memory`]): the POSIX
//! answers of each call, what lands in the bucket, and what a failed call
//! leaves, without a kernel or a server. The mount as a whole is tested
//! through the kernel against objd in `tests/tests/fuse_mount.rs`.

use super::{Caller, Fs, NewName, Options, SetAttrs};
use crate::inodes::{Kind, ROOT};
use crate::store::memory::{Call, Memory};
use crate::writeback::PART;
use fuser::Errno;
use std::ffi::OsStr;
use std::time::Duration;

const ME: Caller = Caller { uid: 1000, gid: 1000 };
const CHUNK: usize = 128 << 10;

struct Mount {
    fs: Fs<Memory>,
    store: Memory,
    _cache: tempfile::TempDir,
}

fn options(cache: &tempfile::TempDir) -> Options {
    Options {
        prefix: "pre/".into(),
        uid: 0,
        gid: 0,
        file_mode: 0o644,
        dir_mode: 0o755,
        attr_ttl: Duration::from_secs(1),
        read_ahead: 1 << 20,
        list_page: 1000,
        read_only: false,
        cache_dir: cache.path().to_owned(),
        max_open_files: 64,
        write_cache_bytes: 1 << 30,
        block_cache_bytes: 0,
    }
}

fn mount_with(store: Memory, change: impl FnOnce(&mut Options)) -> Mount {
    let cache = tempfile::tempdir().unwrap();
    let mut opts = options(&cache);
    change(&mut opts);
    Mount {
        fs: Fs::new(store.clone(), opts).unwrap(),
        store,
        _cache: cache,
    }
}

fn mount() -> Mount {
    mount_with(Memory::default(), |_| {})
}

fn os(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// The name `name` in `parent`, made by [`ME`] with `mode` and `umask`.
fn at(parent: u64, name: &OsStr, mode: u32, umask: u32) -> NewName<'_> {
    NewName {
        caller: ME,
        parent,
        name,
        mode,
        umask,
    }
}

/// Bytes that differ at every offset a bug could confuse.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
}

impl Mount {
    /// Creates `name` in `parent` and writes `data` in order; the handle,
    /// still open.
    fn create_written(&self, parent: u64, name: &str, data: &[u8]) -> (u64, u64) {
        let (ino, _, fh) = self.fs.create(at(parent, os(name), 0o666, 0o022)).unwrap();
        for (i, c) in data.chunks(CHUNK).enumerate() {
            assert_eq!(
                self.fs.write(fh, (i * CHUNK) as u64, c).unwrap() as usize,
                c.len()
            );
        }
        (ino, fh)
    }

    fn write_file(&self, parent: u64, name: &str, data: &[u8]) -> u64 {
        let (ino, fh) = self.create_written(parent, name, data);
        self.fs.release(fh).unwrap();
        ino
    }

    fn read_file(&self, ino: u64) -> Vec<u8> {
        let o = self.fs.open(ino, libc::O_RDONLY).unwrap();
        let mut out = Vec::new();
        loop {
            let got = self.fs.read(o.fh, out.len() as u64, CHUNK as u32).unwrap();
            out.extend_from_slice(&got);
            if got.len() < CHUNK {
                break;
            }
        }
        self.fs.release(o.fh).unwrap();
        out
    }

    fn mkdir(&self, parent: u64, name: &str) -> u64 {
        self.fs.mkdir(at(parent, os(name), 0o777, 0o022)).unwrap().0
    }

    fn data(&self, key: &str) -> Option<Vec<u8>> {
        self.store.object(key).map(|o| o.data.to_vec())
    }

    fn meta(&self, key: &str, name: &str) -> Option<String> {
        let o = self.store.object(key)?;
        o.meta.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    }

    /// Every entry of directory `ino`, reading `per_call` entries per
    /// readdir as a small reply buffer would.
    fn list_dir(&self, ino: u64, per_call: usize) -> Vec<(String, Kind)> {
        self.paged(ino, per_call, |fh, offset, take| {
            self.fs
                .readdir(ino, fh, offset, |_, next, kind, name| {
                    take((name.to_owned(), kind), next)
                })
                .unwrap()
        })
    }

    /// What `read(handle, offset, take)` passes to `take(entry, next
    /// offset)` from an open directory `ino`, call after call from where
    /// the last ended, `per_call` entries a call (`take` refuses the next
    /// one, as a full reply does), until a call passes nothing.
    fn paged<T>(
        &self,
        ino: u64,
        per_call: usize,
        mut read: impl FnMut(u64, u64, &mut dyn FnMut(T, u64) -> bool),
    ) -> Vec<T> {
        let fh = self.fs.opendir(ino).unwrap();
        let (mut out, mut offset) = (Vec::new(), 0);
        loop {
            let before = out.len();
            read(fh, offset, &mut |entry, next| {
                if out.len() - before == per_call {
                    return true;
                }
                out.push(entry);
                offset = next;
                false
            });
            if out.len() == before {
                break;
            }
        }
        self.fs.releasedir(fh);
        out
    }
}

#[test]
fn a_file_written_and_closed_reads_back_with_its_attributes() {
    let m = mount();
    let data = pattern(300 << 10);
    let ino = m.write_file(ROOT, "f", &data);
    assert_eq!(m.data("pre/f").as_deref(), Some(&data[..]));
    let mode = (libc::S_IFREG | 0o644).to_string();
    assert_eq!(m.meta("pre/f", "mode"), Some(mode));
    assert_eq!(m.meta("pre/f", "uid").as_deref(), Some("1000"));
    let (looked, a) = m.fs.lookup(ROOT, os("f")).unwrap();
    assert_eq!(
        (looked, a.kind, a.size, a.mode),
        (ino, Kind::File, data.len() as u64, 0o644)
    );
    assert_eq!(m.read_file(ino), data);
    assert_eq!(m.fs.lookup(ROOT, os("g")).unwrap_err(), Errno::ENOENT);
}

#[test]
fn a_large_file_written_in_order_sends_its_parts_before_close() {
    let m = mount();
    let data = pattern(2 * PART as usize + 12345);
    let (ino, fh) = m.create_written(ROOT, "big", &data);
    assert!(m.store.calls(Call::Part) >= 1, "no part was sent while writing");
    assert_eq!(
        m.data("pre/big"),
        None,
        "the object appeared before it was complete"
    );
    m.fs.release(fh).unwrap();
    assert_eq!(m.store.open_uploads(), 0);
    assert_eq!(m.data("pre/big").as_deref(), Some(&data[..]));
    assert_eq!(m.read_file(ino), data);
}

#[test]
fn a_failed_upload_answers_eio_keeps_the_previous_object_and_is_retried_at_close() {
    let m = mount();
    m.store.insert("pre/f", b"old contents", &[]);
    let (ino, _) = m.fs.lookup(ROOT, os("f")).unwrap();
    let o = m.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    m.fs.write(o.fh, 0, b"new").unwrap();
    m.store.fail(Call::Put, 1);
    assert_eq!(m.fs.flush(o.fh).unwrap_err(), Errno::EIO);
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"old contents"[..]));
    m.fs.release(o.fh).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"new"[..]));
}

#[test]
fn a_close_by_another_process_than_the_opener_does_not_upload_a_half_written_file() {
    let m = mount();
    let (_, fh) = m.create_written(ROOT, "f", b"first half");
    m.fs.opened_by(fh, 100);
    // A child forked meanwhile closes its copy of the descriptor.
    m.fs.close(fh, 200).unwrap();
    assert_eq!(m.data("pre/f"), None, "nothing uploaded");
    m.fs.write(fh, 10, b", second half").unwrap();
    // The opener's close uploads.
    m.fs.close(fh, 100).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"first half, second half"[..]));
    // Not knowing who closes (a pid the mount cannot see) uploads too.
    m.fs.write(fh, 0, b"FIRST").unwrap();
    m.fs.close(fh, 0).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"FIRST half, second half"[..]));
    // And the last release uploads what the copies' closes left.
    m.fs.write(fh, 0, b"first").unwrap();
    m.fs.close(fh, 300).unwrap();
    m.fs.release(fh).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"first half, second half"[..]));
}

#[test]
fn a_failed_completion_answers_eio_and_leaves_no_upload_behind() {
    let m = mount();
    let data = pattern(PART as usize + 1);
    let (_, fh) = m.create_written(ROOT, "big", &data);
    m.store.fail(Call::Complete, 1);
    assert_eq!(m.fs.release(fh).unwrap_err(), Errno::EIO);
    assert_eq!(m.store.open_uploads(), 0);
    assert_eq!(m.data("pre/big"), None);
}

#[test]
fn a_quota_refusal_is_edquot_and_statfs_tells_the_quota() {
    let m = mount();
    m.store.set_quota(Some(64 << 10));
    let (ino, fh) = m.create_written(ROOT, "f", &pattern(100 << 10));
    assert_eq!(m.fs.release(fh).unwrap_err(), Errno::EDQUOT);
    // The kernel still holds the name of the file that never got stored:
    // opened to be truncated it starts anew; opened to be read it is not.
    assert_eq!(m.fs.open(ino, libc::O_RDONLY).unwrap_err(), Errno::ENOENT);
    let again = m.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap().fh;
    m.fs.write(again, 0, b"fits").unwrap();
    m.fs.release(again).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"fits"[..]));
    assert_eq!(m.meta("pre/f", "mode"), Some((libc::S_IFREG | 0o644).to_string()));
    m.write_file(ROOT, "small", &pattern(4092));
    let s = m.fs.statfs();
    assert_eq!((s.blocks, s.bfree), (16, 15));
    // Whatever call the quota refuses answers EDQUOT, not only uploads.
    m.write_file(ROOT, "fill", &pattern((64 << 10) - 4092 - 4));
    let link =
        m.fs.symlink(at(ROOT, os("l"), 0o777, 0), "a-long-target".as_ref());
    assert_eq!(link.map(|_| ()).unwrap_err(), Errno::EDQUOT);
}

#[test]
fn directory_calls_answer_as_posix_says() {
    let m = mount();
    let d = m.mkdir(ROOT, "d");
    assert_eq!(m.data("pre/d/").as_deref(), Some(&b""[..]));
    let e = |r: Result<(u64, crate::inodes::Attrs), Errno>| r.map(|_| ()).unwrap_err();
    assert_eq!(e(m.fs.mkdir(at(ROOT, os("d"), 0o777, 0))), Errno::EEXIST);
    m.write_file(d, "f", b"x");
    assert_eq!(m.fs.rmdir(ROOT, os("d")).unwrap_err(), Errno::ENOTEMPTY);
    assert_eq!(m.fs.unlink(ROOT, os("d")).unwrap_err(), Errno::EISDIR);
    assert_eq!(m.fs.rmdir(d, os("f")).unwrap_err(), Errno::ENOTDIR);
    assert_eq!(m.fs.rmdir(d, os("nothing")).unwrap_err(), Errno::ENOENT);
    let sub = m.mkdir(d, "sub");
    assert_eq!(
        m.fs.rename(ROOT, os("d"), sub, os("x")).unwrap_err(),
        Errno::EINVAL
    );
    m.fs.unlink(d, os("f")).unwrap();
    m.fs.rmdir(d, os("sub")).unwrap();
    m.fs.rmdir(ROOT, os("d")).unwrap();
    assert!(m.store.keys().is_empty(), "{:?}", m.store.keys());
    assert_eq!(m.fs.lookup(ROOT, os("d")).unwrap_err(), Errno::ENOENT);
}

#[test]
fn a_directory_rename_moves_every_key_below_it() {
    let m = mount();
    let d = m.mkdir(ROOT, "d");
    m.write_file(d, "a", b"a");
    let s = m.mkdir(d, "s");
    m.write_file(s, "b", b"bb");
    m.write_file(ROOT, "file", b"f");
    let full = m.mkdir(ROOT, "full");
    m.write_file(full, "x", b"x");
    assert_eq!(
        m.fs.rename(ROOT, os("d"), ROOT, os("file")).unwrap_err(),
        Errno::ENOTDIR
    );
    assert_eq!(
        m.fs.rename(ROOT, os("d"), ROOT, os("full")).unwrap_err(),
        Errno::ENOTEMPTY
    );
    m.fs.rename(ROOT, os("d"), ROOT, os("e")).unwrap();
    let keys = m.store.keys();
    let expect = [
        "pre/e/",
        "pre/e/a",
        "pre/e/s/",
        "pre/e/s/b",
        "pre/file",
        "pre/full/",
        "pre/full/x",
    ];
    assert_eq!(keys, expect);
    assert_eq!(m.data("pre/e/s/b").as_deref(), Some(&b"bb"[..]));
    assert_eq!(
        m.fs.rename(ROOT, os("file"), ROOT, os("e")).unwrap_err(),
        Errno::EISDIR
    );
}

#[test]
fn readdir_pages_through_a_directory_in_order_and_again_after_a_rewind() {
    let m = mount_with(Memory::default(), |o| o.list_page = 2);
    let d = m.mkdir(ROOT, "d");
    for i in 0..5 {
        m.write_file(d, &format!("f{i}"), b"x");
    }
    m.mkdir(d, "sub");
    let mut want = vec![(".".to_owned(), Kind::Dir), ("..".to_owned(), Kind::Dir)];
    want.push(("sub".to_owned(), Kind::Dir));
    want.extend((0..5).map(|i| (format!("f{i}"), Kind::File)));
    want[2..].sort_by(|a, b| a.0.cmp(&b.0));
    let mut got = m.list_dir(d, 2);
    got[2..].sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got, want);
    assert_eq!(m.list_dir(d, 100).len(), want.len());
    assert!(
        m.store.calls(Call::List) > 3,
        "the directory was not read in pages"
    );
}

impl Mount {
    /// Every entry of directory `ino` as readdirplus gives them, with
    /// `per_call` entries per reply: name, inode, attributes and how long
    /// they hold.
    fn list_plus(&self, ino: u64, per_call: usize) -> Vec<(String, u64, crate::inodes::Attrs, Duration)> {
        self.paged(ino, per_call, |fh, offset, take| {
            self.fs
                .readdirplus(ino, fh, offset, |e| {
                    take((e.name.to_owned(), e.ino, e.attrs, e.ttl), e.next)
                })
                .unwrap()
        })
    }
}

#[test]
fn readdirplus_gives_every_entry_its_attributes_from_the_listing_alone() {
    let store = Memory::default();
    let mode = |bits: u32| {
        vec![
            ("mode".to_owned(), bits.to_string()),
            ("uid".to_owned(), "42".to_owned()),
        ]
    };
    store.insert("pre/d/file", b"12345", &mode(libc::S_IFREG | 0o600));
    store.insert("pre/d/link", b"target", &mode(libc::S_IFLNK | 0o777));
    store.insert("pre/d/fifo", b"", &mode(libc::S_IFIFO | 0o640));
    store.insert("pre/d/plain", b"from another client", &[]);
    store.insert("pre/d/hidden", b"abc", &mode(libc::S_IFLNK | 0o777));
    store.insert("pre/d/sub/x", b"x", &[]);
    store.withhold_metadata("pre/d/hidden");
    let m = mount_with(store, |o| o.list_page = 2);
    assert!(m.fs.lists_attributes());
    let (d, _) = m.fs.lookup(ROOT, os("d")).unwrap();
    let heads = m.store.calls(Call::Head);
    let got = m.list_plus(d, 3);
    let mut names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    names[2..].sort();
    assert_eq!(
        names,
        [".", "..", "fifo", "file", "hidden", "link", "plain", "sub"]
    );
    let by = |name: &str| got.iter().find(|e| e.0 == name).unwrap();
    let ttl = Duration::from_secs(1);
    let file = &by("file").2;
    assert_eq!(
        (file.kind, file.mode, file.uid, file.size),
        (Kind::File, 0o600, 42, 5)
    );
    assert_eq!((by("link").2.kind, by("link").3), (Kind::Symlink, ttl));
    assert_eq!((by("fifo").2.kind, by("fifo").2.mode), (Kind::Fifo, 0o640));
    // Without metadata: the mount's defaults and the object's size.
    let plain = &by("plain").2;
    assert_eq!(
        (plain.kind, plain.mode, plain.uid, plain.size),
        (Kind::File, 0o644, 0, 19)
    );
    // Withheld by the server: looked up, and a symlink by its HEAD.
    assert_eq!(by("hidden").2.kind, Kind::Symlink);
    assert_eq!(
        m.store.calls(Call::Head) - heads,
        1,
        "one HEAD, for the withheld entry"
    );
    // A directory's marker is not listed: the kernel asks for its attributes.
    assert_eq!((by("sub").2.kind, by("sub").3), (Kind::Dir, Duration::ZERO));
    // Each entry the kernel took is an entry it looked up: cached, and
    // gone once forgotten as often as it was given.
    assert_eq!(m.fs.getattr(by("file").1).unwrap().mode, 0o600);
    assert_eq!(m.store.calls(Call::Head) - heads, 1);
    for (name, ino, _, _) in &got[2..] {
        assert_eq!(m.fs.inodes.path(*ino).as_deref(), Some(&*format!("d/{name}")));
        m.fs.forget(*ino, 1);
    }
    m.fs.forget(d, 1);
    assert_eq!(m.fs.inodes.len(), 1, "lookups were counted for entries not taken");
}

#[test]
fn plain_listings_give_file_types_from_metadata_or_none_from_other_servers() {
    let store = Memory::default();
    let link = [("mode".to_owned(), (libc::S_IFLNK | 0o777).to_string())];
    store.insert("pre/link", b"t", &link);
    store.insert("pre/file", b"f", &[]);
    let m = mount_with(store.clone(), |_| {});
    assert!(m.fs.lists_attributes());
    let kinds = m.list_dir(ROOT, 100);
    assert!(kinds.contains(&("link".to_owned(), Kind::Symlink)), "{kinds:?}");
    assert!(kinds.contains(&("file".to_owned(), Kind::File)), "{kinds:?}");
    // A server that lists no metadata: entries are files or directories
    // until looked up.
    store.plain_listings_only();
    let m = mount_with(store, |_| {});
    assert!(!m.fs.lists_attributes());
    assert!(m.list_dir(ROOT, 100).contains(&("link".to_owned(), Kind::File)));
    m.fs.lookup(ROOT, os("link")).unwrap();
    assert!(
        m.list_dir(ROOT, 100)
            .contains(&("link".to_owned(), Kind::Symlink))
    );
}

#[test]
fn lookups_in_a_directory_the_mount_made_ask_the_server_only_for_what_it_put_there() {
    let m = mount_with(Memory::default(), |o| o.attr_ttl = Duration::from_millis(400));
    let asked = || m.store.calls(Call::Head) + m.store.calls(Call::List);
    let d = m.mkdir(ROOT, "d");
    let sub = m.mkdir(d, "sub");
    let before = asked();
    for name in ["a.c", "b.o", "sub2"] {
        assert_eq!(m.fs.lookup(d, os(name)).unwrap_err(), Errno::ENOENT);
    }
    assert_eq!(m.fs.lookup(sub, os("deeper")).unwrap_err(), Errno::ENOENT);
    assert_eq!(asked(), before, "a name nobody made was asked for");
    // What the mount made, removed or renamed there is asked for.
    let f = m.write_file(d, "a.c", b"int x;");
    m.fs.forget(f, 1);
    assert_eq!(m.fs.lookup(d, os("a.c")).unwrap().1.size, 6);
    m.fs.unlink(d, os("a.c")).unwrap();
    assert_eq!(m.fs.lookup(d, os("a.c")).unwrap_err(), Errno::ENOENT);
    m.write_file(d, "b.o", b"o");
    m.fs.rename(d, os("b.o"), d, os("c.o")).unwrap();
    assert_eq!(m.fs.lookup(d, os("c.o")).unwrap().1.size, 1);
    assert_eq!(m.fs.lookup(d, os("b.o")).unwrap_err(), Errno::ENOENT);
    assert!(asked() > before);
    // Another client's object appears once the TTL of the directory's
    // making has passed, as a name looked up and missing does; a removed
    // directory's names are asked for at once.
    m.store.insert("pre/d/other", b"from S3", &[]);
    assert_eq!(m.fs.lookup(d, os("other")).unwrap_err(), Errno::ENOENT);
    m.fs.rmdir(d, os("sub")).unwrap();
    m.store.insert("pre/d/sub/late", b"l", &[]);
    assert_eq!(m.fs.lookup(sub, os("late")).unwrap().1.size, 1);
    let r = m.mkdir(ROOT, "r");
    m.write_file(r, "x", b"x");
    std::thread::sleep(Duration::from_millis(450));
    assert_eq!(m.fs.lookup(d, os("other")).unwrap().1.size, 7);
    // Past the TTL, one listing that shows only what the mount put there
    // renews what it knows, for another TTL.
    let (heads, lists) = (m.store.calls(Call::Head), m.store.calls(Call::List));
    for name in ["y", "z", "w"] {
        assert_eq!(m.fs.lookup(r, os(name)).unwrap_err(), Errno::ENOENT);
    }
    assert_eq!(m.store.calls(Call::Head), heads);
    assert_eq!(m.store.calls(Call::List), lists + 1);
    // A directory the mount did not make is asked for every time.
    m.store.insert("pre/e/k", b"k", &[]);
    let (e, _) = m.fs.lookup(ROOT, os("e")).unwrap();
    let before = asked();
    assert_eq!(m.fs.lookup(e, os("q")).unwrap_err(), Errno::ENOENT);
    assert!(asked() > before);
}

#[test]
fn lookups_of_many_names_in_a_directory_cost_a_listing_per_page_not_a_head_each() {
    let store = Memory::default();
    for i in 0..2500 {
        let meta = [("uid".to_owned(), i.to_string())];
        store.insert(&format!("pre/d/f{i:04}"), &vec![b'x'; i % 7], &meta);
    }
    let link = [("mode".to_owned(), (libc::S_IFLNK | 0o777).to_string())];
    store.insert("pre/d/f1000a", b"target", &link);
    store.insert("pre/d/f2000sub/x", b"", &[]);
    store.insert("pre/d/f2001w", b"hidden", &[]);
    store.withhold_metadata("pre/d/f2001w");
    let m = mount_with(store, |o| o.attr_ttl = Duration::from_secs(30));
    assert!(m.fs.lists_attributes());
    let (d, _) = m.fs.lookup(ROOT, os("d")).unwrap();
    let (heads, lists) = (m.store.calls(Call::Head), m.store.calls(Call::List));
    for i in 0..2500 {
        let (_, a) = m.fs.lookup(d, os(&format!("f{i:04}"))).unwrap();
        assert_eq!(
            (a.kind, a.uid, a.size),
            (Kind::File, i as u32, (i % 7) as u64),
            "f{i:04}"
        );
    }
    let heads_used = m.store.calls(Call::Head) - heads;
    assert!(heads_used < 30, "{heads_used} HEADs for 2,500 lookups");
    assert!(m.store.calls(Call::List) - lists < 10);
    // Names between a page's keys are missing, a symlink is one, a
    // directory and a file without metadata are asked for.
    let heads = m.store.calls(Call::Head);
    assert_eq!(m.fs.lookup(d, os("f0500x")).unwrap_err(), Errno::ENOENT);
    assert_eq!(m.fs.lookup(d, os("f1000a")).unwrap().1.kind, Kind::Symlink);
    assert_eq!(m.store.calls(Call::Head), heads);
    assert_eq!(m.fs.lookup(d, os("f2000sub")).unwrap().1.kind, Kind::Dir);
    assert_eq!(m.fs.lookup(d, os("f2001w")).unwrap().1.size, 6);
    assert!(m.store.calls(Call::Head) > heads);
    // An open asks the server (close-to-open), whatever a page says.
    let (f, _) = m.fs.lookup(d, os("f0003")).unwrap();
    m.store.insert("pre/d/f0003", b"changed elsewhere", &[]);
    let o = m.fs.open(f, libc::O_RDONLY).unwrap();
    assert_eq!(m.fs.read(o.fh, 0, 100).unwrap(), b"changed elsewhere".to_vec());
    m.fs.release(o.fh).unwrap();
    // A change through the mount: no page answers any more.
    m.write_file(d, "new", b"n");
    let heads = m.store.calls(Call::Head);
    m.fs.lookup(d, os("f0007")).unwrap();
    assert!(m.store.calls(Call::Head) > heads);
}

#[test]
fn random_lookups_in_a_large_directory_stop_fetching_listings() {
    let store = Memory::default();
    for i in 0..20_000 {
        store.insert(&format!("pre/d/f{i:05}"), b"", &[]);
    }
    let m = mount_with(store, |o| o.attr_ttl = Duration::from_secs(30));
    assert!(m.fs.lists_attributes());
    let (d, _) = m.fs.lookup(ROOT, os("d")).unwrap();
    let lists = m.store.calls(Call::List);
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        m.fs.lookup(d, os(&format!("f{:05}", x % 20_000))).unwrap();
    }
    let listed = m.store.calls(Call::List) - lists;
    assert!(listed <= 8, "{listed} listings for 300 random lookups");
}

#[test]
fn a_read_only_mount_refuses_every_change_with_erofs() {
    let store = Memory::default();
    store.insert("pre/f", b"data", &[]);
    let m = mount_with(store, |o| o.read_only = true);
    let (ino, _) = m.fs.lookup(ROOT, os("f")).unwrap();
    assert_eq!(m.read_file(ino), b"data");
    assert_eq!(m.fs.open(ino, libc::O_WRONLY).unwrap_err(), Errno::EROFS);
    assert_eq!(
        m.fs.create(at(ROOT, os("g"), 0o644, 0)).map(|_| ()).unwrap_err(),
        Errno::EROFS
    );
    assert_eq!(
        m.fs.mkdir(at(ROOT, os("d"), 0o755, 0)).map(|_| ()).unwrap_err(),
        Errno::EROFS
    );
    assert_eq!(m.fs.unlink(ROOT, os("f")).unwrap_err(), Errno::EROFS);
    let chmod = SetAttrs {
        mode: Some(0o600),
        ..SetAttrs::default()
    };
    assert_eq!(m.fs.setattr(ino, chmod, None).unwrap_err(), Errno::EROFS);
    assert_eq!(m.store.keys(), ["pre/f"]);
}

#[test]
fn chmod_and_truncate_of_a_closed_file_rewrite_its_object() {
    let m = mount();
    let ino = m.write_file(ROOT, "f", b"abcdef");
    let chmod = SetAttrs {
        mode: Some(0o600),
        ..SetAttrs::default()
    };
    assert_eq!(m.fs.setattr(ino, chmod, None).unwrap().mode, 0o600);
    assert_eq!(m.meta("pre/f", "mode"), Some((libc::S_IFREG | 0o600).to_string()));
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"abcdef"[..]));
    let truncate = SetAttrs {
        size: Some(3),
        ..SetAttrs::default()
    };
    assert_eq!(m.fs.setattr(ino, truncate, None).unwrap().size, 3);
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"abc"[..]));
    assert_eq!(m.meta("pre/f", "mode"), Some((libc::S_IFREG | 0o600).to_string()));
}

#[test]
fn symlinks_keep_their_target_and_hard_links_are_refused() {
    let m = mount();
    let (ino, a) =
        m.fs.symlink(at(ROOT, os("l"), 0o777, 0), "../target/x".as_ref())
            .unwrap();
    assert_eq!(a.kind, Kind::Symlink);
    assert_eq!(m.fs.readlink(ino).unwrap(), &b"../target/x"[..]);
    assert_eq!(m.meta("pre/l", "mode"), Some((libc::S_IFLNK | 0o777).to_string()));
    let f = m.write_file(ROOT, "f", b"x");
    assert_eq!(m.fs.readlink(f).unwrap_err(), Errno::EINVAL);
    assert_eq!(m.fs.link().map(|_| ()).unwrap_err(), Errno::EPERM);
}

#[test]
fn names_past_name_max_or_keys_past_the_s3_limit_answer_enametoolong() {
    let m = mount();
    let longest = "n".repeat(super::NAME_MAX);
    let ino = m.write_file(ROOT, &longest, b"x");
    assert_eq!(m.fs.lookup(ROOT, os(&longest)).unwrap().0, ino);
    let too_long = "n".repeat(super::NAME_MAX + 1);
    let e = |r: Result<(u64, crate::inodes::Attrs), Errno>| r.map(|_| ()).unwrap_err();
    assert_eq!(e(m.fs.lookup(ROOT, os(&too_long))), Errno::ENAMETOOLONG);
    assert_eq!(
        e(m.fs.mkdir(at(ROOT, os(&too_long), 0o755, 0))),
        Errno::ENAMETOOLONG
    );
    assert_eq!(
        e(m.fs.symlink(at(ROOT, os(&too_long), 0o777, 0), "t".as_ref())),
        Errno::ENAMETOOLONG
    );
    let create = m.fs.create(at(ROOT, os(&too_long), 0o644, 0));
    assert_eq!(create.map(|_| ()).unwrap_err(), Errno::ENAMETOOLONG);
    let rename = m.fs.rename(ROOT, os(&longest), ROOT, os(&too_long));
    assert_eq!(rename.unwrap_err(), Errno::ENAMETOOLONG);
    // Keys: "pre/" and four directories of 250 bytes make 1008; a file
    // can add 16 bytes, a directory 15 (its marker ends in '/').
    let mut dir = ROOT;
    for i in 0..4 {
        dir = m.mkdir(dir, &format!("{i}{}", "d".repeat(249)));
    }
    m.write_file(dir, &"f".repeat(15), b"x");
    let (_, fh) = m.create_written(dir, &"f".repeat(16), b"x");
    m.fs.release(fh).unwrap();
    assert!(m.store.keys().iter().any(|k| k.len() == 1024));
    let create = m.fs.create(at(dir, os(&"f".repeat(17)), 0o644, 0));
    assert_eq!(create.map(|_| ()).unwrap_err(), Errno::ENAMETOOLONG);
    assert_eq!(
        e(m.fs.mkdir(at(dir, os(&"d".repeat(16)), 0o755, 0))),
        Errno::ENAMETOOLONG
    );
    m.mkdir(dir, &"d".repeat(15));
    assert_eq!(m.fs.statfs().namelen as usize, super::NAME_MAX);
}

#[test]
fn special_files_are_empty_objects_whose_mode_tells_their_type() {
    let m = mount();
    let kinds = [
        ("fifo", libc::S_IFIFO, Kind::Fifo, 0),
        ("sock", libc::S_IFSOCK, Kind::Socket, 0),
        ("null", libc::S_IFCHR, Kind::CharDevice, 0x103),
        ("loop", libc::S_IFBLK, Kind::BlockDevice, 0x700),
        ("plain", 0, Kind::File, 0),
    ];
    for (name, bits, kind, rdev) in kinds {
        let (_, a) = m.fs.mknod(at(ROOT, os(name), bits | 0o666, 0o022), rdev).unwrap();
        assert_eq!((a.kind, a.rdev, a.mode), (kind, rdev, 0o644), "{name}");
        let key = format!("pre/{name}");
        assert_eq!(m.data(&key).as_deref(), Some(&b""[..]));
        let type_bits = if bits == 0 { libc::S_IFREG } else { bits };
        assert_eq!(m.meta(&key, "mode"), Some((type_bits | 0o644).to_string()));
        // Seen afresh from the object, chmod, then renamed: still the same type.
        let fresh = mount_with(m.store.clone(), |_| {});
        let (again, seen) = fresh.fs.lookup(ROOT, os(name)).unwrap();
        assert_eq!((seen.kind, seen.rdev), (kind, rdev), "{name}");
        let chmod = SetAttrs {
            mode: Some(0o600),
            ..SetAttrs::default()
        };
        assert_eq!(fresh.fs.setattr(again, chmod, None).unwrap().kind, kind);
        fresh
            .fs
            .rename(ROOT, os(name), ROOT, os(&format!("{name}2")))
            .unwrap();
        let (_, moved) = fresh.fs.lookup(ROOT, os(&format!("{name}2"))).unwrap();
        assert_eq!(
            (moved.kind, moved.rdev, moved.mode),
            (kind, rdev, 0o600),
            "{name}"
        );
        fresh.fs.unlink(ROOT, os(&format!("{name}2"))).unwrap();
    }
    assert!(m.store.keys().is_empty(), "{:?}", m.store.keys());
    let dir = m.fs.mknod(at(ROOT, os("d"), libc::S_IFDIR | 0o755, 0), 0);
    assert_eq!(dir.map(|_| ()).unwrap_err(), Errno::EINVAL);
    m.write_file(ROOT, "f", b"x");
    let taken = m.fs.mknod(at(ROOT, os("f"), libc::S_IFIFO | 0o644, 0), 0);
    assert_eq!(taken.map(|_| ()).unwrap_err(), Errno::EEXIST);
}

#[test]
fn times_are_kept_to_the_nanosecond_as_s3fs_writes_them() {
    use super::SetTime;
    use std::time::{Duration, SystemTime};
    let m = mount();
    let ino = m.write_file(ROOT, "f", b"x");
    for t in [
        SystemTime::UNIX_EPOCH + Duration::new(1_650_000_000, 123_456_789),
        SystemTime::UNIX_EPOCH + Duration::new(4_102_444_800, 0),
        SystemTime::UNIX_EPOCH - Duration::new(86_400 * 365, 250_000_000),
    ] {
        let set = SetAttrs {
            mtime: Some(SetTime::At(t)),
            ..SetAttrs::default()
        };
        m.fs.setattr(ino, set, None).unwrap();
        let fresh = mount_with(m.store.clone(), |_| {});
        assert_eq!(fresh.fs.lookup(ROOT, os("f")).unwrap().1.mtime, t);
    }
    // As s3fs wrote it for a FIFO whose time was set with `touch -d @1650000000.123456789`.
    let meta = [
        ("mode".to_owned(), "4516".to_owned()),
        ("mtime".to_owned(), "1650000000.123456789".to_owned()),
    ];
    m.store.insert("pre/theirs", b"", &meta);
    let (_, a) = m.fs.lookup(ROOT, os("theirs")).unwrap();
    assert_eq!(a.kind, Kind::Fifo);
    assert_eq!(
        a.mtime,
        SystemTime::UNIX_EPOCH + Duration::new(1_650_000_000, 123_456_789)
    );
}

#[test]
fn an_unlinked_open_file_keeps_its_bytes_until_closed_and_its_name_is_free() {
    let m = mount();
    let ino = m.write_file(ROOT, "f", b"old bytes");
    let reader = m.fs.open(ino, libc::O_RDONLY).unwrap().fh;
    let writer = m.fs.open(ino, libc::O_RDWR).unwrap().fh;
    m.fs.unlink(ROOT, os("f")).unwrap();
    assert_eq!(m.data("pre/f"), None);
    assert_eq!(m.fs.lookup(ROOT, os("f")).unwrap_err(), Errno::ENOENT);
    assert_eq!(m.fs.read(reader, 0, 100).unwrap(), &b"old bytes"[..]);
    m.fs.write(writer, 9, b" and more").unwrap();
    assert_eq!(m.fs.read(writer, 0, 100).unwrap(), &b"old bytes and more"[..]);
    assert_eq!(m.fs.getattr(ino).unwrap().size, 18);
    m.fs.flush(writer).unwrap();
    assert_eq!(m.data("pre/f"), None, "an unlinked file was uploaded");
    // The name is free: a new file there is another file.
    let new = m.write_file(ROOT, "f", b"new");
    assert_ne!(new, ino);
    m.fs.release(writer).unwrap();
    m.fs.release(reader).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b"new"[..]));
    // Closed, the unlinked file is gone, whatever now has its old name.
    assert_eq!(m.fs.getattr(ino).unwrap_err(), Errno::ENOENT);
    assert_eq!(m.fs.getattr(new).unwrap().size, 3);
    // A large file unlinked while it streams leaves no upload behind.
    let (_, fh) = m.create_written(ROOT, "big", &pattern(PART as usize * 2));
    assert!(m.store.open_uploads() > 0);
    m.fs.unlink(ROOT, os("big")).unwrap();
    m.fs.release(fh).unwrap();
    assert_eq!((m.store.open_uploads(), m.data("pre/big")), (0, None));
}

#[test]
fn a_renamed_open_file_follows_its_name_and_a_replaced_one_keeps_its_bytes() {
    let m = mount();
    let (ino, fh) = m.create_written(ROOT, "a", b"written before ");
    let c = m.write_file(ROOT, "c", b"the replaced file");
    let reader = m.fs.open(c, libc::O_RDONLY).unwrap().fh;
    m.fs.rename(ROOT, os("a"), ROOT, os("c")).unwrap();
    m.fs.write(fh, 15, b"and after the rename").unwrap();
    assert_eq!(m.fs.getattr(ino).unwrap().size, 35);
    m.fs.release(fh).unwrap();
    assert_eq!(m.data("pre/a"), None);
    assert_eq!(
        m.data("pre/c").as_deref(),
        Some(&b"written before and after the rename"[..])
    );
    assert_eq!(m.fs.read(reader, 0, 100).unwrap(), &b"the replaced file"[..]);
    m.fs.release(reader).unwrap();
    assert_eq!(
        m.data("pre/c").as_deref(),
        Some(&b"written before and after the rename"[..])
    );
    // A directory renamed while a file in it is open for writing.
    let d = m.mkdir(ROOT, "d");
    let (_, fh) = m.create_written(d, "x", b"in d");
    m.fs.rename(ROOT, os("d"), ROOT, os("e")).unwrap();
    m.fs.write(fh, 4, b", then e").unwrap();
    m.fs.release(fh).unwrap();
    assert_eq!(m.data("pre/e/x").as_deref(), Some(&b"in d, then e"[..]));
    assert_eq!(
        m.store.keys().iter().filter(|k| k.starts_with("pre/d/")).count(),
        0
    );
}

#[test]
fn ctime_follows_every_change_atime_only_utimens_and_a_failed_call_changes_nothing() {
    use super::SetTime;
    use std::time::{Duration, SystemTime};
    let m = mount();
    let ino = m.write_file(ROOT, "f", b"x");
    let fresh = || {
        mount_with(m.store.clone(), |_| {})
            .fs
            .lookup(ROOT, os("f"))
            .unwrap()
            .1
    };
    let written = fresh();
    // Created, then written: accessed at its creation, changed at its write.
    assert!(written.atime <= written.mtime);
    assert_eq!(written.ctime, written.mtime);
    let past = SystemTime::UNIX_EPOCH + Duration::new(1_000_000_000, 5);
    let set_atime = SetAttrs {
        atime: Some(SetTime::At(past)),
        ..SetAttrs::default()
    };
    m.fs.setattr(ino, set_atime, None).unwrap();
    let a = fresh();
    assert_eq!((a.atime, a.mtime), (past, written.mtime));
    assert!(a.ctime > written.mtime, "utimens did not change ctime");
    std::thread::sleep(Duration::from_millis(5));
    let chmod = SetAttrs {
        mode: Some(0o600),
        ..SetAttrs::default()
    };
    m.store.fail(Call::Copy, 1);
    assert_eq!(m.fs.setattr(ino, chmod, None).unwrap_err(), Errno::EIO);
    let unchanged = fresh();
    assert_eq!((unchanged.mode, unchanged.ctime), (0o644, a.ctime));
    assert_eq!(m.fs.getattr(ino).unwrap().mode, 0o644);
    let b = m.fs.setattr(ino, chmod, None).unwrap();
    assert!(b.ctime > a.ctime);
    assert_eq!(
        (fresh().ctime, fresh().atime, fresh().mtime),
        (b.ctime, past, written.mtime)
    );
    // A write changes mtime and ctime, not atime.
    std::thread::sleep(Duration::from_millis(5));
    let o = m.fs.open(ino, libc::O_WRONLY).unwrap();
    m.fs.write(o.fh, 1, b"y").unwrap();
    m.fs.release(o.fh).unwrap();
    let w = fresh();
    assert!(w.mtime > b.ctime && w.ctime == w.mtime, "{w:?}");
    assert_eq!(w.atime, past);
}

#[test]
fn opening_to_truncate_empties_the_file_without_fetching_it() {
    let m = mount();
    let ino = m.write_file(ROOT, "f", &pattern(1 << 20));
    let gets = m.store.calls(Call::Get);
    let o = m.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    assert_eq!(m.store.calls(Call::Get), gets, "the old contents were fetched");
    assert_eq!(m.fs.getattr(ino).unwrap().size, 0);
    m.fs.release(o.fh).unwrap();
    assert_eq!(m.data("pre/f").as_deref(), Some(&b""[..]));
    m.write_file(ROOT, "g", b"contents");
    let (g, _) = m.fs.lookup(ROOT, os("g")).unwrap();
    let o = m.fs.open(g, libc::O_RDONLY | libc::O_TRUNC).unwrap();
    assert_eq!(m.fs.read(o.fh, 0, 100).unwrap(), &b""[..]);
    m.fs.release(o.fh).unwrap();
    assert_eq!(m.data("pre/g").as_deref(), Some(&b""[..]));
}

#[test]
fn chmod_keeps_what_s3_clients_set_beside_the_posix_attributes() {
    let m = mount();
    let meta = [
        ("app".to_owned(), "cms".to_owned()),
        ("uid".to_owned(), "7".to_owned()),
    ];
    m.store.insert("pre/page.html", b"<html>", &meta);
    m.store.set_content_type("pre/page.html", "text/html");
    let (ino, a) = m.fs.lookup(ROOT, os("page.html")).unwrap();
    assert_eq!(a.uid, 7);
    let chmod = SetAttrs {
        mode: Some(0o600),
        ..SetAttrs::default()
    };
    let (heads, copies) = (m.store.calls(Call::Head), m.store.calls(Call::Copy));
    m.fs.setattr(ino, chmod, None).unwrap();
    // One HEAD tells both the attributes and what else to keep.
    assert_eq!(m.store.calls(Call::Head) - heads, 1);
    assert_eq!(m.store.calls(Call::Copy) - copies, 1);
    let o = m.store.object("pre/page.html").unwrap();
    assert_eq!(o.content_type.as_deref(), Some("text/html"));
    assert_eq!(m.meta("pre/page.html", "app").as_deref(), Some("cms"));
    assert_eq!(m.meta("pre/page.html", "uid").as_deref(), Some("7"));
    assert_eq!(
        m.meta("pre/page.html", "mode"),
        Some((libc::S_IFREG | 0o600).to_string())
    );
    assert_eq!(o.meta.iter().filter(|(k, _)| k == "uid").count(), 1);
    assert_eq!(o.data, &b"<html>"[..]);
    // A rename keeps them too, and changes the ctime.
    let before = mount_with(m.store.clone(), |_| {})
        .fs
        .lookup(ROOT, os("page.html"))
        .unwrap()
        .1;
    std::thread::sleep(std::time::Duration::from_millis(5));
    m.fs.rename(ROOT, os("page.html"), ROOT, os("moved.html"))
        .unwrap();
    let o = m.store.object("pre/moved.html").unwrap();
    assert_eq!(o.content_type.as_deref(), Some("text/html"));
    assert_eq!(m.meta("pre/moved.html", "app").as_deref(), Some("cms"));
    let after = mount_with(m.store.clone(), |_| {})
        .fs
        .lookup(ROOT, os("moved.html"))
        .unwrap()
        .1;
    assert_eq!((after.mode, after.uid, after.mtime), (0o600, 7, before.mtime));
    assert!(after.ctime > before.ctime, "{after:?}");
}

#[test]
fn a_directory_s_times_change_with_its_entries_and_not_when_a_call_fails() {
    // Every getattr asks the server, as with --attr-ttl 0.
    let m = mount_with(Memory::default(), |o| o.attr_ttl = Duration::ZERO);
    let d = m.mkdir(ROOT, "d");
    let e = m.mkdir(ROOT, "e");
    let times = |ino| {
        let a = m.fs.getattr(ino).unwrap();
        (a.mtime, a.ctime)
    };
    let tick = || std::thread::sleep(Duration::from_millis(5));
    let mut last = times(d);
    let mut changed = |what: &str, ino: u64, want: bool| {
        let now = times(ino);
        assert_eq!(now != last, want, "{what}: {last:?} -> {now:?}");
        if want {
            assert_eq!(now.0, now.1, "{what}: mtime and ctime together");
        }
        last = now;
        tick();
    };
    tick();
    let (_, fh) = m.create_written(d, "f", b"x");
    m.fs.release(fh).unwrap();
    changed("create", d, true);
    assert_eq!(m.fs.mkdir(at(d, os("f"), 0o755, 0)).unwrap_err(), Errno::EEXIST);
    changed("a failed mkdir", d, false);
    m.fs.symlink(at(d, os("l"), 0o777, 0), "f".as_ref()).unwrap();
    changed("symlink", d, true);
    m.fs.mknod(at(d, os("p"), libc::S_IFIFO | 0o644, 0), 0).unwrap();
    changed("mknod", d, true);
    m.mkdir(d, "sub");
    changed("mkdir", d, true);
    assert_eq!(m.fs.rmdir(ROOT, os("d")).unwrap_err(), Errno::ENOTEMPTY);
    changed("a failed rmdir", d, false);
    m.fs.unlink(d, os("l")).unwrap();
    changed("unlink", d, true);
    m.fs.rmdir(d, os("sub")).unwrap();
    changed("rmdir", d, true);
    // Writing a file changes the file, not its directory.
    let (ino, _) = m.fs.lookup(d, os("f")).unwrap();
    let o = m.fs.open(ino, libc::O_WRONLY).unwrap();
    m.fs.write(o.fh, 1, b"more").unwrap();
    m.fs.release(o.fh).unwrap();
    changed("a write", d, false);
    // A rename changes both directories.
    let before_e = times(e);
    m.fs.rename(d, os("f"), e, os("g")).unwrap();
    changed("rename out", d, true);
    assert!(times(e) > before_e, "rename in");
    // Times set explicitly after entry changes are what the directory
    // keeps (rsync -a sets a directory's times after filling it); a later
    // entry change moves them on again.
    let past = std::time::UNIX_EPOCH + Duration::new(1_500_000_000, 7);
    let set = SetAttrs {
        mtime: Some(super::SetTime::At(past)),
        ..Default::default()
    };
    m.fs.setattr(e, set, None).unwrap();
    assert_eq!(m.fs.getattr(e).unwrap().mtime, past);
    tick();
    m.fs.mknod(at(e, os("q"), libc::S_IFIFO | 0o644, 0), 0).unwrap();
    assert!(
        m.fs.getattr(e).unwrap().mtime > past,
        "an entry change after utimens"
    );
}

#[test]
fn listings_give_the_types_the_mount_has_seen() {
    let m = mount();
    m.write_file(ROOT, "f", b"x");
    m.fs.symlink(at(ROOT, os("l"), 0o777, 0), "f".as_ref()).unwrap();
    m.fs.mknod(at(ROOT, os("p"), libc::S_IFIFO | 0o644, 0), 0)
        .unwrap();
    m.mkdir(ROOT, "d");
    let got = m.list_dir(ROOT, 100);
    let kind = |n: &str| got.iter().find(|(name, _)| name == n).map(|(_, k)| *k);
    assert_eq!(kind("f"), Some(Kind::File));
    assert_eq!(kind("l"), Some(Kind::Symlink));
    assert_eq!(kind("p"), Some(Kind::Fifo));
    assert_eq!(kind("d"), Some(Kind::Dir));
}

/// Reads `[at, at + len)` of `ino` through a handle of its own.
fn read_at(m: &Mount, ino: u64, at: u64, len: u32) -> Vec<u8> {
    let o = m.fs.open(ino, libc::O_RDONLY).unwrap();
    let got = m.fs.read(o.fh, at, len).unwrap().to_vec();
    m.fs.release(o.fh).unwrap();
    settle(m);
    got
}

/// Waits for the block cache's background writes of what was fetched.
fn settle(m: &Mount) {
    if let Some(c) = &m.fs.blocks {
        c.settle();
    }
}

#[test]
fn what_was_read_is_read_again_from_the_block_cache_until_the_object_changes() {
    let m = mount_with(Memory::default(), |o| o.block_cache_bytes = 64 << 20);
    let data = pattern(3 << 20);
    m.store.insert("pre/f", &data, &[]);
    let (ino, _) = m.fs.lookup(ROOT, os("f")).unwrap();
    assert_eq!(m.read_file(ino), data);
    settle(&m);
    let gets = m.store.calls(Call::Get);
    // Opened again (the kernel's pages gone): random reads ask nothing.
    for at in [5u64, 1 << 20, (3 << 20) - 4096, 777_777] {
        assert_eq!(read_at(&m, ino, at, 4096), &data[at as usize..at as usize + 4096]);
    }
    assert_eq!(m.store.calls(Call::Get), gets, "served from the cache");
    // Changed on the server: the new version is fetched, never the old
    // bytes.
    let new = pattern(3 << 20).iter().map(|b| b ^ 0xff).collect::<Vec<u8>>();
    m.store.insert("pre/f", &new, &[]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(read_at(&m, ino, 1 << 20, 4096), &new[1 << 20..(1 << 20) + 4096]);
    assert!(m.store.calls(Call::Get) > gets);
    // A cold random read fetches its whole 64 KiB block once.
    let gets = m.store.calls(Call::Get);
    assert_eq!(read_at(&m, ino, 2_000_100, 100), &new[2_000_100..2_000_200]);
    assert_eq!(read_at(&m, ino, 2_000_300, 100), &new[2_000_300..2_000_400]);
    assert_eq!(m.store.calls(Call::Get), gets + 1);
}

#[test]
fn an_object_changed_under_an_open_reader_is_not_cached_as_the_old_version() {
    let m = mount_with(Memory::default(), |o| o.block_cache_bytes = 64 << 20);
    let old = pattern(1 << 20);
    m.store.insert("pre/f", &old, &[]);
    let (ino, a) = m.fs.lookup(ROOT, os("f")).unwrap();
    let old_etag = a.etag.unwrap();
    let o = m.fs.open(ino, libc::O_RDONLY).unwrap();
    // Same size, other bytes, while the handle is open.
    let new: Vec<u8> = old.iter().map(|b| b.wrapping_add(1)).collect();
    m.store.insert("pre/f", &new, &[]);
    let got = m.fs.read(o.fh, 0, 4096).unwrap();
    assert_eq!(got, &new[..4096], "what the server has now, as without a cache");
    m.fs.release(o.fh).unwrap();
    settle(&m);
    // Nothing of `new` was filed under the old version, which a reader
    // of the old version (were it put back) would be served.
    let cache = m.fs.blocks.as_ref().unwrap();
    assert!(cache.get("pre/f", &old_etag, 0, 4096).is_none());
    assert_eq!(read_at(&m, ino, 0, 4096), &new[..4096]);
}

#[test]
fn lookups_that_keep_missing_ask_for_object_and_directory_at_once() {
    let m = mount();
    m.store.insert("pre/file", b"x", &[]);
    m.store.insert("pre/dir/inner", b"y", &[]);
    let calls = |m: &Mount| (m.store.calls(Call::Head), m.store.calls(Call::List));
    // A hit asks one HEAD.
    let before = calls(&m);
    assert!(m.fs.lookup(ROOT, os("file")).is_ok());
    assert_eq!(calls(&m), (before.0 + 1, before.1));
    // Misses: a HEAD, then a listing.
    for name in ["new1", "new2"] {
        assert_eq!(m.fs.lookup(ROOT, os(name)).unwrap_err(), Errno::ENOENT);
    }
    // After two misses in a row, both at once, with the same answers.
    let before = calls(&m);
    assert_eq!(m.fs.lookup(ROOT, os("new3")).unwrap_err(), Errno::ENOENT);
    assert_eq!(calls(&m), (before.0 + 1, before.1 + 1));
    let (_, a) = m.fs.lookup(ROOT, os("dir")).unwrap();
    assert_eq!(a.kind, Kind::Dir);
    // Found something: back to one request for a hit.
    let before = calls(&m);
    let (_, a) = m.fs.lookup(ROOT, os("file")).unwrap();
    assert_eq!((a.kind, a.size), (Kind::File, 1));
    assert_eq!(calls(&m), (before.0 + 1, before.1));
}
