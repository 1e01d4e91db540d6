//! Resolution of a key: what each drive's record holds, turned into one
//! answer by quorum, and which entries are settled garbage that a drive may
//! drop. Pure functions over the records read; no I/O.
//!
//! A record holds entries; an entry is a version (object or delete marker)
//! or a tombstone of one, identified by version id and write stamp. A change
//! never rewrites what a drive holds in place: it adds a newer entry (a new
//! version, the `null` version written again, a metadata change of a
//! version, a tombstone), and the entries it supersedes stay until the new
//! one is on write quorum. Then:
//!
//! - the **winner** of a version id is its newest entry that read quorum
//!   drives hold; newer entries without quorum are changes that never
//!   committed, and are ignored;
//! - a version exists when its id's winner is not a tombstone; the key's
//!   latest version is the existing one with the newest modification time.
//!
//! So a change that reached some drives but not quorum leaves the previous
//! state readable (its entries are still there), and a change on quorum
//! hides what it replaced on every drive, whatever the others hold.
//!
//! An entry may be dropped from a drive (compaction) when it can never
//! matter again: it is older than its id's winner and the winner is on
//! write quorum; or it lacks quorum on so many drives that it can never
//! reach it; or it is a tombstone whose older entries can no longer reach
//! read quorum anywhere. Each of these only lowers counts of entries that
//! can no longer win, so a crash between the drives' commits of a
//! compaction never changes the answer.

use super::set::{Records, Resolved};
use super::{ObjectError, ObjectResult};
use crate::meta::{ObjectRecord, Version, VersionId};

/// One distinct entry and the drives holding a copy of it.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// A copy, for everything but the per-drive shard index and inline data.
    pub version: Version,
    /// `copies[drive position]`: that drive's copy.
    pub copies: Vec<Option<Version>>,
    pub count: usize,
}

impl Entry {
    fn resolved(&self) -> Resolved {
        Resolved {
            version: self.version.clone(),
            copies: self.copies.clone(),
        }
    }
}

/// A key as the drives of its set hold it.
#[derive(Debug)]
pub(super) struct KeyView {
    /// Every distinct entry, newest stamp first.
    pub entries: Vec<Entry>,
    /// Per version id: the index of its winner in `entries`, if it has one.
    winners: Vec<(VersionId, Option<usize>)>,
    /// Drives that answered (their record, or that they have none).
    pub answered: Vec<bool>,
    read_quorum: usize,
    write_quorum: usize,
}

impl KeyView {
    pub fn new(records: &Records, read_quorum: usize, write_quorum: usize) -> Self {
        let n = records.len();
        let answered: Vec<bool> = records.iter().map(Result::is_ok).collect();
        let mut entries: Vec<Entry> = Vec::new();
        for (pos, rec) in records.iter().enumerate() {
            let Ok(Some(rec)) = rec else { continue };
            for v in &rec.versions {
                match entries.iter_mut().find(|e| e.version.same_version(v)) {
                    Some(e) => {
                        if e.copies[pos].is_none() {
                            e.copies[pos] = Some(v.clone());
                            e.count += 1;
                        }
                    }
                    None => {
                        let mut copies = vec![None; n];
                        copies[pos] = Some(v.clone());
                        entries.push(Entry {
                            version: v.clone(),
                            copies,
                            count: 1,
                        });
                    }
                }
            }
        }
        entries.sort_by_key(|e| std::cmp::Reverse(e.version.stamp));
        let mut winners: Vec<(VersionId, Option<usize>)> = Vec::new();
        for (i, e) in entries.iter().enumerate() {
            let slot = match winners.iter_mut().find(|(id, _)| *id == e.version.id) {
                Some(s) => s,
                None => {
                    winners.push((e.version.id, None));
                    winners.last_mut().expect("just pushed")
                }
            };
            if slot.1.is_none() && e.count >= read_quorum {
                slot.1 = Some(i);
            }
        }
        Self {
            entries,
            winners,
            answered,
            read_quorum,
            write_quorum,
        }
    }

    /// The view of a key that every drive of its set answered with the
    /// same entries, made from one copy. Each entry then has the same count
    /// (all drives), at least both quorums, and no drive is unknown; one
    /// copy judged with quorums of one gives the same winners, versions,
    /// answers and garbage, at a fraction of the work.
    pub fn unanimous(record: ObjectRecord) -> Self {
        Self::new(&vec![Ok(Some(record))], 1, 1)
    }

    /// The one version of a key whose drives all hold `record` alike with
    /// a single entry that is a version (not a tombstone): with every copy
    /// agreeing it wins by any quorum, is the latest, and nothing is
    /// garbage, so no view is needed. Other records come back unchanged.
    pub fn sole_version(mut record: ObjectRecord) -> Result<Version, ObjectRecord> {
        match record.versions.as_slice() {
            [v] if !v.is_tombstone() => Ok(record.versions.remove(0)),
            _ => Err(record),
        }
    }

    fn unknown(&self) -> usize {
        self.answered.iter().filter(|a| !**a).count()
    }

    fn winner(&self, id: VersionId) -> Option<&Entry> {
        self.winners
            .iter()
            .find(|(i, _)| *i == id)
            .and_then(|(_, w)| w.map(|w| &self.entries[w]))
    }

    /// True when some entry (of `id`, or of any id) lacks read quorum but
    /// could have it on the drives that did not answer, so that the answer
    /// is not known.
    fn undecided(&self, id: Option<VersionId>) -> bool {
        let unknown = self.unknown();
        if unknown >= self.read_quorum {
            return true;
        }
        self.entries
            .iter()
            .filter(|e| id.is_none_or(|id| e.version.id == id))
            .filter(|e| {
                // Entries older than their id's winner cannot change the answer.
                self.winner(e.version.id)
                    .is_none_or(|w| w.version.stamp < e.version.stamp)
            })
            .any(|e| e.count < self.read_quorum && e.count + unknown >= self.read_quorum)
    }

    /// The versions that exist, newest modification first.
    pub fn live(&self) -> Vec<&Entry> {
        let mut out: Vec<&Entry> = self
            .winners
            .iter()
            .filter_map(|(_, w)| w.map(|w| &self.entries[w]))
            .filter(|e| !e.version.is_tombstone())
            .collect();
        out.sort_by(|a, b| {
            (b.version.mod_time_ns, b.version.stamp).cmp(&(a.version.mod_time_ns, a.version.stamp))
        });
        out
    }

    /// The latest version (`want: None`) or the version `want` names.
    pub fn resolve(&self, want: Option<VersionId>) -> ObjectResult<Resolved> {
        let found = match want {
            None => self.live().first().map(|e| e.resolved()),
            Some(id) => self
                .winner(id)
                .filter(|e| !e.version.is_tombstone())
                .map(Entry::resolved),
        };
        match found {
            Some(r) => Ok(r),
            None if self.undecided(want) => Err(ObjectError::ReadQuorum),
            None if want.is_some() => Err(ObjectError::NoSuchVersion),
            None => Err(ObjectError::NoSuchKey),
        }
    }

    /// The winner entries, tombstones included (what heal restores).
    pub fn winners(&self) -> Vec<&Entry> {
        self.winners
            .iter()
            .filter_map(|(_, w)| w.map(|w| &self.entries[w]))
            .collect()
    }

    /// The newest stamp or modification time of any entry (new entries
    /// must be later).
    pub fn max_time(&self) -> Option<i64> {
        self.entries
            .iter()
            .map(|e| e.version.stamp.max(e.version.mod_time_ns))
            .max()
    }

    /// Whether entry `i` is settled garbage that drives may drop.
    fn droppable(&self, i: usize) -> bool {
        let e = &self.entries[i];
        let unknown = self.unknown();
        let winner = self
            .winners
            .iter()
            .find(|(id, _)| *id == e.version.id)
            .and_then(|(_, w)| *w);
        match winner {
            // Superseded by a winner on write quorum.
            Some(w) if w != i && self.entries[w].version.stamp > e.version.stamp => {
                self.entries[w].count >= self.write_quorum
            }
            // A tombstone on write quorum whose older entries can no longer
            // reach read quorum anywhere: it has done its work.
            Some(w) if w == i && e.version.is_tombstone() => {
                e.count >= self.write_quorum
                    && self.entries.iter().all(|o| {
                        o.version.id != e.version.id
                            || o.version.stamp >= e.version.stamp
                            || o.count + unknown < self.read_quorum
                    })
            }
            Some(w) if w == i => false,
            // Newer than the winner, or no winner: a change that did not
            // commit; dropped once it can never reach read quorum.
            _ => e.count + unknown < self.read_quorum,
        }
    }

    /// Per drive position, the entries that drive holds and may drop.
    pub fn drops(&self) -> Vec<Vec<Version>> {
        let mut out = vec![Vec::new(); self.answered.len()];
        for (i, e) in self.entries.iter().enumerate() {
            if self.droppable(i) {
                for (pos, c) in e.copies.iter().enumerate() {
                    if let Some(c) = c {
                        out[pos].push(c.clone());
                    }
                }
            }
        }
        out
    }

    /// Whether any drive holds an entry that compaction would drop.
    pub fn has_garbage(&self) -> bool {
        (0..self.entries.len()).any(|i| self.droppable(i))
    }
}

#[cfg(test)]
mod tests;
