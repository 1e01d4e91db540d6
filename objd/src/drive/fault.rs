//! A drive wrapper that injects faults at the drive boundary, for tests:
//! every change it passes on (a commit, a shard file created, written or
//! finished, a removal) is an event numbered per drive, and a [`Faults`]
//! plan decides for each whether it happens, fails, or first stalls.
//! Reads always pass. [`Crash`] freezes each drive after a budget of
//! events: what a process crash leaves when it strikes with every drive at
//! a chosen point of its sequence.

use super::{
    CommitDone, CommitResult, DataDir, Drive, DriveError, DriveResult, DriveSpace, KeyRange, RecordOp,
    ShardFile, ShardWriter, Table, format,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A change passed to the drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    Commit,
    CreateShard,
    /// Bytes written to a shard file.
    Write(usize),
    /// A shard file made durable and put in place.
    Finish,
    RemovePart,
    RemoveDir,
    RemoveFile,
    /// A clone's data directory linked to its origin's files.
    LinkData,
    WriteFormat,
}

/// What happens to an event.
#[derive(Debug)]
pub enum Action {
    Proceed,
    /// The event fails with this error and changes nothing.
    Fail(DriveError),
    /// The event waits this long, then happens.
    Stall(Duration),
}

/// A fault plan: called for each event of drive `drive`, numbered from 0.
pub trait Faults: Send + Sync + std::fmt::Debug {
    fn on(&self, drive: usize, seq: u64, event: Event) -> Action;
}

/// Every drive changes nothing more once it has passed its budget of
/// events (`u64::MAX`: no limit), and counts the events it was asked for.
#[derive(Debug)]
pub struct Crash {
    budgets: Vec<AtomicU64>,
    seen: Vec<AtomicU64>,
}

impl Crash {
    /// No limit on any of `n` drives yet.
    pub fn new(n: usize) -> Self {
        Self {
            budgets: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            seen: (0..n).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Events each drive has been asked for so far.
    pub fn seen(&self) -> Vec<u64> {
        self.seen.iter().map(|s| s.load(Ordering::SeqCst)).collect()
    }

    /// Lets drive `d` take `budgets[d]` more events from now on.
    pub fn limit_from_now(&self, budgets: &[u64]) {
        for (d, b) in budgets.iter().enumerate() {
            let now = self.seen[d].load(Ordering::SeqCst);
            self.budgets[d].store(now.saturating_add(*b), Ordering::SeqCst);
        }
    }
}

impl Faults for Crash {
    fn on(&self, drive: usize, seq: u64, _event: Event) -> Action {
        self.seen[drive].fetch_max(seq + 1, Ordering::SeqCst);
        if seq >= self.budgets[drive].load(Ordering::SeqCst) {
            Action::Fail(DriveError::Offline)
        } else {
            Action::Proceed
        }
    }
}

#[derive(Debug)]
struct Shared {
    pos: usize,
    faults: Arc<dyn Faults>,
    seq: AtomicU64,
}

impl Shared {
    /// Asks the plan about the next event; `Ok` when it may happen.
    fn event(&self, event: Event) -> DriveResult<()> {
        let seq = self.seq.fetch_add(1, Ordering::SeqCst);
        match self.faults.on(self.pos, seq, event) {
            Action::Proceed => Ok(()),
            Action::Fail(e) => Err(e),
            Action::Stall(d) => {
                std::thread::sleep(d);
                Ok(())
            }
        }
    }
}

/// A drive whose changes go through a fault plan.
#[derive(Debug)]
pub struct FaultDrive {
    inner: Arc<dyn Drive>,
    shared: Arc<Shared>,
}

impl FaultDrive {
    /// Wraps `inner`, the drive at position `pos` for the plan.
    pub fn new(inner: Arc<dyn Drive>, pos: usize, faults: Arc<dyn Faults>) -> Self {
        Self {
            inner,
            shared: Arc::new(Shared {
                pos,
                faults,
                seq: AtomicU64::new(0),
            }),
        }
    }
}

struct FaultWriter {
    inner: Box<dyn ShardWriter>,
    shared: Arc<Shared>,
}

impl ShardWriter for FaultWriter {
    fn write_all(&mut self, buf: &[u8]) -> DriveResult<()> {
        self.shared.event(Event::Write(buf.len()))?;
        self.inner.write_all(buf)
    }

    fn finish(self: Box<Self>) -> DriveResult<()> {
        self.shared.event(Event::Finish)?;
        self.inner.finish()
    }
}

impl Drive for FaultDrive {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn read_format(&self) -> DriveResult<Option<format::DriveFormat>> {
        self.inner.read_format()
    }
    fn write_format(&self, f: &format::DriveFormat) -> DriveResult<()> {
        self.shared.event(Event::WriteFormat)?;
        self.inner.write_format(f)
    }
    fn get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Vec<u8>>> {
        self.inner.get(table, key)
    }
    fn scan(&self, table: Table, range: KeyRange) -> DriveResult<Vec<(Vec<u8>, Vec<u8>)>> {
        self.inner.scan(table, range)
    }
    fn commit(&self, ops: Vec<RecordOp>) -> CommitResult {
        self.shared.event(Event::Commit)?;
        self.inner.commit(ops)
    }
    fn commit_async(&self, ops: Vec<RecordOp>, done: CommitDone) {
        let seq = self.shared.seq.fetch_add(1, Ordering::SeqCst);
        match self.shared.faults.on(self.shared.pos, seq, Event::Commit) {
            Action::Proceed => self.inner.commit_async(ops, done),
            Action::Fail(e) => done(Err(e)),
            Action::Stall(d) => {
                // The caller is async: wait on a thread of its own.
                let inner = Arc::clone(&self.inner);
                std::thread::spawn(move || {
                    std::thread::sleep(d);
                    inner.commit_async(ops, done);
                });
            }
        }
    }
    fn create_shard(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<Box<dyn ShardWriter>> {
        self.shared.event(Event::CreateShard)?;
        Ok(Box::new(FaultWriter {
            inner: self.inner.create_shard(dir, file)?,
            shared: Arc::clone(&self.shared),
        }))
    }
    fn read_shard(&self, dir: &[u8; 16], file: ShardFile, offset: u64, len: usize) -> DriveResult<Vec<u8>> {
        self.inner.read_shard(dir, file, offset, len)
    }
    fn remove_part(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<()> {
        self.shared.event(Event::RemovePart)?;
        self.inner.remove_part(dir, file)
    }
    fn remove_data_dir(&self, dir: &[u8; 16]) -> DriveResult<()> {
        self.shared.event(Event::RemoveDir)?;
        self.inner.remove_data_dir(dir)
    }
    fn link_data(&self, src: &[u8; 16], dst: &[u8; 16], files: &[ShardFile]) -> DriveResult<()> {
        self.shared.event(Event::LinkData)?;
        self.inner.link_data(src, dst, files)
    }
    fn sync_data(&self) -> DriveResult<()> {
        self.inner.sync_data()
    }
    fn data_dirs(&self, prefix: u8) -> DriveResult<Vec<DataDir>> {
        self.inner.data_dirs(prefix)
    }
    fn remove_file(&self, dir: &[u8; 16], name: &str) -> DriveResult<()> {
        self.shared.event(Event::RemoveFile)?;
        self.inner.remove_file(dir, name)
    }
    fn space(&self) -> DriveResult<DriveSpace> {
        self.inner.space()
    }
}
