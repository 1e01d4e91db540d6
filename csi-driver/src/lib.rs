//! Strata's CSI plugin: buckets (or prefixes of a shared bucket) as
//! Kubernetes volumes. The controller creates a bucket per volume with a
//! quota equal to its capacity; the node mounts it with fuse-mount and
//! keeps what it published on the host, to mount it again after a restart.

pub mod backend;
pub mod controller;
pub mod identity;
pub mod mounts;
pub mod node;
pub mod snapshot;
pub mod status;
pub mod volume;

/// The CSI v1 messages and services, generated from `proto/csi.proto`.
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto {
    tonic::include_proto!("csi.v1");
}
