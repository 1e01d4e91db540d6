//! Lookups answered from a listing. When lookups keep asking the server
//! for names of one directory (`git status`, `make`, `rsync` checking
//! what is there, `stat` of many files: each name a HEAD), one listing
//! page with metadata after the name just asked answers the next ones:
//! the files it holds with their attributes, the names between them as
//! missing. A page answers for the attribute TTL, and only while nothing
//! was changed through the mount since it was fetched (any change drops
//! every page, so a page never answers for what the mount has changed).
//! Directories in a page are left to the usual lookup (their attributes
//! live on markers a listing folds away), and so are files whose
//! metadata the server left out. Only from objd, which lists metadata.

use super::{Fs, lock};
use crate::inodes::Attrs;
use crate::store::Store;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::Instant;
use strata_s3client::ListFrom;

/// Lookups in a row in one directory that asked the server, after which
/// a page is fetched.
const AFTER: u32 = 4;

/// Keys per page.
const PAGE: usize = 1000;

/// Pages kept (the oldest goes first).
const PAGES: usize = 8;

/// Lookups a page must answer to have been worth its listing; after each
/// page that answered fewer, twice as many lookups in a row are needed
/// before the next (random lookups in a large directory stay HEADs).
const WORTH: u32 = 32;

/// What lookups of the mount have asked lately, and the pages fetched.
#[derive(Default)]
pub(super) struct Lookahead {
    /// The directory of the last lookups that asked the server, and how
    /// many in a row.
    run: (String, u32),
    /// Pages in a row that were not worth their listing.
    wasted: u32,
    pages: VecDeque<Page>,
}

/// One listing page of a directory: every key in (`after`, `through`]
/// (`through` `None`: to the directory's end) is in it.
struct Page {
    prefix: String,
    after: String,
    through: Option<String>,
    /// Files by name, with their attributes (`None`: metadata left out).
    files: HashMap<String, Option<Attrs>>,
    dirs: HashSet<String>,
    at: Instant,
    /// The mount's changes counter when it was fetched.
    generation: u64,
    /// Lookups it answered.
    hits: u32,
}

/// What a page says of a name.
pub(super) enum Known {
    File(Attrs),
    Absent,
    /// Nothing, or a directory or a file without metadata: ask.
    Ask,
}

impl<S: Store> Fs<S> {
    /// Something changed through the mount: no page answers any more.
    pub(super) fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Relaxed);
    }

    /// What a page fetched lately says of `path`.
    pub(super) fn looked_ahead(&self, path: &str) -> Known {
        let key = self.key(path);
        let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
        let prefix = self.dir_prefix(dir);
        let generation = self.changes.load(Ordering::Relaxed);
        let ttl = self.opts.attr_ttl;
        let mut l = lock(&self.lookahead);
        let covered = |p: &&mut Page| {
            p.prefix == prefix
                && p.generation == generation
                && p.at.elapsed() < ttl
                && key > p.after
                // The name and every key below `name/` are in the page.
                && p.through.as_ref().is_none_or(|t| format!("{key}0") <= *t)
        };
        let Some(p) = l.pages.iter_mut().find(covered) else {
            return Known::Ask;
        };
        p.hits += 1;
        match p.files.get(name) {
            Some(Some(a)) => Known::File(a.clone()),
            Some(None) => Known::Ask,
            None if p.dirs.contains(name) => Known::Ask,
            None => Known::Absent,
        }
    }

    /// A lookup of `path` asked the server: after a few in a row in its
    /// directory, fetch the page after it.
    pub(super) fn asked_server(&self, path: &str) {
        if !self.detailed.load(Ordering::Relaxed) {
            return;
        }
        let (dir, _) = path.rsplit_once('/').unwrap_or(("", path));
        {
            let mut l = lock(&self.lookahead);
            if l.run.0 == dir {
                l.run.1 += 1;
            } else {
                l.run = (dir.to_owned(), 1);
            }
            if l.run.1 < AFTER << l.wasted.min(8) {
                return;
            }
            l.run.1 = 0;
            let prefix = self.dir_prefix(dir);
            let last = l.pages.iter().rev().find(|p| p.prefix == prefix);
            if last.is_some_and(|p| p.hits < WORTH) {
                l.wasted += 1;
            } else {
                l.wasted = 0;
            }
        }
        let (prefix, key) = (self.dir_prefix(dir), self.key(path));
        let generation = self.changes.load(Ordering::Relaxed);
        let at = Instant::now();
        let from = ListFrom::after(&key);
        let Ok(page) = self
            .rt
            .block_on(self.store.list_detailed(&prefix, Some("/"), from, PAGE))
        else {
            return;
        };
        let through = page.truncated.then(|| {
            let last_file = page.objects.last().map(|o| o.key.clone());
            last_file
                .into_iter()
                .chain(page.prefixes.last().cloned())
                .max()
                .unwrap_or_default()
        });
        let (dirs, files) = self.page_entries(&prefix, &page);
        let (dirs, files) = (dirs.into_iter().collect(), files.into_iter().collect());
        let mut l = lock(&self.lookahead);
        if l.pages.len() == PAGES {
            l.pages.pop_front();
        }
        l.pages.push_back(Page {
            prefix,
            after: key,
            through,
            files,
            dirs,
            at,
            generation,
            hits: 0,
        });
    }
}
