//! What the object layer needs decided once for the whole deployment: a
//! lock for changes of the bucket list and bucket settings, and a notice
//! to the other nodes when a bucket changed, so they drop what they
//! cached. One node serves itself ([`LocalCoordinator`]); a cluster uses
//! etcd (`cluster::coord`).
//!
//! The lock only keeps changes from racing one another (so none is lost
//! to a retry): safety never rests on it. Each bucket record change is a
//! compare-and-set on every drive, so a holder that lost its lock without
//! knowing (a lease that expired during a pause) cannot overwrite what a
//! later holder committed.

use super::{ObjectError, ObjectResult};
use std::sync::Arc;

/// Held while a cluster-wide lock is; dropping it releases the lock.
pub struct CoordGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl std::fmt::Debug for CoordGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CoordGuard")
    }
}

impl CoordGuard {
    pub fn new(inner: impl Send + Sync + 'static) -> Self {
        Self(Box::new(inner))
    }
}

#[async_trait::async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// Waits for the deployment-wide lock `name`.
    async fn lock(&self, name: &str) -> ObjectResult<CoordGuard>;
    /// Tells the other nodes that bucket `name` changed (after the change
    /// is committed on the drives).
    async fn bucket_changed(&self, name: &str);
    /// Whether change notices are arriving, so that cached bucket records
    /// are fresh; when not, the layer reads a bucket from the drives on
    /// every request.
    fn coherent(&self) -> bool;
}

/// The coordinator of a single node: an in-process lock, no one to tell.
#[derive(Debug, Default)]
pub struct LocalCoordinator {
    lock: Arc<tokio::sync::Mutex<()>>,
}

#[async_trait::async_trait]
impl Coordinator for LocalCoordinator {
    async fn lock(&self, _name: &str) -> ObjectResult<CoordGuard> {
        Ok(CoordGuard::new(Arc::clone(&self.lock).lock_owned().await))
    }

    async fn bucket_changed(&self, _name: &str) {}

    fn coherent(&self) -> bool {
        true
    }
}

/// The error of a lock that could not be had.
pub fn unavailable(why: impl Into<String>) -> ObjectError {
    ObjectError::Coordination(why.into())
}
