//! Striped per-key locks. Commits of one key are serialized inside the
//! process so every drive sees the writes of a key in the same order (the
//! last committed write wins everywhere, never a split between drives).
//! Data streaming happens outside the lock; only the metadata commit is
//! inside.

use tokio::sync::{Mutex, MutexGuard};

const STRIPES: usize = 1024;

#[derive(Debug)]
pub struct KeyLocks {
    stripes: Vec<Mutex<()>>,
}

impl KeyLocks {
    pub fn new() -> Self {
        Self {
            stripes: (0..STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    pub async fn lock(&self, bucket: &str, key: &str) -> MutexGuard<'_, ()> {
        let h = super::placement_hash(0x5eed, bucket, key);
        self.stripes[(h % STRIPES as u64) as usize].lock().await
    }
}
