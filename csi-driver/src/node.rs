//! The CSI Node service: NodePublishVolume mounts the volume with
//! fuse-mount at the target path (read-only when asked or when the access
//! mode only reads), with the credentials of the node-publish secret;
//! NodeUnpublishVolume unmounts it (fine if it is already gone); volume
//! stats come from the mount's statfs, which fuse-mount answers from the
//! bucket's usage and quota, and a dead mount is reported abnormal.

use crate::backend::Backend;
use crate::mounts::{MountState, Mounter, Published, state, unmount};
use crate::proto::node_server::Node;
use crate::proto::node_service_capability::{Rpc, Type, rpc};
use crate::proto::volume_capability::access_mode::Mode;
use crate::proto::*;
use crate::volume::{VolumeId, check_capability, credentials, volume_credentials, volume_key};
use std::collections::HashMap;
use std::path::PathBuf;
use strata_s3client::Tls;
use tonic::{Request, Response, Status};

#[derive(Debug)]
pub struct NodeService {
    pub node_id: String,
    pub mounter: Mounter,
}

/// Mount flags (a PV's or StorageClass's `mountOptions`) fuse-mount
/// takes: ownership and modes of objects without POSIX metadata, the
/// attribute TTL, permission checks by the kernel, read-only, the block
/// cache's size and the read-ahead. Anything else is refused.
/// MiB of the block cache of each mount the node makes, unless its mount
/// flags say otherwise: a node mounts many volumes, each with a cache of
/// its own on the node's disk.
const BLOCK_CACHE_MIB: u64 = 256;

fn mount_options(flags: &[String]) -> Result<Vec<String>, Status> {
    let mut options = flag_options(flags)?;
    if !options.iter().any(|o| o.starts_with("--block-cache-mib")) {
        options.push(format!("--block-cache-mib={BLOCK_CACHE_MIB}"));
    }
    Ok(options)
}

fn flag_options(flags: &[String]) -> Result<Vec<String>, Status> {
    const ALLOWED: &[&str] = &[
        "uid",
        "gid",
        "file-mode",
        "dir-mode",
        "attr-ttl",
        "default-permissions",
        "read-only",
        "ro",
        "block-cache-mib",
        "read-ahead-kib",
    ];
    flags
        .iter()
        .flat_map(|f| f.split(','))
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (key, value) = f.split_once('=').map_or((f, None), |(k, v)| (k, Some(v)));
            let key = key.replace('_', "-");
            if !ALLOWED.contains(&key.as_str()) {
                return Err(Status::invalid_argument(format!(
                    "unsupported mount option {key}"
                )));
            }
            Ok(match (key.as_str(), value) {
                ("ro" | "read-only", _) => "--read-only".to_owned(),
                (k, Some(v)) => format!("--{k}={v}"),
                (k, None) => format!("--{k}"),
            })
        })
        .collect()
}

fn condition(abnormal: bool, message: &str) -> Option<VolumeCondition> {
    Some(VolumeCondition {
        abnormal,
        message: message.to_owned(),
    })
}

impl NodeService {
    /// What keeps the volume from working as objd sees it, asked with the
    /// volume's own credentials: objd unreachable, the credentials refused,
    /// the bucket gone.
    async fn objd_trouble(&self, p: &Published) -> Option<String> {
        let endpoint = &self.mounter.endpoint;
        let volume = Backend {
            endpoint: endpoint.clone(),
            tls: Tls {
                ca_file: self.mounter.ca_file.clone(),
                ..Default::default()
            },
            credentials: Some((p.access_key.clone(), p.secret_key.clone())),
        };
        let client = match volume.client(&HashMap::new()) {
            Ok(c) => c.with_timeout(std::time::Duration::from_secs(5)),
            Err(e) => return Some(e.message().to_owned()),
        };
        let bucket = p.source.split('/').next().unwrap_or_default();
        match client.bucket_exists(bucket).await {
            Ok(true) => None,
            Ok(false) => Some(format!("the volume's bucket {bucket} no longer exists")),
            Err(e) if e.status() == 403 => Some("objd refuses the volume's credentials".to_owned()),
            Err(e) => Some(format!("objd at {endpoint} cannot be reached: {e}")),
        }
    }
}

fn target(path: &str, field: &str) -> Result<PathBuf, Status> {
    if path.is_empty() {
        return Err(Status::invalid_argument(format!("{field} is required")));
    }
    let p = PathBuf::from(path);
    if !p.is_absolute() {
        return Err(Status::invalid_argument(format!("{field} must be absolute")));
    }
    Ok(p)
}

#[tonic::async_trait]
impl Node for NodeService {
    async fn node_publish_volume(
        &self,
        r: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        let id = VolumeId::parse(&r.volume_id)?;
        let target = target(&r.target_path, "target_path")?;
        let cap = r
            .volume_capability
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("volume_capability is required"))?;
        check_capability(cap)?;
        // The volume's own credentials when the secret has a volumeKey.
        let (access_key, secret_key) = match volume_key(&r.secrets)? {
            Some(key) => volume_credentials(key, &id.id()),
            None => credentials(&r.secrets).ok_or_else(|| {
                Status::invalid_argument(
                    "the node-publish secret must hold volumeKey, or accessKey and secretKey",
                )
            })?,
        };
        let reads_only = matches!(
            cap.access_mode.as_ref().and_then(|m| Mode::try_from(m.mode).ok()),
            Some(Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly)
        );
        let flags = match &cap.access_type {
            Some(crate::proto::volume_capability::AccessType::Mount(m)) => m.mount_flags.clone(),
            _ => Vec::new(),
        };
        let want = Published {
            volume_id: id.id(),
            target: target.clone(),
            source: id.mount_source(),
            read_only: r.readonly || reads_only,
            options: {
                let mut o = mount_options(&flags)?;
                // The storage class the volume's writes ask for.
                if let Some(c) = r.volume_context.get("storageClass") {
                    o.push(format!("--storage-class={c}"));
                }
                o
            },
            access_key,
            secret_key,
        };
        match state(&target) {
            MountState::Live => {
                // Published before: the same request succeeds again; a
                // different volume or mode at this path is a conflict.
                return match self.mounter.load(&target) {
                    Some(p)
                        if p.volume_id == want.volume_id
                            && p.read_only == want.read_only
                            && p.options == want.options =>
                    {
                        Ok(Response::new(NodePublishVolumeResponse {}))
                    }
                    _ => Err(Status::already_exists(format!(
                        "{} is already mounted with something else",
                        target.display()
                    ))),
                };
            }
            // A mount whose process died: clear it, then mount again.
            MountState::Dead => unmount(&target)
                .await
                .map_err(|e| Status::internal(format!("clearing a dead mount: {e}")))?,
            MountState::Absent => {}
        }
        self.mounter.mount(&want).await.map_err(Status::internal)?;
        tracing::info!(volume = %want.volume_id, target = %target.display(), read_only = want.read_only, "volume published");
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        r: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        let target = target(&r.target_path, "target_path")?;
        unmount(&target)
            .await
            .map_err(|e| Status::internal(format!("unmounting: {e}")))?;
        self.mounter.forget(&target);
        // The target directory goes with the mount (kubelet made it).
        let _ = std::fs::remove_dir(&target);
        tracing::info!(volume = %r.volume_id, target = %target.display(), "volume unpublished");
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_volume_stats(
        &self,
        r: Request<NodeGetVolumeStatsRequest>,
    ) -> Result<Response<NodeGetVolumeStatsResponse>, Status> {
        let r = r.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is required"));
        }
        if r.volume_path.is_empty() {
            return Err(Status::invalid_argument("volume_path is required"));
        }
        // Only where this node published the volume are there stats (a
        // relative path never is such a place).
        let path = PathBuf::from(&r.volume_path);
        let Some(published) = self.mounter.load(&path).filter(|p| p.volume_id == r.volume_id) else {
            return Err(Status::not_found(format!(
                "volume {} is not published at {}",
                r.volume_id,
                path.display()
            )));
        };
        let abnormal = |message: &str| {
            Ok(Response::new(NodeGetVolumeStatsResponse {
                usage: vec![],
                volume_condition: condition(true, message),
            }))
        };
        match state(&path) {
            MountState::Absent if !path.exists() => {
                return Err(Status::not_found(format!("{} does not exist", path.display())));
            }
            MountState::Absent => return abnormal("the volume is not mounted"),
            MountState::Dead => {
                return abnormal("the mount is not connected: its fuse-mount process ended");
            }
            MountState::Live => {}
        }
        // objd's view first: the mount's statfs would wait out its request
        // timeout for a server that does not answer.
        if let Some(trouble) = self.objd_trouble(&published).await {
            return abnormal(&trouble);
        }
        let st = tokio::task::spawn_blocking(move || rustix::fs::statvfs(&path))
            .await
            .map_err(|e| Status::internal(e.to_string()))?
            .map_err(|e| Status::internal(format!("statfs: {e}")))?;
        let bytes = |blocks: u64| (blocks.saturating_mul(st.f_frsize)).min(i64::MAX as u64) as i64;
        let files = |n: u64| n.min(i64::MAX as u64) as i64;
        let usage = vec![
            VolumeUsage {
                available: bytes(st.f_bavail),
                total: bytes(st.f_blocks),
                used: bytes(st.f_blocks.saturating_sub(st.f_bfree)),
                unit: volume_usage::Unit::Bytes as i32,
            },
            VolumeUsage {
                available: files(st.f_ffree),
                total: files(st.f_files),
                used: files(st.f_files.saturating_sub(st.f_ffree)),
                unit: volume_usage::Unit::Inodes as i32,
            },
        ];
        // fuse-mount reports a quota's free space as what is left of it.
        let volume_condition = if st.f_blocks > 0 && st.f_bavail == 0 {
            condition(
                true,
                "the volume's quota is reached: writes fail with EDQUOT until it is expanded or data is removed",
            )
        } else {
            condition(false, "mounted")
        };
        Ok(Response::new(NodeGetVolumeStatsResponse {
            usage,
            volume_condition,
        }))
    }

    async fn node_get_capabilities(
        &self,
        _r: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let capabilities = [rpc::Type::GetVolumeStats, rpc::Type::VolumeCondition]
            .into_iter()
            .map(|t| NodeServiceCapability {
                r#type: Some(Type::Rpc(Rpc { r#type: t as i32 })),
            })
            .collect();
        Ok(Response::new(NodeGetCapabilitiesResponse { capabilities }))
    }

    async fn node_get_info(
        &self,
        _r: Request<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.node_id.clone(),
            max_volumes_per_node: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_flags_become_fuse_mount_options() {
        let flags = vec![
            "uid=1000,gid=1000".to_owned(),
            "dir_mode=0775".to_owned(),
            "ro".to_owned(),
            "block_cache_mib=64".to_owned(),
        ];
        assert_eq!(
            mount_options(&flags).unwrap(),
            [
                "--uid=1000",
                "--gid=1000",
                "--dir-mode=0775",
                "--read-only",
                "--block-cache-mib=64"
            ]
        );
        assert_eq!(
            mount_options(&["uid=7".to_owned()]).unwrap(),
            ["--uid=7", "--block-cache-mib=256"]
        );
        let e = mount_options(&["allow-other".to_owned()]).unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
    }
}
