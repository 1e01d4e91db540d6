//! Data directories being streamed. A reader of a version whose shards live
//! in a data directory holds a lease on it while it streams; compaction,
//! which removes the directories of the entries it drops, leaves a leased
//! one in place and the last lease to go removes it. So a GET that began
//! before a DELETE or an overwrite of its object reads to the end, as S3
//! reads do; the orphan sweep leaves leased directories alone too. A
//! crash while a removal waits leaves the directory to the orphan sweep
//! at start.
//!
//! Leases are this process's: a reader on another node of a cluster is
//! not seen by the node that compacts (its read can still be cut off, with
//! an error, never wrong bytes).

use super::ErasureSet;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

type Deferred = (String, String, Vec<usize>);

#[derive(Default)]
struct State {
    /// Leases per directory.
    reading: HashMap<[u8; 16], usize>,
    /// Directories to remove once their last lease goes: the key they
    /// belonged to and the drive positions to remove them from.
    deferred: HashMap<[u8; 16], Deferred>,
}

/// The leases of one erasure set.
#[derive(Default)]
pub(super) struct Leases(Mutex<State>);

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Leases")
    }
}

impl Leases {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directories being read now.
    pub(super) fn held(&self) -> std::collections::HashSet<[u8; 16]> {
        self.state().reading.keys().copied().collect()
    }

    /// Whether `dir` of `bucket/key` is being read; if so its removal
    /// from the drives at `positions` waits for the last reader.
    pub(super) fn defer(&self, dir: [u8; 16], bucket: &str, key: &str, positions: &[usize]) -> bool {
        let mut s = self.state();
        if !s.reading.contains_key(&dir) {
            return false;
        }
        let d = s
            .deferred
            .entry(dir)
            .or_insert_with(|| (bucket.to_owned(), key.to_owned(), Vec::new()));
        d.2.extend_from_slice(positions);
        true
    }
}

/// A reader's hold on a data directory.
#[derive(Debug)]
pub(super) struct Lease {
    set: Arc<ErasureSet>,
    dir: [u8; 16],
}

impl Lease {
    pub(super) fn take(set: &Arc<ErasureSet>, dir: [u8; 16]) -> Self {
        *set.leases.state().reading.entry(dir).or_default() += 1;
        Lease {
            set: Arc::clone(set),
            dir,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let removal = {
            let mut s = self.set.leases.state();
            let n = s.reading.entry(self.dir).or_default();
            *n = n.saturating_sub(1);
            if *n > 0 {
                return;
            }
            s.reading.remove(&self.dir);
            s.deferred.remove(&self.dir)
        };
        let Some((bucket, key, positions)) = removal else {
            return;
        };
        // Outside a runtime (the process ending), the orphan sweep at the
        // next start removes it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (set, dir) = (Arc::clone(&self.set), self.dir);
            let per_drive = (0..set.drive_count())
                .map(|p| if positions.contains(&p) { vec![dir] } else { vec![] })
                .collect();
            rt.spawn(async move { set.remove_dirs(&bucket, &key, per_drive).await });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{body, data_files, fixture, pattern, small_blocks};
    use super::super::{ObjectError, PutOptions};
    use futures::StreamExt;

    /// A read that began before its object was deleted, then overwritten,
    /// reads to the end; the data goes once the reader is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_read_under_way_outlives_a_delete_and_an_overwrite() {
        let f = fixture(4, 2, small_blocks()).await;
        f.layer.make_bucket("bkt").await.unwrap();
        let data = pattern(3_000_000, 5);
        for (i, change) in ["delete", "overwrite"].into_iter().enumerate() {
            f.layer
                .put_object("bkt", "k", body(data.clone()), PutOptions::default())
                .await
                .unwrap();
            f.layer.compact_queued().await;
            let r = f.layer.head_object("bkt", "k", None).await.unwrap();
            let mut s = r.stream_charged(0, data.len() as u64).await.unwrap();
            let mut got = s.next().await.unwrap().unwrap().to_vec();
            match change {
                "delete" => {
                    f.layer.delete_object("bkt", "k", None, false).await.unwrap();
                }
                _ => {
                    f.layer
                        .put_object("bkt", "k", body(pattern(200_000, 9)), PutOptions::default())
                        .await
                        .unwrap();
                }
            }
            f.layer.compact_queued().await;
            while let Some(c) = s.next().await {
                got.extend_from_slice(&c.map_err(ObjectError::Body).unwrap());
            }
            assert!(got == data, "{change}: the read was cut off or changed");
            drop(s);
            // The last reader gone, the old data goes (in the background).
            let left = if i == 0 { 0 } else { 4 };
            for _ in 0..200 {
                if data_files(&f) == left {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            assert_eq!(data_files(&f), left, "{change}: the old data stayed");
            if i == 0 {
                continue;
            }
            f.layer.delete_object("bkt", "k", None, false).await.unwrap();
            f.layer.compact_queued().await;
        }
    }
}
