//! The cache of bucket records every node keeps.
//!
//! Deleting a bucket first marks its record as being deleted (on a write
//! quorum of every set) and waits until every node has seen the mark,
//! then checks that the bucket is empty: from the mark on, every node
//! refuses new object writes and uploads in the bucket
//! ([`BucketCache::admit`]). A write admitted just before the mark and
//! still committing when the emptiness check runs is the one case left
//! (`docs/cluster.md`).

use super::{ObjectError, ObjectResult};
use crate::meta::BucketRecord;
use std::collections::BTreeMap;
use std::sync::RwLock;

/// The setting that marks a bucket being deleted.
pub const DELETING: &str = "deleting";

#[derive(Debug, Default)]
pub struct BucketCache {
    map: RwLock<BTreeMap<String, BucketRecord>>,
}

impl BucketCache {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, BucketRecord>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, BucketRecord>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<BucketRecord> {
        self.read().get(name).cloned()
    }

    /// Every bucket, in name order.
    pub fn all(&self) -> Vec<(String, BucketRecord)> {
        self.read().iter().map(|(n, c)| (n.clone(), c.clone())).collect()
    }

    pub fn insert(&self, name: &str, rec: BucketRecord) {
        self.write().insert(name.to_owned(), rec);
    }

    /// Removes a bucket; whether it was there.
    pub fn remove(&self, name: &str) -> bool {
        self.write().remove(name).is_some()
    }

    pub fn replace(&self, all: BTreeMap<String, BucketRecord>) {
        *self.write() = all;
    }

    /// Whether object writes into `name` are admitted: `NoSuchBucket` when
    /// the bucket is gone or being deleted.
    pub fn admit(&self, name: &str) -> ObjectResult<()> {
        match self.read().get(name) {
            Some(r) if !r.settings.contains_key(DELETING) => Ok(()),
            _ => Err(ObjectError::NoSuchBucket),
        }
    }
}
