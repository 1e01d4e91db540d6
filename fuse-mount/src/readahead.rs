//! What an open file holds of its object for reading: the window of bytes
//! fetched last and, while the file is read in order, the next window,
//! fetched in the background while the reader consumes this one, so a
//! streaming reader waits for the network only when it outruns it. A
//! handle holds at most two windows (`2 x --read-ahead-kib`).
//!
//! A read that does not continue the previous one is random: it fetches a
//! little more than asked ([`RANDOM_READ`]) and cancels the window being
//! fetched ahead.

use bytes::{Bytes, BytesMut};
use std::future::Future;
use strata_s3client::Error;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Bytes fetched for a read that does not continue the previous one.
pub const RANDOM_READ: u64 = 64 << 10;

/// The read state of one open file.
#[derive(Default)]
pub struct Reader {
    /// Start offset and bytes of the last window fetched.
    window: Option<(u64, Bytes)>,
    /// Where the last read ended: a read starting there is sequential.
    next_seq: u64,
    /// The window after `window`, being fetched.
    ahead: Option<(u64, JoinHandle<Result<Bytes, Error>>)>,
}

impl Reader {
    /// The bytes `[offset, offset + size)` of a file of `file_size` bytes,
    /// fetching what is not held with `fetch(start, end)`, which returns
    /// exactly that range. `read_ahead` is the window size for sequential
    /// reads.
    pub fn read<F, Fut>(
        &mut self,
        rt: &Runtime,
        offset: u64,
        size: u32,
        file_size: u64,
        read_ahead: u64,
        fetch: F,
    ) -> Result<Bytes, Error>
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        let end = (offset + u64::from(size)).min(file_size);
        let sequential = offset == self.next_seq;
        self.next_seq = end;
        if offset >= file_size {
            return Ok(Bytes::new());
        }
        if let Some(hit) = self.held(offset, end) {
            return Ok(hit);
        }
        let ahead = self.ahead.take();
        if !sequential {
            if let Some((_, task)) = ahead {
                task.abort();
            }
            let want = u64::from(size).max(RANDOM_READ);
            let data = rt.block_on(fetch(offset, (offset + want).min(file_size)))?;
            self.window = Some((offset, data));
            return Ok(self.held(offset, end).unwrap_or_default());
        }
        self.window = Some(match ahead {
            // The window fetched ahead starts where this read starts or
            // where it crosses into.
            Some((start, task)) if start < end => {
                let next = rt.block_on(task).map_err(|e| Error::Transport(e.to_string()))??;
                match &self.window {
                    Some((w, data)) if start > offset && *w <= offset => {
                        let mut joined = BytesMut::with_capacity((start - offset) as usize + next.len());
                        joined.extend_from_slice(&data[(offset - w) as usize..]);
                        joined.extend_from_slice(&next);
                        (offset, joined.freeze())
                    }
                    _ => (start, next),
                }
            }
            other => {
                if let Some((_, task)) = other {
                    task.abort();
                }
                let want = u64::from(size).max(read_ahead);
                (
                    offset,
                    rt.block_on(fetch(offset, (offset + want).min(file_size)))?,
                )
            }
        });
        let Some(hit) = self.held(offset, end) else {
            // The window fetched ahead does not cover this read (it was
            // fetched for an older size of the file): fetch it now.
            let want = u64::from(size).max(read_ahead);
            let data = rt.block_on(fetch(offset, (offset + want).min(file_size)))?;
            self.window = Some((offset, data));
            return Ok(self.held(offset, end).unwrap_or_default());
        };
        // Start fetching the next window.
        if let Some((w, data)) = &self.window {
            let next = w + data.len() as u64;
            if next < file_size {
                let fut = fetch(next, (next + read_ahead).min(file_size));
                self.ahead = Some((next, rt.spawn(fut)));
            }
        }
        Ok(hit)
    }

    /// `[offset, end)` if the current window holds all of it.
    fn held(&self, offset: u64, end: u64) -> Option<Bytes> {
        let (start, data) = self.window.as_ref()?;
        (offset >= *start && end <= start + data.len() as u64)
            .then(|| data.slice((offset - start) as usize..(end - start) as usize))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        if let Some((_, task)) = self.ahead.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Reads `(offset, size)` ranges of `data` in turn through one reader,
    /// checking every byte returned; returns how many fetches it made.
    fn read_all(data: &Arc<Vec<u8>>, reads: &[(u64, u32)], read_ahead: u64) -> usize {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        let fetches = Arc::new(AtomicUsize::new(0));
        let mut r = Reader::default();
        let len = data.len() as u64;
        for &(offset, size) in reads {
            let (d, n) = (Arc::clone(data), Arc::clone(&fetches));
            let got = r
                .read(&rt, offset, size, len, read_ahead, move |s, e| {
                    let (d, n) = (Arc::clone(&d), Arc::clone(&n));
                    async move {
                        assert!(s < e && e <= d.len() as u64, "fetch {s}..{e}");
                        n.fetch_add(1, Ordering::SeqCst);
                        Ok(Bytes::copy_from_slice(&d[s as usize..e as usize]))
                    }
                })
                .unwrap();
            let end = (offset + u64::from(size)).min(len).max(offset.min(len));
            assert_eq!(
                &got[..],
                &data[offset.min(len) as usize..end as usize],
                "read {offset}+{size}"
            );
        }
        drop(r);
        fetches.load(Ordering::SeqCst)
    }

    #[test]
    fn sequential_random_and_unaligned_reads_return_exact_bytes() {
        let data: Arc<Vec<u8>> = Arc::new((0..1_000_003u32).map(|i| (i * 7 % 251) as u8).collect());
        // Aligned sequential reads: one fetch per window, each window
        // fetched ahead of the reads that use it.
        let seq: Vec<(u64, u32)> = (0..=1_000_003u64 / 4096).map(|i| (i * 4096, 4096)).collect();
        let n = read_all(&data, &seq, 64 << 10);
        assert_eq!(n, 1_000_003usize.div_ceil(64 << 10));
        // Reads that cross window ends, reads past the end, random reads.
        let odd: Vec<(u64, u32)> = {
            let mut v = Vec::new();
            let mut at = 0u64;
            while at < 1_000_003 {
                v.push((at, 5000));
                at += 5000;
            }
            v.push((at, 10));
            v.push((999_999, 100));
            v.extend([
                (3, 1),
                (700_000, 70_000),
                (12, 65_536),
                (999_990, 13),
                (500_000, 200_000),
            ]);
            v
        };
        read_all(&data, &odd, 64 << 10);
        read_all(&data, &odd, 1 << 20);
    }
}
