//! Listing: keys in order under a prefix, folded at a delimiter, in pages.
//! Each drive's index is an ordered table, so a page is a range scan from
//! the marker on each drive of each set, merged; the cost follows the page
//! size, not the bucket size. A common prefix is skipped with one seek past
//! it rather than by reading the keys below it.

use super::resolve::KeyView;
use super::set::Records;
use super::{ErasureSet, ObjectError, ObjectLayer, ObjectResult};
use crate::drive::{DriveError, DriveResult, KeyRange, Packed, Table, object_key, prefix_end};
use crate::meta::{ObjectRecord, Version, VersionId};
use std::sync::Arc;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub prefix: String,
    pub delimiter: Option<String>,
    /// List keys strictly after this one (start-after, marker, or the
    /// continuation token's key).
    pub start_after: String,
    pub max_keys: usize,
    /// List every version (delete markers included), newest first within
    /// a key, instead of the latest version of keys that have one.
    pub versions: bool,
    /// With `versions`: resume after this version of the `start_after` key.
    pub version_marker: Option<VersionId>,
}

#[derive(Debug, Clone)]
pub struct ListedObject {
    pub key: String,
    /// The version as listings know it ([`crate::meta::summary`]): id,
    /// times, kind, size, ETag and user metadata (none for data sealed
    /// with a customer's key), without headers, parts or tags.
    pub version: Version,
    /// True for the key's current version.
    pub is_latest: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ListPage {
    pub objects: Vec<ListedObject>,
    pub prefixes: Vec<String>,
    pub truncated: bool,
    /// The last key or prefix returned, to resume after when truncated.
    pub next_marker: Option<String>,
    /// With `versions`: the last version returned, when truncated.
    pub next_version_marker: Option<VersionId>,
}

/// Most keys read per drive per scan round.
const SCAN_BATCH: usize = 1000;
/// First scan size of a delimiter listing, and after each seek past a prefix.
const MIN_SCAN_BATCH: usize = 32;

/// One set's view of a key range: resolved entries, and the key up to which
/// the view is complete when some drive had more (`None`: range exhausted).
struct SetScan {
    entries: Vec<(Vec<u8>, Vec<Version>)>,
    bound: Option<Vec<u8>>,
}

/// What each page of a merge holds of one key (its summary, or nothing).
type Held<'a> = Vec<Option<&'a [u8]>>;

/// Each drive's page of one scan merged in key order: a cursor per page,
/// each page walked once. Keys past `bound` are left out.
struct Merge<'a> {
    pages: &'a [DriveResult<Packed>],
    at: Vec<usize>,
    bound: Option<Vec<u8>>,
}

impl<'a> Merge<'a> {
    /// The merge of `pages`, each read with `limit`: complete up to the
    /// smallest last key of the pages that were full.
    fn new(pages: &'a [DriveResult<Packed>], limit: usize) -> Self {
        let bound = pages
            .iter()
            .filter_map(|p| p.as_ref().ok())
            .filter(|p| p.len() >= limit)
            .filter_map(|p| p.last_key())
            .min()
            .map(<[u8]>::to_vec);
        Self {
            pages,
            at: vec![0; pages.len()],
            bound,
        }
    }

    /// The next key, with what each page holds of it in `held`.
    fn next(&mut self, held: &mut Held<'a>) -> Option<Vec<u8>> {
        let pages = self.pages;
        let head = |pos: usize, at: usize| pages[pos].as_ref().ok().and_then(|p| p.get(at));
        let key = (0..pages.len())
            .filter_map(|pos| head(pos, self.at[pos]).map(|(k, _)| k))
            .min()?;
        if self.bound.as_deref().is_some_and(|b| key > b) {
            return None;
        }
        held.clear();
        for (pos, at) in self.at.iter_mut().enumerate() {
            let here = head(pos, *at).filter(|(k, _)| *k == key).map(|(_, v)| v);
            *at += usize::from(here.is_some());
            held.push(here);
        }
        Some(key.to_vec())
    }
}

/// The summary every one of `held` has, byte for byte, if they agree.
fn agreed<'a>(held: &[Option<&'a [u8]>]) -> Option<&'a [u8]> {
    let first = (*held.first()?)?;
    held.iter().all(|h| *h == Some(first)).then_some(first)
}

impl ErasureSet {
    /// Drives enough to list from when they all agree: so many that every
    /// entry held by read quorum drives (every entry that can win) has a
    /// copy among them (more than `n - read quorum`), and that an entry
    /// they all hold has read quorum. A key they hold alike then resolves
    /// as it would from every drive: the entries they hold are exactly the
    /// ones with quorum. Other nodes' drives come last, and where the
    /// choice starts rotates with `start`, so listings spread over drives.
    fn listing_drives(&self, start: &[u8]) -> Option<Vec<usize>> {
        let n = self.drives.len();
        let want = self.read_quorum().max(n - self.read_quorum() + 1);
        if want >= n {
            return None;
        }
        let turn = xxhash_rust::xxh3::xxh3_64(start) as usize % n;
        let mut ready: Vec<(bool, usize)> = (0..n)
            .map(|i| (i + turn) % n)
            .filter_map(|pos| {
                let d = self.drives[pos].as_ref()?;
                d.is_online().then(|| (d.is_remote(), pos))
            })
            .collect();
        ready.sort_by_key(|(remote, _)| *remote);
        (ready.len() >= want).then(|| ready.into_iter().take(want).map(|(_, pos)| pos).collect())
    }

    async fn scan_keys(
        &self,
        start: Vec<u8>,
        exclusive: bool,
        end: Vec<u8>,
        limit: usize,
        versions: bool,
    ) -> ObjectResult<SetScan> {
        let scan = {
            let (start, end) = (start.clone(), end.clone());
            move |_, d: &dyn crate::drive::Drive| {
                d.scan_summaries(KeyRange::new(&start, &end, limit).exclusive(exclusive))
            }
        };
        // Most of the time a few drives agreeing on every key decide the
        // batch; anything else reads every drive.
        if let Some(few) = self.listing_drives(&start) {
            let pages = self.on_drives_in(&few, scan.clone()).await;
            if let Some(decided) = self.merged(&pages, limit, versions, true) {
                return Ok(decided);
            }
        }
        let pages = self.on_drives(scan).await;
        let failed = pages.iter().filter(|p| p.is_err()).count();
        if self.drives.len() - failed < self.read_quorum() {
            return Err(ObjectError::ReadQuorum);
        }
        // Resolving every key by quorum, the merge always ends.
        self.merged(&pages, limit, versions, false)
            .ok_or(ObjectError::ReadQuorum)
    }

    /// The keys of `pages` (each read with `limit`) merged and resolved. A
    /// key every page holds alike (no page failed) is decided from one copy;
    /// any other is resolved from all the pages by quorum, or, with
    /// `only_agreed` (too few drives were read to resolve it), ends the
    /// merge with `None`.
    fn merged(
        &self,
        pages: &[DriveResult<Packed>],
        limit: usize,
        versions: bool,
        only_agreed: bool,
    ) -> Option<SetScan> {
        let all_answered = pages.iter().all(Result::is_ok);
        if only_agreed && !all_answered {
            return None;
        }
        let mut merge = Merge::new(pages, limit);
        let (mut entries, mut held) = (Vec::new(), Vec::new());
        while let Some(key) = merge.next(&mut held) {
            let one = agreed(&held)
                .filter(|_| all_answered)
                .and_then(|s| ObjectRecord::decode(s).ok());
            let v = match one {
                Some(r) => self.listed_agreed(&key, r, versions),
                None if only_agreed => return None,
                None => self.listed(&key, &self.view(&records(pages, &held)), versions),
            };
            entries.push((key, v));
        }
        Some(SetScan {
            entries,
            bound: merge.bound,
        })
    }

    /// [`ErasureSet::listed`] for a key whose drives hold `record` alike.
    fn listed_agreed(&self, key: &[u8], record: ObjectRecord, versions: bool) -> Vec<Version> {
        match KeyView::sole_version(record) {
            Ok(v) if versions || !v.is_delete_marker() => vec![v],
            Ok(_) => vec![],
            Err(record) => self.listed(key, &KeyView::unanimous(record), versions),
        }
    }

    /// What a listing shows of a key: its latest version, or every version
    /// with `versions` (none: skip the key). Queues the key for compaction
    /// when its drives hold settled garbage.
    fn listed(&self, key: &[u8], view: &KeyView, versions: bool) -> Vec<Version> {
        if view.has_garbage() {
            let (b, k) = split_key(key);
            self.compact.queue(&b, &k);
        }
        if versions {
            let mut all: Vec<Version> = view.live().into_iter().map(|e| e.version.clone()).collect();
            // A key whose drives disagree below quorum is still shown (so a
            // bucket holding it is not empty), as one drive has it.
            if all.is_empty() && matches!(view.resolve(None), Err(ObjectError::ReadQuorum)) {
                all.extend(
                    view.entries
                        .iter()
                        .find(|e| !e.version.is_tombstone())
                        .map(|e| e.version.clone()),
                );
            }
            all
        } else {
            match view.resolve(None) {
                Ok(r) if !r.version.is_delete_marker() => vec![r.version],
                _ => vec![],
            }
        }
    }
}

/// What each drive holds of one key, decoded, from its summary (`held`)
/// or its failed scan.
fn records(pages: &[DriveResult<Packed>], held: &[Option<&[u8]>]) -> Records {
    pages
        .iter()
        .zip(held)
        .map(|(page, h)| match (page, h) {
            (Err(_), _) => Err(DriveError::Offline),
            (Ok(_), None) => Ok(None),
            (Ok(_), Some(v)) => ObjectRecord::decode(v)
                .map(Some)
                .map_err(|e| DriveError::Corrupt(e.to_string())),
        })
        .collect()
}

impl ObjectLayer {
    /// One merged, resolved batch of keys after `start` across all sets.
    /// Returns the entries (a `None` version is a key to skip) and whether
    /// the range has more keys after them.
    async fn scan_batch(
        &self,
        bucket: &str,
        start: Vec<u8>,
        exclusive: bool,
        end: Vec<u8>,
        versions: bool,
        limit: usize,
    ) -> ObjectResult<(Vec<(Vec<u8>, Vec<Version>)>, bool)> {
        let scans =
            futures::future::join_all(self.sets.iter().map(|s: &Arc<ErasureSet>| {
                s.scan_keys(start.clone(), exclusive, end.clone(), limit, versions)
            }))
            .await;
        let mut bound: Option<Vec<u8>> = None;
        let mut all = Vec::new();
        for s in scans {
            let s = s?;
            if let Some(b) = s.bound {
                bound = Some(match bound {
                    Some(x) if x < b => x,
                    _ => b,
                });
            }
            all.extend(s.entries);
        }
        if let Some(b) = &bound {
            all.retain(|(k, _)| k <= b);
        }
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let skip = bucket.len() + 1;
        let entries = all.into_iter().map(|(k, v)| (k[skip..].to_vec(), v)).collect();
        Ok((entries, bound.is_some()))
    }

    pub async fn list_objects(&self, bucket: &str, opts: ListOptions) -> ObjectResult<ListPage> {
        self.bucket(bucket)?;
        let max = opts.max_keys.min(1000);
        let mut page = ListPage::default();
        if max == 0 {
            return Ok(page);
        }
        let prefix = opts.prefix.as_bytes();
        let delim = opts
            .delimiter
            .as_deref()
            .filter(|d| !d.is_empty())
            .map(str::as_bytes);
        let range_end = match prefix_end(prefix) {
            Some(e) => object_key(bucket, "").into_iter().chain(e).collect::<Vec<u8>>(),
            None => {
                let mut e = bucket.as_bytes().to_vec();
                e.push(1);
                e
            }
        };
        // Where to start: after the marker, or at the prefix. A marker that
        // is a common prefix resumes after everything below it.
        let mut start: Vec<u8>;
        let mut exclusive;
        let marker = opts.start_after.as_bytes();
        let version_marker = opts
            .version_marker
            .filter(|_| opts.versions && !marker.is_empty());
        if version_marker.is_some() && marker >= prefix {
            // Resume inside the marker's key, after the marker's version.
            start = object_key(bucket, &opts.start_after);
            exclusive = false;
        } else if !marker.is_empty() && marker >= prefix {
            let folded = delim.and_then(|d| common_prefix(marker, prefix, d));
            match folded.and_then(prefix_end) {
                Some(after) => {
                    start = object_key(bucket, "");
                    start.extend_from_slice(&after);
                    exclusive = false;
                }
                None => {
                    start = object_key(bucket, &opts.start_after);
                    exclusive = true;
                }
            }
        } else {
            start = object_key(bucket, &opts.prefix);
            exclusive = false;
        }
        let mut count = 0usize;
        // Whether the last entry of the page is a common prefix.
        let mut last_prefix = false;
        // With a delimiter most keys of a batch may fold into one prefix:
        // scan small batches then, and grow them while no seek happens.
        let mut limit = if delim.is_some() {
            MIN_SCAN_BATCH
        } else {
            SCAN_BATCH
        };
        'outer: loop {
            let (entries, more) = self
                .scan_batch(
                    bucket,
                    start.clone(),
                    exclusive,
                    range_end.clone(),
                    opts.versions,
                    limit,
                )
                .await?;
            // Where the next batch starts when this one ends unfolded.
            let last_seen = entries.last().map(|(k, _)| k.clone());
            // The common prefix just returned: its keys are skipped.
            let mut folding: Option<Vec<u8>> = None;
            for (key, versions) in entries {
                if folding.as_ref().is_some_and(|cp| key.starts_with(cp)) {
                    continue;
                }
                folding = None;
                if versions.is_empty() {
                    continue;
                }
                if let Some(cp) = delim.and_then(|d| common_prefix(&key, prefix, d)) {
                    if count == max {
                        page.truncated = true;
                        break 'outer;
                    }
                    count += 1;
                    page.prefixes.push(String::from_utf8_lossy(cp).into_owned());
                    last_prefix = true;
                    folding = Some(cp.to_vec());
                    continue;
                }
                // Versions of the marker's key up to the marker were listed.
                let skip = match version_marker {
                    Some(vm) if key == marker => versions
                        .iter()
                        .position(|v| v.id == vm)
                        .map_or(versions.len(), |i| i + 1),
                    _ => 0,
                };
                let key = String::from_utf8_lossy(&key).into_owned();
                for (i, v) in versions.into_iter().enumerate().skip(skip) {
                    if count == max {
                        page.truncated = true;
                        break 'outer;
                    }
                    count += 1;
                    last_prefix = false;
                    page.objects.push(ListedObject {
                        key: key.clone(),
                        version: v,
                        is_latest: i == 0,
                    });
                }
            }
            if !more {
                break;
            }
            start = object_key(bucket, "");
            match (folding, last_seen) {
                // The batch ended inside a folded prefix: seek past it.
                (Some(cp), _) => match prefix_end(&cp) {
                    Some(after) => {
                        start.extend_from_slice(&after);
                        exclusive = false;
                        limit = MIN_SCAN_BATCH;
                    }
                    None => break,
                },
                (None, Some(k)) => {
                    start.extend_from_slice(&k);
                    exclusive = true;
                    limit = (limit * 2).min(SCAN_BATCH);
                }
                (None, None) => break,
            }
        }
        // A truncated page resumes after its last entry.
        if page.truncated {
            if last_prefix {
                page.next_marker = page.prefixes.last().cloned();
            } else if let Some(o) = page.objects.last() {
                page.next_marker = Some(o.key.clone());
                page.next_version_marker = opts.versions.then_some(o.version.id);
            }
        }
        Ok(page)
    }

    /// Every key in a bucket that any drive knows, in order, including keys
    /// whose versions lack quorum (for heal).
    pub async fn raw_keys(&self, bucket: &str, after: &str, limit: usize) -> ObjectResult<Vec<String>> {
        let mut start = object_key(bucket, after);
        let exclusive = !after.is_empty();
        if after.is_empty() {
            start = object_key(bucket, "");
        }
        let mut end = bucket.as_bytes().to_vec();
        end.push(1);
        let base = bucket.len() + 1;
        let mut keys = Vec::new();
        for set in &self.sets {
            let pages = set
                .on_drives({
                    let (start, end) = (start.clone(), end.clone());
                    move |_, d| {
                        d.scan(
                            Table::Objects,
                            KeyRange::new(&start, &end, limit).exclusive(exclusive),
                        )
                    }
                })
                .await;
            for p in pages.into_iter().flatten() {
                keys.extend(
                    p.into_iter()
                        .map(|(k, _)| String::from_utf8_lossy(&k[base..]).into_owned()),
                );
            }
        }
        keys.sort();
        keys.dedup();
        keys.truncate(limit);
        Ok(keys)
    }
}

/// The bucket and key of an objects-table key (`bucket 0x00 key`).
fn split_key(k: &[u8]) -> (String, String) {
    let at = k.iter().position(|b| *b == 0).unwrap_or(k.len());
    (
        String::from_utf8_lossy(&k[..at]).into_owned(),
        String::from_utf8_lossy(k.get(at + 1..).unwrap_or_default()).into_owned(),
    )
}

/// The common prefix `key` rolls up into: `prefix` plus everything up to and
/// including the first delimiter after it, if there is one.
fn common_prefix<'a>(key: &'a [u8], prefix: &[u8], delim: &[u8]) -> Option<&'a [u8]> {
    let rest = key.strip_prefix(prefix)?;
    let at = rest.windows(delim.len()).position(|w| w == delim)?;
    Some(&key[..prefix.len() + at + delim.len()])
}

#[cfg(test)]
mod tests {
    use super::common_prefix;

    #[test]
    fn common_prefixes_fold_at_the_first_delimiter_after_the_prefix() {
        assert_eq!(common_prefix(b"a/b/c", b"", b"/"), Some(&b"a/"[..]));
        assert_eq!(common_prefix(b"a/b/c", b"a/", b"/"), Some(&b"a/b/"[..]));
        assert_eq!(common_prefix(b"a/b", b"a/", b"/"), None);
        assert_eq!(common_prefix(b"x--y--z", b"x", b"--"), Some(&b"x--"[..]));
        assert_eq!(common_prefix(b"b/c", b"a", b"/"), None);
    }
}
