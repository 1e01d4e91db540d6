//! `strata-bench`: load and baseline measurements for Strata.
//!
//! - `s3`: PUT / GET / LIST / mixed load against an S3 endpoint, with object
//!   size, concurrency and duration; reports MiB/s, ops/s, p50/p99 latency
//!   and errors (text or `--json`).
//! - `raw-write` / `raw-read`: the baseline for the same disk ([`raw`]).
//! - `codec`: raw `reed-solomon-simd` encode/decode against objd's erasure
//!   path (encode + per-shard checksums, verify + reconstruct), plus the
//!   checksum and MD5 hashes on their own, and objd's MD5 of 4, 16 and 64
//!   uploads hashed together in SIMD lanes.
//! - `listing`, `startup`: objd's index in process ([`index`]).

mod index;
mod raw;
mod seal;

use aws_sdk_s3::primitives::ByteStream;
use bytes::Bytes;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "strata-bench", about = "Load and baseline measurements for Strata")]
struct Cli {
    /// Print one JSON object per result instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
enum Op {
    Put,
    Get,
    List,
    Mixed,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Load an S3 endpoint (credentials from AWS_ACCESS_KEY_ID /
    /// AWS_SECRET_ACCESS_KEY, and AWS_SESSION_TOKEN for temporary ones).
    S3 {
        #[arg(long, env = "STRATA_BENCH_ENDPOINT", default_value = "http://127.0.0.1:9000")]
        endpoint: String,
        #[arg(long, default_value = "bench")]
        bucket: String,
        #[arg(long, value_enum, default_value = "put")]
        op: Op,
        /// Object size (`4KiB`, `16MiB`, ...).
        #[arg(long, default_value = "4KiB", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        /// Seconds to run.
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Objects written before a GET/LIST/mixed run (default: 4 per
        /// worker; kept when the bucket already has them). A LIST run
        /// reads them in pages of 1000 and reports pages per second.
        #[arg(long)]
        objects: Option<u64>,
        /// GET each object once, then stop (instead of running for a duration).
        #[arg(long)]
        once: bool,
        /// Drop the page cache before measuring (root; the server must be
        /// on this machine), so reads come from the disk.
        #[arg(long)]
        drop_caches: bool,
        /// The server's process id (on this machine): report its peak
        /// resident memory during the run (its high-water mark is reset
        /// first, which needs root) and its resident memory 3 s after.
        #[arg(long)]
        server_pid: Option<u32>,
    },
    /// Baseline: write files with fsync into the directories.
    RawWrite {
        #[arg(long = "dir", required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long, default_value = "4KiB", value_parser = parse_size)]
        size: u64,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Write around the page cache, with objd's direct writer.
        #[arg(long)]
        direct: bool,
    },
    /// Baseline: read back the files `raw-write` left in the directories.
    RawRead {
        #[arg(long = "dir", required = true)]
        dirs: Vec<PathBuf>,
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Read each file once, then stop.
        #[arg(long)]
        once: bool,
        /// Drop the page cache first (root), so reads come from the disk.
        #[arg(long)]
        drop_caches: bool,
    },
    /// Listing cost against bucket size: objd's index (in process, 4 drives)
    /// against a sorted directory read, for buckets of growing size.
    Listing {
        /// Directory to create the drives and files in.
        #[arg(long)]
        dir: PathBuf,
        /// Bucket sizes to measure.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        sizes: Vec<usize>,
    },
    /// Start-up time of objd's object layer with a bucket of many objects
    /// (in process, 4 drives): opening with the usage counters the drives
    /// keep, against counting the bucket by listing every version (what
    /// start-up did before the counters).
    Startup {
        /// Directory to create the drives in.
        #[arg(long)]
        dir: PathBuf,
        /// Objects in the bucket.
        #[arg(long, default_value = "1000000")]
        objects: usize,
    },
    /// POSIX workloads on a directory (a fuse-mount or s3fs mount point):
    /// sequential write and read of one file, 4 KiB random reads, creating
    /// and stat-ing small files, reading a directory of many entries.
    Fs {
        /// Directory to work in (created below the mount point).
        #[arg(long)]
        dir: PathBuf,
        /// Size of the sequential file.
        #[arg(long, default_value = "1GiB", value_parser = parse_size)]
        size: u64,
        /// Small files to create and stat.
        #[arg(long, default_value_t = 10_000)]
        files: usize,
        /// Random 4 KiB reads.
        #[arg(long, default_value_t = 2_000)]
        reads: usize,
        /// Directory whose entries to count (prepared beforehand).
        #[arg(long)]
        readdir: Option<PathBuf>,
        /// Directory to list with a stat of each entry, as `ls -l` does
        /// (prepared beforehand; another than --readdir, so both are cold).
        #[arg(long)]
        ls_l: Option<PathBuf>,
        /// A name for the report lines (`fuse-mount`, `s3fs`).
        #[arg(long, default_value = "fs")]
        label: String,
        /// Drop the page cache before the sequential read (root; the
        /// server must be on this machine), so that it is read as a cold
        /// direct GET (`s3 --drop-caches`) is, by every cache but the
        /// mount's own.
        #[arg(long)]
        drop_caches: bool,
    },
    /// Encryption throughput on one core: objd's package sealing and
    /// opening with each cipher, beside MD5.
    Seal {
        #[arg(long, default_value = "1MiB", value_parser = parse_size)]
        block: u64,
        #[arg(long, default_value_t = 2.0)]
        duration: f64,
    },
    /// Codec throughput: raw reed-solomon-simd against objd's erasure path.
    Codec {
        #[arg(long, default_value_t = 4)]
        data: usize,
        #[arg(long, default_value_t = 2)]
        parity: usize,
        #[arg(long, default_value = "1MiB", value_parser = parse_size)]
        block: u64,
        #[arg(long, default_value_t = 2.0)]
        duration: f64,
    },
}

fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = [("KiB", 1u64 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("B", 1)]
        .iter()
        .find_map(|(suf, m)| s.strip_suffix(suf).map(|n| (n, *m)))
        .unwrap_or((s, 1));
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|_| format!("invalid size `{s}`"))
}

/// Measurements of one run.
#[derive(Default)]
struct Stats {
    name: String,
    size: u64,
    concurrency: usize,
    elapsed: Duration,
    ops: u64,
    bytes: u64,
    errors: u64,
    latencies: Vec<Duration>,
    /// The server's peak resident bytes during the run, and 3 s after it.
    rss: Option<(u64, u64)>,
}

impl Stats {
    fn pct(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[i]
    }

    fn report(mut self, json: bool) {
        self.latencies.sort();
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let mibs = self.bytes as f64 / secs / (1 << 20) as f64;
        let opss = self.ops as f64 / secs;
        let (p50, p99) = (
            self.pct(0.50).as_secs_f64() * 1e3,
            self.pct(0.99).as_secs_f64() * 1e3,
        );
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        if json {
            let rss = self.rss.map_or(String::new(), |(peak, after)| {
                format!(
                    ",\"peak_rss_mib\":{:.1},\"rss_after_mib\":{:.1}",
                    mib(peak),
                    mib(after)
                )
            });
            println!(
                "{{\"name\":\"{}\",\"size\":{},\"concurrency\":{},\"seconds\":{secs:.3},\"ops\":{},\"ops_per_s\":{opss:.1},\"mib_per_s\":{mibs:.1},\"p50_ms\":{p50:.3},\"p99_ms\":{p99:.3},\"errors\":{}{rss}}}",
                self.name, self.size, self.concurrency, self.ops, self.errors
            );
        } else {
            let rss = self.rss.map_or(String::new(), |(peak, after)| {
                format!(
                    "  server RSS peak {:.0} MiB, after {:.0} MiB",
                    mib(peak),
                    mib(after)
                )
            });
            println!(
                "{:<28} size {:>9} conc {:>3}  {:>9.1} ops/s  {:>8.1} MiB/s  p50 {:>8.3} ms  p99 {:>8.3} ms  errors {}{rss}",
                self.name, self.size, self.concurrency, opss, mibs, p50, p99, self.errors
            );
        }
    }
}

/// Runs `work(worker, n)` on `concurrency` tasks for `duration`, or until
/// `limit` operations started; `n` counts operations across all workers.
/// `work` returns the bytes moved, or an error.
async fn drive<F, Fut>(
    name: &str,
    size: u64,
    concurrency: usize,
    duration: f64,
    limit: Option<u64>,
    work: F,
) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = Result<u64, String>> + Send,
{
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let start = Instant::now();
    let errors = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for w in 0..concurrency {
        let work = work.clone();
        let errors = Arc::clone(&errors);
        let next = Arc::clone(&next);
        handles.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut bytes = 0;
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|l| i >= l) {
                    break;
                }
                let t = Instant::now();
                match work(w, i).await {
                    Ok(b) => {
                        lat.push(t.elapsed());
                        bytes += b;
                    }
                    Err(e) => {
                        if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                            eprintln!("first error: {e}");
                        }
                    }
                }
            }
            (lat, bytes)
        }));
    }
    let mut stats = Stats {
        name: name.to_owned(),
        size,
        concurrency,
        ..Default::default()
    };
    for h in handles {
        let (lat, bytes) = h.await.expect("worker");
        stats.ops += lat.len() as u64;
        stats.latencies.extend(lat);
        stats.bytes += bytes;
    }
    stats.elapsed = start.elapsed();
    stats.errors = errors.load(Ordering::Relaxed);
    stats
}

fn random_bytes(len: usize) -> Bytes {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let v: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    Bytes::from(v)
}

/// Empties the page cache, so that the next reads come from the disks.
fn drop_page_cache() {
    // Dirty pages first, or they stay cached.
    let _ = std::process::Command::new("sync").status();
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").expect("dropping the page cache needs root");
}

/// The key of the `i`th object written before a GET or LIST run.
fn seed_key(prefix: &str, i: u64) -> String {
    format!("{prefix}/seed/{i:09}")
}

/// Options of one S3 load run.
struct LoadSpec {
    op: Op,
    size: u64,
    conc: usize,
    duration: f64,
    objects: Option<u64>,
    once: bool,
    drop_caches: bool,
    server_pid: Option<u32>,
}

async fn s3_load(endpoint: String, bucket: String, spec: LoadSpec, json: bool) {
    let LoadSpec {
        op,
        size,
        conc,
        duration,
        objects,
        once,
        drop_caches,
        server_pid,
    } = spec;
    let access = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
    let token = std::env::var("AWS_SESSION_TOKEN").ok().filter(|t| !t.is_empty());
    // Like other load tools, wait for a server that makes requests queue
    // (the SDK would give up on a body that has not moved for 5 s).
    let c = strata_tests::client::patient(&strata_tests::client::s3_client_with_token(
        &endpoint, &access, &secret, token,
    ));
    let _ = c.create_bucket().bucket(&bucket).send().await;
    let body = random_bytes(size as usize);
    // Objects to read: written once before the clock starts, unless the
    // bucket already holds them (the last one is there), so a large
    // listing set can be reused across runs against the same server.
    let readable = objects.unwrap_or((conc * 4).max(16) as u64).max(1);
    // Each set of objects under its own prefix, so a listing reads only it.
    let prefix = format!(
        "{}-{size}-{readable}",
        match op {
            Op::Put => "put",
            Op::Get => "get",
            Op::List => "list",
            Op::Mixed => "mixed",
        },
    );
    let seeded = op == Op::Put
        || c.head_object()
            .bucket(&bucket)
            .key(seed_key(&prefix, readable - 1))
            .send()
            .await
            .is_ok();
    if !seeded {
        use futures::StreamExt;
        let mut puts = futures::stream::iter(0..readable)
            .map(|i| {
                let (c, b, bucket, key) = (c.clone(), body.clone(), bucket.clone(), seed_key(&prefix, i));
                async move {
                    c.put_object()
                        .bucket(bucket)
                        .key(key)
                        .body(ByteStream::from(b))
                        .send()
                        .await
                }
            })
            .buffer_unordered(64);
        while let Some(r) = puts.next().await {
            r.expect("seed PUT");
        }
    }
    let name = match op {
        Op::List => format!("s3 list of {readable} keys"),
        o => format!("s3 {o:?}").to_lowercase(),
    };
    if drop_caches {
        drop_page_cache();
    }
    let name = if drop_caches {
        format!("{name} (cold)")
    } else {
        name
    };
    let limit = once.then_some(readable);
    if let Some(pid) = server_pid {
        // Resets the peak resident memory the kernel reports (VmHWM).
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5\n").expect("resetting VmHWM needs root");
    }
    // Each list worker's place: not started (its own share's first key),
    // at the start, or a continuation token.
    let cursors: Arc<Vec<std::sync::Mutex<Option<Option<String>>>>> =
        Arc::new((0..conc).map(|_| std::sync::Mutex::new(None)).collect());
    let mut stats = drive(&name, size, conc, duration, limit, move |w, i| {
        let (c, body, bucket, prefix, cursors) = (
            c.clone(),
            body.clone(),
            bucket.clone(),
            prefix.clone(),
            Arc::clone(&cursors),
        );
        async move {
            let which = match op {
                Op::Mixed => match i % 10 {
                    0..=5 => Op::Get,
                    6..=8 => Op::Put,
                    _ => Op::List,
                },
                o => o,
            };
            match which {
                Op::Put => {
                    let n = body.len() as u64;
                    c.put_object()
                        .bucket(bucket)
                        .key(format!("{prefix}/w{w}/{i}"))
                        .body(ByteStream::from(body))
                        .send()
                        .await
                        .map(|_| n)
                        .map_err(|e| format!("{e:?}"))
                }
                Op::Get => {
                    let key = seed_key(&prefix, i % readable);
                    // Streamed and counted, not gathered: the client
                    // should cost no more than a reader of the body would.
                    let mut body = c
                        .get_object()
                        .bucket(bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| format!("{e:?}"))?
                        .body;
                    let mut n = 0u64;
                    while let Some(chunk) = body.try_next().await.map_err(|e| format!("{e:?}"))? {
                        n += chunk.len() as u64;
                    }
                    Ok(n)
                }
                _ => {
                    // Pages of 1000 keys, each worker walking the whole
                    // set from its own starting point, as a client that
                    // reads a large bucket does.
                    let mut req = c
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(format!("{prefix}/seed/"))
                        .max_keys(1000);
                    let cursor = cursors[w].lock().expect("cursor").take();
                    let first = readable * w as u64 / conc as u64;
                    req = match cursor {
                        Some(Some(token)) => req.continuation_token(token),
                        None if first > 0 => req.start_after(seed_key(&prefix, first - 1)),
                        _ => req,
                    };
                    let page = req.send().await.map_err(|e| format!("{e:?}"))?;
                    *cursors[w].lock().expect("cursor") =
                        Some(page.next_continuation_token().map(str::to_owned));
                    if page.contents().is_empty() {
                        return Err("an empty page of a seeded listing".into());
                    }
                    Ok(0)
                }
            }
        }
    })
    .await;
    if let Some(pid) = server_pid {
        let peak = strata_tests::proc_status_bytes(pid, "VmHWM");
        tokio::time::sleep(Duration::from_secs(3)).await;
        stats.rss = Some((peak, strata_tests::proc_status_bytes(pid, "VmRSS")));
    }
    stats.report(json);
}

/// Runs `f` repeatedly for `duration`; returns (iterations, elapsed).
fn repeat(duration: f64, mut f: impl FnMut()) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed().as_secs_f64() < duration {
        f();
        n += 1;
    }
    (n, start.elapsed())
}

fn codec(data: usize, parity: usize, block: u64, duration: f64, json: bool) {
    use objd::erasure::{Encoder, Layout, bitrot, reconstruct};
    let block = block as usize;
    let input = random_bytes(block);
    let layout = Layout::new(data, parity, block as u32).expect("layout");
    let shard_len = layout.shard_len(block);
    let report = |name: &str, n: u64, el: Duration| {
        Stats {
            name: name.to_owned(),
            size: block as u64,
            concurrency: 1,
            elapsed: el,
            ops: n,
            bytes: n * block as u64,
            ..Default::default()
        }
        .report(json)
    };
    // Raw codec: the shards already split, encode only.
    let originals: Vec<Vec<u8>> = (0..data)
        .map(|i| {
            let mut s = vec![0u8; shard_len];
            let lo = (i * shard_len).min(block);
            let hi = ((i + 1) * shard_len).min(block);
            s[..hi - lo].copy_from_slice(&input[lo..hi]);
            s
        })
        .collect();
    let mut rs = reed_solomon_simd::ReedSolomonEncoder::new(data, parity, shard_len).expect("encoder");
    let (n, el) = repeat(duration, || {
        rs.reset(data, parity, shard_len).expect("reset");
        for s in &originals {
            rs.add_original_shard(s).expect("add");
        }
        std::hint::black_box(rs.encode().expect("encode").recovery(0).map(|r| r[0]));
    });
    report("codec raw rs encode", n, el);
    // objd path: split, encode, frame and checksum every shard.
    let mut enc = Encoder::new(layout);
    let (n, el) = repeat(duration, || {
        std::hint::black_box(enc.encode_block(input.clone()).expect("encode"));
    });
    report("codec objd encode+checksum", n, el);
    // Decode with `parity` data shards lost.
    let encoded = Encoder::new(layout).encode_block(input.clone()).expect("encode");
    let framed: Vec<Vec<u8>> = (0..encoded.shard_count()).map(|i| encoded.framed(i)).collect();
    let recovery: Vec<Vec<u8>> = framed[data..]
        .iter()
        .map(|f| bitrot::open(f).expect("ok").to_vec())
        .collect();
    let (n, el) = repeat(duration, || {
        let mut dec = reed_solomon_simd::ReedSolomonDecoder::new(data, parity, shard_len).expect("decoder");
        for (i, s) in originals.iter().enumerate().skip(parity) {
            dec.add_original_shard(i, s).expect("add");
        }
        for (i, s) in recovery.iter().enumerate() {
            dec.add_recovery_shard(i, s).expect("add");
        }
        std::hint::black_box(dec.decode().expect("decode").restored_original(0).map(|r| r[0]));
    });
    report("codec raw rs decode", n, el);
    let (n, el) = repeat(duration, || {
        let mut shards: Vec<Option<Vec<u8>>> = framed
            .iter()
            .map(|f| bitrot::open(f).map(<[u8]>::to_vec))
            .collect();
        for s in shards.iter_mut().take(parity) {
            *s = None;
        }
        reconstruct(&layout, &mut shards, false).expect("reconstruct");
        std::hint::black_box(&shards);
    });
    report("codec objd verify+decode", n, el);
    // The hashes on their own, over the same bytes.
    let (n, el) = repeat(duration, || {
        std::hint::black_box(xxhash_rust::xxh3::xxh3_64(&input));
    });
    report("hash xxh3-64", n, el);
    let (n, el) = repeat(duration, || {
        std::hint::black_box(crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, &input));
    });
    report("hash crc32c", n, el);
    let (n, el) = repeat(duration, || {
        use md5::Digest;
        std::hint::black_box(md5::Md5::digest(&input));
    });
    report("hash md5 (etag)", n, el);
    let (n, el) = repeat(duration, || {
        let mut h = objd::digest::Md5::new();
        h.update(&input);
        std::hint::black_box(h.finish());
    });
    report("hash md5 objd, one stream", n, el);
    md5_lanes(&input, duration, report);
    let (n, el) = repeat(duration, || {
        use sha2::Digest;
        std::hint::black_box(sha2::Sha256::digest(&input));
    });
    report("hash sha256", n, el);
}

/// objd's MD5 of many uploads at once: `streams` concurrent streams each
/// handing the block to the hashing pool, as uploads do; reports the
/// blocks hashed by all streams together.
fn md5_lanes(input: &Bytes, duration: f64, report: impl Fn(&str, u64, Duration)) {
    // The lanes themselves, sixteen streams over the same bytes, with each
    // vector unit this CPU has (the pool uses the widest).
    use objd::digest::lanes::{LANES, advance, units};
    for isa in units() {
        let mut states = [[0u32; 4]; LANES];
        let (n, el) = repeat(duration, || {
            advance(isa, &mut states, [&input[..]; LANES]);
            std::hint::black_box(&states);
        });
        report(
            &format!("hash md5 lanes {isa:?}, 16 streams"),
            n * LANES as u64,
            el,
        );
    }
    let Some(pool) = objd::digest::pool() else {
        println!("hash md5 objd lanes: not available on this CPU");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    for streams in [4u64, 16, 64] {
        let start = Instant::now();
        let n = rt.block_on(async {
            let blocks = AtomicU64::new(0);
            futures::future::join_all((0..streams).map(|_| async {
                let mut h = objd::digest::Md5::new();
                while start.elapsed().as_secs_f64() < duration {
                    h = pool.update(h, input.clone()).await.expect("hashed");
                    blocks.fetch_add(1, Ordering::Relaxed);
                }
                std::hint::black_box(h.finish());
            }))
            .await;
            blocks.load(Ordering::Relaxed)
        });
        report(
            &format!("hash md5 objd lanes, {streams} streams"),
            n,
            start.elapsed(),
        );
    }
}

/// Median of `f`'s run time over `n` runs.
pub(crate) async fn median_time<F, Fut>(n: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut t = Vec::with_capacity(n);
    for _ in 0..n {
        let s = Instant::now();
        f().await;
        t.push(s.elapsed());
    }
    t.sort();
    t[n / 2]
}

/// One measured POSIX workload.
/// Runs `f` and reports it as `ops` operations of `size` bytes moving `bytes`.
fn timed(name: String, (size, ops, bytes): (u64, u64, u64), f: impl FnOnce(), json: bool) {
    timed_count(
        name,
        (size, bytes),
        || {
            f();
            ops
        },
        json,
    );
}

/// Times `f`, which returns how many operations it did.
fn timed_count(name: String, (size, bytes): (u64, u64), f: impl FnOnce() -> u64, json: bool) {
    let start = Instant::now();
    let ops = f();
    Stats {
        name,
        size,
        concurrency: 1,
        elapsed: start.elapsed(),
        ops,
        bytes,
        ..Default::default()
    }
    .report(json);
}

/// The POSIX workloads' sizes.
struct FsSpec<'a> {
    size: u64,
    files: usize,
    reads: usize,
    readdir: Option<&'a Path>,
    ls_l: Option<&'a Path>,
    drop_caches: bool,
}

fn fs_bench(dir: &Path, spec: FsSpec<'_>, label: &str, json: bool) {
    let FsSpec {
        size,
        files,
        reads,
        readdir,
        ls_l,
        drop_caches,
    } = spec;
    use std::io::{Read, Write};
    use std::os::unix::fs::FileExt;
    std::fs::create_dir_all(dir).expect("bench directory");
    let big = dir.join("seq.bin");
    let chunk = random_bytes(1 << 20);
    timed(
        format!("{label} seq-write"),
        (size, 1, size),
        || {
            let mut f = std::fs::File::create(&big).expect("create");
            let mut left = size;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                f.write_all(&chunk[..n]).expect("write");
                left -= n as u64;
            }
            f.sync_all().expect("fsync");
        },
        json,
    );
    if drop_caches {
        drop_page_cache();
    }
    timed(
        format!("{label} seq-read"),
        (size, 1, size),
        || {
            let mut f = std::fs::File::open(&big).expect("open");
            let mut buf = vec![0u8; 1 << 20];
            let mut total = 0u64;
            loop {
                let n = f.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
            assert_eq!(total, size);
        },
        json,
    );
    // Random reads right after the sequential read (pages it left in the
    // kernel's cache may serve them), then with the file's cached pages
    // dropped, so every read goes to the mount.
    for cold in [false, true] {
        let f = std::fs::File::open(&big).expect("open");
        if cold {
            // GNU dd's way to posix_fadvise(DONTNEED) a whole file.
            let status = std::process::Command::new("dd")
                .arg(format!("if={}", big.display()))
                .args(["iflag=nocache", "count=0", "status=none"])
                .status()
                .expect("dd");
            assert!(status.success(), "dd iflag=nocache");
        }
        let name = if cold {
            "rand-read-4KiB-cold"
        } else {
            "rand-read-4KiB"
        };
        timed(
            format!("{label} {name}"),
            (4096, reads as u64, reads as u64 * 4096),
            || {
                let mut buf = [0u8; 4096];
                let mut x = 0x2545_f491_4f6c_dd1du64;
                for _ in 0..reads {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let at = (x % (size.saturating_sub(4096).max(1))) & !4095;
                    f.read_exact_at(&mut buf, at).expect("pread");
                }
            },
            json,
        );
    }
    // tar x of a source-like tree: 1,000 files of 200 B to 24 KiB in 40
    // directories, from a tarball on local disk.
    let src = tempfile::tempdir().expect("temporary directory");
    let mut tree_bytes = 0u64;
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for d in 0..40 {
        let sub = src.path().join("tree").join(format!("mod{d:02}"));
        std::fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..25 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = 200 + (x % (24 << 10)) as usize;
            std::fs::write(sub.join(format!("file{f:02}.rs")), &chunk[..len]).expect("write");
            tree_bytes += len as u64;
        }
    }
    let tarball = src.path().join("tree.tar");
    let status = std::process::Command::new("tar")
        .arg("-C")
        .arg(src.path())
        .arg("-cf")
        .arg(&tarball)
        .arg("tree")
        .status()
        .expect("tar");
    assert!(status.success(), "tar -c");
    let untar = dir.join("untar");
    std::fs::create_dir_all(&untar).expect("mkdir");
    timed(
        format!("{label} tar-x-1000-files"),
        (0, 1000, tree_bytes),
        || {
            let status = std::process::Command::new("tar")
                .arg("-C")
                .arg(&untar)
                .arg("-xf")
                .arg(&tarball)
                .status()
                .expect("tar");
            assert!(status.success(), "tar -x");
        },
        json,
    );
    let small = dir.join("small");
    std::fs::create_dir_all(&small).expect("mkdir");
    timed(
        format!("{label} create-small"),
        (16, files as u64, files as u64 * 16),
        || {
            for i in 0..files {
                std::fs::write(small.join(format!("f{i:06}")), b"sixteen bytes!!\n").expect("create");
            }
        },
        json,
    );
    timed(
        format!("{label} stat-small"),
        (16, files as u64, 0),
        || {
            for i in 0..files {
                std::fs::metadata(small.join(format!("f{i:06}"))).expect("stat");
            }
        },
        json,
    );
    if let Some(d) = ls_l {
        // `ls -l`: the directory listed and every entry stat-ed; ops/s is
        // entries per second.
        timed_count(
            format!("{label} ls-l-entries"),
            (0, 0),
            || {
                let mut n = 0;
                for e in std::fs::read_dir(d).expect("readdir") {
                    std::fs::symlink_metadata(e.expect("entry").path()).expect("lstat");
                    n += 1;
                }
                n
            },
            json,
        );
    }
    if let Some(d) = readdir {
        // One listing of the whole directory; ops/s is entries per second.
        timed_count(
            format!("{label} readdir-entries"),
            (0, 0),
            || std::fs::read_dir(d).expect("readdir").count() as u64,
            json,
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Fs {
            dir,
            size,
            files,
            reads,
            readdir,
            ls_l,
            label,
            drop_caches,
        } => {
            let spec = FsSpec {
                size,
                files,
                reads,
                readdir: readdir.as_deref(),
                ls_l: ls_l.as_deref(),
                drop_caches,
            };
            fs_bench(&dir, spec, &label, cli.json);
        }
        Cmd::S3 {
            endpoint,
            bucket,
            op,
            size,
            concurrency,
            duration,
            objects,
            once,
            drop_caches,
            server_pid,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let spec = LoadSpec {
                op,
                size,
                conc: concurrency,
                duration,
                objects,
                once,
                drop_caches,
                server_pid,
            };
            rt.block_on(s3_load(endpoint, bucket, spec, cli.json));
        }
        Cmd::RawWrite {
            dirs,
            size,
            concurrency,
            duration,
            direct,
        } => raw::raw_write(dirs, size, concurrency, duration, direct, cli.json),
        Cmd::RawRead {
            dirs,
            concurrency,
            duration,
            once,
            drop_caches,
        } => raw::raw_read(dirs, concurrency, duration, once, drop_caches, cli.json),
        Cmd::Codec {
            data,
            parity,
            block,
            duration,
        } => codec(data, parity, block, duration, cli.json),
        Cmd::Seal { block, duration } => seal::seal(block, duration, cli.json),
        Cmd::Listing { dir, sizes } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(index::listing(dir, sizes, cli.json));
        }
        Cmd::Startup { dir, objects } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(index::startup(dir, objects, cli.json));
        }
    }
}
