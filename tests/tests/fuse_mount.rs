//! fuse-mount on a real FUSE mount (root, /dev/fuse, fusermount3) over a
//! real objd: what S3 clients wrote reads back through POSIX calls, with
//! attributes from s3fs-style metadata, paginated directories, refusals
//! with the right errno, and a clean unmount on SIGTERM.

use aws_sdk_s3::primitives::ByteStream;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use strata_tests::{ACCESS_KEY, SECRET_KEY, Server, pattern, put_object, s3_client, workspace_bin};

mod fuse_support;

use fuse_support::{Mount, mounted, sh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_written_through_s3_read_back_through_the_mount() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsb").send().await.unwrap();
    let big = pattern(9 * 1024 * 1024 + 123, 5);
    put_object(&c, "fsb", "data/big.bin", big.clone()).await.unwrap();
    put_object(&c, "fsb", "data/nested/deep/leaf.txt", b"leaf".to_vec())
        .await
        .unwrap();
    put_object(&c, "fsb", "top.txt", b"hello mount".to_vec())
        .await
        .unwrap();
    put_object(&c, "fsb", "empty-dir/", Vec::new()).await.unwrap();
    // s3fs-style POSIX metadata.
    c.put_object()
        .bucket("fsb")
        .key("data/script.sh")
        .body(ByteStream::from_static(b"#!/bin/sh\n"))
        .metadata("mode", "33261") // 0o100755
        .metadata("uid", "1234")
        .metadata("gid", "5678")
        .metadata("mtime", "1700000000")
        .send()
        .await
        .unwrap();
    for i in 0..2500 {
        put_object(&c, "fsb", &format!("many/f{i:05}"), Vec::new())
            .await
            .unwrap();
    }
    let endpoint = s.endpoint.clone();
    let m = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsb", &["--list-page", "1000", "--read-only"]);
        // Read twice: the second opening may reuse the cached pages.
        assert_eq!(std::fs::read(m.path("top.txt")).unwrap(), b"hello mount");
        assert_eq!(std::fs::read(m.path("top.txt")).unwrap(), b"hello mount");
        m
    })
    .await
    .unwrap();
    // Changed through S3 (same size, same second): once the attribute TTL
    // (1 s) has passed, the next opening reads the new version.
    put_object(&c, "fsb", "top.txt", b"HELLO MOUNT".to_vec())
        .await
        .unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(std::fs::read(m.path("top.txt")).unwrap(), b"HELLO MOUNT");
        // Reads, whole and ranged.
        assert_eq!(std::fs::read(m.path("data/big.bin")).unwrap(), big);
        let mut f = std::fs::File::open(m.path("data/big.bin")).unwrap();
        f.seek(SeekFrom::Start(5_000_000)).unwrap();
        let mut buf = vec![0u8; 70_000];
        f.read_exact(&mut buf).unwrap();
        assert_eq!(&buf[..], &big[5_000_000..5_070_000]);
        drop(f);
        assert_eq!(
            std::fs::read(m.path("data/nested/deep/leaf.txt")).unwrap(),
            b"leaf"
        );
        // Directories from prefixes and markers.
        let mut names: Vec<String> = std::fs::read_dir(m.path(""))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, vec!["data", "empty-dir", "many", "top.txt"]);
        assert!(m.path("empty-dir").is_dir());
        assert_eq!(std::fs::read_dir(m.path("empty-dir")).unwrap().count(), 0);
        assert!(m.path("data/nested/deep").is_dir());
        // A directory larger than a listing page lists whole.
        let n = std::fs::read_dir(m.path("many")).unwrap().count();
        assert_eq!(n, 2500);
        // Attributes: size, and s3fs metadata where present.
        let meta = std::fs::metadata(m.path("data/big.bin")).unwrap();
        assert_eq!(meta.len(), big.len() as u64);
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        let script = std::fs::metadata(m.path("data/script.sh")).unwrap();
        assert_eq!(script.permissions().mode() & 0o7777, 0o755);
        assert_eq!((script.uid(), script.gid()), (1234, 5678));
        assert_eq!(script.mtime(), 1_700_000_000);
        // Missing paths, and changes refused by a read-only mount.
        let e = std::fs::metadata(m.path("nope")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(2)); // ENOENT
        let e = std::fs::write(m.path("new.txt"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(30), "{e}"); // EROFS
        let e = std::fs::remove_file(m.path("top.txt")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(30), "{e}");
        // SIGTERM unmounts even while a file is open.
        let _open = std::fs::File::open(m.path("top.txt")).unwrap();
        m.stop();
        // A missing name is remembered for the TTL like a present one: a
        // file another client makes meanwhile shows after it; one made
        // through the mount itself at once.
        let cached = Mount::start(&endpoint, "fsb", &["--attr-ttl", "30"]);
        let other = Mount::start(&endpoint, "fsb", &["--attr-ttl", "0"]);
        assert!(std::fs::metadata(cached.path("later.txt")).is_err());
        std::fs::write(other.path("later.txt"), b"from elsewhere").unwrap();
        assert!(std::fs::metadata(other.path("later.txt")).is_ok());
        let e = std::fs::metadata(cached.path("later.txt")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(2), "the missing name was asked again");
        assert!(std::fs::metadata(cached.path("made.txt")).is_err());
        std::fs::write(cached.path("made.txt"), b"made here").unwrap();
        assert_eq!(std::fs::read(cached.path("made.txt")).unwrap(), b"made here");
        other.stop();
        cached.stop();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_gives_eio_and_a_dead_mount_is_recovered() {
    let mut s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsc").send().await.unwrap();
    put_object(&c, "fsc", "a.txt", b"alpha".to_vec()).await.unwrap();
    let endpoint = s.endpoint.clone();
    let (mut m, tmp_dir) = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsc", &["--attr-ttl", "0", "--request-timeout", "5"]);
        assert_eq!(std::fs::read(m.path("a.txt")).unwrap(), b"alpha");
        let dir = m.dir.clone();
        (m, dir)
    })
    .await
    .unwrap();
    // objd goes away: calls fail with EIO, quickly, instead of hanging.
    s.kill();
    let path = m.path("a.txt");
    let started = Instant::now();
    let e = tokio::task::spawn_blocking(move || std::fs::read(path).unwrap_err())
        .await
        .unwrap();
    assert_eq!(e.raw_os_error(), Some(5), "{e}"); // EIO
    assert!(started.elapsed() < Duration::from_secs(20));
    s.restart();
    // The mount process dies: the mount point is left "not connected";
    // a new fuse-mount on it recovers it.
    m.child.kill().unwrap();
    m.child.wait().unwrap();
    let e = std::fs::metadata(&tmp_dir).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(107), "{e}"); // ENOTCONN
    let endpoint = s.endpoint.clone();
    let dir = tmp_dir.clone();
    tokio::task::spawn_blocking(move || {
        let child = Command::new(workspace_bin("fuse-mount"))
            .arg(&endpoint)
            .arg("fsc")
            .arg(&dir)
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .spawn()
            .unwrap();
        let again = Mount {
            child,
            dir: dir.clone(),
            _tmp: tempfile::tempdir().unwrap(),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::fs::read(again.path("a.txt")).ok().as_deref() != Some(&b"alpha"[..]) {
            assert!(
                Instant::now() < deadline,
                "the stale mount point was not recovered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        again.stop();
    })
    .await
    .unwrap();
    drop(m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_written_through_the_mount_are_objects_with_their_attributes() {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsw").send().await.unwrap();
    put_object(&c, "fsw", "existing.txt", b"0123456789".to_vec())
        .await
        .unwrap();
    let endpoint = s.endpoint.clone();
    let big = pattern(20 * 1024 * 1024 + 7, 9);
    let big2 = big.clone();
    let m = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsw/home", &["--attr-ttl", "0"]);
        // Create and write; fsync makes it an object before close.
        let mut f = std::fs::File::create(m.path("notes.txt")).unwrap();
        f.write_all(b"first line\n").unwrap();
        f.sync_all().unwrap();
        f.write_all(b"second line\n").unwrap();
        drop(f);
        // Append, and a random write into the middle.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(m.path("notes.txt"))
            .unwrap();
        f.write_all(b"third\n").unwrap();
        drop(f);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("notes.txt"))
            .unwrap();
        f.write_all_at(b"FIRST", 0).unwrap();
        drop(f);
        assert_eq!(
            std::fs::read(m.path("notes.txt")).unwrap(),
            b"FIRST line\nsecond line\nthird\n"
        );
        // A large file goes up in parts; truncation; attributes.
        std::fs::write(m.path("big.bin"), &big2).unwrap();
        assert_eq!(std::fs::read(m.path("big.bin")).unwrap(), big2);
        // A directory's mtime and ctime change with its entries, as in a
        // local directory, and not with a write to a file in it.
        let local = tempfile::tempdir().unwrap();
        for root in [m.path(""), local.path().to_path_buf()] {
            let dir = root.join("times");
            std::fs::create_dir(&dir).unwrap();
            let stamp = || {
                use std::os::unix::fs::MetadataExt;
                let md = std::fs::metadata(&dir).unwrap();
                (
                    md.mtime_nsec() + md.mtime() * 1_000_000_000,
                    md.ctime_nsec() + md.ctime() * 1_000_000_000,
                )
            };
            let mut last = stamp();
            let mut step = |what: &str, want: bool| {
                let now = stamp();
                assert_eq!(
                    now.0 > last.0 && now.1 > last.1,
                    want,
                    "{what} in {}",
                    root.display()
                );
                last = now;
                std::thread::sleep(std::time::Duration::from_millis(20));
            };
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::write(dir.join("a"), b"x").unwrap();
            step("create", true);
            std::fs::OpenOptions::new()
                .append(true)
                .open(dir.join("a"))
                .unwrap()
                .write_all(b"y")
                .unwrap();
            step("append", false);
            std::os::unix::fs::symlink("a", dir.join("l")).unwrap();
            step("symlink", true);
            std::fs::rename(dir.join("l"), dir.join("m")).unwrap();
            step("rename", true);
            assert!(std::fs::create_dir(dir.join("a")).is_err());
            step("a failed mkdir", false);
            std::fs::remove_file(dir.join("m")).unwrap();
            step("unlink", true);
            std::fs::create_dir(dir.join("s")).unwrap();
            step("mkdir", true);
            std::fs::remove_dir(dir.join("s")).unwrap();
            step("rmdir", true);
        }
        // Parts sent while writing in order, then written again, or cut
        // off by a truncation, or sent before a chmod: the object is what
        // was written last.
        let mut expect = big2.clone();
        let mut f = std::fs::File::create(m.path("rewritten.bin")).unwrap();
        f.write_all(&big2).unwrap();
        f.write_all_at(b"REWRITTEN", 100).unwrap();
        f.write_all_at(b"AGAIN", 9 << 20).unwrap();
        drop(f);
        expect[100..109].copy_from_slice(b"REWRITTEN");
        expect[9 << 20..(9 << 20) + 5].copy_from_slice(b"AGAIN");
        assert_eq!(std::fs::read(m.path("rewritten.bin")).unwrap(), expect);
        let mut f = std::fs::File::create(m.path("cut.bin")).unwrap();
        f.write_all(&big2).unwrap();
        f.set_len(3 << 20).unwrap();
        f.write_all_at(b"tail", 3 << 20).unwrap();
        drop(f);
        let mut cut = big2[..3 << 20].to_vec();
        cut.extend_from_slice(b"tail");
        assert_eq!(std::fs::read(m.path("cut.bin")).unwrap(), cut);
        let mut f = std::fs::File::create(m.path("moded.bin")).unwrap();
        f.write_all(&big2).unwrap();
        f.set_permissions(std::fs::Permissions::from_mode(0o640)).unwrap();
        drop(f);
        assert_eq!(std::fs::read(m.path("moded.bin")).unwrap(), big2);
        let mode = std::fs::metadata(m.path("moded.bin"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o640);
        std::fs::OpenOptions::new()
            .write(true)
            .open(m.path("notes.txt"))
            .unwrap()
            .set_len(5)
            .unwrap();
        assert_eq!(std::fs::read(m.path("notes.txt")).unwrap(), b"FIRST");
        std::fs::set_permissions(m.path("notes.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
        sh(&format!(
            "touch -m -d @1600000000 {}",
            m.path("notes.txt").display()
        ));
        let meta = std::fs::metadata(m.path("notes.txt")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
        assert_eq!(meta.mtime(), 1_600_000_000);
        // Directories: mkdir, rmdir of a non-empty one, rename, unlink.
        std::fs::create_dir(m.path("dir")).unwrap();
        std::fs::write(m.path("dir/a.txt"), b"a").unwrap();
        let e = std::fs::remove_dir(m.path("dir")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(39), "{e}"); // ENOTEMPTY
        std::fs::rename(m.path("dir/a.txt"), m.path("dir/b.txt")).unwrap();
        assert!(!m.path("dir/a.txt").exists());
        assert_eq!(std::fs::read(m.path("dir/b.txt")).unwrap(), b"a");
        // Directories rename with everything below them; mv works too.
        std::fs::create_dir(m.path("dir/sub")).unwrap();
        std::fs::write(m.path("dir/sub/c.txt"), b"c").unwrap();
        std::fs::rename(m.path("dir"), m.path("renamed")).unwrap();
        assert_eq!(std::fs::read(m.path("renamed/sub/c.txt")).unwrap(), b"c");
        assert!(!m.path("dir").exists());
        let e = std::fs::rename(m.path("renamed"), m.path("renamed/sub/inside")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(22), "{e}"); // EINVAL
        sh(&format!(
            "mv {} {}",
            m.path("renamed").display(),
            m.path("moved").display()
        ));
        assert_eq!(std::fs::read(m.path("moved/b.txt")).unwrap(), b"a");
        std::fs::remove_file(m.path("moved/sub/c.txt")).unwrap();
        std::fs::remove_dir(m.path("moved/sub")).unwrap();
        std::fs::remove_file(m.path("moved/b.txt")).unwrap();
        std::fs::remove_dir(m.path("moved")).unwrap();
        // Hard links do not exist in S3.
        let e = std::fs::hard_link(m.path("big.bin"), m.path("link")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(1), "{e}"); // EPERM
        // Tools: cp -r and tar x of a tree.
        let src = tempfile::tempdir().unwrap();
        sh(&format!(
            "mkdir -p {0}/t/a/b && echo one > {0}/t/a/one.txt && echo two > {0}/t/a/b/two.txt && \
             tar -C {0} -cf {0}/t.tar t && cp -r {0}/t {1}/copied && tar -C {1} -xf {0}/t.tar",
            src.path().display(),
            m.path("").display()
        ));
        sh(&format!(
            "diff -r {}/t {}/copied",
            src.path().display(),
            m.path("").display()
        ));
        sh(&format!(
            "diff -r {}/t {}/t",
            src.path().display(),
            m.path("").display()
        ));
        m
    })
    .await
    .unwrap();
    // What S3 clients see: the objects, with s3fs-style metadata.
    let got = strata_tests::get_object(&c, "fsw", "home/notes.txt")
        .await
        .unwrap();
    assert_eq!(got, b"FIRST");
    let h = c
        .head_object()
        .bucket("fsw")
        .key("home/notes.txt")
        .send()
        .await
        .unwrap();
    let meta = h.metadata().unwrap();
    assert_eq!(meta.get("mode").map(String::as_str), Some("33152")); // 0o100600
    assert_eq!(meta.get("mtime").map(String::as_str), Some("1600000000"));
    assert_eq!(
        strata_tests::get_object(&c, "fsw", "home/big.bin").await.unwrap(),
        big
    );
    let h = c
        .head_object()
        .bucket("fsw")
        .key("home/big.bin")
        .send()
        .await
        .unwrap();
    assert!(h.e_tag().unwrap().ends_with("-3\""), "{:?}", h.e_tag());
    for (key, mode) in [("home/rewritten.bin", "33188"), ("home/moded.bin", "33184")] {
        let h = c.head_object().bucket("fsw").key(key).send().await.unwrap();
        let meta = h.metadata().unwrap();
        assert_eq!(meta.get("mode").map(String::as_str), Some(mode), "{key}");
        assert_eq!(h.content_length(), Some(big.len() as i64), "{key}");
    }
    // Nothing is left of the uploads given up or completed.
    let uploads = c.list_multipart_uploads().bucket("fsw").send().await.unwrap();
    assert!(uploads.uploads().is_empty(), "{:?}", uploads.uploads());
    assert_eq!(
        strata_tests::get_object(&c, "fsw", "home/t/a/b/two.txt")
            .await
            .unwrap(),
        b"two\n"
    );
    // Outside the mounted prefix nothing changed.
    assert_eq!(
        strata_tests::get_object(&c, "fsw", "existing.txt").await.unwrap(),
        b"0123456789"
    );
    // Names: 255 bytes work, 256 answer ENAMETOOLONG, as a path whose key
    // would pass S3's 1024 bytes does (never EIO).
    let m = tokio::task::spawn_blocking(move || {
        const ENAMETOOLONG: i32 = 36;
        let longest = m.path(&"n".repeat(255));
        std::fs::write(&longest, b"255").unwrap();
        assert_eq!(std::fs::read(&longest).unwrap(), b"255");
        let too_long = m.path(&"n".repeat(256));
        let err = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
        assert_eq!(err(std::fs::write(&too_long, b"x")), Some(ENAMETOOLONG));
        assert_eq!(err(std::fs::create_dir(&too_long)), Some(ENAMETOOLONG));
        assert_eq!(err(std::fs::metadata(&too_long).map(|_| ())), Some(ENAMETOOLONG));
        assert_eq!(err(std::fs::rename(&longest, &too_long)), Some(ENAMETOOLONG));
        // "home/" and four directories of 250 bytes make 1009 bytes of key.
        let deep = (0..4).fold(m.path(""), |p, i| p.join(format!("{i}{}", "d".repeat(249))));
        std::fs::create_dir_all(&deep).unwrap();
        std::fs::write(deep.join("f".repeat(15)), b"at the limit").unwrap();
        assert_eq!(
            err(std::fs::write(deep.join("f".repeat(16)), b"x")),
            Some(ENAMETOOLONG)
        );
        assert_eq!(
            err(std::fs::create_dir(deep.join("d".repeat(15)))),
            Some(ENAMETOOLONG)
        );
        // Special files: a FIFO that carries bytes between processes, a
        // socket a server binds, a device node; chmod, rename and unlink
        // work on each, and each keeps its type.
        use std::os::unix::fs::FileTypeExt;
        sh(&format!(
            "mkfifo {0} && mknod {1} c 1 3",
            m.path("fifo").display(),
            m.path("null").display()
        ));
        let fifo = m.path("fifo");
        let writer = std::thread::spawn(move || std::fs::write(fifo, b"through the pipe").unwrap());
        assert_eq!(std::fs::read(m.path("fifo")).unwrap(), b"through the pipe");
        writer.join().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(m.path("sock")).unwrap();
        drop(listener);
        for (name, is_type) in [
            ("fifo", FileTypeExt::is_fifo as fn(&std::fs::FileType) -> bool),
            ("sock", FileTypeExt::is_socket),
            ("null", FileTypeExt::is_char_device),
        ] {
            std::fs::set_permissions(m.path(name), std::fs::Permissions::from_mode(0o600)).unwrap();
            let moved = format!("{name}.moved");
            std::fs::rename(m.path(name), m.path(&moved)).unwrap();
            let meta = std::fs::symlink_metadata(m.path(&moved)).unwrap();
            assert!(is_type(&meta.file_type()), "{name}: {:?}", meta.file_type());
            assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "{name}");
            if name == "null" {
                assert_eq!(meta.rdev(), 0x103);
            }
            std::fs::remove_file(m.path(&moved)).unwrap();
        }
        // An open file outlives its name: unlinked, it keeps its bytes
        // until closed and comes back from nowhere; renamed, it is
        // uploaded under its new name.
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(m.path("open.txt"))
            .unwrap();
        f.write_all(b"kept").unwrap();
        f.sync_all().unwrap();
        std::fs::remove_file(m.path("open.txt")).unwrap();
        assert!(!m.path("open.txt").exists());
        f.write_all(b" after unlink").unwrap();
        f.sync_all().unwrap();
        f.seek(SeekFrom::Start(0)).unwrap();
        let mut text = String::new();
        f.read_to_string(&mut text).unwrap();
        assert_eq!(text, "kept after unlink");
        assert_eq!(f.metadata().unwrap().len(), 17);
        drop(f);
        assert!(!m.path("open.txt").exists());
        let mut g = std::fs::File::create(m.path("moving.txt")).unwrap();
        g.write_all(b"before").unwrap();
        std::fs::rename(m.path("moving.txt"), m.path("moved.txt")).unwrap();
        g.write_all(b" and after the rename").unwrap();
        drop(g);
        assert!(!m.path("moving.txt").exists());
        assert_eq!(
            std::fs::read(m.path("moved.txt")).unwrap(),
            b"before and after the rename"
        );
        // Times: atime set by utimens only, ctime moved by every change.
        sh(&format!(
            "touch -a -d @1500000000.25 {}",
            m.path("moved.txt").display()
        ));
        let t = std::fs::metadata(m.path("moved.txt")).unwrap();
        assert_eq!((t.atime(), t.atime_nsec()), (1_500_000_000, 250_000_000));
        assert!((t.ctime(), t.ctime_nsec()) > (t.mtime(), t.mtime_nsec()));
        std::fs::set_permissions(m.path("moved.txt"), std::fs::Permissions::from_mode(0o640)).unwrap();
        let c = std::fs::metadata(m.path("moved.txt")).unwrap();
        assert!((c.ctime(), c.ctime_nsec()) > (t.ctime(), t.ctime_nsec()));
        assert_eq!(
            (c.atime(), c.mtime(), c.mtime_nsec()),
            (t.atime(), t.mtime(), t.mtime_nsec())
        );
        m
    })
    .await
    .unwrap();
    let dirs: String = (0..4).map(|i| format!("{i}{}/", "d".repeat(249))).collect();
    let deep_key = format!("home/{dirs}{}", "f".repeat(15));
    assert_eq!(deep_key.len(), 1024);
    assert_eq!(
        strata_tests::get_object(&c, "fsw", &deep_key).await.unwrap(),
        b"at the limit"
    );
    // chmod through the mount keeps what an S3 client set beside the POSIX
    // attributes: its metadata and the content type.
    c.put_object()
        .bucket("fsw")
        .key("home/page.html")
        .content_type("text/html")
        .metadata("app", "cms")
        .body(ByteStream::from_static(b"<html>"))
        .send()
        .await
        .unwrap();
    let m = tokio::task::spawn_blocking(move || {
        std::fs::set_permissions(m.path("page.html"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::rename(m.path("page.html"), m.path("site.html")).unwrap();
        m
    })
    .await
    .unwrap();
    let h = c
        .head_object()
        .bucket("fsw")
        .key("home/site.html")
        .send()
        .await
        .unwrap();
    assert_eq!(h.content_type(), Some("text/html"));
    let meta = h.metadata().unwrap();
    assert_eq!(meta.get("app").map(String::as_str), Some("cms"));
    assert_eq!(meta.get("mode").map(String::as_str), Some("33184")); // 0o100640
    tokio::task::spawn_blocking(move || m.stop()).await.unwrap();
}

/// A small deterministic generator for the model test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Everything below `root`: relative path -> (is dir, permission bits, content).
fn snapshot(root: &Path) -> std::collections::BTreeMap<String, (char, u32, Vec<u8>)> {
    use std::os::unix::fs::FileTypeExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let perm = meta.permissions().mode() & 0o777;
            let t = meta.file_type();
            let entry = if t.is_dir() {
                stack.push(p);
                ('d', perm, Vec::new())
            } else if t.is_symlink() {
                let target = std::fs::read_link(&p).unwrap();
                ('l', 0, target.into_os_string().into_encoded_bytes())
            } else if t.is_fifo() {
                ('p', perm, Vec::new())
            } else {
                ('f', perm, std::fs::read(&p).unwrap())
            };
            out.insert(rel, entry);
        }
    }
    out
}

/// One random operation, applied the same way under `root`; returns the
/// error kind (errno) or 0.
fn apply(root: &Path, op: u64, a: &str, b: &str, data: &[u8], at: u64) -> i32 {
    use std::os::unix::fs::FileExt;
    use std::os::unix::fs::OpenOptionsExt;
    let p = root.join(a);
    let q = root.join(b);
    // Opening a FIFO for writing must not wait for a reader (ENXIO).
    const O_NONBLOCK: i32 = 0o4000;
    let open = |o: &mut std::fs::OpenOptions| o.custom_flags(O_NONBLOCK).open(&p);
    let r: std::io::Result<()> = match op {
        0 => open(
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true),
        )
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(data)
        }),
        1 => open(std::fs::OpenOptions::new().write(true)).and_then(|f| f.write_all_at(data, at)),
        2 => open(std::fs::OpenOptions::new().append(true)).and_then(|mut f| {
            use std::io::Write;
            f.write_all(data)
        }),
        3 => open(std::fs::OpenOptions::new().write(true)).and_then(|f| f.set_len(at)),
        4 => std::fs::rename(&p, &q),
        5 => std::fs::remove_file(&p),
        6 => std::fs::create_dir(&p),
        7 => std::fs::remove_dir(&p),
        9 => {
            use rustix::fs::{CWD, FileType, Mode, mknodat};
            mknodat(CWD, &p, FileType::Fifo, Mode::from_raw_mode(0o644), 0).map_err(Into::into)
        }
        10 => std::os::unix::fs::symlink(b, &p),
        _ => std::fs::set_permissions(
            &p,
            std::fs::Permissions::from_mode(0o600 + (at as u32 % 2) * 0o44),
        ),
    };
    r.err().and_then(|e| e.raw_os_error()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_match_a_local_directory() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsm").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsm", &["--attr-ttl", "0"]);
        let local = tempfile::tempdir().unwrap();
        let names = ["f0", "f1", "d0", "d0/f2", "d0/f3", "d1", "d1/f4"];
        // Seeds that found bugs stay in this list.
        for seed in [
            0x9e37_79b9_7f4a_7c15u64,
            42,
            7_777,
            1,
            2,
            3,
            4,
            5,
            6,
            99,
            1234,
            31337,
            1 << 40,
            (1 << 40) + 1,
            (1 << 40) + 2,
            (1 << 40) + 3,
        ] {
            let mut rng = Rng(seed);
            // Seeds past the first twelve also make FIFOs and symlinks.
            let ops = if seed >= 1 << 40 { 11 } else { 9 };
            for step in 0..120 {
                let op = rng.below(ops);
                let a = names[rng.below(names.len() as u64) as usize];
                let b = names[rng.below(names.len() as u64) as usize];
                let len = rng.below(3000) as usize;
                let data: Vec<u8> = (0..len).map(|i| (i as u64 ^ step) as u8).collect();
                let at = rng.below(4000);
                let want = apply(local.path(), op, a, b, &data, at);
                let got = apply(&m.path(""), op, a, b, &data, at);
                assert_eq!(
                    got, want,
                    "seed {seed} step {step}: op {op} on {a} {b}: errno differs"
                );
                let (l, r) = (snapshot(local.path()), snapshot(&m.path("")));
                assert_eq!(r, l, "seed {seed} step {step}: op {op} on {a} {b}: trees differ");
            }
            // Start the next seed from empty trees.
            sh(&format!(
                "rm -rf {0}/* {1}/*",
                local.path().display(),
                m.path("").display()
            ));
        }
        m.stop();
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3fs_and_fuse_mount_read_each_others_files_and_attributes() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsx").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let ours = Mount::start(&endpoint, "fsx", &["--attr-ttl", "0"]);
        // Debian's s3fs on the same bucket.
        let tmp = tempfile::tempdir().unwrap();
        let theirs = tmp.path().join("s3fs");
        std::fs::create_dir(&theirs).unwrap();
        let passwd = tmp.path().join("passwd");
        std::fs::write(&passwd, format!("{ACCESS_KEY}:{SECRET_KEY}\n")).unwrap();
        std::fs::set_permissions(&passwd, std::fs::Permissions::from_mode(0o600)).unwrap();
        sh(&format!(
            "s3fs fsx {} -o url={endpoint},use_path_request_style,passwd_file={},stat_cache_expire=1",
            theirs.display(),
            passwd.display()
        ));
        let deadline = Instant::now() + Duration::from_secs(15);
        while !mounted(&theirs) {
            assert!(Instant::now() < deadline, "s3fs did not mount");
            std::thread::sleep(Duration::from_millis(50));
        }
        let result = std::panic::catch_unwind(|| {
            // Written by fuse-mount, read by s3fs.
            std::fs::create_dir(ours.path("from-ours")).unwrap();
            std::fs::write(ours.path("from-ours/a.txt"), b"written by fuse-mount").unwrap();
            std::fs::set_permissions(
                ours.path("from-ours/a.txt"),
                std::fs::Permissions::from_mode(0o640),
            )
            .unwrap();
            sh(&format!(
                "touch -m -d @1650000000 {}",
                ours.path("from-ours/a.txt").display()
            ));
            std::os::unix::fs::symlink("a.txt", ours.path("from-ours/link")).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            let theirs_a = theirs.join("from-ours/a.txt");
            while std::fs::read(&theirs_a).ok().as_deref() != Some(&b"written by fuse-mount"[..]) {
                assert!(Instant::now() < deadline, "s3fs does not see the file");
                std::thread::sleep(Duration::from_millis(200));
            }
            let m = std::fs::metadata(&theirs_a).unwrap();
            assert_eq!(m.permissions().mode() & 0o7777, 0o640);
            assert_eq!(m.mtime(), 1_650_000_000);
            assert_eq!(
                std::fs::read_link(theirs.join("from-ours/link")).unwrap(),
                Path::new("a.txt")
            );
            // Written by s3fs, read by fuse-mount.
            std::fs::create_dir(theirs.join("from-s3fs")).unwrap();
            std::fs::write(theirs.join("from-s3fs/b.txt"), b"written by s3fs").unwrap();
            std::fs::set_permissions(
                theirs.join("from-s3fs/b.txt"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
            std::os::unix::fs::symlink("b.txt", theirs.join("from-s3fs/link")).unwrap();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::read(ours.path("from-s3fs/b.txt")).ok().as_deref() != Some(&b"written by s3fs"[..])
            {
                assert!(Instant::now() < deadline, "fuse-mount does not see the file");
                std::thread::sleep(Duration::from_millis(200));
            }
            let m = std::fs::metadata(ours.path("from-s3fs/b.txt")).unwrap();
            assert_eq!(m.permissions().mode() & 0o7777, 0o600);
            assert!(ours.path("from-s3fs").is_dir());
            assert_eq!(
                std::fs::read_link(ours.path("from-s3fs/link")).unwrap(),
                Path::new("b.txt")
            );
            assert_eq!(
                std::fs::read(ours.path("from-s3fs/link")).unwrap(),
                b"written by s3fs"
            );
            // Special files and nanosecond times, each way.
            use std::os::unix::fs::FileTypeExt;
            sh(&format!(
                "mkfifo -m 0640 {0} && touch -h -d @1650000000.123456789 {0}",
                ours.path("from-ours/fifo").display()
            ));
            let theirs_fifo = theirs.join("from-ours/fifo");
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::symlink_metadata(&theirs_fifo).is_err() {
                assert!(Instant::now() < deadline, "s3fs does not see the FIFO");
                std::thread::sleep(Duration::from_millis(200));
            }
            let m = std::fs::symlink_metadata(&theirs_fifo).unwrap();
            assert!(m.file_type().is_fifo(), "{:?}", m.file_type());
            assert_eq!(m.permissions().mode() & 0o7777, 0o640);
            assert_eq!((m.mtime(), m.mtime_nsec()), (1_650_000_000, 123_456_789));
            sh(&format!(
                "mkfifo {0} && mknod {1} c 1 3 && touch -d @1700000000.5 {2}",
                theirs.join("from-s3fs/fifo").display(),
                theirs.join("from-s3fs/null").display(),
                theirs.join("from-s3fs/b.txt").display()
            ));
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::fs::symlink_metadata(ours.path("from-s3fs/null")).is_err() {
                assert!(
                    Instant::now() < deadline,
                    "fuse-mount does not see the device node"
                );
                std::thread::sleep(Duration::from_millis(200));
            }
            let fifo = std::fs::symlink_metadata(ours.path("from-s3fs/fifo")).unwrap();
            assert!(fifo.file_type().is_fifo(), "{:?}", fifo.file_type());
            let null = std::fs::symlink_metadata(ours.path("from-s3fs/null")).unwrap();
            assert!(null.file_type().is_char_device(), "{:?}", null.file_type());
            let b = std::fs::metadata(ours.path("from-s3fs/b.txt")).unwrap();
            assert_eq!((b.mtime(), b.mtime_nsec()), (1_700_000_000, 500_000_000));
        });
        let _ = Command::new("fusermount3").arg("-u").arg(&theirs).status();
        ours.stop();
        if let Err(p) = result {
            std::panic::resume_unwind(p);
        }
    })
    .await
    .unwrap();
}

#[test]
fn help_and_missing_credentials_are_clear() {
    let out = Command::new(workspace_bin("fuse-mount"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--read-only",
        "--uid",
        "--gid",
        "--file-mode",
        "--dir-mode",
        "--allow-other",
        "--attr-ttl",
        "--cache-dir",
        "--credentials-file",
        "--ca-file",
        "STRATA_ACCESS_KEY",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = Command::new(workspace_bin("fuse-mount"))
        .args(["http://127.0.0.1:9", "bucket", "/nonexistent"])
        .env_remove("STRATA_ACCESS_KEY")
        .env_remove("STRATA_SECRET_KEY")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("fuse-mount: no credentials"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_started_mid_write_does_not_upload_the_file_half_written() {
    use std::io::Write;
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("forks").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    let (m, f) = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "forks", &[]);
        let mut f = std::fs::File::create(m.path("log.txt")).unwrap();
        f.write_all(b"first half").unwrap();
        // The child gets a copy of the descriptor and closes it when it
        // execs (close-on-exec): the kernel sends the mount a flush.
        let st = std::process::Command::new("true").status().unwrap();
        assert!(st.success());
        (m, f)
    })
    .await
    .unwrap();
    let head = c.head_object().bucket("forks").key("log.txt").send().await;
    assert!(
        head.is_err() || head.as_ref().unwrap().content_length() == Some(0),
        "a half-written file was uploaded: {head:?}"
    );
    let m = tokio::task::spawn_blocking(move || {
        let mut f = f;
        f.write_all(b", second half").unwrap();
        drop(f);
        m
    })
    .await
    .unwrap();
    assert_eq!(
        strata_tests::get_object(&c, "forks", "log.txt").await.unwrap(),
        b"first half, second half"
    );
    drop(m);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_or_interrupted_writes_leave_the_previous_version() {
    use std::io::Write;
    let mut s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsf").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    // objd dies while a file is being written: fsync fails with EIO, and
    // the stored object is the previous version.
    let (written_tx, written_rx) = std::sync::mpsc::channel::<()>();
    let (killed_tx, killed_rx) = std::sync::mpsc::channel::<()>();
    let writer = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsf", &["--attr-ttl", "0", "--request-timeout", "5"]);
        std::fs::write(m.path("doc.txt"), b"version 1").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(m.path("doc.txt"))
            .unwrap();
        f.write_all(b"version 2, never stored").unwrap();
        written_tx.send(()).unwrap();
        killed_rx.recv().unwrap();
        let e = f.sync_all().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{e}"); // EIO
        drop(f);
        m
    });
    tokio::task::spawn_blocking(move || written_rx.recv().unwrap())
        .await
        .unwrap();
    s.kill();
    killed_tx.send(()).unwrap();
    let m = writer.await.unwrap();
    s.restart();
    assert_eq!(
        strata_tests::get_object(&c, "fsf", "doc.txt").await.unwrap(),
        b"version 1"
    );
    // The mount recovers once objd is back; then the mount dies mid-write
    // and the stored object stays whole.
    let mut m = tokio::task::spawn_blocking(move || {
        std::fs::write(m.path("doc.txt"), b"version 3").unwrap();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(m.path("doc.txt"))
            .unwrap();
        f.write_all(b"version 4, interrupted").unwrap();
        (m, f)
    })
    .await
    .unwrap();
    m.0.child.kill().unwrap();
    m.0.child.wait().unwrap();
    assert_eq!(
        strata_tests::get_object(&c, "fsf", "doc.txt").await.unwrap(),
        b"version 3"
    );
    drop(m.1);
    drop(m.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_files_and_write_back_space_are_bounded() {
    use std::io::Write;
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsl").send().await.unwrap();
    put_object(&c, "fsl", "r.txt", b"r".to_vec()).await.unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let m = Mount::start(
            &endpoint,
            "fsl",
            &["--max-open-files", "3", "--write-cache-mib", "2"],
        );
        // A write-back cache of 2 MiB: a third MiB does not fit while the
        // first file is open, and fits again once it is closed.
        let mut a = std::fs::File::create(m.path("a.bin")).unwrap();
        a.write_all(&vec![1u8; 1 << 20]).unwrap();
        let mut b = std::fs::File::create(m.path("b.bin")).unwrap();
        b.write_all(&vec![2u8; (1 << 20) - 4096]).unwrap();
        let e = b.write_all(&vec![2u8; 1 << 20]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(28), "{e}"); // ENOSPC
        drop(a);
        b.write_all(&vec![3u8; 1 << 20]).unwrap();
        drop(b);
        // Three files open at most.
        let open: Vec<_> = (0..3)
            .map(|_| std::fs::File::open(m.path("r.txt")).unwrap())
            .collect();
        let e = std::fs::File::open(m.path("r.txt")).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(24), "{e}"); // EMFILE
        drop(open);
        assert_eq!(std::fs::read(m.path("r.txt")).unwrap(), b"r");
        m.stop();
    })
    .await
    .unwrap();
    // A file larger than the write-back cache, written in order, streams
    // through it: sent parts leave the cache. Going back into them before
    // close is refused with EIO.
    let endpoint = s.endpoint.clone();
    let big = pattern((50 << 20) + 3, 11);
    let big2 = big.clone();
    tokio::task::spawn_blocking(move || {
        use std::os::unix::fs::FileExt;
        let m = Mount::start(&endpoint, "fsl", &["--write-cache-mib", "20"]);
        let mut f = std::fs::File::create(m.path("huge.bin")).unwrap();
        for chunk in big2.chunks(1 << 20) {
            f.write_all(chunk).unwrap();
        }
        let e = f.write_all_at(b"back", 0).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(5), "{e}"); // EIO
        drop(f);
        m.stop();
    })
    .await
    .unwrap();
    let got = strata_tests::get_object(&c, "fsl", "huge.bin").await.unwrap();
    assert!(got == big, "the streamed object differs");
}
