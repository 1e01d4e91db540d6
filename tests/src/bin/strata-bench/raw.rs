//! The disk baselines: plain files written with fsync (and their
//! directory fsynced) into the given directories, through the page cache
//! or direct through objd's own direct writer (`--direct`: aligned
//! staging buffers, the last partial page through the cache), and read
//! back.

use super::{Stats, drop_page_cache, random_bytes};
use objd::drive::direct::{DirectWriter, Stages};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub fn raw_write(dirs: Vec<PathBuf>, size: u64, conc: usize, duration: f64, direct: bool, json: bool) {
    let body = random_bytes(size as usize);
    // One set of staging buffers per directory, as objd keeps per drive.
    let stages: Vec<Arc<Stages>> = dirs.iter().map(|_| Arc::default()).collect();
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let start = Instant::now();
    let handles: Vec<_> = (0..conc)
        .map(|w| {
            let (dirs, body, stages) = (dirs.clone(), body.clone(), stages.clone());
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut i = 0usize;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let d = (w + i) % dirs.len();
                    let dir = &dirs[d];
                    let sub = dir.join(format!("raw-{w}"));
                    std::fs::create_dir_all(&sub).expect("mkdir");
                    let path = sub.join(format!("{i}"));
                    let mut f = std::fs::File::create(&path).expect("create");
                    if direct {
                        let mut w = DirectWriter::new(f, Arc::clone(&stages[d]));
                        w.write_all(&body).expect("write");
                        f = w.finish().expect("write");
                    } else {
                        f.write_all(&body).expect("write");
                    }
                    f.sync_all().expect("fsync");
                    std::fs::File::open(&sub)
                        .and_then(|d| d.sync_all())
                        .expect("fsync dir");
                    lat.push(t.elapsed());
                    i += 1;
                }
                lat
            })
        })
        .collect();
    let mut stats = Stats {
        name: if direct {
            "raw direct write+fsync"
        } else {
            "raw write+fsync"
        }
        .into(),
        size,
        concurrency: conc,
        ..Default::default()
    };
    for h in handles {
        let lat = h.join().expect("writer");
        stats.ops += lat.len() as u64;
        stats.bytes += lat.len() as u64 * size;
        stats.latencies.extend(lat);
    }
    stats.elapsed = start.elapsed();
    stats.report(json);
}

pub fn raw_read(dirs: Vec<PathBuf>, conc: usize, duration: f64, once: bool, drop_caches: bool, json: bool) {
    let mut files = Vec::new();
    for d in &dirs {
        for w in std::fs::read_dir(d).into_iter().flatten().flatten() {
            if w.file_name().to_string_lossy().starts_with("raw-") {
                files.extend(
                    std::fs::read_dir(w.path())
                        .into_iter()
                        .flatten()
                        .flatten()
                        .map(|e| e.path()),
                );
            }
        }
    }
    assert!(!files.is_empty(), "no files from raw-write in the directories");
    let files = Arc::new(files);
    let size = std::fs::metadata(&files[0]).map_or(0, |m| m.len());
    if drop_caches {
        drop_page_cache();
    }
    let next = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(duration);
    let start = Instant::now();
    let handles: Vec<_> = (0..conc)
        .map(|_| {
            let (files, next) = (Arc::clone(&files), Arc::clone(&next));
            std::thread::spawn(move || {
                let mut lat = Vec::new();
                let mut bytes = 0u64;
                let mut buf = vec![0u8; 1 << 20];
                while Instant::now() < deadline {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    if once && i >= files.len() {
                        break;
                    }
                    let t = Instant::now();
                    let mut f = std::fs::File::open(&files[i % files.len()]).expect("open");
                    loop {
                        let n = f.read(&mut buf).expect("read");
                        if n == 0 {
                            break;
                        }
                        bytes += n as u64;
                    }
                    lat.push(t.elapsed());
                }
                (lat, bytes)
            })
        })
        .collect();
    let name = if drop_caches {
        "raw read (cold)"
    } else {
        "raw read"
    };
    let mut stats = Stats {
        name: name.into(),
        size,
        concurrency: conc,
        ..Default::default()
    };
    for h in handles {
        let (lat, bytes) = h.join().expect("reader");
        stats.ops += lat.len() as u64;
        stats.bytes += bytes;
        stats.latencies.extend(lat);
    }
    stats.elapsed = start.elapsed();
    stats.report(json);
}
