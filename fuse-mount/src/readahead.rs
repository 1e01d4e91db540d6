//! What an open file holds of its object for reading: a short queue of
//! windows of its bytes. While the file is read in order, the windows
//! after the one being read ([`AHEAD`] of them, `--read-ahead-kib` each)
//! are fetched in the background while the reader consumes this one, so
//! a streaming reader waits for the network only when it outruns it. The
//! kernel's reads of a file read in order may arrive out of order (it
//! reads ahead itself, on several threads); any read inside the windows
//! held or under way is served from them, and the window before the one
//! being read is kept for reads that arrive late. A handle holds at most
//! `2 + AHEAD` windows (`6 x --read-ahead-kib`).
//!
//! A read outside them that does not continue the previous one is random:
//! it fetches a little more than asked ([`RANDOM_READ`]) and drops the
//! windows fetched ahead.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use strata_s3client::Error;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Bytes fetched for a read that does not continue the previous one.
pub const RANDOM_READ: u64 = 64 << 10;

/// Windows fetched ahead of a reader reading in order: four, so that
/// requests stay under way while the reader waits for one (a 1 GiB read
/// of a local objd: 1.22x the rate with two, docs/benchmarks.md).
pub const AHEAD: usize = 4;

/// How far a read may start from where the last one ended and still
/// count as reading in order: the kernel answers its own read-ahead on
/// several threads, so reads of a stream arrive a little out of order.
const SLACK: u64 = 256 << 10;

/// A window's bytes: fetched, or being fetched.
enum Held {
    Ready(Bytes),
    Fetching(JoinHandle<Result<Bytes, Error>>),
}

/// `[start, end)` of the object, and its bytes.
struct Window {
    start: u64,
    end: u64,
    bytes: Held,
    /// Fetched for a reader reading in order (not a random read's).
    streaming: bool,
}

/// The read state of one open file.
#[derive(Default)]
pub struct Reader {
    /// Contiguous windows in order.
    windows: VecDeque<Window>,
    /// Where the last read ended: a read starting there is sequential.
    next_seq: u64,
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
        let sequential = offset.abs_diff(self.next_seq) <= SLACK;
        self.next_seq = end;
        if offset >= file_size {
            return Ok(Bytes::new());
        }
        let span = self
            .windows
            .front()
            .map(|f| f.start)
            .zip(self.windows.back().map(|b| b.end));
        let mut inside = span.is_some_and(|(s, e)| offset >= s && end <= e);
        // A read of the stream that arrived after the reads past it:
        // fetch what comes before the windows, and keep them.
        if let Some((s, e)) = span
            && !inside
            && sequential
            && offset < s
            && end <= e
        {
            let data = rt.block_on(fetch(offset, s))?;
            if data.len() as u64 == s - offset {
                self.windows.push_front(Window {
                    start: offset,
                    end: s,
                    bytes: Held::Ready(data),
                    streaming: true,
                });
                inside = true;
            }
        }
        if !inside {
            self.cancel();
            let want = if sequential {
                u64::from(size).max(read_ahead)
            } else {
                u64::from(size).max(RANDOM_READ)
            };
            let to = (offset + want).min(file_size);
            let data = rt.block_on(fetch(offset, to))?;
            let to = offset + data.len() as u64;
            self.windows.push_back(Window {
                start: offset,
                end: to,
                bytes: Held::Ready(data),
                streaming: sequential,
            });
        }
        // Wait for the windows the read covers.
        let mut streaming = false;
        for w in self
            .windows
            .iter_mut()
            .filter(|w| w.start < end && w.end > offset)
        {
            streaming |= w.streaming;
            if let Held::Fetching(task) = &mut w.bytes {
                let data = rt.block_on(task).map_err(|e| Error::Transport(e.to_string()))??;
                w.bytes = Held::Ready(data);
            }
        }
        let Some(hit) = self.held(offset, end) else {
            // A window came back short (the object is shorter than it was
            // when opened): fetch this read alone.
            self.cancel();
            return rt.block_on(fetch(offset, end));
        };
        if streaming {
            // Drop what lies before the window before this read's, and
            // keep the next windows under way.
            while self.windows.len() > 1 && self.windows[1].end <= offset {
                self.windows.pop_front();
            }
            let ahead = self.windows.iter().filter(|w| w.start >= end).count();
            let mut next = self.windows.back().map_or(end, |b| b.end);
            for _ in ahead..AHEAD {
                if next >= file_size {
                    break;
                }
                let to = (next + read_ahead).min(file_size);
                self.windows.push_back(Window {
                    start: next,
                    end: to,
                    bytes: Held::Fetching(rt.spawn(fetch(next, to))),
                    streaming: true,
                });
                next = to;
            }
        }
        Ok(hit)
    }

    /// `[offset, end)` from the windows that hold all of it (fetched).
    fn held(&self, offset: u64, end: u64) -> Option<Bytes> {
        let mut parts = self.windows.iter().filter(|w| w.start < end && w.end > offset);
        let first = parts.next()?;
        let Held::Ready(data) = &first.bytes else {
            return None;
        };
        if first.start > offset || data.len() as u64 != first.end - first.start {
            return None;
        }
        if end <= first.end {
            return Some(data.slice((offset - first.start) as usize..(end - first.start) as usize));
        }
        let mut out = BytesMut::with_capacity((end - offset) as usize);
        out.extend_from_slice(&data[(offset - first.start) as usize..]);
        let mut at = first.end;
        for w in parts {
            let Held::Ready(d) = &w.bytes else { return None };
            if w.start != at || d.len() as u64 != w.end - w.start {
                return None;
            }
            out.extend_from_slice(&d[..(end.min(w.end) - w.start) as usize]);
            at = w.end;
        }
        (at >= end).then(|| out.freeze())
    }

    /// Drops every window, stopping the fetches under way.
    fn cancel(&mut self) {
        for w in self.windows.drain(..) {
            if let Held::Fetching(task) = w.bytes {
                task.abort();
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.cancel();
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

    #[test]
    fn reads_of_a_stream_arriving_out_of_order_stay_on_the_windows() {
        let data: Arc<Vec<u8>> = Arc::new((0..4_000_000u32).map(|i| (i * 13 % 241) as u8).collect());
        // The kernel's 128 KiB reads in pairs, the second of each pair
        // first (two threads answering them), then a late one.
        let mut reads = Vec::new();
        for pair in 0..(4_000_000u64 / (256 << 10)) {
            let at = pair * (256 << 10);
            reads.push((at + (128 << 10), 128 << 10));
            reads.push((at, 128 << 10));
        }
        reads.push((3_900_000, 100_000));
        reads.push((1_000_000, 4096));
        let n = read_all(&data, &reads, 1 << 20);
        // One fetch per 1 MiB window, give or take the late reads.
        assert!(n <= 4_000_000usize.div_ceil(1 << 20) + 3, "{n} fetches");
    }
}
