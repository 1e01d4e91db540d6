//! What the fuse-mount tests share: a mount process over objd, and shell
//! commands that fail the test with their output.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use strata_tests::{ACCESS_KEY, SECRET_KEY, workspace_bin};

/// A running fuse-mount process and its mount point.
pub struct Mount {
    pub child: Child,
    pub dir: PathBuf,
    pub _tmp: tempfile::TempDir,
}

pub fn mounted(dir: &Path) -> bool {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let d = dir.to_string_lossy();
    mounts.lines().any(|l| l.split(' ').nth(1) == Some(&*d))
}

impl Mount {
    pub fn start(endpoint: &str, bucket: &str, extra: &[&str]) -> Mount {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mnt");
        std::fs::create_dir(&dir).unwrap();
        let child = Command::new(workspace_bin("fuse-mount"))
            .args(extra)
            .arg(endpoint)
            .arg(bucket)
            .arg(&dir)
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .stdout(Stdio::null())
            .spawn()
            .expect("fuse-mount starts");
        let deadline = Instant::now() + Duration::from_secs(15);
        while !mounted(&dir) {
            assert!(
                Instant::now() < deadline,
                "fuse-mount did not mount {}",
                dir.display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Mount {
            child,
            dir,
            _tmp: tmp,
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// SIGTERM, then the process must unmount and exit by itself.
    pub fn stop(mut self) {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "fuse-mount exited with {status}");
                break;
            }
            assert!(Instant::now() < deadline, "fuse-mount did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!mounted(&self.dir), "still mounted after SIGTERM");
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if mounted(&self.dir) {
            let _ = Command::new("fusermount3").arg("-uz").arg(&self.dir).status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a shell command, failing the test with its output if it fails.
pub fn sh(cmd: &str) {
    sh_out(cmd);
}

/// Runs a shell command and returns its standard output.
pub fn sh_out(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
