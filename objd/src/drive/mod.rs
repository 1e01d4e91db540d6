//! The drive layer: everything that touches a disk. The [`Drive`] trait is
//! the boundary the erasure and object layers use; [`local::LocalDrive`] is
//! a directory on a local filesystem, [`remote::RemoteDrive`] a drive of
//! another node of a cluster. All file I/O and every fsync live below
//! this line.
//!
//! The trait is blocking; async callers go through `spawn_blocking`.

pub mod direct;
#[cfg(test)]
pub mod fault;
pub mod format;
pub mod local;
pub mod metered;
pub mod remote;
pub mod rpc;

use std::io;

/// The ordered tables a drive keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// bucket name -> bucket record
    Buckets,
    /// `bucket \0 key` -> object record
    Objects,
    /// `bucket \0 key \0 upload-id` -> upload record
    Uploads,
    /// `upload-id (16 bytes) || part number (u32 big-endian) || tag` -> part record
    Parts,
    /// bucket name -> counters (two i64, little-endian) kept in the same
    /// transactions as the records they sum up
    Usage,
    /// deployment configuration (`iam/...`) -> document, kept on every
    /// drive like bucket records
    Config,
}

/// One change inside a drive's atomic commit.
#[derive(Debug, Clone)]
pub enum RecordOp {
    Put {
        table: Table,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        table: Table,
        key: Vec<u8>,
    },
    /// A precondition: the commit fails with `Conflict`, changing nothing,
    /// unless the value under `key` has this XXH3-64 hash ([`value_hash`];
    /// `None`: no value). So a change computed from what a drive held
    /// cannot land after the drive moved on (a commit that hung past the
    /// drive timeout, say).
    Check {
        table: Table,
        key: Vec<u8>,
        hash: Option<u64>,
    },
    /// Adds `delta` to the two counters stored under `key` (absent: zero).
    Add {
        table: Table,
        key: Vec<u8>,
        delta: [i64; 2],
    },
}

/// The hash [`RecordOp::Check`] compares.
pub fn value_hash(v: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(v)
}

/// Two counters as [`RecordOp::Add`] stores them.
pub fn decode_counters(v: &[u8]) -> [i64; 2] {
    let at = |i: usize| {
        v.get(i * 8..i * 8 + 8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, i64::from_le_bytes)
    };
    [at(0), at(1)]
}

/// The stored form of two counters.
pub fn encode_counters(c: [i64; 2]) -> Vec<u8> {
    let mut v = c[0].to_le_bytes().to_vec();
    v.extend_from_slice(&c[1].to_le_bytes());
    v
}

#[derive(Debug, thiserror::Error)]
pub enum DriveError {
    #[error("not found")]
    NotFound,
    #[error("drive is full")]
    Full,
    #[error("drive is offline")]
    Offline,
    /// The drive did not answer within the drive timeout; what it was
    /// asked may still happen later.
    #[error("drive did not answer in time")]
    Timeout,
    /// A [`RecordOp::Check`] failed: the drive holds something else now.
    #[error("the record changed meanwhile")]
    Conflict,
    #[error("i/o: {0}")]
    Io(io::Error),
    #[error("index: {0}")]
    Index(String),
    /// A record that fails its checksum or does not decode.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl From<io::Error> for DriveError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::NotFound => DriveError::NotFound,
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => DriveError::Full,
            _ => DriveError::Io(e),
        }
    }
}

pub type DriveResult<T> = Result<T, DriveError>;

/// Key-value entries of a table, in key order.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// The keys a scan reads: `start <= key < end` (`start < key` when
/// `exclusive_start`), in key order, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyRange<'a> {
    pub start: &'a [u8],
    pub exclusive_start: bool,
    pub end: &'a [u8],
    pub limit: usize,
}

impl<'a> KeyRange<'a> {
    /// Keys in `start..end`, at most `limit`.
    pub fn new(start: &'a [u8], end: &'a [u8], limit: usize) -> Self {
        Self {
            start,
            exclusive_start: false,
            end,
            limit,
        }
    }

    /// The same range, without `start` itself when `exclusive`.
    pub fn exclusive(self, exclusive: bool) -> Self {
        Self {
            exclusive_start: exclusive,
            ..self
        }
    }
}

/// Bytes to reserve per entry of a scan of listing summaries (a key and a
/// one-version summary).
pub const SUMMARY_ENTRY_BYTES: usize = 160;

/// Key-value entries in key order packed into one buffer: what a scan of
/// many small entries returns without an allocation per key and value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Packed {
    bytes: Vec<u8>,
    /// Per entry, where its key and its value end in `bytes` (each starts
    /// where the one before ends).
    ends: Vec<(usize, usize)>,
}

impl Packed {
    pub fn with_capacity(entries: usize, bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            ends: Vec::with_capacity(entries),
        }
    }

    pub fn push(&mut self, key: &[u8], value: &[u8]) {
        self.bytes.extend_from_slice(key);
        let k = self.bytes.len();
        self.bytes.extend_from_slice(value);
        self.ends.push((k, self.bytes.len()));
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Entry `i`: its key and value.
    pub fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let (k, v) = *self.ends.get(i)?;
        let from = i.checked_sub(1).map_or(0, |p| self.ends[p].1);
        Some((&self.bytes[from..k], &self.bytes[k..v]))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    pub fn last_key(&self) -> Option<&[u8]> {
        self.len()
            .checked_sub(1)
            .and_then(|i| self.get(i))
            .map(|(k, _)| k)
    }
}

impl From<Entries> for Packed {
    fn from(entries: Entries) -> Self {
        let bytes = entries.iter().map(|(k, v)| k.len() + v.len()).sum();
        let mut p = Self::with_capacity(entries.len(), bytes);
        for (k, v) in &entries {
            p.push(k, v);
        }
        p
    }
}

/// Previous values of a commit's ops, or why it failed.
pub type CommitResult = DriveResult<Vec<Option<Vec<u8>>>>;

/// Called once a commit is durable (or failed), on the drive's own thread.
pub type CommitDone = Box<dyn FnOnce(CommitResult) + Send>;

/// A shard file being written. `finish` makes it durable (file and
/// directory entries fsynced); dropping it unfinished leaves garbage that
/// the caller removes.
pub trait ShardWriter: Send {
    fn write_all(&mut self, buf: &[u8]) -> DriveResult<()>;
    fn finish(self: Box<Self>) -> DriveResult<()>;
}

/// Which shard file of a data directory: a part number, and for multipart
/// parts a tag drawn for each upload of the part, so that uploading a part
/// again never overwrites the file an existing record names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardFile {
    pub part: u32,
    /// 0 for the file of a single PUT (`part.N`).
    pub tag: u64,
}

impl ShardFile {
    pub fn new(part: u32, tag: u64) -> Self {
        Self { part, tag }
    }

    /// `part.N`, or `part.N.<tag as 16 hex digits>`.
    pub fn name(&self) -> String {
        if self.tag == 0 {
            format!("part.{}", self.part)
        } else {
            format!("part.{}.{:016x}", self.part, self.tag)
        }
    }

    /// The file a name names (temporary files excluded).
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("part.")?;
        let (num, tag) = match rest.split_once('.') {
            None => (rest, 0),
            Some((n, t)) if t.len() == 16 => (n, u64::from_str_radix(t, 16).ok()?),
            Some(_) => return None,
        };
        Some(Self {
            part: num.parse().ok()?,
            tag,
        })
    }
}

/// A data directory as found on a drive (by the orphan sweep).
#[derive(Debug, Clone)]
pub struct DataDir {
    pub id: [u8; 16],
    /// The latest change to the directory or any file in it.
    pub modified: std::time::SystemTime,
    /// Every file in it, by name, with its modification time.
    pub files: Vec<(String, std::time::SystemTime)>,
}

/// Space figures of a drive, in bytes.
#[derive(Debug, Clone, Copy, Default)]
pub struct DriveSpace {
    pub total: u64,
    pub free: u64,
}

/// A drive: ordered metadata tables with atomic, durable commits, plus shard
/// files addressed by data directory and part number.
pub trait Drive: Send + Sync + std::fmt::Debug {
    /// A short human name (the path) for logs and admin output.
    fn name(&self) -> &str;

    fn read_format(&self) -> DriveResult<Option<format::DriveFormat>>;
    fn write_format(&self, f: &format::DriveFormat) -> DriveResult<()>;

    fn get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Vec<u8>>>;
    /// The entries of `table` in `range`.
    fn scan(&self, table: Table, range: KeyRange) -> DriveResult<Entries>;
    /// Like [`Drive::scan`] of [`Table::Objects`], with each record cut to
    /// its listing summary ([`crate::meta::summary`]) by the drive, so
    /// whole records are neither copied nor sent. A record that fails its
    /// checksum or does not decode gets an empty summary, which the reader
    /// takes for the damaged record it is.
    fn scan_summaries(&self, range: KeyRange) -> DriveResult<Packed> {
        let entries = self.scan(Table::Objects, range)?;
        let mut out = Packed::with_capacity(entries.len(), entries.len() * SUMMARY_ENTRY_BYTES);
        for (k, v) in &entries {
            out.push(k, &summary_of(v));
        }
        Ok(out)
    }
    /// Applies `ops` atomically and durably; returns each op's previous value.
    /// Concurrent commits are batched into one fsync.
    fn commit(&self, ops: Vec<RecordOp>) -> CommitResult;
    /// Like [`Drive::commit`] without blocking the caller: `done` runs when
    /// the commit is durable. Async callers use this, so a commit waiting
    /// for its fsync holds no thread.
    fn commit_async(&self, ops: Vec<RecordOp>, done: CommitDone);

    fn create_shard(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<Box<dyn ShardWriter>>;
    fn read_shard(&self, dir: &[u8; 16], file: ShardFile, offset: u64, len: usize) -> DriveResult<Vec<u8>>;
    fn remove_part(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<()>;
    fn remove_data_dir(&self, dir: &[u8; 16]) -> DriveResult<()>;
    /// Makes the new data directory `dst` hold `files` of `src` without
    /// copying their bytes: a clone shares the shard files of its origin.
    /// Shard files are never changed once written (a rewrite is a new file
    /// renamed into place), so either name can go without touching the
    /// other. Not durable until [`Drive::sync_data`] returns; on failure
    /// `dst` is gone.
    fn link_data(&self, src: &[u8; 16], dst: &[u8; 16], files: &[ShardFile]) -> DriveResult<()>;
    /// Makes every data directory and link made so far durable (one flush
    /// of the drive's filesystem for a batch of [`Drive::link_data`]).
    fn sync_data(&self) -> DriveResult<()>;
    /// The data directories whose id starts with byte `prefix`.
    fn data_dirs(&self, prefix: u8) -> DriveResult<Vec<DataDir>>;
    /// Removes a file that [`Drive::data_dirs`] listed (a temporary file,
    /// or a shard file no record names).
    fn remove_file(&self, dir: &[u8; 16], name: &str) -> DriveResult<()>;
    fn space(&self) -> DriveResult<DriveSpace>;
    /// False while the drive is known to be unreachable (a drive of a node
    /// that stopped answering); calls then fail at once.
    fn is_online(&self) -> bool {
        true
    }
    /// Whether the drive is another node's (each call a network round trip).
    fn is_remote(&self) -> bool {
        false
    }
}

/// The listing summary of an object record; empty for a damaged record.
pub fn summary_of(record: &[u8]) -> Vec<u8> {
    crate::meta::summary::summarize(record).unwrap_or_default()
}

/// `bucket \0 key`, the key of the objects table.
pub fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The first key after every key that starts with `prefix`, or `None` when
/// no such key exists (the prefix is all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut p = prefix.to_vec();
    while let Some(last) = p.pop() {
        if last < 0xff {
            p.push(last + 1);
            return Some(p);
        }
    }
    None
}
