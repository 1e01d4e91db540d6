//! The cache of bucket records every node keeps, and the gate of object
//! commits into each bucket.
//!
//! Deleting a bucket first marks its record as being deleted (on a write
//! quorum of every set) and waits until every node has seen the mark,
//! then checks that the bucket is empty: from the mark on, every node
//! refuses to commit object writes and uploads in the bucket
//! ([`BucketCache::admit`], checked just before the records are
//! committed). A node that learns of the mark first lets the commits it
//! admitted before finish ([`BucketCache::drain`]) and only then
//! acknowledges it, so no commit decided before the mark is still running
//! when the emptiness check looks. What is left is a node that cannot
//! drain or acknowledge within the deleter's wait (`docs/cluster.md`).

use super::{ObjectError, ObjectResult};
use crate::meta::BucketRecord;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// The setting that marks a bucket being deleted.
pub const DELETING: &str = "deleting";

/// Longest wait for a bucket's admitted commits to finish once it is
/// marked for deletion (commits take milliseconds; a hung drive is cut off
/// by the drive timeout, longer than the deleter waits anyway).
pub const DRAIN_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct BucketCache {
    map: RwLock<BTreeMap<String, BucketRecord>>,
    /// Object commits admitted and not finished, per bucket.
    commits: Mutex<HashMap<String, usize>>,
    drained: tokio::sync::Notify,
}

/// An admitted commit into a bucket; it counts until dropped.
#[derive(Debug)]
pub struct Admitted<'a> {
    cache: &'a BucketCache,
    bucket: String,
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        let mut c = self.cache.counts();
        if let Some(n) = c.get_mut(&self.bucket) {
            *n -= 1;
            if *n == 0 {
                c.remove(&self.bucket);
                self.cache.drained.notify_waiters();
            }
        }
    }
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

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.commits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a commit into `name` (held until the guard drops):
    /// `NoSuchBucket` when the bucket is gone or being deleted.
    pub fn admit(&self, name: &str) -> ObjectResult<Admitted<'_>> {
        // Checked and counted under the map's read lock: a mark inserted
        // after this sees the count.
        let map = self.read();
        match map.get(name) {
            Some(r) if !r.settings.contains_key(DELETING) => {
                *self.counts().entry(name.to_owned()).or_default() += 1;
                Ok(Admitted {
                    cache: self,
                    bucket: name.to_owned(),
                })
            }
            _ => Err(ObjectError::NoSuchBucket),
        }
    }

    /// Waits until the commits admitted into `name` have finished (at most
    /// `limit`); whether they have.
    pub async fn drain(&self, name: &str, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let notified = self.drained.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.counts().contains_key(name) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(bucket = name, "commits still running in a bucket being deleted");
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_deletion_mark_waits_for_commits_admitted_before_it() {
        let cache = BucketCache::default();
        cache.insert("b", BucketRecord::default());
        let before = cache.admit("b").unwrap();
        let mut marked = BucketRecord::default();
        marked.settings.insert(DELETING.into(), vec![1]);
        cache.insert("b", marked);
        assert!(matches!(cache.admit("b"), Err(ObjectError::NoSuchBucket)));
        // The commit admitted before the mark still runs: no drain yet.
        assert!(!cache.drain("b", Duration::from_millis(100)).await);
        let wait = cache.drain("b", Duration::from_secs(5));
        let finish = async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            drop(before);
        };
        let (drained, ()) = tokio::join!(wait, finish);
        assert!(drained);
        assert!(cache.drain("other", Duration::ZERO).await);
    }
}
