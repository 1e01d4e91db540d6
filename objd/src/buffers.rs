//! Data buffers kept for reuse. A GET reads each batch of blocks into one
//! buffer per data shard and assembles each block into another; an upload
//! reads each block of its body into one and encodes its parity into
//! another; then they are let go. Taken from the allocator each time,
//! those megabytes come back as fresh pages (the allocator's free pages
//! are handed back to the system every second), each faulted in and
//! zeroed again, and between trims the freed ones sit in the allocator's
//! free lists besides the ones in use. Buffers given back here are kept,
//! by size class, up to [`KEPT`] bytes in all, and taken again by the next
//! read or write of a like size.
//!
//! A buffer taken holds bytes of an earlier request until it is written:
//! callers fill what they take (a read of exactly its length, parity
//! written whole by the codec, or an empty buffer extended), so nothing of
//! one request reaches another.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// Most bytes of buffers kept while nobody uses them.
const KEPT: usize = 32 << 20;

/// Sizes are kept in classes of this many bytes.
const CLASS: usize = 64 << 10;

/// Buffers smaller than this are not worth keeping.
const SMALLEST: usize = 64 << 10;

#[derive(Default)]
struct Kept {
    by_class: HashMap<usize, Vec<Vec<u8>>>,
    bytes: usize,
}

static KEPT_BUFFERS: Mutex<Option<Kept>> = Mutex::new(None);

fn class(len: usize) -> usize {
    len.div_ceil(CLASS)
}

fn kept() -> std::sync::MutexGuard<'static, Option<Kept>> {
    KEPT_BUFFERS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A kept buffer whose capacity is at least `len`, if there is one.
fn reuse(len: usize) -> Option<Vec<u8>> {
    if len < SMALLEST {
        return None;
    }
    let mut k = kept();
    let k = k.as_mut()?;
    let v = k.by_class.get_mut(&class(len))?.pop()?;
    k.bytes -= v.capacity();
    Some(v)
}

/// A buffer of `len` bytes, to be written whole by the caller (it may
/// hold an earlier request's bytes).
pub fn take(len: usize) -> Vec<u8> {
    match reuse(len) {
        Some(mut v) => {
            // Grows only within the class: at most a class of zeroes.
            v.resize(len, 0);
            v
        }
        None => {
            let mut v = Vec::with_capacity(rounded(len));
            v.resize(len, 0);
            v
        }
    }
}

/// An empty buffer with room for `len` bytes.
pub fn take_empty(len: usize) -> Vec<u8> {
    match reuse(len) {
        Some(mut v) => {
            v.clear();
            v.reserve(len);
            v
        }
        None => Vec::with_capacity(rounded(len)),
    }
}

/// `len` rounded up to its class, so that a buffer of that capacity is
/// found again by a request of the same length ([`give`] files a buffer
/// under the largest class it holds whole).
fn rounded(len: usize) -> usize {
    if len < SMALLEST { len } else { class(len) * CLASS }
}

/// Keeps `v` for reuse, unless enough is kept already.
pub fn give(v: Vec<u8>) {
    let cap = v.capacity();
    if cap < SMALLEST {
        return;
    }
    let mut k = kept();
    let k = k.get_or_insert_with(Kept::default);
    if k.bytes + cap > KEPT {
        return;
    }
    k.bytes += cap;
    // Filed under the class every length it can hold without growing
    // belongs to.
    k.by_class.entry(cap / CLASS).or_default().push(v);
}

/// A buffer that goes back to be kept when the last [`Bytes`] of it is
/// dropped (a block of a GET's body, once sent).
struct Returning(Vec<u8>);

impl AsRef<[u8]> for Returning {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Returning {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// `v` as [`Bytes`] that give it back to be kept once dropped.
pub fn bytes(v: Vec<u8>) -> Bytes {
    if v.capacity() < SMALLEST {
        return Bytes::from(v);
    }
    Bytes::from_owner(Returning(v))
}

/// Bytes kept now (tests).
#[cfg(test)]
pub fn kept_bytes() -> usize {
    kept().as_ref().map_or(0, |k| k.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_by_size_and_never_past_the_bound() {
        // Other tests of the crate use the same buffers: compare
        // capacities, not counts.
        let a = take(300 << 10);
        assert_eq!(a.len(), 300 << 10);
        let cap = a.capacity();
        give(a);
        let b = take(cap - 10);
        assert_eq!(b.len(), cap - 10);
        let e = take_empty(cap);
        assert!(e.is_empty() && e.capacity() >= cap);
        // A block handed out as Bytes comes back when the last slice goes.
        let mut v = take_empty(256 << 10);
        v.extend_from_slice(&[7u8; 256 << 10]);
        let body = bytes(v);
        let tail = body.slice(100..200);
        drop(body);
        assert_eq!(&tail[..], &[7u8; 100][..]);
        drop(tail);
        // Small buffers are not kept, and the bound holds.
        give(vec![0u8; 100]);
        for _ in 0..100 {
            give(vec![0u8; 1 << 20]);
        }
        assert!(kept_bytes() <= KEPT);
        give(b);
        give(e);
    }
}
