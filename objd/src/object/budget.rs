//! The buffer budget: one pool of byte credits that every streaming request
//! draws its working set from before it reads or encodes a byte (uploads,
//! parts, downloads, copies). A request that finds the pool empty waits for
//! credits instead of allocating, so the memory that object data takes is
//! bounded by the budget whatever the number of requests in flight.
//!
//! A request takes its whole working set at once and holds it until it
//! ends: it never holds credits while it waits for more, so requests cannot
//! wait on each other in a cycle (a copy takes the credits of its reader
//! and of its writer together for that reason). The working sets are
//! computed here, from the same constants the read and write paths use, so
//! the figures in docs/operations.md have one source.

use crate::erasure::Layout;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Credits are counted in units of this many bytes.
const UNIT: u64 = 1024;

/// Bytes a shard writer buffers before its file.
pub const WRITER_BUFFER: u64 = crate::drive::local::SHARD_WRITE_BUFFER as u64;

/// Blocks a download reads per shard request (4 MiB of object data in the
/// default layout): fewer, larger reads per drive.
pub const READ_BATCH: u64 = 4;

/// Chunks of a download between its reader and the connection: the
/// channel's depth plus the one the connection is sending.
pub const READ_QUEUE: u64 = 3;

/// What a request holds besides its blocks (headers, digests, records).
const REQUEST_OVERHEAD: u64 = 16 * 1024;

tokio::task_local! {
    /// Set while work that has paid for its stages runs.
    static PAID: ();
}

/// The shared pool of credits (a cheap handle: clones share the pool).
#[derive(Debug, Clone)]
pub struct Budget {
    inner: Option<Arc<Pool>>,
}

#[derive(Debug)]
struct Pool {
    sem: Arc<Semaphore>,
    units: u64,
    /// Longest wait for credits before a request is refused.
    wait: Option<std::time::Duration>,
    waiting: AtomicU64,
    waits: AtomicU64,
}

impl Default for Budget {
    /// No limit (tests and tools that open a layer of their own).
    fn default() -> Self {
        Self { inner: None }
    }
}

/// A request waited longer than the budget allows for its credits: the
/// server is saturated, and the client should retry later (S3's `503
/// SlowDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no buffer memory came free in time")]
pub struct Saturated;

/// Credits held by one request; given back when dropped.
#[derive(Debug)]
pub struct Credit(Option<OwnedSemaphorePermit>);

impl Credit {
    /// A credit of nothing (for work already paid for).
    pub fn none() -> Self {
        Self(None)
    }

    pub fn bytes(&self) -> u64 {
        self.0.as_ref().map_or(0, |p| p.num_permits() as u64 * UNIT)
    }
}

impl Budget {
    /// A pool of `bytes` (at least one megabyte) whose requests wait at
    /// most `wait` for their credits (`None`: as long as it takes).
    pub fn new(bytes: u64, wait: Option<std::time::Duration>) -> Self {
        let units = (bytes / UNIT).max(1024);
        Self {
            inner: Some(Arc::new(Pool {
                sem: Arc::new(Semaphore::new(units as usize)),
                units,
                wait,
                waiting: AtomicU64::new(0),
                waits: AtomicU64::new(0),
            })),
        }
    }

    /// The pool's size in bytes (`None`: unlimited).
    pub fn total(&self) -> Option<u64> {
        self.inner.as_ref().map(|p| p.units * UNIT)
    }

    /// Bytes held by requests now.
    pub fn in_use(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |p| (p.units - p.sem.available_permits() as u64) * UNIT)
    }

    /// Requests waiting for credits now.
    pub fn waiting(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |p| p.waiting.load(Ordering::Relaxed))
    }

    /// Requests that have had to wait for credits since start.
    pub fn waits(&self) -> u64 {
        self.inner.as_ref().map_or(0, |p| p.waits.load(Ordering::Relaxed))
    }

    /// Runs `work` on `bytes` of credit taken once for all of it: the
    /// takes made inside it (by the write of a copy, say) are already paid
    /// for and take nothing, so work made of several stages never holds
    /// credits while it waits for more.
    pub async fn paid<F: std::future::Future>(&self, bytes: u64, work: F) -> Result<F::Output, Saturated> {
        let _credit = self.take(bytes).await?;
        Ok(PAID.scope((), work).await)
    }

    /// Takes `bytes` of credit, waiting until the pool has them (in the
    /// order requests asked), or fails once the pool's longest wait has
    /// passed. A request larger than the whole pool takes the whole pool
    /// (and so runs alone) rather than waiting forever. Inside
    /// [`Budget::paid`], takes nothing.
    pub async fn take(&self, bytes: u64) -> Result<Credit, Saturated> {
        let Some(pool) = &self.inner else {
            return Ok(Credit::none());
        };
        if PAID.try_with(|_| ()).is_ok() {
            return Ok(Credit::none());
        }
        let units = bytes.div_ceil(UNIT).clamp(1, pool.units);
        let n = u32::try_from(units).unwrap_or(u32::MAX);
        let permit = match Arc::clone(&pool.sem).try_acquire_many_owned(n) {
            Ok(p) => p,
            Err(_) => {
                pool.waits.fetch_add(1, Ordering::Relaxed);
                pool.waiting.fetch_add(1, Ordering::Relaxed);
                let _left = Waiting(&pool.waiting);
                match super::within(pool.wait, Arc::clone(&pool.sem).acquire_many_owned(n)).await {
                    Ok(Ok(p)) => p,
                    // The semaphore is never closed.
                    Ok(Err(_)) => return Ok(Credit::none()),
                    Err(_) => return Err(Saturated),
                }
            }
        };
        Ok(Credit(Some(permit)))
    }
}

/// Counts a waiter until dropped (also when the request is cancelled).
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The working set of a write of one part into `layout` with `drives`
/// shard writers: the block being filled and encoded and the one the
/// drives are writing, each with its parity; the codec's work area (about
/// a block); a second copy of a block while it is sealed; the writers'
/// buffers. `expect` (the declared length) shrinks it for small bodies.
pub fn write_cost(layout: &Layout, expect: Option<u64>, sealed: bool, drives: usize) -> u64 {
    let plain_per_block = u64::from(layout.block_size);
    let block = block_bytes(plain_per_block, expect);
    let k = layout.data as u64;
    let total = layout.total() as u64;
    let encoded = block * total / k + 1;
    let copies = 2 * encoded + block + if sealed { block } else { 0 };
    let writers = if expect.is_some_and(|e| e < plain_per_block) {
        0
    } else {
        drives as u64 * WRITER_BUFFER
    };
    copies + writers + REQUEST_OVERHEAD
}

/// The working set of a download of `len` bytes from `layout`, where the
/// object's parts hold `part_size` stored bytes (the largest part): a
/// batch of shard reads (whole shard blocks, even for a short range), the
/// blocks assembled from it, and the blocks of the batch before, queued
/// for the connection.
pub fn read_cost(layout: &Layout, len: u64, part_size: u64) -> u64 {
    let block = u64::from(layout.block_size).min(part_size.max(1));
    // A range may start inside one block and end in the next.
    let blocks = (len.div_ceil(block) + 1).clamp(1, READ_BATCH);
    let k = layout.data as u64;
    let spans = blocks * block.div_ceil(k) * k;
    spans + blocks * block + READ_QUEUE.min(blocks) * block + REQUEST_OVERHEAD
}

/// Bytes of the block a write fills: a whole block, or the declared body
/// when it is smaller (rounded up to a page).
fn block_bytes(plain_per_block: u64, expect: Option<u64>) -> u64 {
    match expect {
        Some(e) if e < plain_per_block => e.div_ceil(4096).max(1) * 4096,
        _ => plain_per_block,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credits_wait_for_what_others_give_back() {
        let b = Budget::new(4 << 20, None);
        let a = b.take(3 << 20).await.unwrap();
        assert_eq!(b.in_use(), 3 << 20);
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.take(2 << 20).await.unwrap().bytes() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished(), "two megabytes were not free");
        assert_eq!(b.waiting(), 1);
        drop(a);
        assert_eq!(waiter.await.unwrap(), 2 << 20);
        assert_eq!(b.in_use(), 0);
        assert_eq!(b.waiting(), 0);
        assert_eq!(b.waits(), 1);
    }

    #[tokio::test]
    async fn a_request_larger_than_the_pool_takes_all_of_it() {
        let b = Budget::new(2 << 20, None);
        let c = b.take(10 << 20).await.unwrap();
        assert_eq!(c.bytes(), 2 << 20);
        assert_eq!(b.in_use(), 2 << 20);
        drop(c);
        assert_eq!(Budget::default().take(1 << 30).await.unwrap().bytes(), 0);
    }

    #[tokio::test]
    async fn paid_work_takes_once() {
        let b = Budget::new(2 << 20, None);
        let inner = b.clone();
        let got = b
            .paid(2 << 20, async move {
                // The pool is empty, yet the stages inside do not wait.
                inner.take(1 << 20).await.unwrap().bytes()
            })
            .await
            .unwrap();
        assert_eq!(got, 0);
        assert_eq!(b.in_use(), 0);
    }

    #[tokio::test]
    async fn a_request_that_waits_too_long_is_refused() {
        let b = Budget::new(1 << 20, Some(std::time::Duration::from_millis(50)));
        let held = b.take(1 << 20).await.unwrap();
        assert_eq!(b.take(4096).await.unwrap_err(), Saturated);
        assert_eq!(b.waiting(), 0, "a refused request no longer waits");
        drop(held);
        assert!(b.take(4096).await.is_ok());
    }

    #[test]
    fn working_sets_follow_the_layout_and_the_body() {
        let l = Layout::new(4, 2, 1 << 20).unwrap();
        let big = write_cost(&l, None, false, 6);
        // Two encoded blocks (1.5 MiB each), a block, six writer buffers.
        assert_eq!(
            big,
            2 * ((3 << 19) + 1) + (1 << 20) + 6 * WRITER_BUFFER + REQUEST_OVERHEAD
        );
        assert!(write_cost(&l, None, true, 6) > big);
        let small = write_cost(&l, Some(4096), false, 6);
        assert!(small < 64 * 1024, "a 4 KiB PUT costs {small}");
        assert!(read_cost(&l, 4096, 4096) < 64 * 1024);
        // A short range of a large object still reads whole blocks.
        assert!(read_cost(&l, 4096, 64 << 20) > 2 << 20);
        assert_eq!(
            read_cost(&l, 64 << 20, 64 << 20),
            11 * (1 << 20) + REQUEST_OVERHEAD
        );
        assert_eq!(read_cost(&l, 64 << 20, 64 << 20), read_cost(&l, 1 << 30, 5 << 30));
    }
}
