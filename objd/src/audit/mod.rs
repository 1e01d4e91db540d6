//! The audit log: one [`Entry`] for every request the S3 front served (S3,
//! admin, IAM and STS; not health probes, scrapes or node calls), made by
//! the server pipeline when the response has been sent, and shipped to
//! each configured [`target`] through that target's durable [`queue`].
//!
//! Requests hand entries to one writer thread, which appends each batch to
//! every target's queue and fsyncs it; one shipper task per target takes
//! batches from its queue, in order, and moves the queue's cursor once the
//! target has them. A target that is down keeps its entries queued (and
//! is retried with backoff) until its queue is full; then [`FullPolicy`]
//! decides: drop new entries for that target (counted, logged) or hold new
//! requests until there is room.

pub mod entry;
pub mod queue;
pub mod target;

pub use entry::{Entry, HeaderLists};

use queue::DiskQueue;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};
use target::Target;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Target(String),
    #[error("{0}")]
    Config(String),
}

impl AuditError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        AuditError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// What happens to new entries for a target whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FullPolicy {
    /// Dropped for that target, counted in `strata_audit_dropped_total`
    /// and logged; requests go on.
    #[default]
    Drop,
    /// New requests wait (up to [`Config::admit_wait`], then `503
    /// SlowDown`) until every queue has room: no entry is ever lost.
    Block,
}

impl std::str::FromStr for FullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "drop" => Ok(FullPolicy::Drop),
            "block" => Ok(FullPolicy::Block),
            _ => Err(format!("{s:?}: the policy is drop or block")),
        }
    }
}

/// Entries handed over and not yet queued, past which (under
/// [`FullPolicy::Drop`]) new ones are dropped instead of held in memory.
const MAX_PENDING: usize = 100_000;

/// Largest batch a shipper sends.
const BATCH_LINES: usize = 500;
const BATCH_BYTES: usize = 4 << 20;

/// What the audit log does.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's name in entries.
    pub node: String,
    pub deployment_id: String,
    /// Where the targets' queues live (a directory per target).
    pub queue_dir: PathBuf,
    /// Bytes each target's queue may hold.
    pub queue_size: u64,
    pub full: FullPolicy,
    /// How long a request waits for queue room under [`FullPolicy::Block`].
    pub admit_wait: Duration,
    pub headers: HeaderLists,
}

/// One target's counters, for the metrics endpoint.
#[derive(Debug, Default)]
pub struct TargetStats {
    pub queued: AtomicU64,
    pub delivered: AtomicU64,
    pub dropped: AtomicU64,
    pub failures: AtomicU64,
    pub online: AtomicBool,
}

struct Shipping {
    target: Arc<dyn Target>,
    queue: Arc<DiskQueue>,
    stats: Arc<TargetStats>,
}

/// The audit log of a server.
pub struct Auditor {
    config: Config,
    tx: mpsc::Sender<Vec<u8>>,
    pending: Arc<AtomicUsize>,
    targets: Vec<(String, Arc<DiskQueue>, Arc<TargetStats>)>,
    dropped_in_memory: Arc<AtomicU64>,
}

impl std::fmt::Debug for Auditor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auditor")
            .field("targets", &self.targets.iter().map(|t| &t.0).collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Logs at most once per interval, counting what it held back.
struct Throttled {
    last: Option<Instant>,
    every: Duration,
}

impl Throttled {
    fn new(every: Duration) -> Self {
        Self { last: None, every }
    }

    fn due(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

impl Auditor {
    /// Opens every target's queue and starts the writer thread and the
    /// shippers (on the current Tokio runtime).
    pub fn start(config: Config, targets: Vec<Arc<dyn Target>>) -> Result<Arc<Self>, AuditError> {
        let mut shipping = Vec::new();
        for t in targets {
            let dir = config.queue_dir.join(t.name());
            let queue = DiskQueue::open(&dir, config.queue_size).map_err(|e| AuditError::io(&dir, e))?;
            let stats = Arc::new(TargetStats::default());
            stats.online.store(true, Ordering::Relaxed);
            shipping.push(Shipping {
                target: t,
                queue: Arc::new(queue),
                stats,
            });
        }
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let pending = Arc::new(AtomicUsize::new(0));
        let queues: Vec<_> = shipping
            .iter()
            .map(|s| {
                (
                    s.target.name().to_owned(),
                    Arc::clone(&s.queue),
                    Arc::clone(&s.stats),
                )
            })
            .collect();
        {
            let (queues, pending, full) = (queues.clone(), Arc::clone(&pending), config.full);
            std::thread::Builder::new()
                .name("audit-writer".into())
                .spawn(move || write_queues(&rx, &queues, &pending, full))
                .map_err(|e| AuditError::Config(format!("starting the audit writer: {e}")))?;
        }
        for s in shipping {
            tokio::spawn(ship(s));
        }
        Ok(Arc::new(Self {
            config,
            tx,
            pending,
            targets: queues,
            dropped_in_memory: Arc::default(),
        }))
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Hands over a completed request's entry (never blocks).
    pub fn record(&self, entry: &Entry) {
        if self.config.full == FullPolicy::Drop && self.pending.load(Ordering::Relaxed) >= MAX_PENDING {
            self.dropped_in_memory.fetch_add(1, Ordering::Relaxed);
            for (_, _, s) in &self.targets {
                s.dropped.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let Ok(line) = serde_json::to_vec(entry) else {
            return;
        };
        self.pending.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(line).is_err() {
            self.pending.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Under [`FullPolicy::Block`], waits while a queue is full (at most
    /// [`Config::admit_wait`]); answers whether the request may go on.
    pub async fn admit(&self) -> bool {
        if self.config.full != FullPolicy::Block {
            return true;
        }
        let deadline = Instant::now() + self.config.admit_wait;
        loop {
            let full = self.targets.iter().any(|(_, q, _)| q.is_full_for(4096));
            if !full {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Each target's name, bytes queued and counters.
    pub fn stats(&self) -> Vec<(&str, u64, &TargetStats)> {
        self.targets
            .iter()
            .map(|(n, q, s)| (n.as_str(), q.queued(), s.as_ref()))
            .collect()
    }

    /// Waits until every entry handed over so far is in the queues (at
    /// shutdown), at most `timeout`.
    pub fn flush(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.pending.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The writer thread: takes what requests handed over, appends it to every
/// queue in one fsynced batch per queue.
fn write_queues(
    rx: &mpsc::Receiver<Vec<u8>>,
    queues: &[(String, Arc<DiskQueue>, Arc<TargetStats>)],
    pending: &AtomicUsize,
    full: FullPolicy,
) {
    let mut warn = Throttled::new(Duration::from_secs(10));
    let mut failed = Throttled::new(Duration::from_secs(10));
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(l) => batch.push(l),
                Err(_) => break,
            }
        }
        let lines: Vec<&[u8]> = batch.iter().map(Vec::as_slice).collect();
        for (name, q, stats) in queues {
            let mut rest = &lines[..];
            while !rest.is_empty() {
                match q.push(rest) {
                    Ok(n) => {
                        stats.queued.fetch_add(n as u64, Ordering::Relaxed);
                        rest = &rest[n..];
                    }
                    Err(e) => {
                        if failed.due() {
                            tracing::error!(target: "objd::audit", target_name = %name, error = %e, "cannot write the audit queue; retrying");
                        }
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
                if rest.is_empty() {
                    break;
                }
                match full {
                    FullPolicy::Block => {
                        q.wait_for_space(rest[0].len(), Duration::from_secs(1));
                    }
                    FullPolicy::Drop => {
                        stats.dropped.fetch_add(rest.len() as u64, Ordering::Relaxed);
                        if warn.due() {
                            tracing::error!(
                                target: "objd::audit",
                                target_name = %name,
                                dropped = rest.len(),
                                "the audit queue is full: entries for this target are dropped until it catches up"
                            );
                        }
                        rest = &[];
                    }
                }
            }
        }
        pending.fetch_sub(batch.len(), Ordering::Relaxed);
    }
}

/// One target's shipper: sends the queue's oldest batch until the target
/// takes it, with backoff from 100 ms to 30 s between failures.
async fn ship(s: Shipping) {
    let name = s.target.name().to_owned();
    let mut backoff = Duration::from_millis(100);
    let mut warn = Throttled::new(Duration::from_secs(30));
    loop {
        let q = Arc::clone(&s.queue);
        let peeked = tokio::task::spawn_blocking(move || q.peek(BATCH_LINES, BATCH_BYTES)).await;
        let (lines, next) = match peeked {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                if warn.due() {
                    tracing::error!(target: "objd::audit", target_name = %name, error = %e, "cannot read the audit queue");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        if lines.is_empty() {
            // Moves past an emptied segment, then waits for appends.
            if next != s.queue.cursor() {
                let q = Arc::clone(&s.queue);
                let _ = tokio::task::spawn_blocking(move || q.ack(next)).await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), s.queue.ready.notified()).await;
            continue;
        }
        match s.target.send(&lines).await {
            Ok(()) => {
                if !s.stats.online.swap(true, Ordering::Relaxed) {
                    tracing::info!(target: "objd::audit", target_name = %name, "audit target reachable again; sending what was queued");
                }
                backoff = Duration::from_millis(100);
                let q = Arc::clone(&s.queue);
                match tokio::task::spawn_blocking(move || q.ack(next)).await {
                    Ok(Ok(())) => {
                        s.stats.delivered.fetch_add(lines.len() as u64, Ordering::Relaxed);
                    }
                    _ => tokio::time::sleep(Duration::from_secs(1)).await,
                }
            }
            Err(e) => {
                s.stats.failures.fetch_add(1, Ordering::Relaxed);
                s.stats.online.store(false, Ordering::Relaxed);
                if warn.due() {
                    tracing::warn!(target: "objd::audit", target_name = %name, error = %e, retry_in = ?backoff, "audit target unavailable; entries stay queued");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}
