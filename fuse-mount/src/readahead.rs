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
//!
//! A read never waits for a window with the reader locked
//! ([`read_locked`]): it is told which windows to wait for, waits with the
//! lock let go, so that the file's other reads are served from the windows
//! already there meanwhile, and then goes on.

use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use strata_s3client::Error;
use tokio::runtime::Runtime;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

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

/// Where a window's fetch leaves its bytes, for every read waiting on it.
#[derive(Default)]
struct Slot {
    bytes: OnceLock<Result<Bytes, Error>>,
    filled: Notify,
}

impl Slot {
    fn fill(&self, r: Result<Bytes, Error>) {
        // A window dropped while its fetch ends is filled once, by either.
        let _ = self.bytes.set(r);
        self.filled.notify_waiters();
    }

    async fn wait(&self) {
        loop {
            let filled = self.filled.notified();
            tokio::pin!(filled);
            // Registered before the check, so a fill between the check
            // and the wait still wakes it.
            filled.as_mut().enable();
            if self.bytes.get().is_some() {
                return;
            }
            filled.await;
        }
    }
}

/// A window's bytes: fetched, or being fetched.
enum Held {
    Ready(Bytes),
    Fetching { slot: Arc<Slot>, task: AbortHandle },
}

/// `[start, end)` of the object, and its bytes.
struct Window {
    start: u64,
    end: u64,
    bytes: Held,
    /// Fetched for a reader reading in order (not a random read's).
    streaming: bool,
}

/// What a read does next.
pub enum Step {
    /// Its bytes, or why there are none.
    Done(Result<Bytes, Error>),
    /// Wait for these windows, with the reader unlocked, then resume.
    Wait(Waiting),
}

/// Windows a read waits for.
pub struct Waiting(Vec<Arc<Slot>>);

impl Waiting {
    /// Until every window waited for has its bytes (or its error).
    async fn done(self) {
        for slot in self.0 {
            slot.wait().await;
        }
    }
}

/// The read state of one open file.
#[derive(Default)]
pub struct Reader {
    /// Contiguous windows in order.
    windows: VecDeque<Window>,
    /// Where the last read ended: a read starting there is sequential.
    next_seq: u64,
}

/// Reads `[offset, offset + size)` of a file of `file_size` bytes to its
/// end: `with` runs what it is given on the file's reader, locked, and
/// the windows the read waits for are waited for between two such calls,
/// unlocked. `fetch(start, end)` returns exactly that range of the object.
pub fn read_locked<F, Fut>(
    rt: &Runtime,
    mut with: impl FnMut(&mut dyn FnMut(&mut Reader) -> Step) -> Step,
    offset: u64,
    size: u32,
    file_size: u64,
    read_ahead: u64,
    fetch: &F,
) -> Result<Bytes, Error>
where
    F: Fn(u64, u64) -> Fut,
    Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
{
    let ask = Ask {
        offset,
        size,
        file_size,
        read_ahead,
    };
    let mut step = with(&mut |r| r.read(rt, ask, fetch));
    loop {
        match step {
            Step::Done(got) => return got,
            Step::Wait(w) => {
                rt.block_on(w.done());
                step = with(&mut |r| r.resume(rt, ask, fetch));
            }
        }
    }
}

/// A read as asked: `size` bytes at `offset` of a file of `file_size`
/// bytes, with windows of `read_ahead` bytes.
#[derive(Clone, Copy)]
struct Ask {
    offset: u64,
    size: u32,
    file_size: u64,
    read_ahead: u64,
}

impl Ask {
    /// Where the read ends: at the file's end at most.
    fn end(self) -> u64 {
        (self.offset + u64::from(self.size)).min(self.file_size)
    }
}

/// Starts fetching a window's bytes.
fn fetching<Fut>(rt: &Runtime, fetch: Fut) -> Held
where
    Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
{
    let slot = Arc::new(Slot::default());
    let filler = Arc::clone(&slot);
    let task = rt.spawn(async move { filler.fill(fetch.await) }).abort_handle();
    Held::Fetching { slot, task }
}

impl Reader {
    /// Starts a read (see [`read_locked`]); `read_ahead` is the window
    /// size for sequential reads.
    fn read<F, Fut>(&mut self, rt: &Runtime, ask: Ask, fetch: &F) -> Step
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        let Ask {
            offset,
            size,
            file_size,
            read_ahead,
        } = ask;
        let end = ask.end();
        let sequential = offset.abs_diff(self.next_seq) <= SLACK;
        self.next_seq = end;
        if offset >= file_size {
            return Step::Done(Ok(Bytes::new()));
        }
        let span = self
            .windows
            .front()
            .map(|f| f.start)
            .zip(self.windows.back().map(|b| b.end));
        let inside = span.is_some_and(|(s, e)| offset >= s && end <= e);
        if !inside {
            match span {
                // A read of the stream that arrived after the reads past
                // it: fetch what comes before the windows, and keep them.
                Some((s, e)) if sequential && offset < s && end <= e => {
                    self.windows.push_front(Window {
                        start: offset,
                        end: s,
                        bytes: fetching(rt, fetch(offset, s)),
                        streaming: true,
                    });
                }
                _ => {
                    self.cancel();
                    let want = if sequential {
                        u64::from(size).max(read_ahead)
                    } else {
                        u64::from(size).max(RANDOM_READ)
                    };
                    let to = (offset + want).min(file_size);
                    self.windows.push_back(Window {
                        start: offset,
                        end: to,
                        bytes: fetching(rt, fetch(offset, to)),
                        streaming: sequential,
                    });
                }
            }
        }
        self.resume(rt, ask, fetch)
    }

    /// Goes on with a read [`Reader::read`] started, once the windows it
    /// waited for are fetched (with the same arguments).
    fn resume<F, Fut>(&mut self, rt: &Runtime, ask: Ask, fetch: &F) -> Step
    where
        F: Fn(u64, u64) -> Fut,
        Fut: Future<Output = Result<Bytes, Error>> + Send + 'static,
    {
        // [`Reader::read`] answered a read at or past the end itself.
        let (offset, end) = (ask.offset, ask.end());
        // Take the fetched bytes of the windows the read covers; wait for
        // the others.
        let mut waiting = Vec::new();
        let mut failed = None;
        let mut streaming = false;
        for w in self
            .windows
            .iter_mut()
            .filter(|w| w.start < end && w.end > offset)
        {
            streaming |= w.streaming;
            if let Held::Fetching { slot, .. } = &w.bytes {
                match slot.bytes.get() {
                    None => waiting.push(Arc::clone(slot)),
                    Some(Ok(data)) => w.bytes = Held::Ready(data.clone()),
                    Some(Err(e)) => failed = Some(e.clone()),
                }
            }
        }
        if let Some(e) = failed {
            // The windows are fetched again by the reads that follow.
            self.cancel();
            return Step::Done(Err(e));
        }
        if !waiting.is_empty() {
            return Step::Wait(Waiting(waiting));
        }
        let Some(hit) = self.held(offset, end) else {
            // The windows were dropped meanwhile (another read went
            // elsewhere), or one came back short (the object is shorter
            // than it was when opened): fetch this read alone.
            return Step::Done(rt.block_on(fetch(offset, end)));
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
                if next >= ask.file_size {
                    break;
                }
                let to = (next + ask.read_ahead).min(ask.file_size);
                self.windows.push_back(Window {
                    start: next,
                    end: to,
                    bytes: fetching(rt, fetch(next, to)),
                    streaming: true,
                });
                next = to;
            }
        }
        Step::Done(Ok(hit))
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

    /// Drops every window, stopping the fetches under way (a read waiting
    /// for one goes on without it).
    fn cancel(&mut self) {
        for w in self.windows.drain(..) {
            if let Held::Fetching { slot, task } = w.bytes {
                task.abort();
                slot.fill(Err(Error::Transport("read-ahead window dropped".into())));
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
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::{Barrier, Mutex};
    use std::time::Duration;

    /// A fetch of `data` that counts its calls in `fetches`, takes `delay`
    /// and fails for ranges that start at `fail_from` or later.
    fn source(
        data: &Arc<Vec<u8>>,
        fetches: &Arc<AtomicUsize>,
        delay: Duration,
        fail_from: &Arc<AtomicU64>,
    ) -> impl Fn(u64, u64) -> std::pin::Pin<Box<dyn Future<Output = Result<Bytes, Error>> + Send>> + use<>
    {
        let (d, n, f) = (Arc::clone(data), Arc::clone(fetches), Arc::clone(fail_from));
        move |s, e| {
            let (d, n, f) = (Arc::clone(&d), Arc::clone(&n), Arc::clone(&f));
            Box::pin(async move {
                assert!(s < e && e <= d.len() as u64, "fetch {s}..{e}");
                n.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                if s >= f.load(Ordering::SeqCst) {
                    return Err(Error::Transport("connection reset".into()));
                }
                Ok(Bytes::copy_from_slice(&d[s as usize..e as usize]))
            })
        }
    }

    fn runtime() -> Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .build()
            .unwrap()
    }

    /// Checks a read's bytes against `data`.
    fn check(data: &[u8], offset: u64, size: u32, got: &[u8]) {
        let len = data.len() as u64;
        let end = (offset + u64::from(size)).min(len).max(offset.min(len));
        assert_eq!(
            got,
            &data[offset.min(len) as usize..end as usize],
            "read {offset}+{size}"
        );
    }

    /// Reads `(offset, size)` ranges of `data` in turn through one reader,
    /// checking every byte returned; returns how many fetches it made.
    fn read_all(data: &Arc<Vec<u8>>, reads: &[(u64, u32)], read_ahead: u64) -> usize {
        let rt = runtime();
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = source(
            data,
            &fetches,
            Duration::ZERO,
            &Arc::new(AtomicU64::new(u64::MAX)),
        );
        let mut r = Reader::default();
        let len = data.len() as u64;
        for &(offset, size) in reads {
            let got = read_locked(&rt, |go| go(&mut r), offset, size, len, read_ahead, &fetch).unwrap();
            check(data, offset, size, &got);
        }
        drop(r);
        fetches.load(Ordering::SeqCst)
    }

    #[test]
    fn reads_of_one_file_on_several_threads_go_on_while_one_waits() {
        let data: Arc<Vec<u8>> = Arc::new((0..6_000_000u32).map(|i| (i * 11 % 239) as u8).collect());
        let rt = runtime();
        let fetches = Arc::new(AtomicUsize::new(0));
        let fetch = source(
            &data,
            &fetches,
            Duration::from_millis(2),
            &Arc::new(AtomicU64::new(u64::MAX)),
        );
        let reader = Mutex::new(Reader::default());
        let len = data.len() as u64;
        // The kernel's 128 KiB reads of a stream: the first, then four at a
        // time answered by four threads, so they arrive in any order within
        // each four.
        let chunks = len.div_ceil(128 << 10);
        let read = |c: u64| {
            let offset = c * (128 << 10);
            let got = read_locked(
                &rt,
                |go| go(&mut reader.lock().unwrap()),
                offset,
                128 << 10,
                len,
                1 << 20,
                &fetch,
            )
            .unwrap();
            check(&data, offset, 128 << 10, &got);
        };
        read(0);
        let round = Barrier::new(4);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (read, round) = (&read, &round);
                s.spawn(move || {
                    for c in (1 + t..chunks).step_by(4) {
                        read(c);
                        round.wait();
                    }
                    // The threads whose last chunk is past the end meet
                    // the others' last round.
                    if (1 + t..chunks).step_by(4).count() < (1..chunks).step_by(4).count() {
                        round.wait();
                    }
                });
            }
        });
        // Each 1 MiB window fetched once: no read fell outside the windows
        // and dropped them.
        let n = fetches.load(Ordering::SeqCst);
        assert_eq!(n, len.div_ceil(1 << 20) as usize, "{n} fetches");
    }

    #[test]
    fn a_failed_fetch_fails_its_read_and_the_next_read_fetches_again() {
        let data: Arc<Vec<u8>> = Arc::new((0..3_000_000u32).map(|i| (i % 253) as u8).collect());
        let rt = runtime();
        let fail_from = Arc::new(AtomicU64::new(0));
        let fetch = source(&data, &Arc::default(), Duration::ZERO, &fail_from);
        let len = data.len() as u64;
        let mut r = Reader::default();
        let read =
            |r: &mut Reader, offset| read_locked(&rt, |go| go(r), offset, 100_000, len, 1 << 20, &fetch);
        // The window a read waits for fails.
        assert!(matches!(read(&mut r, 0), Err(Error::Transport(_))));
        fail_from.store(u64::MAX, Ordering::SeqCst);
        check(&data, 0, 100_000, &read(&mut r, 0).unwrap());
        // A window fetched ahead of a streaming reader fails: the read
        // that reaches it gets the error, and the reader goes on from there
        // with new fetches.
        let mut r = Reader::default();
        fail_from.store(1 << 20, Ordering::SeqCst);
        check(&data, 0, 100_000, &read(&mut r, 0).unwrap());
        assert!(read(&mut r, 1 << 20).is_err());
        fail_from.store(u64::MAX, Ordering::SeqCst);
        for offset in ((1 << 20) + 100_000..len).step_by(100_000) {
            check(&data, offset, 100_000, &read(&mut r, offset).unwrap());
        }
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
