//! A drive wrapper that measures what its drive does, for the metrics
//! endpoint: the latency of reads (record reads, scans, shard reads),
//! commits (to durability) and shard syncs (a shard file's fsync and
//! rename), and the count of calls that failed with an I/O error, a
//! timeout or a corrupt record. The server wraps every drive it opens;
//! the figures of all drives are kept in the process's [`families`], by
//! drive name, which the metrics endpoint serves.

use super::{
    CommitDone, CommitResult, DataDir, Drive, DriveError, DriveResult, DriveSpace, KeyRange, RecordOp,
    ShardFile, ShardWriter, Table, format,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

type Labels = Vec<(&'static str, String)>;

/// Every measured drive's figures: errors by `drive`, latency by `drive`
/// and `op` (`read`, `commit`, `sync`); and, kept by each local drive's
/// direct writer ([`super::direct`]), shard bytes written around the page
/// cache and whether the drive's filesystem still takes such writes.
#[derive(Debug)]
pub struct Families {
    pub errors: Family<Labels, Counter>,
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
    pub direct_bytes: Family<Labels, Counter>,
    pub direct: Family<Labels, Gauge>,
}

/// The process's drive figures.
pub fn families() -> &'static Families {
    static F: OnceLock<Families> = OnceLock::new();
    F.get_or_init(|| Families {
        errors: Family::default(),
        latency: Family::new_with_constructor(buckets),
        direct_bytes: Family::default(),
        direct: Family::default(),
    })
}

/// One drive's figures (handles into [`families`]).
#[derive(Debug)]
struct DriveStats {
    errors: Counter,
    read: Histogram,
    commit: Histogram,
    sync: Histogram,
}

/// Drive latency buckets, in seconds: 50 µs to 10 s.
fn buckets() -> Histogram {
    Histogram::new([
        0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        10.0,
    ])
}

impl DriveStats {
    fn of(drive: &str) -> Self {
        let f = families();
        let op = |op: &str| {
            f.latency
                .get_or_create(&vec![("drive", drive.to_owned()), ("op", op.to_owned())])
                .clone()
        };
        Self {
            errors: f.errors.get_or_create(&vec![("drive", drive.to_owned())]).clone(),
            read: op("read"),
            commit: op("commit"),
            sync: op("sync"),
        }
    }

    /// Counts `r` if it failed as a drive fault (not a missing entry, a
    /// full drive, a conflict or an offline peer, which are states).
    fn count<T>(&self, r: &DriveResult<T>) {
        if let Err(DriveError::Io(_) | DriveError::Index(_) | DriveError::Corrupt(_) | DriveError::Timeout) =
            r
        {
            self.errors.inc();
        }
    }

    fn timed<T>(&self, h: &Histogram, f: impl FnOnce() -> DriveResult<T>) -> DriveResult<T> {
        let t = Instant::now();
        let r = f();
        h.observe(t.elapsed().as_secs_f64());
        self.count(&r);
        r
    }
}

#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Drive>,
    stats: Arc<DriveStats>,
}

impl Metered {
    pub fn wrap(inner: Arc<dyn Drive>) -> Arc<dyn Drive> {
        let stats = Arc::new(DriveStats::of(inner.name()));
        Arc::new(Self { inner, stats })
    }
}

struct MeteredWriter {
    inner: Box<dyn ShardWriter>,
    stats: Arc<DriveStats>,
}

impl ShardWriter for MeteredWriter {
    fn write_all(&mut self, buf: &[u8]) -> DriveResult<()> {
        let r = self.inner.write_all(buf);
        self.stats.count(&r);
        r
    }

    fn finish(self: Box<Self>) -> DriveResult<()> {
        let stats = Arc::clone(&self.stats);
        stats.timed(&stats.sync, || self.inner.finish())
    }
}

impl Drive for Metered {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn read_format(&self) -> DriveResult<Option<format::DriveFormat>> {
        self.inner.read_format()
    }

    fn write_format(&self, f: &format::DriveFormat) -> DriveResult<()> {
        self.inner.write_format(f)
    }

    fn get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Vec<u8>>> {
        self.stats.timed(&self.stats.read, || self.inner.get(table, key))
    }

    fn scan(&self, table: Table, range: KeyRange) -> DriveResult<super::Entries> {
        self.stats
            .timed(&self.stats.read, || self.inner.scan(table, range))
    }

    fn scan_summaries(&self, range: KeyRange) -> DriveResult<super::Packed> {
        self.stats
            .timed(&self.stats.read, || self.inner.scan_summaries(range))
    }

    fn commit(&self, ops: Vec<RecordOp>) -> CommitResult {
        self.stats.timed(&self.stats.commit, || self.inner.commit(ops))
    }

    fn commit_async(&self, ops: Vec<RecordOp>, done: CommitDone) {
        let (stats, t) = (Arc::clone(&self.stats), Instant::now());
        self.inner.commit_async(
            ops,
            Box::new(move |r| {
                stats.commit.observe(t.elapsed().as_secs_f64());
                stats.count(&r);
                done(r);
            }),
        );
    }

    fn create_shard(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<Box<dyn ShardWriter>> {
        let r = self.inner.create_shard(dir, file);
        self.stats.count(&r);
        Ok(Box::new(MeteredWriter {
            inner: r?,
            stats: Arc::clone(&self.stats),
        }))
    }

    fn read_shard(&self, dir: &[u8; 16], file: ShardFile, offset: u64, len: usize) -> DriveResult<Vec<u8>> {
        self.stats
            .timed(&self.stats.read, || self.inner.read_shard(dir, file, offset, len))
    }

    fn remove_part(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<()> {
        let r = self.inner.remove_part(dir, file);
        self.stats.count(&r);
        r
    }

    fn remove_data_dir(&self, dir: &[u8; 16]) -> DriveResult<()> {
        let r = self.inner.remove_data_dir(dir);
        self.stats.count(&r);
        r
    }

    fn link_data(&self, src: &[u8; 16], dst: &[u8; 16], files: &[ShardFile]) -> DriveResult<()> {
        let r = self.inner.link_data(src, dst, files);
        self.stats.count(&r);
        r
    }

    fn sync_data(&self) -> DriveResult<()> {
        let r = self.inner.sync_data();
        self.stats.count(&r);
        r
    }

    fn data_dirs(&self, prefix: u8) -> DriveResult<Vec<DataDir>> {
        self.inner.data_dirs(prefix)
    }

    fn remove_file(&self, dir: &[u8; 16], name: &str) -> DriveResult<()> {
        self.inner.remove_file(dir, name)
    }

    fn space(&self) -> DriveResult<DriveSpace> {
        self.inner.space()
    }

    fn is_online(&self) -> bool {
        self.inner.is_online()
    }

    fn is_remote(&self) -> bool {
        self.inner.is_remote()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_counted_and_states_are_not() {
        let s = DriveStats::of("/test/metered-counts");
        s.count::<()>(&Err(DriveError::NotFound));
        s.count::<()>(&Err(DriveError::Conflict));
        s.count::<()>(&Ok(()));
        assert_eq!(s.errors.get(), 0);
        s.count::<()>(&Err(DriveError::Io(std::io::Error::other("eio"))));
        s.count::<()>(&Err(DriveError::Timeout));
        assert_eq!(s.errors.get(), 2);
    }
}
