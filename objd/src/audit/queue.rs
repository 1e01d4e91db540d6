//! A durable, bounded, first-in-first-out queue of audit lines on disk, one
//! per target: segment files of JSON lines (`{id:016x}.jsonl`) and a
//! `cursor` file saying how far the target has taken them. Appends are
//! fsynced before they count; the cursor moves only after the target
//! acknowledged a batch, so delivery is in order and at least once, across
//! restarts and crashes (a batch sent but not yet acknowledged when objd
//! stopped is sent again). A crash in the middle of an append leaves a
//! torn last line, which opening cuts off.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

/// A segment is closed once it holds this much; the next append opens a new one.
const SEGMENT_BYTES: u64 = 8 << 20;
const CURSOR_FILE: &str = "cursor";
const SUFFIX: &str = ".jsonl";

/// Where the target stands: the segment and byte offset of the first line
/// it has not acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub segment: u64,
    pub offset: u64,
}

#[derive(Debug)]
struct Inner {
    /// Segment ids and sizes, oldest first.
    segments: VecDeque<(u64, u64)>,
    /// The last segment, open for appending.
    file: Option<File>,
    cursor: Cursor,
    /// Bytes appended and not yet acknowledged.
    queued: u64,
}

impl Inner {
    fn recount(&mut self) {
        let c = self.cursor;
        self.queued = self
            .segments
            .iter()
            .filter(|(id, _)| *id >= c.segment)
            .map(|(id, size)| {
                if *id == c.segment {
                    size.saturating_sub(c.offset)
                } else {
                    *size
                }
            })
            .sum();
    }
}

#[derive(Debug)]
pub struct DiskQueue {
    dir: PathBuf,
    limit: u64,
    inner: Mutex<Inner>,
    /// Signalled when acknowledged lines free space.
    space: Condvar,
    /// Signalled when lines are appended.
    pub ready: tokio::sync::Notify,
}

fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}{SUFFIX}"))
}

fn read_cursor(dir: &Path) -> Option<Cursor> {
    let text = fs::read_to_string(dir.join(CURSOR_FILE)).ok()?;
    let (s, o) = text.trim().split_once(' ')?;
    Some(Cursor {
        segment: u64::from_str_radix(s, 16).ok()?,
        offset: o.parse().ok()?,
    })
}

/// Cuts a torn last line (an append a crash interrupted) off `path`.
fn cut_torn_tail(path: &Path) -> std::io::Result<u64> {
    let data = fs::read(path)?;
    let keep = data.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if keep < data.len() {
        let f = OpenOptions::new().write(true).open(path)?;
        f.set_len(keep as u64)?;
        f.sync_all()?;
    }
    Ok(keep as u64)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl DiskQueue {
    /// Opens (or creates) the queue in `dir`, holding at most `limit` bytes
    /// of lines not yet acknowledged.
    pub fn open(dir: &Path, limit: u64) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        let mut ids = Vec::new();
        for e in fs::read_dir(dir)? {
            let name = e?.file_name();
            let name = name.to_string_lossy();
            if let Some(id) = name
                .strip_suffix(SUFFIX)
                .and_then(|h| u64::from_str_radix(h, 16).ok())
            {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        let mut cursor = read_cursor(dir).unwrap_or_default();
        let mut segments = VecDeque::new();
        for (i, id) in ids.iter().enumerate() {
            let path = segment_path(dir, *id);
            if *id < cursor.segment {
                fs::remove_file(&path)?;
                continue;
            }
            let size = if i + 1 == ids.len() {
                cut_torn_tail(&path)?
            } else {
                fs::metadata(&path)?.len()
            };
            segments.push_back((*id, size));
        }
        match segments.front() {
            Some(&(first, size)) if first == cursor.segment => cursor.offset = cursor.offset.min(size),
            Some(&(first, _)) => {
                cursor = Cursor {
                    segment: first,
                    offset: 0,
                }
            }
            None => {}
        }
        let file = match segments.back() {
            Some(&(id, _)) => Some(OpenOptions::new().append(true).open(segment_path(dir, id))?),
            None => None,
        };
        let mut inner = Inner {
            segments,
            file,
            cursor,
            queued: 0,
        };
        inner.recount();
        Ok(Self {
            dir: dir.to_owned(),
            limit,
            inner: Mutex::new(inner),
            space: Condvar::new(),
            ready: tokio::sync::Notify::new(),
        })
    }

    /// Where the target stands.
    pub fn cursor(&self) -> Cursor {
        self.inner.lock().unwrap().cursor
    }

    /// Bytes appended and not yet acknowledged.
    pub fn queued(&self) -> u64 {
        self.inner.lock().unwrap().queued
    }

    /// Whether a line of `len` bytes would not fit now.
    pub fn is_full_for(&self, len: usize) -> bool {
        self.queued() + len as u64 + 1 > self.limit
    }

    /// Appends as many of `lines` (each without its newline) as fit, in
    /// order, and makes them durable; answers how many it took.
    pub fn push(&self, lines: &[&[u8]]) -> std::io::Result<usize> {
        let mut inner = self.inner.lock().unwrap();
        let mut buf = Vec::new();
        let mut taken = 0;
        for line in lines {
            debug_assert!(!line.contains(&b'\n'));
            if inner.queued + (buf.len() + line.len() + 1) as u64 > self.limit {
                break;
            }
            buf.extend_from_slice(line);
            buf.push(b'\n');
            taken += 1;
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let roll = match inner.segments.back() {
            Some(&(_, size)) => size >= SEGMENT_BYTES,
            None => true,
        };
        if roll || inner.file.is_none() {
            let id = inner.segments.back().map_or(1, |(id, _)| id + 1);
            let file = OpenOptions::new()
                .append(true)
                .create_new(true)
                .open(segment_path(&self.dir, id))?;
            sync_dir(&self.dir)?;
            inner.segments.push_back((id, 0));
            inner.file = Some(file);
            if inner.segments.len() == 1 {
                inner.cursor = Cursor {
                    segment: id,
                    offset: 0,
                };
            }
        }
        let file = inner.file.as_mut().expect("opened above");
        file.write_all(&buf)?;
        file.sync_data()?;
        if let Some(last) = inner.segments.back_mut() {
            last.1 += buf.len() as u64;
        }
        inner.queued += buf.len() as u64;
        drop(inner);
        self.ready.notify_one();
        Ok(taken)
    }

    /// Waits (blocking the thread) until a line of `len` bytes fits, or
    /// `timeout` passes; answers whether it fits.
    pub fn wait_for_space(&self, len: usize, timeout: std::time::Duration) -> bool {
        let inner = self.inner.lock().unwrap();
        let (inner, _) = self
            .space
            .wait_timeout_while(inner, timeout, |i| i.queued + len as u64 + 1 > self.limit)
            .unwrap();
        inner.queued + (len as u64) < self.limit
    }

    /// The oldest lines not yet acknowledged, up to `max_lines` and about
    /// `max_bytes` (at least one line), with the cursor that acknowledges
    /// them. Reads no further than complete lines.
    pub fn peek(&self, max_lines: usize, max_bytes: usize) -> std::io::Result<(Vec<Vec<u8>>, Cursor)> {
        let (mut at, segments) = {
            let inner = self.inner.lock().unwrap();
            (inner.cursor, inner.segments.clone())
        };
        let mut lines = Vec::new();
        let mut bytes = 0usize;
        let from = at.segment;
        let mut ids = segments
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| *id >= from)
            .peekable();
        while let Some(id) = ids.next() {
            if id != at.segment {
                at = Cursor {
                    segment: id,
                    offset: 0,
                };
            }
            let mut f = match File::open(segment_path(&self.dir, id)) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            f.seek(SeekFrom::Start(at.offset))?;
            let mut r = BufReader::new(f);
            loop {
                if lines.len() >= max_lines || (bytes >= max_bytes && !lines.is_empty()) {
                    return Ok((lines, at));
                }
                let mut line = Vec::new();
                let n = r.read_until(b'\n', &mut line)?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                at.offset += n as u64;
                bytes += n;
                line.pop();
                lines.push(line);
            }
            if ids.peek().is_none() {
                break;
            }
        }
        Ok((lines, at))
    }

    /// Records that the target has everything before `next`: saves the
    /// cursor, removes segments wholly taken, frees their space.
    pub fn ack(&self, next: Cursor) -> std::io::Result<()> {
        let tmp = self.dir.join(format!("{CURSOR_FILE}.tmp"));
        {
            let mut f = File::create(&tmp)?;
            writeln!(f, "{:x} {}", next.segment, next.offset)?;
            f.sync_data()?;
        }
        fs::rename(&tmp, self.dir.join(CURSOR_FILE))?;
        let mut inner = self.inner.lock().unwrap();
        inner.cursor = next;
        while inner.segments.len() > 1 && inner.segments.front().is_some_and(|(id, _)| *id < next.segment) {
            let (id, _) = inner.segments.pop_front().expect("checked");
            let _ = fs::remove_file(segment_path(&self.dir, id));
        }
        inner.recount();
        drop(inner);
        self.space.notify_all();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &DiskQueue) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let (lines, next) = q.peek(7, 1 << 20).unwrap();
            if lines.is_empty() {
                return out;
            }
            out.extend(lines.into_iter().map(|l| String::from_utf8(l).unwrap()));
            q.ack(next).unwrap();
        }
    }

    #[test]
    fn lines_come_out_in_order_once_acknowledged_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        let lines: Vec<String> = (0..20).map(|i| format!("{{\"n\":{i}}}")).collect();
        let refs: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
        assert_eq!(q.push(&refs[..10]).unwrap(), 10);
        let (first, next) = q.peek(3, 1 << 20).unwrap();
        assert_eq!(first.len(), 3);
        // Not acknowledged: a reopened queue gives the same lines again.
        drop(q);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(q.peek(3, 1 << 20).unwrap(), (first, next));
        q.ack(next).unwrap();
        assert_eq!(q.push(&refs[10..]).unwrap(), 10);
        drop(q);
        let q = DiskQueue::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&q), lines[3..].to_vec());
        assert_eq!(q.queued(), 0);
    }

    #[test]
    fn the_bound_refuses_what_does_not_fit_until_space_is_freed() {
        let dir = tempfile::tempdir().unwrap();
        let q = DiskQueue::open(dir.path(), 30).unwrap();
        let l: &[u8] = b"0123456789";
        assert_eq!(
            q.push(&[l, l, l, l]).unwrap(),
            2,
            "11 bytes a line, 30 bytes in all"
        );
        assert!(q.is_full_for(10));
        assert!(!q.wait_for_space(10, std::time::Duration::from_millis(10)));
        let (lines, next) = q.peek(1, 100).unwrap();
        assert_eq!(lines.len(), 1);
        q.ack(next).unwrap();
        assert!(q.wait_for_space(10, std::time::Duration::from_millis(10)));
        assert_eq!(q.push(&[l, l]).unwrap(), 1);
    }

    #[test]
    fn a_torn_append_is_cut_off_and_segments_roll_and_go() {
        let dir = tempfile::tempdir().unwrap();
        {
            let q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
            q.push(&[b"a", b"b"]).unwrap();
        }
        let seg = segment_path(dir.path(), 1);
        let mut f = OpenOptions::new().append(true).open(&seg).unwrap();
        f.write_all(b"{\"torn").unwrap();
        drop(f);
        let q = DiskQueue::open(dir.path(), 1 << 30).unwrap();
        assert_eq!(q.queued(), 4);
        // Fill past a segment so that a second one opens.
        let big = vec![b'x'; 1 << 20];
        for _ in 0..9 {
            q.push(&[&big[..]]).unwrap();
        }
        q.push(&[b"c"]).unwrap();
        let mut n = 0;
        let mut last = Vec::new();
        loop {
            let (lines, next) = q.peek(4, 4 << 20).unwrap();
            if lines.is_empty() {
                break;
            }
            n += lines.len();
            last = lines.last().unwrap().clone();
            q.ack(next).unwrap();
        }
        assert_eq!((n, last), (12, b"c".to_vec()));
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(SUFFIX))
            .collect();
        assert_eq!(left.len(), 1, "taken segments are removed: {left:?}");
    }
}
