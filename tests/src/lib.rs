//! Harness for the integration tests: starts the real `objd` binary on
//! `127.0.0.1:0` over temporary drive directories, exactly as a user would
//! (credentials through the environment), and builds S3 clients for it.
//! The server is killed when the handle drops.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "strata-test-admin";
pub const SECRET_KEY: &str = "strata-test-secret-key";

/// Path of the `objd` binary built alongside the tests.
pub fn objd_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("STRATA_OBJD") {
        return PathBuf::from(p);
    }
    workspace_bin("objd")
}

/// A binary of the workspace built next to the test binaries
/// (`target/<profile>/deps/<test>` -> `target/<profile>/<name>`).
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// Gives `objd` (or `objd admin`) the test root credentials, through the
/// environment as a user would.
pub fn with_root_credentials(c: &mut Command) -> &mut Command {
    c.env("OBJD_ACCESS_KEY", ACCESS_KEY)
        .env("OBJD_SECRET_KEY", SECRET_KEY)
}

/// The log filter of servers under test (`OBJD_TEST_LOG`, default `warn`).
pub fn test_log() -> String {
    std::env::var("OBJD_TEST_LOG").unwrap_or_else(|_| "warn".into())
}

/// Runs `objd admin ARGS` against `endpoint`; returns stdout.
pub fn run_admin(endpoint: &str, args: &[&str]) -> String {
    let mut c = Command::new(objd_bin());
    c.arg("admin").arg("--endpoint").arg(endpoint).args(args);
    let out = with_root_credentials(&mut c).output().expect("run objd admin");
    assert!(
        out.status.success(),
        "objd admin {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running objd over `drives` directories in a temporary root.
pub struct Server {
    pub root: tempfile::TempDir,
    pub endpoint: String,
    pub drives: Vec<PathBuf>,
    child: Option<Child>,
    extra: Vec<String>,
}

impl Server {
    pub fn start(drives: usize, extra: &[&str]) -> Server {
        Self::start_in(tempfile::tempdir().expect("tempdir"), drives, extra)
    }

    /// Like [`Server::start`], with drives `d1..dN` under a given root
    /// (which the caller may have prepared, for example with mounts).
    pub fn start_in(root: tempfile::TempDir, drives: usize, extra: &[&str]) -> Server {
        let paths: Vec<PathBuf> = (1..=drives).map(|i| root.path().join(format!("d{i}"))).collect();
        let mut s = Server {
            root,
            endpoint: String::new(),
            drives: paths,
            child: None,
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        };
        s.spawn("127.0.0.1:0");
        s
    }

    fn spawn(&mut self, address: &str) {
        let pattern = format!("{}/d{{1...{}}}", self.root.path().display(), self.drives.len());
        let mut c = Command::new(objd_bin());
        c.arg("server")
            .arg(&pattern)
            .arg("--address")
            .arg(address)
            .args(&self.extra)
            .env("OBJD_LOG", test_log());
        let mut child = with_root_credentials(&mut c)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn objd");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read objd stdout");
        let url = line
            .trim()
            .strip_prefix("objd listening on ")
            .unwrap_or_else(|| panic!("objd did not start: {line:?}"));
        self.endpoint = url.to_owned();
        self.child = Some(child);
    }

    /// Starts the server again on the same drives and port.
    pub fn restart(&mut self) {
        self.kill();
        let addr = self.endpoint.trim_start_matches("http://").to_owned();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // The port may linger briefly after the kill.
            if std::net::TcpListener::bind(&addr).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.spawn(&addr);
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("running")
    }

    /// Runs `objd admin ARGS` against this server; returns stdout.
    pub fn admin(&self, args: &[&str]) -> String {
        run_admin(&self.endpoint, args)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of the Prometheus sample line of `text` that starts with
/// `series` (a name with its labels, as the server writes them).
pub fn metric_sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.strip_prefix(' ')))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// A `/proc/PID/status` field in bytes (`VmRSS`, `VmHWM`: the kernel
/// gives them in KiB); 0 when the process or the field is gone.
pub fn proc_status_bytes(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Deterministic pseudo-random bytes.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Every regular file below `dir`.
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_below(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

pub mod certs;
pub mod client;
pub mod cluster;
pub mod netns;
pub use client::{
    bucket_names, err_code, err_status, get_object, put_object, s3_client, s3_client_with, set_versioning,
    upload_parts,
};

/// Runs `program args...`, failing the test with its output if it fails.
fn run_ok(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().expect(program);
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A real nginx terminating TLS in front of an objd, as an Ingress would:
/// a test CA and a certificate for 127.0.0.1 made with the openssl CLI,
/// request bodies streamed, the Host header passed through (SigV4 signs
/// it). nginx is stopped when the handle drops.
pub struct TlsProxy {
    /// `https://127.0.0.1:PORT`.
    pub endpoint: String,
    /// The test CA's certificate (PEM), for clients to trust.
    pub ca_file: PathBuf,
    dir: tempfile::TempDir,
    child: Child,
}

impl TlsProxy {
    pub fn start(upstream: &str) -> TlsProxy {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
        let ca = certs::TestCa::new("Strata test CA");
        ca.issue(dir.path(), "IP:127.0.0.1");
        let ca_pem = p("ca.pem");
        std::fs::copy(ca.ca_file(), &ca_pem).expect("copy the CA certificate");
        let (cert, key) = (p("public.crt"), p("private.key"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let upstream = upstream.trim_start_matches("http://");
        let temp = p("temp");
        std::fs::create_dir_all(&temp).expect("nginx temp dir");
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {pid};\nerror_log {log} warn;\nevents {{}}\n\
             http {{\n  access_log off;\n  client_body_temp_path {temp};\n  proxy_temp_path {temp};\n\
             \x20 fastcgi_temp_path {temp};\n  uwsgi_temp_path {temp};\n  scgi_temp_path {temp};\n\
             \x20 server {{\n    listen 127.0.0.1:{port} ssl;\n    ssl_certificate {cert};\n\
             \x20   ssl_certificate_key {key};\n    client_max_body_size 0;\n\
             \x20   proxy_request_buffering off;\n    proxy_buffering off;\n    proxy_http_version 1.1;\n\
             \x20   location / {{\n      proxy_pass http://{upstream};\n\
             \x20     proxy_set_header Host $http_host;\n      proxy_read_timeout 300s;\n    }}\n  }}\n}}\n",
            pid = p("nginx.pid"),
            log = p("error.log"),
        );
        let conf_path = p("nginx.conf");
        std::fs::write(&conf_path, conf).expect("nginx.conf");
        // Debian installs it in /usr/sbin, which not every PATH holds.
        let nginx = ["/usr/sbin/nginx", "nginx"]
            .into_iter()
            .find(|p| !p.starts_with('/') || Path::new(p).exists())
            .unwrap_or("nginx");
        let child = Command::new(nginx)
            .args([
                "-p",
                &dir.path().to_string_lossy(),
                "-e",
                &p("error.log"),
                "-c",
                &conf_path,
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts (Debian package nginx)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                std::fs::read_to_string(p("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsProxy {
            endpoint: format!("https://127.0.0.1:{port}"),
            ca_file: PathBuf::from(ca_pem),
            dir,
            child,
        }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// Small tmpfs filesystems mounted at `root/d1..dN` (as drives whose disks
/// are real mounts), unmounted on drop. Needs root, as the suite runs.
pub struct TmpfsMounts(pub Vec<PathBuf>);

impl TmpfsMounts {
    pub fn new(root: &Path, n: usize, size: &str) -> Self {
        let mut mounts = TmpfsMounts(Vec::new());
        for i in 1..=n {
            let d = root.join(format!("d{i}"));
            std::fs::create_dir_all(&d).expect("mkdir");
            mounts.mount(&d, size);
            mounts.0.push(d);
        }
        mounts
    }

    /// Mounts a tmpfs at `dir` (again).
    pub fn mount(&self, dir: &Path, size: &str) {
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            st.success(),
            "mounting a tmpfs drive needs root (the test suite runs as root)"
        );
    }

    /// Unmounts the tmpfs at `dir`: its contents are gone, the directory
    /// below stays.
    pub fn unmount(&self, dir: &Path) {
        let st = Command::new("umount").arg(dir).status().expect("run umount");
        assert!(st.success(), "umount {}", dir.display());
    }
}

impl Drop for TmpfsMounts {
    fn drop(&mut self) {
        for m in &self.0 {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
    }
}
