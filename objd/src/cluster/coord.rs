//! The cluster's [`Coordinator`]: etcd keeps a session lease per node
//! (renewed every second, with the node registered under
//! `nodes/<host:port>`), the bucket lock (a key created only if absent,
//! bound to the session lease, so a dead holder's lock goes with its
//! lease), and under `events/` a key per bucket that a node rewrites
//! after changing the bucket, plus a beat per node rewritten every second.
//! Every node watches `events/` and reloads a bucket from the drives when
//! its key changes; seeing its own beat come back through the watch is
//! how a node knows the watch delivers. All keys live under
//! `/strata/<deployment id>/`.
//!
//! A node that reloaded a changed bucket writes the etcd revision it has
//! applied under `acks/<host:port>`; the node that made the change waits
//! (at most [`ACK_WAIT`]) until every registered node has acknowledged it,
//! so a request to any node after the change was acknowledged sees it.
//! A node that has not seen its own beat through its watch for
//! [`SESSION_FRESH`] (etcd unreachable, this node cut off, or a watch
//! stuck on a member that was cut off) reports itself not coherent, and
//! the object layer reads each request's bucket from the drives instead of
//! its cache; a watch silent for [`WATCH_SILENCE`] is reconnected to the
//! next member. As events reach a watch in revision order and
//! `SESSION_FRESH` < `ACK_WAIT`, a node that did not acknowledge a change
//! in time has either stopped trusting its cache by then, or has the
//! change's event and is rereading the bucket.

use super::etcd::{Etcd, EtcdError, Event};
use crate::object::coord::{CoordGuard, Coordinator, unavailable};
use crate::object::{ObjectLayer, ObjectResult};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Seconds a node's session lease lives without renewal.
pub const TTL: u64 = 10;
/// How often the session lease is renewed.
const RENEW: Duration = Duration::from_secs(1);
/// A node trusts its cache only if its own beat came back through its
/// watch this recently.
pub const SESSION_FRESH: Duration = Duration::from_secs(2);
/// A watch that delivers nothing (not even beats) this long is dead.
const WATCH_SILENCE: Duration = Duration::from_secs(3);
/// Longest wait of a bucket change for the other nodes' acknowledgements.
pub const ACK_WAIT: Duration = Duration::from_secs(3);
/// Longest wait for the bucket lock.
const LOCK_WAIT: Duration = Duration::from_secs(15);

#[derive(Debug)]
pub struct EtcdCoordinator {
    etcd: Arc<Etcd>,
    prefix: String,
    node: String,
    /// The session lease; 0 while there is none.
    lease: AtomicI64,
    /// When this node's own beat last came back through the watch.
    beat_seen: std::sync::Mutex<Option<Instant>>,
}

struct LockGuard {
    etcd: Arc<Etcd>,
    key: Vec<u8>,
    revision: i64,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let (etcd, key, rev) = (
            Arc::clone(&self.etcd),
            std::mem::take(&mut self.key),
            self.revision,
        );
        tokio::spawn(async move {
            if let Err(e) = etcd.delete_if_created(&key, rev).await {
                // The lease ends it anyway.
                tracing::warn!(error = %e, "releasing a cluster lock failed");
            }
        });
    }
}

impl EtcdCoordinator {
    /// Starts the session and the watch of bucket changes for `layer`.
    pub fn start(etcd: Etcd, deployment_id: &str, node: &str, layer: &Arc<ObjectLayer>) -> Arc<Self> {
        let c = Arc::new(Self {
            etcd: Arc::new(etcd),
            prefix: format!("/strata/{deployment_id}/"),
            node: node.to_owned(),
            lease: AtomicI64::new(0),
            beat_seen: std::sync::Mutex::new(None),
        });
        tokio::spawn(session(Arc::downgrade(&c)));
        tokio::spawn(watch_buckets(Arc::downgrade(&c), Arc::downgrade(layer)));
        c
    }

    fn key(&self, rest: &str) -> Vec<u8> {
        format!("{}{rest}", self.prefix).into_bytes()
    }

    fn saw_beat(&self) {
        *self.beat_seen.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    fn forget_beat(&self) {
        *self.beat_seen.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Records that this node applied bucket changes up to `revision`.
    async fn ack(&self, revision: i64) {
        let lease = self.lease.load(Ordering::Acquire);
        let key = self.key(&format!("acks/{}", self.node));
        if let Err(e) = self.etcd.put(&key, revision.to_string().as_bytes(), lease).await {
            tracing::debug!(error = %e, "acknowledging a bucket change failed");
        }
    }

    /// Waits until every registered node acknowledged `revision` (or
    /// [`ACK_WAIT`] passed); returns the nodes that did not.
    async fn wait_acks(&self, revision: i64) -> Vec<String> {
        let deadline = Instant::now() + ACK_WAIT;
        let nodes_prefix = self.key("nodes/");
        let acks_prefix = self.key("acks/");
        loop {
            let missing: Vec<String> = match (
                self.etcd.range_prefix(&nodes_prefix).await,
                self.etcd.range_prefix(&acks_prefix).await,
            ) {
                (Ok((nodes, _)), Ok((acks, _))) => nodes
                    .iter()
                    .filter_map(|n| n.key.get(nodes_prefix.len()..))
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .filter(|n| *n != self.node)
                    .filter(|n| {
                        let acked = acks
                            .iter()
                            .find(|a| a.key.get(acks_prefix.len()..) == Some(n.as_bytes()))
                            .and_then(|a| std::str::from_utf8(&a.value).ok()?.parse::<i64>().ok());
                        acked.is_none_or(|r| r < revision)
                    })
                    .collect(),
                _ => vec!["(etcd unreachable)".into()],
            };
            if missing.is_empty() || Instant::now() >= deadline {
                return missing;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Keeps this node's session lease alive, granting a new one (and
/// registering the node again) whenever it lapsed.
async fn session(me: Weak<EtcdCoordinator>) {
    let mut logged_down = false;
    loop {
        let Some(c) = me.upgrade() else { return };
        let lease = c.lease.load(Ordering::Acquire);
        let alive = if lease == 0 {
            match c.etcd.grant(TTL).await {
                Ok(id) => {
                    let reg = c.key(&format!("nodes/{}", c.node));
                    match c.etcd.put(&reg, b"up", id).await {
                        Ok(_) => {
                            c.lease.store(id, Ordering::Release);
                            tracing::info!(lease = id, "cluster session started");
                            true
                        }
                        Err(_) => {
                            let _ = c.etcd.revoke(id).await;
                            false
                        }
                    }
                }
                Err(_) => false,
            }
        } else {
            match c.etcd.keep_alive(lease).await {
                Ok(true) => true,
                // Expired: a new session (and registration) next time.
                Ok(false) => {
                    c.lease.store(0, Ordering::Release);
                    false
                }
                // Unreachable for now: the lease may still be alive.
                Err(_) => false,
            }
        };
        if alive {
            let beat = c.key(&format!("events/beat/{}", c.node));
            let lease = c.lease.load(Ordering::Acquire);
            let _ = c
                .etcd
                .put(&beat, crate::object::now_ns().to_string().as_bytes(), lease)
                .await;
        }
        if !alive {
            if !logged_down {
                tracing::warn!(
                    "etcd unreachable or session lost: bucket changes wait for it; objects are served"
                );
                logged_down = true;
            }
        } else {
            logged_down = false;
        }
        drop(c);
        tokio::time::sleep(RENEW).await;
    }
}

/// Reloads buckets as their keys change; on every (re)connection, first
/// everything (events may have been missed).
async fn watch_buckets(me: Weak<EtcdCoordinator>, layer: Weak<ObjectLayer>) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, i64)>();
    let (reloader, coord) = (layer.clone(), me.clone());
    tokio::spawn(async move {
        while let Some((name, revision)) = rx.recv().await {
            let Some(l) = reloader.upgrade() else { return };
            match l.reload_bucket(&name).await {
                Ok(()) => {
                    if let Some(c) = coord.upgrade() {
                        c.ack(revision).await;
                    }
                }
                Err(e) => tracing::warn!(bucket = %name, error = %e, "reloading a changed bucket failed"),
            }
        }
    });
    loop {
        let Some(c) = me.upgrade() else { return };
        let prefix = c.key("events/");
        let buckets = c.key("events/buckets/");
        let my_beat = c.key(&format!("events/beat/{}", c.node));
        let result: Result<(), EtcdError> = async {
            let (_, revision) = c.etcd.range_prefix(&buckets).await?;
            if let Some(l) = layer.upgrade() {
                l.load_buckets()
                    .await
                    .map_err(|e| EtcdError::Refused(format!("loading buckets: {e}")))?;
                l.reload_topics().await;
            }
            c.ack(revision).await;
            let strip = buckets.len();
            let coord = &c;
            c.etcd
                .watch(&prefix, revision + 1, WATCH_SILENCE, |events| {
                    for e in events {
                        let (key, rev) = match e {
                            Event::Put(kv) => (kv.key, kv.mod_revision),
                            Event::Delete(k) => (k, revision),
                        };
                        if key == my_beat {
                            coord.saw_beat();
                            continue;
                        }
                        if !key.starts_with(&buckets) {
                            continue;
                        }
                        if let Some(name) = key.get(strip..).and_then(|n| std::str::from_utf8(n).ok()) {
                            let _ = tx.send((name.to_owned(), rev));
                        }
                    }
                })
                .await
        }
        .await;
        c.forget_beat();
        if let Err(e) = result {
            tracing::debug!(error = %e, "bucket watch ended; reconnecting");
        }
        drop(c);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[async_trait::async_trait]
impl Coordinator for EtcdCoordinator {
    async fn lock(&self, name: &str) -> ObjectResult<CoordGuard> {
        let key = self.key(&format!("locks/{name}"));
        let deadline = Instant::now() + LOCK_WAIT;
        let mut last = String::from("no session with etcd");
        while Instant::now() < deadline {
            let lease = self.lease.load(Ordering::Acquire);
            if lease != 0 {
                match self.etcd.create(&key, self.node.as_bytes(), lease).await {
                    Ok(Ok(revision)) => {
                        return Ok(CoordGuard::new(LockGuard {
                            etcd: Arc::clone(&self.etcd),
                            key,
                            revision,
                        }));
                    }
                    Ok(Err(held)) => last = format!("held by {}", String::from_utf8_lossy(&held.value)),
                    Err(e) => last = e.to_string(),
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(unavailable(format!("the {name} lock: {last}")))
    }

    async fn bucket_changed(&self, name: &str) {
        let stamp = format!("{} {}", self.node, crate::object::now_ns());
        match self
            .etcd
            .put(&self.key(&format!("events/buckets/{name}")), stamp.as_bytes(), 0)
            .await
        {
            Ok(revision) => {
                let missing = self.wait_acks(revision).await;
                if !missing.is_empty() {
                    tracing::warn!(bucket = name, nodes = ?missing, "nodes did not acknowledge a bucket change in time; they read it from the drives until they catch up");
                }
            }
            Err(e) => tracing::warn!(
                bucket = name, error = %e,
                "telling the other nodes of a bucket change failed; they see it when their watch reconnects"
            ),
        }
    }

    fn coherent(&self) -> bool {
        self.beat_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|t| t.elapsed() < SESSION_FRESH)
    }
}
