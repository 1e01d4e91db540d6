//! A drive that is a directory on a local filesystem:
//!
//! ```text
//! <root>/format.json           deployment and position (drive::format)
//! <root>/index.redb            ordered tables: buckets, objects (and their listing summaries), uploads, parts
//! <root>/data/<xx>/<dir>/part.N  shard files, <dir> = 32 hex digits, <xx> its first two
//! ```
//!
//! Object keys never become paths: they only appear as keys of the index,
//! and shard files are named by random data-directory ids.
//!
//! Commits go through one committer thread per drive that folds every
//! commit waiting at the time into one redb write transaction, so N
//! concurrent writers share one fsync instead of paying N.

use super::{
    CommitDone, CommitResult, DataDir, Drive, DriveError, DriveResult, DriveSpace, KeyRange, Packed,
    RecordOp, ShardFile, ShardWriter, Table,
    direct::{DirectWriter, Stages},
    format,
};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};

const BUCKETS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("buckets");
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const UPLOADS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("uploads");
const PARTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("parts");
const USAGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("usage");
const CONFIG: TableDefinition<&[u8], &[u8]> = TableDefinition::new("config");
/// `bucket \0 key` -> the listing summary of the object record under the
/// same key, changed in the same transaction as the record.
const SUMMARIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("object-summaries");
/// The row of [`SUMMARIES`] that says every record has its summary, in
/// the form its value names ([`crate::meta::summary::FORM`]); no
/// objects-table key starts with `0x00`: bucket names are not empty.
const SUMMARIES_COMPLETE: &[u8] = b"\0complete";

/// Most commit requests folded into one transaction.
const MAX_BATCH: usize = 256;

fn def(t: Table) -> TableDefinition<'static, &'static [u8], &'static [u8]> {
    match t {
        Table::Buckets => BUCKETS,
        Table::Objects => OBJECTS,
        Table::Uploads => UPLOADS,
        Table::Parts => PARTS,
        Table::Usage => USAGE,
        Table::Config => CONFIG,
    }
}

fn index_err(e: impl std::fmt::Display) -> DriveError {
    let s = e.to_string();
    // redb reports the underlying io::Error in its message; a full disk
    // must surface as such, so look at the source error where we can.
    DriveError::Index(s)
}

fn storage_err(e: redb::StorageError) -> DriveError {
    match e {
        redb::StorageError::Io(io) => DriveError::from(io),
        other => index_err(other),
    }
}

fn commit_err(e: redb::CommitError) -> DriveError {
    match e {
        redb::CommitError::Storage(s) => storage_err(s),
        other => index_err(other),
    }
}

fn txn_err(e: redb::TransactionError) -> DriveError {
    match e {
        redb::TransactionError::Storage(s) => storage_err(s),
        other => index_err(other),
    }
}

fn table_err(e: redb::TableError) -> DriveError {
    match e {
        redb::TableError::Storage(s) => storage_err(s),
        other => index_err(other),
    }
}

type Reply = CommitDone;

#[derive(Debug)]
pub struct LocalDrive {
    root: PathBuf,
    name: String,
    db: Arc<Database>,
    commits: Option<mpsc::Sender<(Vec<RecordOp>, Reply)>>,
    committer: Option<std::thread::JoinHandle<()>>,
    format_lock: std::sync::Mutex<()>,
    /// Staging buffers of the shard files' direct writes.
    stages: Arc<Stages>,
}

impl Drop for LocalShardWriter {
    /// An abandoned write leaves nothing behind.
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

impl Drop for LocalDrive {
    /// Stops the committer and waits for it, so the index file is closed
    /// when the drive is (it can be reopened right away).
    fn drop(&mut self) {
        self.commits = None;
        if let Some(h) = self.committer.take() {
            let _ = h.join();
        }
    }
}

impl LocalDrive {
    /// Opens (creating if needed) the drive rooted at `root`.
    pub fn open(root: &Path) -> DriveResult<Self> {
        fs::create_dir_all(root.join("data"))?;
        let db = Database::builder()
            .set_cache_size(INDEX_CACHE)
            .create(root.join("index.redb"))
            .map_err(|e| match e {
                redb::DatabaseError::Storage(s) => storage_err(s),
                other => index_err(other),
            })?;
        let txn = db.begin_write().map_err(txn_err)?;
        for t in [BUCKETS, OBJECTS, UPLOADS, PARTS, USAGE, CONFIG] {
            txn.open_table(t).map_err(table_err)?;
        }
        build_summaries(&txn)?;
        txn.commit().map_err(commit_err)?;
        let db = Arc::new(db);
        let (tx, rx) = mpsc::channel::<(Vec<RecordOp>, Reply)>();
        let name = root.display().to_string();
        let committer_db = Arc::clone(&db);
        let handle = std::thread::Builder::new()
            .name("drive-commit".into())
            .spawn(move || committer(&committer_db, &rx))
            .map_err(DriveError::Io)?;
        Ok(Self {
            root: root.to_path_buf(),
            db,
            commits: Some(tx),
            committer: Some(handle),
            format_lock: std::sync::Mutex::new(()),
            stages: Arc::new(Stages::for_drive(&name)),
            name,
        })
    }

    fn dir_path(&self, dir: &[u8; 16]) -> PathBuf {
        let hex = hex::encode(dir);
        self.root.join("data").join(&hex[..2]).join(hex)
    }

    fn part_path(&self, dir: &[u8; 16], file: ShardFile) -> PathBuf {
        self.dir_path(dir).join(file.name())
    }

    /// Passes the entries of `table` in `range` to `each`, straight from
    /// the index's pages.
    fn range(
        &self,
        table: TableDefinition<'static, &'static [u8], &'static [u8]>,
        range: KeyRange,
        mut each: impl FnMut(&[u8], &[u8]),
    ) -> DriveResult<()> {
        let txn = self.db.begin_read().map_err(txn_err)?;
        let t = txn.open_table(table).map_err(table_err)?;
        let mut n = 0;
        for item in t.range(range.start..range.end).map_err(storage_err)? {
            let (k, v) = item.map_err(storage_err)?;
            if range.exclusive_start && k.value() == range.start {
                continue;
            }
            each(k.value(), v.value());
            n += 1;
            if n >= range.limit {
                break;
            }
        }
        Ok(())
    }
}

/// Gives every object record its listing summary, unless the drive says
/// they all have one in this build's form and the counts agree: a drive
/// formatted before the summaries, whose summaries have an older form, or
/// whose records a build without them changed, gets them here, in the
/// transaction that opens it.
fn build_summaries(txn: &redb::WriteTransaction) -> DriveResult<()> {
    use redb::ReadableTableMetadata;
    let objects = txn.open_table(OBJECTS).map_err(table_err)?;
    let mut summaries = txn.open_table(SUMMARIES).map_err(table_err)?;
    let complete = summaries
        .get(SUMMARIES_COMPLETE)
        .map_err(storage_err)?
        .is_some_and(|form| form.value() == crate::meta::summary::FORM);
    let (records, rows) = (
        objects.len().map_err(storage_err)?,
        summaries.len().map_err(storage_err)?,
    );
    if complete && rows == records + 1 {
        return Ok(());
    }
    summaries.retain(|_, _| false).map_err(storage_err)?;
    for item in objects.iter().map_err(storage_err)? {
        let (k, v) = item.map_err(storage_err)?;
        summaries
            .insert(k.value(), super::summary_of(v.value()).as_slice())
            .map_err(storage_err)?;
    }
    summaries
        .insert(SUMMARIES_COMPLETE, crate::meta::summary::FORM)
        .map_err(storage_err)?;
    Ok(())
}

/// Keeps the summary of the object record under `key` in step with it.
fn summarize_into(txn: &redb::WriteTransaction, key: &[u8], record: Option<&[u8]>) -> DriveResult<()> {
    let mut t = txn.open_table(SUMMARIES).map_err(table_err)?;
    match record {
        Some(r) => t.insert(key, super::summary_of(r).as_slice()).map(drop),
        None => t.remove(key).map(drop),
    }
    .map_err(storage_err)
}

fn apply(txn: &redb::WriteTransaction, ops: &[RecordOp]) -> DriveResult<Vec<Option<Vec<u8>>>> {
    // Preconditions first, so a request that fails them changes nothing.
    for op in ops {
        if let RecordOp::Check { table, key, hash } = op {
            let t = txn.open_table(def(*table)).map_err(table_err)?;
            let now = t
                .get(key.as_slice())
                .map_err(storage_err)?
                .map(|g| super::value_hash(g.value()));
            if now != *hash {
                return Err(DriveError::Conflict);
            }
        }
    }
    let mut prev = Vec::with_capacity(ops.len());
    for op in ops {
        match op {
            RecordOp::Check { .. } => prev.push(None),
            RecordOp::Put { table, key, value } => {
                let mut t = txn.open_table(def(*table)).map_err(table_err)?;
                let old = t.insert(key.as_slice(), value.as_slice()).map_err(storage_err)?;
                prev.push(old.map(|g| g.value().to_vec()));
                if *table == Table::Objects {
                    drop(t);
                    summarize_into(txn, key, Some(value))?;
                }
            }
            RecordOp::Delete { table, key } => {
                let mut t = txn.open_table(def(*table)).map_err(table_err)?;
                let old = t.remove(key.as_slice()).map_err(storage_err)?;
                prev.push(old.map(|g| g.value().to_vec()));
                if *table == Table::Objects {
                    drop(t);
                    summarize_into(txn, key, None)?;
                }
            }
            RecordOp::Add { table, key, delta } => {
                let mut t = txn.open_table(def(*table)).map_err(table_err)?;
                let old = t
                    .get(key.as_slice())
                    .map_err(storage_err)?
                    .map(|g| g.value().to_vec());
                let c = old.as_deref().map_or([0, 0], super::decode_counters);
                let new = super::encode_counters([c[0] + delta[0], c[1] + delta[1]]);
                t.insert(key.as_slice(), new.as_slice()).map_err(storage_err)?;
                prev.push(old);
            }
        }
    }
    Ok(prev)
}

fn commit_batch(db: &Database, batch: &[(Vec<RecordOp>, Reply)]) -> DriveResult<Vec<Vec<Option<Vec<u8>>>>> {
    let txn = db.begin_write().map_err(txn_err)?;
    let mut out = Vec::with_capacity(batch.len());
    for (ops, _) in batch {
        out.push(apply(&txn, ops)?);
    }
    txn.commit().map_err(commit_err)?;
    Ok(out)
}

fn commit_ops(db: &Database, ops: &[RecordOp]) -> CommitResult {
    let txn = db.begin_write().map_err(txn_err)?;
    let prev = apply(&txn, ops)?;
    txn.commit().map_err(commit_err)?;
    Ok(prev)
}

fn committer(db: &Database, rx: &mpsc::Receiver<(Vec<RecordOp>, Reply)>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match commit_batch(db, &batch) {
            Ok(results) => {
                for ((_, reply), r) in batch.into_iter().zip(results) {
                    reply(Ok(r));
                }
            }
            Err(_) if batch.len() > 1 => {
                // One request may have failed them all (say, a full disk on a
                // large record): give each its own transaction and answer.
                for (ops, reply) in batch {
                    let r = commit_ops(db, &ops);
                    reply(r);
                }
            }
            Err(e) => {
                if let Some((_, reply)) = batch.pop() {
                    reply(Err(e));
                }
            }
        }
    }
}

/// fsync of a directory, so that entries created or renamed in it persist.
fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Creates `path` if missing; returns whether it was created.
fn ensure_dir(path: &Path) -> io::Result<bool> {
    match fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

/// Memory the index of one drive keeps its pages in. The index library's
/// default (a gigabyte per drive) let a node's memory grow with the number
/// of small objects written until the container's limit killed it; pages
/// not kept are read again from the file, through the page cache.
pub const INDEX_CACHE: usize = 64 << 20;

/// Bytes a shard writer gathers before it writes to its file (its
/// checksums and small blocks; see [`super::direct`]).
pub const SHARD_WRITE_BUFFER: usize = super::direct::PENDING;

/// Writes a shard file under a temporary name and renames it into place
/// when finished, so a file being rewritten (a part uploaded again) keeps
/// its previous complete content until the new one is durable.
struct LocalShardWriter {
    /// `None` once finished.
    file: Option<DirectWriter>,
    tmp: PathBuf,
    dest: PathBuf,
    /// Directories whose entries must be fsynced when the file is finished,
    /// innermost first.
    sync_dirs: Vec<PathBuf>,
}

impl ShardWriter for LocalShardWriter {
    fn write_all(&mut self, buf: &[u8]) -> DriveResult<()> {
        let file = self.file.as_mut().ok_or(DriveError::Offline)?;
        file.write_all(buf).map_err(DriveError::from)
    }

    fn finish(mut self: Box<Self>) -> DriveResult<()> {
        let file = self.file.take().ok_or(DriveError::Offline)?;
        let durable = file
            .finish()
            .and_then(|f| f.sync_all())
            .and_then(|()| fs::rename(&self.tmp, &self.dest));
        if let Err(e) = durable {
            let _ = fs::remove_file(&self.tmp);
            return Err(e.into());
        }
        for d in &self.sync_dirs {
            sync_dir(d)?;
        }
        Ok(())
    }
}

impl Drive for LocalDrive {
    fn name(&self) -> &str {
        &self.name
    }

    fn read_format(&self) -> DriveResult<Option<format::DriveFormat>> {
        match fs::read(self.root.join(format::FORMAT_FILE)) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| DriveError::Index(format!("unreadable {}: {e}", format::FORMAT_FILE))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write_format(&self, f: &format::DriveFormat) -> DriveResult<()> {
        // One writer at a time: in a cluster, this node and the node
        // formatting a new cluster may both write it (the same content).
        let _one = self.format_lock.lock().unwrap_or_else(|e| e.into_inner());
        let tmp = self.root.join("format.json.tmp");
        let body = serde_json::to_vec_pretty(f).map_err(|e| DriveError::Index(e.to_string()))?;
        {
            let mut file = File::create(&tmp)?;
            file.write_all(&body)?;
            file.sync_all()?;
        }
        fs::rename(&tmp, self.root.join(format::FORMAT_FILE))?;
        sync_dir(&self.root)?;
        Ok(())
    }

    fn get(&self, table: Table, key: &[u8]) -> DriveResult<Option<Vec<u8>>> {
        let txn = self.db.begin_read().map_err(txn_err)?;
        let t = txn.open_table(def(table)).map_err(table_err)?;
        Ok(t.get(key).map_err(storage_err)?.map(|g| g.value().to_vec()))
    }

    fn scan(&self, table: Table, range: KeyRange) -> DriveResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::with_capacity(range.limit.min(1024));
        self.range(def(table), range, |k, v| out.push((k.to_vec(), v.to_vec())))?;
        Ok(out)
    }

    fn scan_summaries(&self, range: KeyRange) -> DriveResult<Packed> {
        let n = range.limit.min(1024);
        let mut out = Packed::with_capacity(n, n * super::SUMMARY_ENTRY_BYTES);
        self.range(SUMMARIES, range, |k, v| out.push(k, v))?;
        Ok(out)
    }

    fn commit(&self, ops: Vec<RecordOp>) -> CommitResult {
        let (tx, rx) = mpsc::sync_channel(1);
        self.commit_async(
            ops,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| DriveError::Offline)?
    }

    fn commit_async(&self, ops: Vec<RecordOp>, done: CommitDone) {
        match &self.commits {
            Some(c) => {
                if let Err(mpsc::SendError((_, done))) = c.send((ops, done)) {
                    done(Err(DriveError::Offline));
                }
            }
            None => done(Err(DriveError::Offline)),
        }
    }

    fn create_shard(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<Box<dyn ShardWriter>> {
        let d = self.dir_path(dir);
        let parent = d.parent().map(Path::to_path_buf).unwrap_or_default();
        let created_parent = ensure_dir(&parent)?;
        let created_dir = ensure_dir(&d)?;
        let mut sync_dirs = vec![d];
        if created_dir {
            sync_dirs.push(parent);
        }
        if created_parent {
            sync_dirs.push(self.root.join("data"));
        }
        let dest = self.part_path(dir, file);
        let tmp = self.dir_path(dir).join(format!(
            "{}.tmp-{}",
            file.name(),
            hex::encode(uuid::Uuid::new_v4().as_bytes())
        ));
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        Ok(Box::new(LocalShardWriter {
            file: Some(DirectWriter::new(file, Arc::clone(&self.stages))),
            tmp,
            dest,
            sync_dirs,
        }))
    }

    fn read_shard(&self, dir: &[u8; 16], file: ShardFile, offset: u64, len: usize) -> DriveResult<Vec<u8>> {
        let f = File::open(self.part_path(dir, file))?;
        let mut buf = crate::buffers::take(len);
        if let Err(e) = f.read_exact_at(&mut buf, offset) {
            crate::buffers::give(buf);
            return Err(e.into());
        }
        Ok(buf)
    }

    fn remove_part(&self, dir: &[u8; 16], file: ShardFile) -> DriveResult<()> {
        match fs::remove_file(self.part_path(dir, file)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_data_dir(&self, dir: &[u8; 16]) -> DriveResult<()> {
        match fs::remove_dir_all(self.dir_path(dir)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn link_data(&self, src: &[u8; 16], dst: &[u8; 16], files: &[ShardFile]) -> DriveResult<()> {
        let d = self.dir_path(dst);
        let parent = d.parent().map(Path::to_path_buf).unwrap_or_default();
        ensure_dir(&parent)?;
        fs::create_dir(&d)?;
        let linked = files
            .iter()
            .try_for_each(|f| fs::hard_link(self.part_path(src, *f), self.part_path(dst, *f)));
        if let Err(e) = linked {
            let _ = fs::remove_dir_all(&d);
            return Err(e.into());
        }
        Ok(())
    }

    fn sync_data(&self) -> DriveResult<()> {
        let root = File::open(&self.root)?;
        rustix::fs::syncfs(&root).map_err(io::Error::from)?;
        Ok(())
    }

    fn data_dirs(&self, prefix: u8) -> DriveResult<Vec<DataDir>> {
        let parent = self.root.join("data").join(hex::encode([prefix]));
        let entries = match fs::read_dir(&parent) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(e.into()),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let mut id = [0u8; 16];
            let name = entry.file_name();
            if hex::decode_to_slice(name.as_encoded_bytes(), &mut id).is_err() || id[0] != prefix {
                continue;
            }
            let mut dir = DataDir {
                id,
                modified: entry.metadata()?.modified()?,
                files: vec![],
            };
            let files = match fs::read_dir(entry.path()) {
                Ok(f) => f,
                // Removed meanwhile.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            for f in files {
                let f = f?;
                let modified = match f.metadata() {
                    Ok(m) => m.modified()?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e.into()),
                };
                dir.modified = dir.modified.max(modified);
                dir.files
                    .push((f.file_name().to_string_lossy().into_owned(), modified));
            }
            out.push(dir);
        }
        Ok(out)
    }

    fn remove_file(&self, dir: &[u8; 16], name: &str) -> DriveResult<()> {
        if !name.starts_with("part.") || name.contains('/') {
            return Err(DriveError::Index(format!("not a shard file: {name}")));
        }
        match fs::remove_file(self.dir_path(dir).join(name)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn space(&self) -> DriveResult<DriveSpace> {
        let s = rustix::fs::statvfs(&self.root).map_err(|e| DriveError::from(io::Error::from(e)))?;
        Ok(DriveSpace {
            total: s.f_blocks * s.f_frsize,
            free: s.f_bavail * s.f_frsize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record of one version whose size is `size`.
    fn record(size: u64) -> Vec<u8> {
        let e = crate::meta::ErasureInfo {
            data: 2,
            parity: 2,
            shard_index: 1,
            hash_algo: 1,
            block_size: 1 << 20,
        };
        let mut v = crate::meta::Version::without_data(
            crate::meta::VersionKind::Object,
            crate::meta::VersionId::NULL,
            7,
            e,
        );
        v.size = size;
        crate::meta::ObjectRecord { versions: vec![v] }.encode()
    }

    fn listed(d: &LocalDrive) -> Vec<(Vec<u8>, u64)> {
        d.scan_summaries(KeyRange::new(b"b\0", b"b\x01", 100))
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let size = crate::meta::ObjectRecord::decode(v).map_or(u64::MAX, |r| r.versions[0].size);
                (k.to_vec(), size)
            })
            .collect()
    }

    #[test]
    fn summaries_follow_every_commit_and_are_rebuilt_where_missing() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDrive::open(dir.path()).unwrap();
        let put = |k: &[u8], v: Vec<u8>| RecordOp::Put {
            table: Table::Objects,
            key: k.to_vec(),
            value: v,
        };
        d.commit(vec![put(b"b\0a", record(1)), put(b"b\0b", record(2))])
            .unwrap();
        d.commit(vec![put(b"b\0a", record(10)), put(b"b\0c", b"damaged".to_vec())])
            .unwrap();
        d.commit(vec![RecordOp::Delete {
            table: Table::Objects,
            key: b"b\0b".to_vec(),
        }])
        .unwrap();
        let want = vec![(b"b\0a".to_vec(), 10), (b"b\0c".to_vec(), u64::MAX)];
        assert_eq!(listed(&d), want);
        // A drive whose summaries a build without them left behind: the
        // marker gone, or a record changed behind them.
        let txn = d.db.begin_write().unwrap();
        txn.open_table(SUMMARIES)
            .unwrap()
            .remove(b"b\0a".as_slice())
            .unwrap();
        txn.open_table(OBJECTS)
            .unwrap()
            .insert(b"b\0d".as_slice(), record(4).as_slice())
            .unwrap();
        txn.commit().unwrap();
        drop(d);
        let d = LocalDrive::open(dir.path()).unwrap();
        let mut want = want;
        want.push((b"b\0d".to_vec(), 4));
        assert_eq!(listed(&d), want);
        // Summaries of an older form (the marker without this form): made
        // again, though the counts agree.
        let txn = d.db.begin_write().unwrap();
        let mut t = txn.open_table(SUMMARIES).unwrap();
        t.insert(SUMMARIES_COMPLETE, [].as_slice()).unwrap();
        let stale = super::super::summary_of(&record(99));
        t.insert(b"b\0a".as_slice(), stale.as_slice()).unwrap();
        drop(t);
        txn.commit().unwrap();
        drop(d);
        let d = LocalDrive::open(dir.path()).unwrap();
        assert_eq!(listed(&d), want);
    }

    #[test]
    fn commits_are_visible_and_return_previous_values() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDrive::open(dir.path()).unwrap();
        let put = |v: &[u8]| RecordOp::Put {
            table: Table::Objects,
            key: b"b\0k".to_vec(),
            value: v.to_vec(),
        };
        assert_eq!(d.commit(vec![put(b"one")]).unwrap(), vec![None]);
        assert_eq!(d.commit(vec![put(b"two")]).unwrap(), vec![Some(b"one".to_vec())]);
        assert_eq!(d.get(Table::Objects, b"b\0k").unwrap(), Some(b"two".to_vec()));
        drop(d);
        let d = LocalDrive::open(dir.path()).unwrap();
        assert_eq!(d.get(Table::Objects, b"b\0k").unwrap(), Some(b"two".to_vec()));
    }

    #[test]
    fn concurrent_commits_all_land() {
        let dir = tempfile::tempdir().unwrap();
        let d = Arc::new(LocalDrive::open(dir.path()).unwrap());
        let hs: Vec<_> = (0..16)
            .map(|i| {
                let d = Arc::clone(&d);
                std::thread::spawn(move || {
                    for j in 0..20 {
                        let key = format!("k{i:02}-{j:02}").into_bytes();
                        d.commit(vec![RecordOp::Put {
                            table: Table::Objects,
                            key,
                            value: vec![1],
                        }])
                        .unwrap();
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        let all = d
            .scan(Table::Objects, KeyRange::new(b"", b"\xff", usize::MAX))
            .unwrap();
        assert_eq!(all.len(), 320);
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn a_rewritten_shard_keeps_its_old_content_until_finished() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDrive::open(dir.path()).unwrap();
        let id = [0x11; 16];
        let mut w = d.create_shard(&id, ShardFile::new(3, 0)).unwrap();
        w.write_all(b"first").unwrap();
        w.finish().unwrap();
        // A second write of the same part, abandoned halfway.
        let mut w = d.create_shard(&id, ShardFile::new(3, 0)).unwrap();
        w.write_all(b"sec").unwrap();
        assert_eq!(d.read_shard(&id, ShardFile::new(3, 0), 0, 5).unwrap(), b"first");
        drop(w);
        assert_eq!(d.read_shard(&id, ShardFile::new(3, 0), 0, 5).unwrap(), b"first");
        let files = std::fs::read_dir(d.dir_path(&id)).unwrap().count();
        assert_eq!(files, 1, "the abandoned temporary file is gone");
        // A finished rewrite replaces it whole.
        let mut w = d.create_shard(&id, ShardFile::new(3, 0)).unwrap();
        w.write_all(b"second").unwrap();
        w.finish().unwrap();
        assert_eq!(d.read_shard(&id, ShardFile::new(3, 0), 0, 6).unwrap(), b"second");
    }

    #[test]
    fn shard_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let d = LocalDrive::open(dir.path()).unwrap();
        let id = [0xab; 16];
        let mut w = d.create_shard(&id, ShardFile::new(1, 7)).unwrap();
        w.write_all(b"hello world").unwrap();
        w.finish().unwrap();
        assert_eq!(d.read_shard(&id, ShardFile::new(1, 7), 6, 5).unwrap(), b"world");
        d.remove_data_dir(&id).unwrap();
        assert!(matches!(
            d.read_shard(&id, ShardFile::new(1, 7), 0, 1),
            Err(DriveError::NotFound)
        ));
    }
}
