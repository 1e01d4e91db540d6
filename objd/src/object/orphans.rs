//! The orphan sweep: what writes that never committed leave on the drives,
//! found and removed. A crash (or a failed commit that could not be rolled
//! back) can leave data directories no record names, temporary shard files,
//! files of part uploads that were replaced, part records of uploads that
//! are gone, upload records that never reached
//! quorum, and the records of uploads that completed just before a crash.
//! Committed data is never touched: a data directory goes only when no
//! record on its drive names it (object entry or upload), and nothing
//! changed in it after the cutoff, so a write still in progress keeps its
//! files.
//!
//! It runs after each scanner walk with a cutoff an hour back, and once at
//! start-up with the start time as cutoff (no write of this process can be
//! older). Finding what records name costs a scan of every drive's index,
//! holding 16 bytes per data directory in memory.

use super::{ErasureSet, ObjectLayer, blocking};
use crate::drive::{Drive, DriveResult, KeyRange, RecordOp, ShardFile, Table};
use crate::meta::{ObjectRecord, PartRecord, UploadRecord};
use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

/// What a sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// Data directories no record named.
    pub dirs: usize,
    /// Temporary shard files of writes that never finished, and shard
    /// files of part uploads that were replaced.
    pub files: usize,
    /// Part records of uploads that are gone.
    pub parts: usize,
    /// Uploads settled: completed ones' leftover records, and uploads that
    /// never reached quorum.
    pub uploads: usize,
}

impl std::ops::AddAssign for SweepReport {
    fn add_assign(&mut self, o: Self) {
        self.dirs += o.dirs;
        self.files += o.files;
        self.parts += o.parts;
        self.uploads += o.uploads;
    }
}

/// Rows of a table read in pages, so no scan holds the whole table.
fn scan_all(d: &dyn Drive, table: Table, mut each: impl FnMut(&[u8], &[u8])) -> DriveResult<()> {
    let mut start: Vec<u8> = Vec::new();
    let mut exclusive = false;
    loop {
        let rows = d.scan(
            table,
            KeyRange::new(&start, &[0xff; 1100], 1000).exclusive(exclusive),
        )?;
        for (k, v) in &rows {
            each(k, v);
        }
        match rows.last() {
            Some((k, _)) if rows.len() == 1000 => {
                start = k.clone();
                exclusive = true;
            }
            _ => return Ok(()),
        }
    }
}

/// `(bucket, key, upload id)` of an uploads-table row.
fn upload_of(k: &[u8], v: &[u8]) -> Option<(String, String, [u8; 16])> {
    let rec = UploadRecord::decode(v).ok()?;
    let b = k.iter().position(|c| *c == 0)?;
    let e = k.iter().rposition(|c| *c == 0)?;
    (e > b).then(|| {
        (
            String::from_utf8_lossy(&k[..b]).into_owned(),
            String::from_utf8_lossy(&k[b + 1..e]).into_owned(),
            rec.upload_id,
        )
    })
}

/// One drive's part of a sweep, after uploads were settled; directories
/// in `leased` are being read (their removal waits for the readers).
fn sweep_drive(d: &dyn Drive, cutoff: SystemTime, leased: HashSet<[u8; 16]>) -> DriveResult<SweepReport> {
    let mut report = SweepReport::default();
    let mut named: HashSet<[u8; 16]> = leased;
    let mut named_files: HashSet<([u8; 16], ShardFile)> = HashSet::new();
    scan_all(d, Table::Objects, |_, v| {
        if let Ok(rec) = ObjectRecord::decode(v) {
            for v in &rec.versions {
                if let Some(dir) = v.dir() {
                    named.insert(dir);
                    named_files.extend(v.parts.iter().map(|p| (dir, p.file())));
                }
            }
        }
    })?;
    let mut uploads: HashSet<[u8; 16]> = HashSet::new();
    scan_all(d, Table::Uploads, |k, v| {
        if let Some((_, _, id)) = upload_of(k, v) {
            uploads.insert(id);
        }
    })?;
    named.extend(uploads.iter().copied());
    let mut stale_parts: Vec<RecordOp> = Vec::new();
    scan_all(d, Table::Parts, |k, v| {
        let mut id = [0u8; 16];
        if k.len() >= 16 {
            id.copy_from_slice(&k[..16]);
        }
        if let Ok(p) = PartRecord::decode(v) {
            named_files.insert((id, ShardFile::new(p.number, p.tag)));
        }
        if !uploads.contains(&id) {
            stale_parts.push(RecordOp::Delete {
                table: Table::Parts,
                key: k.to_vec(),
            });
        }
    })?;
    report.parts = stale_parts.len();
    for batch in stale_parts.chunks(1000) {
        d.commit(batch.to_vec())?;
    }
    for prefix in 0..=255u8 {
        for dir in d.data_dirs(prefix)? {
            if !named.contains(&dir.id) {
                if dir.modified < cutoff {
                    d.remove_data_dir(&dir.id)?;
                    report.dirs += 1;
                }
                continue;
            }
            for (name, modified) in &dir.files {
                let stale = if name.contains(".tmp-") {
                    true
                } else {
                    ShardFile::parse(name).is_some_and(|f| !named_files.contains(&(dir.id, f)))
                };
                if stale && *modified < cutoff {
                    d.remove_file(&dir.id, name)?;
                    report.files += 1;
                }
            }
        }
    }
    Ok(report)
}

impl ErasureSet {
    /// Settles one upload: a completed upload's records go (its data is
    /// the object's now, or the sweep's once no version names it); an
    /// upload that too few drives hold to ever be used goes with its data.
    /// Returns whether it did either.
    async fn tidy_upload(&self, bucket: &str, key: &str, id: [u8; 16]) -> bool {
        let _guard = self.locks.lock(bucket, key).await;
        let k = super::multipart::upload_key(bucket, key, &id);
        let held = self
            .on_drives_seq(move |_, d| {
                d.get(Table::Uploads, &k)
                    .map(|r| r.map(|b| UploadRecord::decode(&b).is_ok_and(|u| u.completed)))
            })
            .await;
        let completed = held.iter().filter(|h| matches!(h, Ok(Some(true)))).count();
        let all = held.iter().filter(|h| matches!(h, Ok(Some(_)))).count();
        let unknown = held.iter().filter(|h| h.is_err()).count();
        let q = self.read_quorum();
        // Completed, or can never be used again: its records go. Its data
        // goes only where no version names it.
        if completed >= q {
            return self.mark_completed(bucket, key, id).await
                && self.forget_upload(bucket, key, id, true, None).await.is_ok();
        }
        if all > 0 && all + unknown < q {
            return self.forget_upload(bucket, key, id, true, None).await.is_ok();
        }
        false
    }

    async fn sweep(&self, cutoff: SystemTime) -> SweepReport {
        let mut report = SweepReport::default();
        let lists = self
            .on_drives(|_, d| {
                let mut found = BTreeSet::new();
                scan_all(d, Table::Uploads, |k, v| {
                    found.extend(upload_of(k, v));
                })?;
                Ok(found)
            })
            .await;
        let uploads: BTreeSet<(String, String, [u8; 16])> = lists.into_iter().flatten().flatten().collect();
        for (bucket, key, id) in uploads {
            if self.tidy_upload(&bucket, &key, id).await {
                report.uploads += 1;
            }
        }
        for d in self.online_drives() {
            let name = d.name().to_owned();
            let leased = self.leases.held();
            match blocking(move || sweep_drive(d.as_ref(), cutoff, leased)).await {
                Ok(Ok(r)) => report += r,
                Ok(Err(e)) => tracing::warn!(drive = %name, error = %e, "orphan sweep failed"),
                Err(e) => tracing::warn!(drive = %name, error = %e, "orphan sweep failed"),
            }
        }
        report
    }
}

impl ObjectLayer {
    /// Removes what writes that never committed left behind, if nothing
    /// changed in it since `cutoff`.
    pub async fn sweep_orphans(&self, cutoff: SystemTime) -> SweepReport {
        let mut report = SweepReport::default();
        for set in self.sets() {
            report += Arc::clone(set).sweep(cutoff).await;
        }
        if report != SweepReport::default() {
            tracing::info!(
                dirs = report.dirs,
                files = report.files,
                parts = report.parts,
                uploads = report.uploads,
                "orphans removed"
            );
        }
        report
    }
}
