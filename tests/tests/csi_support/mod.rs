//! What the CSI tests share: the plugin process on its socket, and the
//! requests kubelet and the sidecars send.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use strata_csi::proto::node_client::NodeClient;
use strata_csi::proto::volume_capability::access_mode::Mode;
use strata_csi::proto::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
use strata_csi::proto::*;
use strata_tests::{ACCESS_KEY, SECRET_KEY, workspace_bin};
use tonic::transport::Channel;

/// A running csi-driver process serving on a socket.
pub struct Plugin {
    child: Child,
    socket: PathBuf,
}

impl Plugin {
    pub fn start(objd: &str, dir: &Path) -> Plugin {
        Self::start_with(objd, dir, "")
    }

    /// With `--mount-launcher` (a command that execs fuse-mount in place).
    pub fn start_with(objd: &str, dir: &Path, launcher: &str) -> Plugin {
        let socket = dir.join("csi.sock");
        let _ = std::fs::remove_file(&socket);
        let child = Command::new(workspace_bin("csi-driver"))
            .args(["--endpoint", &format!("unix://{}", socket.display())])
            .args(["--node-id", "node-1", "--mode", "all", "--objd-endpoint", objd])
            .arg("--state-dir")
            .arg(dir.join("state"))
            .arg("--fuse-mount")
            .arg(workspace_bin("fuse-mount"))
            .args(["--mount-launcher", launcher])
            .env("STRATA_ACCESS_KEY", ACCESS_KEY)
            .env("STRATA_SECRET_KEY", SECRET_KEY)
            .spawn()
            .expect("csi-driver starts");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&socket).is_err() {
            assert!(Instant::now() < deadline, "csi-driver did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Plugin { child, socket }
    }

    pub async fn channel(&self) -> Channel {
        let socket = self.socket.clone();
        tonic::transport::Endpoint::try_from("http://[::]:50051")
            .unwrap()
            .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                let s = socket.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(s).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }))
            .await
            .expect("connect to the plugin socket")
    }

    /// SIGKILL: the plugin dies without cleaning anything up.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn secrets() -> HashMap<String, String> {
    HashMap::from([
        ("accessKey".to_owned(), ACCESS_KEY.to_owned()),
        ("secretKey".to_owned(), SECRET_KEY.to_owned()),
    ])
}

pub fn mount_cap(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

pub fn block_cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode {
            mode: Mode::SingleNodeWriter as i32,
        }),
    }
}

pub fn create(name: &str, bytes: i64, params: &[(&str, &str)]) -> CreateVolumeRequest {
    CreateVolumeRequest {
        name: name.into(),
        capacity_range: Some(CapacityRange {
            required_bytes: bytes,
            limit_bytes: 0,
        }),
        volume_capabilities: vec![mount_cap(Mode::MultiNodeMultiWriter)],
        parameters: params.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
        ..Default::default()
    }
}

pub fn publish(volume_id: &str, target: &Path, readonly: bool) -> NodePublishVolumeRequest {
    NodePublishVolumeRequest {
        volume_id: volume_id.into(),
        target_path: target.to_string_lossy().into_owned(),
        volume_capability: Some(mount_cap(Mode::SingleNodeWriter)),
        readonly,
        secrets: secrets(),
        ..Default::default()
    }
}

pub fn mounted(dir: &Path) -> bool {
    let d = dir.to_string_lossy();
    std::fs::read_to_string("/proc/mounts")
        .unwrap_or_default()
        .lines()
        .any(|l| l.split(' ').nth(1) == Some(&*d))
}

/// Bytes (total, used) of a volume's stats, and its condition.
pub async fn stats(node: &mut NodeClient<Channel>, id: &str, path: &Path) -> (i64, i64, bool) {
    let s = node
        .node_get_volume_stats(NodeGetVolumeStatsRequest {
            volume_id: id.into(),
            volume_path: path.to_string_lossy().into_owned(),
        })
        .await
        .unwrap()
        .into_inner();
    let abnormal = s.volume_condition.map(|c| c.abnormal).unwrap_or(true);
    let bytes = s
        .usage
        .iter()
        .find(|u| u.unit == volume_usage::Unit::Bytes as i32);
    bytes.map_or((0, 0, abnormal), |u| (u.total, u.used, abnormal))
}

/// Runs blocking file work off the async test's threads.
pub async fn fs<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

pub fn write_synced(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    f.write_all(data)?;
    f.sync_all()
}
