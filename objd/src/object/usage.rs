//! Bucket usage and quotas. Usage is the bytes and the number of stored
//! versions of each bucket (delete markers and unfinished multipart uploads
//! excluded). It is counted at start-up from the quorum listing of every
//! bucket, then kept exact by every change of an object record: each
//! change's size difference, as the drives that commit it agree, is applied
//! when the change commits.
//!
//! A quota caps a bucket's bytes. A change that would take the bucket past
//! it fails with `QuotaExceeded` before anything is committed; the bytes a
//! change adds are reserved while it commits, so concurrent writers cannot
//! together go beyond the quota. Changes that free space always pass.

use super::{ObjectError, ObjectResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// What one record (or a change of one) weighs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Weight {
    pub bytes: i64,
    pub versions: i64,
}

impl Weight {
    pub fn minus(self, other: Weight) -> Weight {
        Weight {
            bytes: self.bytes - other.bytes,
            versions: self.versions - other.versions,
        }
    }
}

/// A bucket's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BucketUsage {
    pub bytes: u64,
    pub versions: u64,
    pub quota: Option<u64>,
}

#[derive(Debug, Default)]
struct Counts {
    bytes: i64,
    versions: i64,
    /// Bytes of changes being committed.
    reserved: i64,
    quota: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Usage {
    buckets: Mutex<HashMap<String, Counts>>,
}

impl Usage {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Counts>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, bucket: &str) -> BucketUsage {
        self.lock()
            .get(bucket)
            .map_or_else(BucketUsage::default, |c| BucketUsage {
                bytes: c.bytes.max(0) as u64,
                versions: c.versions.max(0) as u64,
                quota: c.quota,
            })
    }

    /// Sets the counted figures of a bucket (start-up count).
    pub fn set_counted(&self, bucket: &str, w: Weight) {
        let mut b = self.lock();
        let c = b.entry(bucket.to_owned()).or_default();
        c.bytes = w.bytes;
        c.versions = w.versions;
    }

    pub fn set_quota(&self, bucket: &str, quota: Option<u64>) {
        self.lock().entry(bucket.to_owned()).or_default().quota = quota;
    }

    pub fn remove(&self, bucket: &str) {
        self.lock().remove(bucket);
    }

    /// Admits a change of `delta` to `bucket`: fails with `QuotaExceeded`
    /// if it adds bytes beyond the quota, else holds them until the change
    /// is applied or dropped.
    pub fn reserve(self: &Arc<Self>, bucket: &str, delta: Weight) -> ObjectResult<Reservation> {
        let held = delta.bytes.max(0);
        let mut b = self.lock();
        let c = b.entry(bucket.to_owned()).or_default();
        if let Some(q) = c.quota
            && held > 0
            && c.bytes + c.reserved + held > q as i64
        {
            return Err(ObjectError::QuotaExceeded {
                quota: q,
                used: c.bytes.max(0) as u64,
            });
        }
        c.reserved += held;
        Ok(Reservation {
            usage: Arc::clone(self),
            bucket: bucket.to_owned(),
            delta,
            applied: false,
        })
    }
}

/// Bytes held for a change being committed.
#[derive(Debug)]
pub struct Reservation {
    usage: Arc<Usage>,
    bucket: String,
    delta: Weight,
    applied: bool,
}

impl Reservation {
    /// The change committed: its weight counts from now on.
    pub fn apply(mut self) {
        let mut b = self.usage.lock();
        let c = b.entry(self.bucket.clone()).or_default();
        c.reserved -= self.delta.bytes.max(0);
        c.bytes += self.delta.bytes;
        c.versions += self.delta.versions;
        self.applied = true;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.applied {
            let mut b = self.usage.lock();
            if let Some(c) = b.get_mut(&self.bucket) {
                c.reserved -= self.delta.bytes.max(0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(bytes: i64) -> Weight {
        Weight { bytes, versions: 1 }
    }

    #[test]
    fn quotas_hold_with_concurrent_reservations() {
        let u = Arc::new(Usage::default());
        u.set_counted("b", w(100));
        u.set_quota("b", Some(1000));
        let first = u.reserve("b", w(600)).unwrap();
        // The first change is not committed yet, but its bytes are held.
        let e = u.reserve("b", w(400)).unwrap_err();
        assert!(
            matches!(
                e,
                ObjectError::QuotaExceeded {
                    quota: 1000,
                    used: 100
                }
            ),
            "{e:?}"
        );
        // Freeing space always passes; a dropped change gives its bytes back.
        u.reserve("b", w(-50)).unwrap().apply();
        drop(first);
        u.reserve("b", w(900)).unwrap().apply();
        assert_eq!(
            u.get("b"),
            BucketUsage {
                bytes: 950,
                versions: 3,
                quota: Some(1000)
            }
        );
        assert!(u.reserve("b", w(51)).is_err());
        u.reserve("b", w(50)).unwrap().apply();
        // No quota: anything goes.
        u.set_quota("b", None);
        u.reserve("b", w(1 << 40)).unwrap().apply();
        assert_eq!(u.get("b").bytes, 1000 + (1 << 40));
        u.remove("b");
        assert_eq!(u.get("b"), BucketUsage::default());
    }
}
