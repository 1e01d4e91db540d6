//! Published volumes on this node: one fuse-mount process per target
//! path, started in its own process group (so a restart of the plugin
//! does not take the mounts with it), and a record per target under the
//! state directory on the host (mode 0600: it holds the volume's
//! credentials), so that a plugin that starts again mounts anew every
//! published volume whose mount is gone or dead.

use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::Command;

/// What NodePublishVolume was asked for, as kept on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub volume_id: String,
    pub target: PathBuf,
    /// `bucket` or `bucket/prefix`.
    pub source: String,
    pub read_only: bool,
    /// fuse-mount options from the volume's mount flags (`--uid=1000`).
    pub options: Vec<String>,
    pub access_key: String,
    pub secret_key: String,
}

/// How a target path is mounted now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountState {
    /// Nothing is mounted there.
    Absent,
    /// A FUSE mount whose process is gone ("Transport endpoint is not
    /// connected").
    Dead,
    /// Something answers.
    Live,
}

#[derive(Debug, Clone)]
pub struct Mounter {
    pub state_dir: PathBuf,
    pub fuse_mount: PathBuf,
    /// A command fuse-mount is started through, which must exec it in
    /// place (for example `nsenter --target 1 --mount -- systemd-run
    /// --scope --collect --quiet --`: the mount then lives in a systemd
    /// scope on the host, outside the plugin container, and survives the
    /// container's restart). Empty: started directly.
    pub launcher: Vec<String>,
    pub endpoint: String,
    pub ca_file: Option<PathBuf>,
}

/// The mount points of this mount namespace.
fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(|p| p.replace("\\040", " ")))
        .collect()
}

pub fn state(target: &Path) -> MountState {
    let t = target.to_string_lossy();
    if !mount_points().iter().any(|m| *m == t) {
        return MountState::Absent;
    }
    match std::fs::metadata(target) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => MountState::Dead,
        _ => MountState::Live,
    }
}

/// Unmounts `target` (lazily if it is busy or dead); fine if nothing is
/// mounted there.
pub async fn unmount(target: &Path) -> std::io::Result<()> {
    if state(target) == MountState::Absent {
        return Ok(());
    }
    let ok = Command::new("fusermount3").arg("-u").arg(target).status().await?;
    if !ok.success() {
        Command::new("fusermount3")
            .arg("-uz")
            .arg(target)
            .status()
            .await?;
    }
    if state(target) != MountState::Absent {
        return Err(std::io::Error::other(format!(
            "{} is still mounted",
            target.display()
        )));
    }
    Ok(())
}

impl Mounter {
    fn record_path(&self, target: &Path) -> PathBuf {
        let h = crate::volume::fnv1a(target.as_os_str().as_encoded_bytes());
        self.state_dir.join(format!("{h:016x}.json"))
    }

    fn save(&self, p: &Published) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::create_dir_all(&self.state_dir)?;
        let body = json!({
            "volume_id": p.volume_id, "target": p.target, "source": p.source, "read_only": p.read_only,
            "options": p.options,
            "access_key": p.access_key, "secret_key": p.secret_key,
        });
        let path = self.record_path(&p.target);
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(body.to_string().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)
    }

    pub fn forget(&self, target: &Path) {
        let _ = std::fs::remove_file(self.record_path(target));
    }

    /// The record of `target`, if it was published here.
    pub fn load(&self, target: &Path) -> Option<Published> {
        let text = std::fs::read_to_string(self.record_path(target)).ok()?;
        parse(&text)
    }

    /// Every published volume on record.
    pub fn all(&self) -> Vec<Published> {
        let Ok(dir) = std::fs::read_dir(&self.state_dir) else {
            return Vec::new();
        };
        dir.flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .filter_map(|e| parse(&std::fs::read_to_string(e.path()).ok()?))
            .collect()
    }

    /// Mounts `p` at its target (recorded first), and waits until the
    /// mount answers or fuse-mount has failed.
    pub async fn mount(&self, p: &Published) -> Result<(), String> {
        std::fs::create_dir_all(&p.target).map_err(|e| format!("target path: {e}"))?;
        self.save(p).map_err(|e| format!("recording the volume: {e}"))?;
        let mut cmd = match self.launcher.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(&self.fuse_mount);
                c
            }
            None => Command::new(&self.fuse_mount),
        };
        // Credentials through the environment, never the arguments.
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("STRATA_ACCESS_KEY", &p.access_key)
            .env("STRATA_SECRET_KEY", &p.secret_key)
            .arg("--allow-other")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(false);
        if p.read_only {
            cmd.arg("--read-only");
        }
        cmd.args(&p.options);
        if let Some(ca) = &self.ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        cmd.arg(&self.endpoint).arg(&p.source).arg(&p.target);
        let mut child = cmd.spawn().map_err(|e| format!("starting fuse-mount: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use tokio::io::AsyncReadExt;
                    let _ = e.read_to_string(&mut err).await;
                }
                self.forget(&p.target);
                return Err(format!("fuse-mount ended ({status}): {}", err.trim()));
            }
            if state(&p.target) == MountState::Live {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill().await;
                self.forget(&p.target);
                return Err("fuse-mount did not mount within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Reap the process when it ends; its stderr goes to our log.
        let target = p.target.clone();
        tokio::spawn(async move {
            if let Some(mut e) = child.stderr.take() {
                use tokio::io::AsyncReadExt;
                let mut text = String::new();
                let _ = e.read_to_string(&mut text).await;
                for line in text.lines() {
                    tracing::warn!(target = %target.display(), "fuse-mount: {line}");
                }
            }
            let _ = child.wait().await;
        });
        Ok(())
    }

    /// Mounts again every published volume whose mount is gone or dead
    /// (after the plugin, or the node, restarted).
    pub async fn restore(&self) {
        for p in self.all() {
            match state(&p.target) {
                MountState::Live => continue,
                MountState::Dead => {
                    if let Err(e) = unmount(&p.target).await {
                        tracing::warn!(target = %p.target.display(), error = %e, "cannot clear a dead mount");
                        continue;
                    }
                }
                MountState::Absent => {}
            }
            match self.mount(&p).await {
                Ok(()) => {
                    tracing::info!(volume = %p.volume_id, target = %p.target.display(), "volume mounted again")
                }
                Err(e) => {
                    tracing::warn!(volume = %p.volume_id, target = %p.target.display(), error = %e, "volume not mounted again")
                }
            }
        }
    }
}

fn parse(text: &str) -> Option<Published> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let s = |k: &str| v[k].as_str().map(str::to_owned);
    Some(Published {
        volume_id: s("volume_id")?,
        target: PathBuf::from(s("target")?),
        source: s("source")?,
        read_only: v["read_only"].as_bool()?,
        options: v["options"]
            .as_array()
            .map(|a| a.iter().filter_map(|o| o.as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
        access_key: s("access_key")?,
        secret_key: s("secret_key")?,
    })
}
