//! Shard file writes that go around the page cache.
//!
//! A shard file is written once, fsynced before its object is committed,
//! and read back only when the object is read. Written through the page
//! cache, each of its bytes is first copied by the kernel into a freshly
//! taken cache page, which the cache must find by reclaiming others (or, in
//! a virtual machine, the host must back on first touch), and then written
//! back at fsync: under many concurrent uploads that copy was half of all
//! the CPU time objd spent (docs/benchmarks.md). Large shard files are
//! written with `O_DIRECT` instead, from a few aligned staging buffers per
//! drive, straight to the disk.
//!
//! What goes direct: whole [`ALIGN`] units, once a writer has gathered at
//! least [`PENDING`] bytes. A file smaller than that, and the last partial
//! unit of every file, are written through the cache at the end (the
//! file's `O_DIRECT` flag cleared first), so the file's bytes and length
//! are exactly what was written either way, and the fsync that finishes a
//! shard file covers both. A filesystem that refuses `O_DIRECT`, or a
//! direct write it refuses as unaligned, turns the writer (and from then
//! on the drive) to writes through the cache, from the first byte not yet
//! written.
//!
//! The staging buffers bound both the direct writes a drive has in flight
//! (the disk's queue) and their memory: [`STAGES`] × [`STAGE`] bytes per
//! drive, taken when first needed.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// Bytes a writer gathers before it writes; a smaller file is written
/// through the cache when it is finished.
pub const PENDING: usize = 64 << 10;

/// The unit of a direct write's offset, length and memory address (the
/// page size, a multiple of every disk's logical block).
pub const ALIGN: usize = 4096;

/// Bytes one direct write carries at most: a shard block of the default
/// layout (a quarter megabyte) with its checksum goes in two.
pub const STAGE: usize = 256 << 10;

/// Staging buffers per drive: direct writes a drive has in flight at once.
pub const STAGES: usize = 8;

/// A drive's staging buffers and what its filesystem said of `O_DIRECT`.
#[derive(Debug)]
pub struct Stages {
    stock: Mutex<Stock>,
    given_back: Condvar,
    /// 1 while the drive writes direct; 0 once the filesystem refused a
    /// direct write, and every writer of this drive writes through the
    /// cache from then on.
    direct: Gauge,
    /// Bytes written direct. Both are the drive's metrics when made with
    /// [`Stages::for_drive`].
    direct_bytes: Counter,
}

impl Default for Stages {
    /// Stages counted in no metrics.
    fn default() -> Self {
        Self::counted(Gauge::default(), Counter::default())
    }
}

#[derive(Debug, Default)]
struct Stock {
    idle: Vec<Vec<u8>>,
    made: usize,
}

/// A staging buffer taken from its drive's stock, given back on drop.
struct Stage<'a> {
    buf: Vec<u8>,
    home: &'a Stages,
}

impl Stages {
    /// The stages of the drive named `drive`, counted in the process's
    /// drive metrics.
    pub fn for_drive(drive: &str) -> Self {
        let f = super::metered::families();
        let label = vec![("drive", drive.to_owned())];
        Self::counted(
            f.direct.get_or_create(&label).clone(),
            f.direct_bytes.get_or_create(&label).clone(),
        )
    }

    fn counted(direct: Gauge, direct_bytes: Counter) -> Self {
        direct.set(1);
        Self {
            stock: Mutex::default(),
            given_back: Condvar::new(),
            direct,
            direct_bytes,
        }
    }

    /// Whether the drive still writes direct.
    fn takes_direct(&self) -> bool {
        self.direct.get() != 0
    }

    /// Takes a staging buffer, waiting while all of them are writing.
    fn take(&self) -> Stage<'_> {
        let mut stock = self.stock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(buf) = stock.idle.pop() {
                return Stage { buf, home: self };
            }
            if stock.made < STAGES {
                stock.made += 1;
                return Stage {
                    buf: vec![0; STAGE + ALIGN],
                    home: self,
                };
            }
            stock = self
                .given_back
                .wait(stock)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    #[cfg(test)]
    fn direct_bytes(&self) -> u64 {
        self.direct_bytes.get()
    }
}

impl Stage<'_> {
    /// The aligned [`STAGE`] bytes inside the buffer.
    fn aligned(&mut self) -> &mut [u8] {
        let at = self.buf.as_ptr().align_offset(ALIGN);
        &mut self.buf[at..at + STAGE]
    }
}

impl Drop for Stage<'_> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut stock = self.home.stock.lock().unwrap_or_else(PoisonError::into_inner);
        stock.idle.push(buf);
        drop(stock);
        self.home.given_back.notify_one();
    }
}

/// Sets or clears the file's `O_DIRECT` status flag.
#[allow(unsafe_code)]
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with F_GETFL/F_SETFL reads and sets the status flags
    // of a descriptor this function borrows open; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let want = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, want) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Copies bytes `at..at + dst.len()` of `a` followed by `b` into `dst`.
fn copy_joined(a: &[u8], b: &[u8], at: usize, dst: &mut [u8]) {
    let mut done = 0;
    if at < a.len() {
        let n = (a.len() - at).min(dst.len());
        dst[..n].copy_from_slice(&a[at..at + n]);
        done = n;
    }
    if done < dst.len() {
        // `a` is behind `at` or used up: `b` starts at `a`'s end.
        let from = at + done - a.len();
        let rest = dst.len() - done;
        dst[done..].copy_from_slice(&b[from..from + rest]);
    }
}

/// Writes one shard file from its start, direct where it can.
pub struct DirectWriter {
    file: File,
    stages: Arc<Stages>,
    /// Bytes not yet written: fewer than [`PENDING`].
    pending: Vec<u8>,
    /// The file's `O_DIRECT` flag is set.
    direct: bool,
}

impl DirectWriter {
    pub fn new(file: File, stages: Arc<Stages>) -> Self {
        Self {
            file,
            stages,
            pending: Vec::new(),
            direct: false,
        }
    }

    /// Appends `buf` to the file: gathered while the file is small, then
    /// written direct in whole pages (or through the cache where refused).
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        if self.pending.len() + buf.len() < PENDING {
            // Grown as needed: a large file's writer holds only the part
            // of a page left over from its last direct write.
            self.pending.extend_from_slice(buf);
            return Ok(());
        }
        if !self.direct && self.stages.takes_direct() {
            match set_direct(&self.file, true) {
                Ok(()) => self.direct = true,
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.refuse(),
                Err(e) => return Err(e),
            }
        }
        if self.direct {
            self.write_direct(buf)
        } else {
            self.write_cached(0, buf)
        }
    }

    /// Writes what is pending and then `buf` through the page cache, from
    /// byte `at` of the two joined.
    fn write_cached(&mut self, at: usize, buf: &[u8]) -> io::Result<()> {
        let held = self.pending.len();
        if at < held {
            self.file.write_all(&self.pending[at..])?;
        }
        self.file.write_all(&buf[at.saturating_sub(held)..])?;
        self.pending.clear();
        Ok(())
    }

    /// Writes the whole [`ALIGN`] units of what is pending and `buf`,
    /// joined, direct; what is left over stays pending.
    fn write_direct(&mut self, buf: &[u8]) -> io::Result<()> {
        let total = self.pending.len() + buf.len();
        // At least PENDING (a multiple of ALIGN) are there, so the units
        // cover all that was pending and the rest lies in `buf`.
        let whole = total - total % ALIGN;
        let mut stage = self.stages.take();
        let mut at = 0;
        let mut refused = false;
        'units: while at < whole {
            let n = (whole - at).min(STAGE);
            let staged = &mut stage.aligned()[..n];
            copy_joined(&self.pending, buf, at, staged);
            let mut off = 0;
            while off < n {
                match (&self.file).write(&staged[off..]) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(k) => {
                        off += k;
                        at += k;
                        self.stages.direct_bytes.inc_by(k as u64);
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        refused = true;
                        break 'units;
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        drop(stage);
        if refused {
            set_direct(&self.file, false)?;
            self.direct = false;
            self.refuse();
            return self.write_cached(at, buf);
        }
        self.pending.clear();
        self.pending
            .extend_from_slice(&buf[whole - (total - buf.len())..]);
        Ok(())
    }

    fn refuse(&self) {
        if self.stages.direct.set(0) != 0 {
            tracing::info!(
                "direct writes refused on a drive: its shard files are written through the page cache"
            );
        }
    }

    /// Writes what is still pending through the page cache and hands the
    /// file back (for the caller's fsync).
    pub fn finish(mut self) -> io::Result<File> {
        if self.direct {
            set_direct(&self.file, false)?;
        }
        self.file.write_all(&self.pending)?;
        Ok(self.file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 12) as u8)
            .collect()
    }

    /// Writes `pieces` through a writer into a new file and reads it back.
    fn round_trip(stages: &Arc<Stages>, dir: &std::path::Path, name: &str, pieces: &[Vec<u8>]) -> Vec<u8> {
        let path = dir.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        let mut w = DirectWriter::new(file, Arc::clone(stages));
        for p in pieces {
            w.write_all(p).unwrap();
        }
        w.finish().unwrap().sync_all().unwrap();
        let mut back = Vec::new();
        File::open(&path).unwrap().read_to_end(&mut back).unwrap();
        back
    }

    #[test]
    fn every_length_and_split_reads_back_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let stages = Arc::new(Stages::default());
        // A shard block of the default layout framed (8 + 256 KiB), files
        // around the thresholds, and many small writes.
        let shapes: Vec<Vec<usize>> = vec![
            vec![],
            vec![1],
            vec![ALIGN - 1],
            vec![PENDING - 1],
            vec![PENDING],
            vec![PENDING + 1],
            vec![8, 256 << 10, 8, 256 << 10, 8, 100_001],
            vec![STAGE * 3 + 17],
            vec![4000; 70],
            vec![PENDING - 8, 8, 1, ALIGN, 3 * STAGE, 5],
        ];
        for (i, shape) in shapes.iter().enumerate() {
            let pieces: Vec<Vec<u8>> = shape
                .iter()
                .enumerate()
                .map(|(j, &n)| pattern(n, (i * 16 + j) as u8))
                .collect();
            let back = round_trip(&stages, dir.path(), &format!("f{i}"), &pieces);
            assert_eq!(back, pieces.concat(), "shape {shape:?}");
        }
        // This machine's filesystems take direct writes: the large files
        // went around the cache.
        assert!(stages.takes_direct());
        assert!(
            stages.direct_bytes() >= (3 * STAGE) as u64,
            "{}",
            stages.direct_bytes()
        );
    }

    #[test]
    fn a_refusing_drive_writes_through_the_cache() {
        let dir = tempfile::tempdir().unwrap();
        let stages = Arc::new(Stages::default());
        stages.direct.set(0);
        let pieces = vec![pattern(8, 1), pattern(STAGE, 2), pattern(12_345, 3)];
        assert_eq!(round_trip(&stages, dir.path(), "f", &pieces), pieces.concat());
        assert_eq!(stages.direct_bytes(), 0);
    }

    #[test]
    fn a_drive_s_metrics_say_whether_it_writes_direct() {
        let dir = tempfile::tempdir().unwrap();
        let name = dir.path().join("drive").display().to_string();
        let label = vec![("drive", name.clone())];
        let stages = Arc::new(Stages::for_drive(&name));
        let gauge = || {
            super::super::metered::families()
                .direct
                .get_or_create(&label)
                .get()
        };
        let written = || {
            super::super::metered::families()
                .direct_bytes
                .get_or_create(&label)
                .get()
        };
        assert_eq!(gauge(), 1);
        let pieces = vec![pattern(STAGE + ALIGN, 4)];
        round_trip(&stages, dir.path(), "big", &pieces);
        assert_eq!(written(), (STAGE + ALIGN) as u64);
        // The first refusal turns the drive's gauge to 0.
        let file = File::create(dir.path().join("refused")).unwrap();
        DirectWriter::new(file, Arc::clone(&stages)).refuse();
        assert_eq!(gauge(), 0);
        assert!(!stages.takes_direct());
    }

    #[test]
    fn more_writers_than_stages_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let stages = Arc::new(Stages::default());
        std::thread::scope(|s| {
            for t in 0..3 * STAGES {
                let (stages, dir) = (&stages, dir.path());
                s.spawn(move || {
                    let pieces: Vec<Vec<u8>> = (0..6)
                        .map(|j| pattern(8 + (j % 2) * STAGE, (t * 6 + j) as u8))
                        .collect();
                    assert_eq!(
                        round_trip(stages, dir, &format!("t{t}"), &pieces),
                        pieces.concat()
                    );
                });
            }
        });
        assert!(stages.stock.lock().unwrap().made <= STAGES);
    }
}
