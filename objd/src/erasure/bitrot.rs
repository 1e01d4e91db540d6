//! Per-shard-block checksums. Every shard block on a drive is stored as
//! `hash (8 bytes, little-endian) || payload`; a block whose hash does not
//! match is treated exactly like a missing shard.
//!
//! The hash is XXH3-64: at several GB/s per core it costs a small fraction
//! of the erasure encode itself (see `docs/benchmarks.md`), and a 64-bit
//! non-cryptographic hash is ample for detecting media corruption; it is not
//! meant to resist an adversary who can write to the drives.

use xxhash_rust::xxh3::xxh3_64;

/// Length of the checksum in front of each shard block.
pub const HASH_LEN: usize = 8;

/// Identifier of the algorithm in metadata and shard-file headers.
pub const ALGO_XXH3_64: u8 = 1;

/// The checksum of a shard payload, as stored in front of it.
pub fn hash(payload: &[u8]) -> [u8; HASH_LEN] {
    xxh3_64(payload).to_le_bytes()
}

/// Fills in the checksum of a framed shard (`[0; HASH_LEN] || payload`).
pub fn seal(framed: &mut [u8]) {
    let h = hash(&framed[HASH_LEN..]);
    framed[..HASH_LEN].copy_from_slice(&h);
}

/// A payload framed with its checksum (`hash || payload`).
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8; HASH_LEN];
    framed.extend_from_slice(payload);
    seal(&mut framed);
    framed
}

/// Returns the payload of a framed shard if its checksum matches.
pub fn open(framed: &[u8]) -> Option<&[u8]> {
    if framed.len() < HASH_LEN {
        return None;
    }
    let (h, payload) = framed.split_at(HASH_LEN);
    (h == hash(payload)).then_some(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_a_flipped_bit() {
        let mut f = frame(b"hello shard");
        assert_eq!(open(&f), Some(&b"hello shard"[..]));
        f[HASH_LEN + 3] ^= 0x10;
        assert_eq!(open(&f), None);
        assert_eq!(open(&f[..3]), None);
    }
}
