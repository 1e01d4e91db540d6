//! fuse-mount with the tools and settings of everyday use, on a real FUSE
//! mount over a real objd: rsync, git and SQLite, HTTPS endpoints, mount(8)
//! and fstab forms, bucket quotas as the filesystem size, the kernel's
//! permission checks, and directory reads with attributes.

mod fuse_support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use strata_tests::{ACCESS_KEY, SECRET_KEY, Server, objd_bin, pattern, put_object, s3_client, workspace_bin};

use fuse_support::{Mount, mounted, sh, sh_out};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsync_git_and_sqlite_work_on_the_mount() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fst").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    let local = tempfile::tempdir().unwrap();
    let l = local.path().to_path_buf();
    let m = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fst", &["--attr-ttl", "0"]);
        let mnt = m.path("");
        let (l, mnt) = (l.display(), mnt.display());
        // rsync -a keeps contents, modes and mtimes; a second run finds
        // nothing to send (it compares sizes and mtimes read back).
        sh(&format!(
            "mkdir -p {l}/tree/sub/deeper && printf 'alpha\\n' > {l}/tree/a.txt && \
             head -c 3000000 /dev/urandom > {l}/tree/sub/blob.bin && \
             printf 'x' > {l}/tree/sub/deeper/x && chmod 0640 {l}/tree/a.txt && \
             chmod 0755 {l}/tree/sub/deeper/x && touch -d @1500000000 {l}/tree/sub/blob.bin && \
             ln -s ../a.txt {l}/tree/sub/link && rsync -a {l}/tree/ {mnt}/tree/"
        ));
        sh(&format!("diff -r --no-dereference {l}/tree {mnt}/tree || (ls -la --time-style=+%s {l}/tree/sub {mnt}/tree/sub; false)"));
        let stat = |root: &str| {
            sh_out(&format!(
                "cd {root}/tree && find . -printf '%p %y %m %Ts %l\\n' | sort"
            ))
        };
        assert_eq!(stat(&l.to_string()), stat(&mnt.to_string()));
        let again = sh_out(&format!("rsync -a --itemize-changes {l}/tree/ {mnt}/tree/"));
        assert_eq!(again.trim(), "", "a second rsync found differences");
        // A symlink's own times (lutimes) are its object's metadata; it
        // stays one entry, never a directory (regression: it became both).
        sh(&format!("touch -h -d @1400000000 {mnt}/tree/sub/link"));
        let listed = sh_out(&format!("ls -A {mnt}/tree/sub"));
        assert_eq!(listed, "blob.bin\ndeeper\nlink\n");
        let mtime = sh_out(&format!("stat -c %Y {mnt}/tree/sub/link"));
        assert_eq!(mtime.trim(), "1400000000");
        assert_eq!(
            std::fs::read_link(format!("{mnt}/tree/sub/link")).unwrap(),
            std::path::Path::new("../a.txt")
        );
        // git clone of a local repository, then a commit and fsck in the
        // clone on the mount (lock files renamed over their targets).
        sh(&format!(
            "cd {l} && git init -q -b main repo && cd repo && \
             git -c user.email=t@example.com -c user.name=t commit -q --allow-empty -m one && \
             cp -r {l}/tree/sub . && git add . && \
             git -c user.email=t@example.com -c user.name=t commit -q -m two && \
             git clone -q --no-hardlinks {l}/repo {mnt}/clone && cd {mnt}/clone && \
             echo more > more.txt && git add more.txt && \
             git -c user.email=t@example.com -c user.name=t commit -q -m three && \
             git fsck --full --strict"
        ));
        let log = sh_out(&format!("cd {mnt}/clone && git log --format=%s"));
        assert_eq!(log, "three\ntwo\none\n");
        assert_eq!(sh_out(&format!("cd {mnt}/clone && git status --porcelain")), "");
        // sqlite3: a database file updated in place with random writes, a
        // rollback journal created and deleted around each transaction.
        sh(&format!(
            "sqlite3 {mnt}/db.sqlite \"create table t(id integer primary key, v text); \
             with recursive n(i) as (select 1 union all select i+1 from n where i < 3000) \
             insert into t select i, hex(randomblob(40)) from n;\" && \
             sqlite3 {mnt}/db.sqlite \"update t set v = 'changed' where id % 7 = 0; \
             delete from t where id % 11 = 0; create index tv on t(v);\""
        ));
        let check = |db: &str| {
            sh_out(&format!(
                "sqlite3 {db} \"pragma integrity_check; select count(*), \
                 sum(v = 'changed') from t;\""
            ))
        };
        assert_eq!(check(&format!("{mnt}/db.sqlite")), "ok\n2728|390\n");
        m
    })
    .await
    .unwrap();
    // The database S3 clients read is the same, consistent file.
    let db = strata_tests::get_object(&c, "fst", "db.sqlite").await.unwrap();
    let copy = local.path().join("copy.sqlite");
    std::fs::write(&copy, db).unwrap();
    let out = sh_out(&format!(
        "sqlite3 {} \"pragma integrity_check; select count(*) from t;\"",
        copy.display()
    ));
    assert_eq!(out, "ok\n2728\n");
    let journal = c
        .head_object()
        .bucket("fst")
        .key("db.sqlite-journal")
        .send()
        .await;
    assert!(journal.is_err(), "the rollback journal was left behind");
    tokio::task::spawn_blocking(move || m.stop()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_endpoints_are_verified_against_the_given_ca() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsh").send().await.unwrap();
    let proxy = strata_tests::TlsProxy::start(&s.endpoint);
    let (endpoint, ca) = (proxy.endpoint.clone(), proxy.ca_file.clone());
    tokio::task::spawn_blocking(move || {
        // A server signed by an unknown CA is refused before mounting, in
        // one line that says why.
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(workspace_bin("fuse-mount"))
            .args([&endpoint, "fsh", &dir.path().to_string_lossy()])
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .env_remove("SSL_CERT_FILE")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("certificate") && err.contains("UnknownIssuer"),
            "{err}"
        );
        assert!(!mounted(dir.path()));
        // Trusting the test CA, files go through TLS both ways.
        let ca_arg = ca.to_string_lossy().into_owned();
        let m = Mount::start(&endpoint, "fsh", &["--ca-file", &ca_arg]);
        let data = pattern(3 << 20, 21);
        std::fs::write(m.path("over-tls.bin"), &data).unwrap();
        assert_eq!(std::fs::read(m.path("over-tls.bin")).unwrap(), data);
        m.stop();
        // objd admin takes the same option.
        let out = Command::new(objd_bin())
            .args(["admin", "--endpoint", &endpoint, "--ca-file", &ca_arg, "info"])
            .env("OBJD_ACCESS_KEY", ACCESS_KEY)
            .env("OBJD_SECRET_KEY", SECRET_KEY)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("drives"));
    })
    .await
    .unwrap();
    assert_eq!(
        strata_tests::get_object(&c, "fsh", "over-tls.bin").await.unwrap(),
        pattern(3 << 20, 21)
    );
    drop(proxy);
}

/// The fuse-mount processes serving `dir`.
fn mount_processes(dir: &Path) -> usize {
    let out = Command::new("pgrep")
        .args(["-f", &format!("fuse-mount .*{}", dir.display())])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mount_t_fuse_strata_and_fstab_style_options_work() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsm").send().await.unwrap();
    put_object(&c, "fsm", "shared/hello.txt", b"from fstab".to_vec())
        .await
        .unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let tmp = tempfile::tempdir().unwrap();
        let creds = tmp.path().join("credentials");
        std::fs::write(
            &creds,
            format!("access_key={ACCESS_KEY}\nsecret_key={SECRET_KEY}\n"),
        )
        .unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let source = format!("{endpoint}/fsm/shared");
        let opts = format!(
            "rw,_netdev,nofail,credentials_file={},ro,attr_ttl=0",
            creds.display()
        );
        // The helper exactly as mount(8) calls it, through a link named as
        // mount(8) looks for it; it returns once the mount is in place.
        let link = tmp.path().join("mount.fuse.strata");
        std::os::unix::fs::symlink(workspace_bin("fuse-mount"), &link).unwrap();
        let out = Command::new(&link)
            .args([&source, &*dir.to_string_lossy(), "-o", &opts])
            .env_remove("STRATA_ACCESS_KEY")
            .env_remove("STRATA_SECRET_KEY")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(mounted(&dir));
        assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"from fstab");
        let e = std::fs::write(dir.join("new.txt"), b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(30), "{e}"); // EROFS: `ro`
        // umount ends the detached process.
        sh(&format!("umount {}", dir.display()));
        let deadline = Instant::now() + Duration::from_secs(10);
        while mount_processes(&dir) > 0 {
            assert!(Instant::now() < deadline, "fuse-mount outlived umount");
            std::thread::sleep(Duration::from_millis(50));
        }
        // A wrong option or bucket fails the helper with the reason.
        let out = Command::new(&link)
            .args([
                &format!("{endpoint}/no-such-bucket"),
                &dir.to_string_lossy().into_owned(),
            ])
            .args(["-o", &format!("credentials_file={}", creds.display())])
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("NoSuchBucket"),
            "{out:?}"
        );
        assert!(!mounted(&dir));
        // mount(8) itself, with the helper where it looks for it.
        let helper = Path::new("/sbin/mount.fuse.strata");
        if helper.symlink_metadata().is_err() {
            std::os::unix::fs::symlink(workspace_bin("fuse-mount"), helper).unwrap();
            let out = Command::new("mount")
                .args(["-t", "fuse.strata", &source, &dir.to_string_lossy(), "-o", &opts])
                .env_remove("STRATA_ACCESS_KEY")
                .output()
                .unwrap();
            std::fs::remove_file(helper).unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(std::fs::read(dir.join("hello.txt")).unwrap(), b"from fstab");
            sh(&format!("umount {}", dir.display()));
        } else {
            eprintln!("{} exists already; mount(8) not tried", helper.display());
        }
    })
    .await
    .unwrap();
}

/// (size, available) bytes of the filesystem at `dir`, as df sees them.
fn df(dir: &Path) -> (u64, u64) {
    let out = sh_out(&format!("stat -f -c '%S %b %a' {}", dir.display()));
    let v: Vec<u64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0] * v[1], v[0] * v[2])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_quota_is_the_filesystem_size_and_refuses_with_edquot() {
    use std::io::Write;
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsq").send().await.unwrap();
    put_object(&c, "fsq", "kept.bin", pattern(1 << 20, 1))
        .await
        .unwrap();
    s.admin(&["quota", "fsq", "4MiB"]);
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsq", &["--attr-ttl", "0"]);
        // df: the quota is the size, what is left of it is available.
        assert_eq!(df(&m.dir), (4 << 20, 3 << 20));
        std::fs::write(m.path("more.bin"), pattern(2 << 20, 2)).unwrap();
        assert_eq!(df(&m.dir), (4 << 20, 1 << 20));
        // Beyond the quota: fsync (and close) fail with EDQUOT; nothing of
        // it is stored.
        let mut f = std::fs::File::create(m.path("too-big.bin")).unwrap();
        f.write_all(&pattern(2 << 20, 3)).unwrap();
        let e = f.sync_all().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc_edquot()), "{e}");
        drop(f);
        // Rewriting a file past the quota leaves the stored version.
        let mut f = std::fs::File::create(m.path("kept.bin")).unwrap();
        f.write_all(&pattern(5 << 20, 4)).unwrap();
        let e = f.sync_all().unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc_edquot()), "{e}");
        drop(f);
        assert_eq!(std::fs::read(m.path("kept.bin")).unwrap(), pattern(1 << 20, 1));
        m.stop();
    })
    .await
    .unwrap();
    assert!(
        c.head_object()
            .bucket("fsq")
            .key("too-big.bin")
            .send()
            .await
            .is_err()
    );
}

/// EDQUOT on Linux.
fn libc_edquot() -> i32 {
    122
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_permissions_make_the_kernel_check_owners_and_modes() {
    let s = Server::start(4, &[]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsp").send().await.unwrap();
    let endpoint = s.endpoint.clone();
    tokio::task::spawn_blocking(move || {
        // As user nobody (65534), through setpriv.
        let nobody = |cmd: &str| {
            Command::new("setpriv")
                .args([
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    "sh",
                    "-c",
                    cmd,
                ])
                .output()
                .unwrap()
        };
        let m = Mount::start(
            &endpoint,
            "fsp",
            &["--allow-other", "--default-permissions", "--attr-ttl", "0"],
        );
        std::fs::create_dir(m.path("open")).unwrap();
        std::fs::set_permissions(m.path("open"), std::fs::Permissions::from_mode(0o777)).unwrap();
        std::fs::write(m.path("private.txt"), b"root's").unwrap();
        std::fs::set_permissions(m.path("private.txt"), std::fs::Permissions::from_mode(0o600)).unwrap();
        // The root directory is root's 0755: nobody may not create there,
        // nor read root's 0600 file; the 0777 directory takes files.
        let out = nobody(&format!("echo x > {}", m.path("mine.txt").display()));
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
            "{out:?}"
        );
        let out = nobody(&format!("cat {}", m.path("private.txt").display()));
        assert!(!out.status.success());
        let out = nobody(&format!("echo x > {}", m.path("open/mine.txt").display()));
        assert!(out.status.success(), "{out:?}");
        let meta = std::fs::metadata(m.path("open/mine.txt")).unwrap();
        assert_eq!(meta.uid(), 65534);
        // Owners and modes for changes: only the owner changes modes and
        // explicit times, nobody but root gives a file away, a non-root
        // chown clears setgid, a sticky directory keeps others' files.
        let user = |uid: u32, cmd: &str| {
            let out = Command::new("setpriv")
                .args([
                    &format!("--reuid={uid}"),
                    &format!("--regid={uid}"),
                    "--clear-groups",
                    "sh",
                    "-c",
                    cmd,
                ])
                .output()
                .unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        };
        let private = m.path("private.txt").display().to_string();
        let mine = m.path("open/mine.txt").display().to_string();
        let denied = |(ok, err): (bool, String), why: &str| {
            assert!(!ok && err.contains("Operation not permitted"), "{why}: {err}");
        };
        denied(
            user(65534, &format!("chmod 666 {private}")),
            "chmod of root's file",
        );
        denied(user(65534, &format!("chown 0 {mine}")), "giving a file away");
        sh(&format!("chmod 2775 {mine}"));
        assert_eq!(
            user(65534, &format!("chown 65534:65534 {mine}")),
            (true, String::new())
        );
        let mode = std::fs::metadata(m.path("open/mine.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o775, "setgid kept by a non-root chown");
        sh(&format!("chmod 666 {mine}"));
        denied(
            user(1000, &format!("touch -d @1 {mine}")),
            "explicit times by another user",
        );
        assert_eq!(user(1000, &format!("touch {mine}")), (true, String::new()));
        denied(user(1000, &format!("chmod 600 {mine}")), "chmod by another user");
        std::fs::create_dir(m.path("sticky")).unwrap();
        sh(&format!("chmod 1777 {}", m.path("sticky").display()));
        assert!(
            user(
                65534,
                &format!("echo x > {}", m.path("sticky/kept.txt").display())
            )
            .0
        );
        assert!(user(65534, &format!("echo x > {}", m.path("open/gone.txt").display())).0);
        denied(
            user(1000, &format!("rm -f {}", m.path("sticky/kept.txt").display())),
            "sticky",
        );
        assert!(m.path("sticky/kept.txt").exists());
        assert!(user(1000, &format!("rm -f {}", m.path("open/gone.txt").display())).0);
        assert!(!m.path("open/gone.txt").exists());
        m.stop();
        // Without the option, --allow-other lets nobody write anywhere.
        let m = Mount::start(&endpoint, "fsp", &["--allow-other", "--attr-ttl", "0"]);
        let out = nobody(&format!("echo x > {}", m.path("anyone.txt").display()));
        assert!(out.status.success(), "{out:?}");
        m.stop();
    })
    .await
    .unwrap();
}

/// Requests objd counted for S3 operation `api` (every status), from its
/// metrics (served without a token by `--metrics-public`).
async fn requests(endpoint: &str, api: &str) -> f64 {
    let f = strata_s3client::Fetcher::new(&Default::default(), Duration::from_secs(10), 1 << 22).unwrap();
    let (_, body) = f.get(&format!("{endpoint}/_strata/metrics")).await.unwrap();
    let label = format!("strata_s3_requests_total{{api=\"{api}\",");
    String::from_utf8_lossy(&body)
        .lines()
        .filter(|l| l.starts_with(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_l_and_find_read_a_directory_s_attributes_from_its_listing() {
    let s = Server::start(4, &["--metrics-public"]);
    let c = s3_client(&s.endpoint);
    c.create_bucket().bucket("fsl").send().await.unwrap();
    // What s3fs or another mount wrote: files of several modes and owners,
    // symlinks and FIFOs by their mode, objects without POSIX metadata,
    // and a directory with a marker.
    // The file type bits of a mode (S_IFREG, S_IFLNK, S_IFIFO, S_IFDIR),
    // and the type letter `ls -l` shows for it.
    let kinds = [
        ("f", 0o100_640, '-'),
        ("l", 0o120_777, 'l'),
        ("p", 0o010_600, 'p'),
    ];
    for i in 0..120 {
        let (prefix, mode, _) = kinds[i % 3];
        let body = if prefix == "l" {
            b"target".to_vec()
        } else {
            Vec::new()
        };
        c.put_object()
            .bucket("fsl")
            .key(format!("d/{prefix}{i:03}"))
            .metadata("mode", mode.to_string())
            .metadata("uid", (1000 + i).to_string())
            .metadata("gid", "77")
            .metadata("mtime", format!("{}", 1_600_000_000 + i))
            .body(aws_sdk_s3::primitives::ByteStream::from(body))
            .send()
            .await
            .unwrap();
    }
    for i in 0..30 {
        put_object(&c, "fsl", &format!("d/o{i:03}"), pattern(i * 10, 3))
            .await
            .unwrap();
    }
    c.put_object()
        .bucket("fsl")
        .key("d/sub/")
        .metadata("mode", (0o040_711).to_string())
        .send()
        .await
        .unwrap();
    let endpoint = s.endpoint.clone();
    let (m, before) = tokio::task::spawn_blocking(move || {
        let m = Mount::start(&endpoint, "fsl", &["--attr-ttl", "60"]);
        sh(&format!("stat {} >/dev/null", m.path("d").display()));
        let rt = tokio::runtime::Runtime::new().unwrap();
        let count = |api| rt.block_on(requests(&endpoint, api));
        let before = (
            count("HeadObject"),
            count("ListObjectsWithMetadata"),
            count("ListObjectsV2"),
        );
        (m, before)
    })
    .await
    .unwrap();
    let d = m.path("d");
    let listing = sh_out(&format!("ls -ln --time-style=+%s {}", d.display()));
    let after = (
        requests(&s.endpoint, "HeadObject").await,
        requests(&s.endpoint, "ListObjectsWithMetadata").await,
        requests(&s.endpoint, "ListObjectsV2").await,
    );
    // One listing page; no request per entry (the directory's marker,
    // which its listing folds away, is the one entry looked up: a HEAD
    // for the name as a file, one for the marker).
    assert_eq!(after.1 - before.1, 1.0, "{listing}");
    assert!(
        after.0 - before.0 <= 2.0,
        "{} HEADs for ls -l",
        after.0 - before.0
    );
    assert!(after.2 - before.2 <= 1.0);
    let lines: Vec<&str> = listing.lines().skip(1).collect();
    assert_eq!(lines.len(), 151, "{listing}");
    for i in 0..120 {
        let (prefix, mode, letter) = kinds[i % 3];
        let name = format!("{prefix}{i:03}");
        let line = lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(f[0].chars().next(), Some(letter), "{line}");
        assert_eq!(perm_bits(f[0]), mode & 0o777, "{line}");
        assert_eq!((f[2], f[3]), (&*(1000 + i).to_string(), "77"), "{line}");
        assert_eq!(f[5], (1_600_000_000 + i).to_string(), "{line}");
    }
    // d_type from the listing: find tells types without a stat.
    let count = |t: &str| {
        sh_out(&format!("find {} -mindepth 1 -maxdepth 1 -type {t}", d.display()))
            .lines()
            .count()
    };
    assert_eq!((count("l"), count("p"), count("f"), count("d")), (40, 40, 70, 1));
    let sub = std::fs::metadata(d.join("sub")).unwrap();
    assert_eq!(sub.permissions().mode() & 0o7777, 0o711);
    // What the listing showed is what a lookup shows.
    for name in ["f000", "l001", "p002", "o007"] {
        let listed = std::fs::symlink_metadata(d.join(name)).unwrap();
        let line = lines
            .iter()
            .find(|l| l.ends_with(&format!(" {name}")) || l.contains(&format!(" {name} -> ")))
            .unwrap();
        let f: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            (listed.size().to_string(), listed.uid().to_string()),
            (f[4].to_owned(), f[2].to_owned()),
            "{line}"
        );
    }
    drop(m);
}

/// The permission bits `ls -l` shows in `rwxr-x---` form.
fn perm_bits(field: &str) -> u32 {
    field[1..10]
        .chars()
        .fold(0, |bits, c| (bits << 1) | u32::from(c != '-'))
}
