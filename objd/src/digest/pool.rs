//! The MD5s of concurrent uploads hashed together: uploads hand each block
//! of their body to a hashing thread, which advances up to sixteen streams
//! at once in SIMD lanes ([`super::lanes`], AVX-512 or AVX2) while the upload goes on
//! erasure-coding the block. A stream alone is hashed by the scalar
//! function, which is faster for one.
//!
//! Only used where the CPU has the lanes; elsewhere [`pool`] is `None` and
//! uploads hash their blocks themselves, as one core per stream does best.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::oneshot;

use super::lanes::{self, LANES};
use super::md5::{Md5, compress};

/// Bytes a stream is advanced by between looks at the queue, so a newly
/// queued stream waits at most about this much hashing for a lane.
const SLICE: usize = 64 << 10;

/// A block to hash into a stream's state, and who waits for the state.
struct Job {
    state: Md5,
    data: Bytes,
    done: oneshot::Sender<Md5>,
}

/// A job in a lane: the byte range of its data still to hash, all whole
/// 64-byte blocks.
struct Lane {
    job: Job,
    at: usize,
    end: usize,
}

impl Lane {
    fn start(mut job: Job) -> Self {
        let r = job.state.split(&job.data);
        Self {
            job,
            at: r.start,
            end: r.end,
        }
    }

    fn left(&self) -> usize {
        self.end - self.at
    }
}

#[derive(Default)]
struct Queue {
    jobs: Mutex<VecDeque<Job>>,
    ready: Condvar,
}

/// Hashing threads taking jobs from one queue.
pub struct Pool {
    queue: Arc<Queue>,
}

/// The process's pool, started on first use, or `None` where the CPU has
/// no MD5 lanes.
pub fn pool() -> Option<&'static Pool> {
    static POOL: OnceLock<Option<Pool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let isa = lanes::best()?;
        // A thread hashes 16 streams at about 16 times one core's scalar
        // rate (9 GiB/s here): one per eight cores is more than the rest
        // of them can erasure-code and write.
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(8));
        Pool::start(threads, isa).ok()
    })
    .as_ref()
}

impl Pool {
    fn start(threads: usize, isa: lanes::Isa) -> std::io::Result<Self> {
        let queue = Arc::new(Queue::default());
        for i in 0..threads {
            let q = Arc::clone(&queue);
            std::thread::Builder::new()
                .name(format!("md5-lanes-{i}"))
                .spawn(move || run(&q, isa))?;
        }
        Ok(Self { queue })
    }

    /// Hashes `data` into `state` on a hashing thread; the state comes
    /// back when done (`None` only if the thread died).
    pub fn update(&self, state: Md5, data: Bytes) -> impl Future<Output = Option<Md5>> + use<> {
        let (done, rx) = oneshot::channel();
        self.queue
            .jobs
            .lock()
            .expect("md5 queue")
            .push_back(Job { state, data, done });
        self.queue.ready.notify_one();
        async move { rx.await.ok() }
    }
}

/// A hashing thread: fills free lanes from the queue, advances its lanes,
/// hands back finished states.
fn run(q: &Queue, isa: lanes::Isa) {
    let mut lanes: Vec<Lane> = Vec::with_capacity(LANES);
    loop {
        {
            let mut jobs = q.jobs.lock().expect("md5 queue");
            while lanes.is_empty() && jobs.is_empty() {
                jobs = q.ready.wait(jobs).expect("md5 queue");
            }
            while lanes.len() < LANES {
                match jobs.pop_front() {
                    Some(j) => lanes.push(Lane::start(j)),
                    None => break,
                }
            }
        }
        advance(&mut lanes, isa);
        let mut i = 0;
        while i < lanes.len() {
            if lanes[i].left() == 0 {
                let Lane { job, .. } = lanes.swap_remove(i);
                let _ = job.done.send(job.state);
            } else {
                i += 1;
            }
        }
    }
}

/// Hashes up to [`SLICE`] bytes of every lane: together when two or more
/// streams are in (sixteen lanes cost about what one scalar stream does),
/// by the scalar function for a stream alone.
fn advance(lanes: &mut [Lane], isa: lanes::Isa) {
    if lanes.len() == 1 {
        for l in lanes {
            let n = l.left().min(SLICE);
            compress(&mut l.job.state.abcd, &l.job.data[l.at..l.at + n]);
            l.at += n;
        }
        return;
    }
    let blocks = lanes.iter().map(Lane::left).min().unwrap_or(0).min(SLICE) / 64;
    if blocks == 0 {
        return;
    }
    let mut states = [[0u32; 4]; LANES];
    // Idle lanes repeat lane 0's reads; their results are dropped.
    let mut ptrs = [lanes[0].job.data[lanes[0].at..].as_ptr(); LANES];
    for (i, l) in lanes.iter().enumerate() {
        states[i] = l.job.state.abcd;
        ptrs[i] = l.job.data[l.at..].as_ptr();
    }
    // SAFETY: the pool only exists where the lanes are available (`isa` is
    // this CPU's), and each pointer starts a run of at least `blocks` whole
    // blocks of its job's data, which the lane holds.
    #[allow(unsafe_code)]
    unsafe {
        lanes::compress(isa, &mut states, &ptrs, blocks, lanes.len())
    };
    for (i, l) in lanes.iter_mut().enumerate() {
        l.job.state.abcd = states[i];
        l.at += blocks * 64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's pool (the widest unit here), and a pool of each unit
    /// this CPU has.
    #[tokio::test]
    async fn concurrent_streams_of_odd_sizes_hash_as_md5() {
        let Some(pool) = pool() else { return };
        streams_hash_as_md5(pool).await;
        for isa in lanes::units() {
            streams_hash_as_md5(&Pool::start(1, isa).expect("pool")).await;
        }
    }

    async fn streams_hash_as_md5(pool: &Pool) {
        // Forty streams (more than the lanes), fed in blocks of uneven
        // sizes, so lanes refill and finish at different points.
        let tasks = (0..40u32).map(|s| async move {
            let data: Vec<u8> = (0..(s as usize * 4099 + 1000))
                .map(|i| ((i as u32 * (s + 1)) >> 3) as u8)
                .collect();
            let data = Bytes::from(data);
            let mut state = Md5::new();
            let step = 777 + s as usize * 131;
            let mut at = 0;
            while at < data.len() {
                let end = (at + step).min(data.len());
                state = pool.update(state, data.slice(at..end)).await.expect("hashed");
                at = end;
            }
            let want: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&data).into();
            assert_eq!(state.finish(), want, "stream {s}");
        });
        futures::future::join_all(tasks).await;
        // A stream alone takes the scalar path.
        let data = Bytes::from(vec![0x5a; 3 * SLICE + 100]);
        let mut state = Md5::new();
        for part in [data.slice(..SLICE + 1), data.slice(SLICE + 1..)] {
            state = pool.update(state, part).await.expect("hashed");
        }
        let want: [u8; 16] = <md5::Md5 as md5::Digest>::digest(&data).into();
        assert_eq!(state.finish(), want);
    }
}
