//! Erasure coding of object data: a stream of bytes is cut into blocks, each
//! block into `k` data shards plus `m` parity shards with `reed-solomon-simd`,
//! and every shard block is framed with a checksum (see [`bitrot`]).
//!
//! This module owns the arithmetic of the layout (block and shard sizes, the
//! offsets of a block inside a shard file) and the codec itself. It does no
//! I/O: callers hand it bytes and get bytes back.

pub mod bitrot;

use bytes::Bytes;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

/// Default size of one erasure block (the unit a stream is cut into).
pub const DEFAULT_BLOCK_SIZE: u32 = 1 << 20;

/// Errors of the codec.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    #[error("unsupported erasure layout {data}+{parity}")]
    Layout { data: usize, parity: usize },
    #[error("not enough healthy shards to decode: have {have}, need {need}")]
    NotEnoughShards { have: usize, need: usize },
    #[error("reed-solomon: {0}")]
    Codec(#[from] reed_solomon_simd::Error),
}

/// An erasure layout: `data` + `parity` shards, cut in blocks of `block_size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub data: usize,
    pub parity: usize,
    pub block_size: u32,
}

impl Layout {
    pub fn new(data: usize, parity: usize, block_size: u32) -> Result<Self, ErasureError> {
        if data == 0 || data + parity > 256 || block_size == 0 {
            return Err(ErasureError::Layout { data, parity });
        }
        if parity > 0 && !ReedSolomonEncoder::supports(data, parity) {
            return Err(ErasureError::Layout { data, parity });
        }
        Ok(Self {
            data,
            parity,
            block_size,
        })
    }

    pub fn total(&self) -> usize {
        self.data + self.parity
    }

    /// Size of one shard of a block holding `block_len` bytes: the block split
    /// in `data` pieces, rounded up to an even size as the codec requires.
    pub fn shard_len(&self, block_len: usize) -> usize {
        let s = block_len.div_ceil(self.data);
        (s + 1) & !1
    }

    /// Number of blocks a part of `size` bytes is cut into.
    pub fn block_count(&self, size: u64) -> u64 {
        size.div_ceil(u64::from(self.block_size))
    }

    /// Length in bytes of block `index` of a part of `size` bytes.
    pub fn block_len(&self, size: u64, index: u64) -> usize {
        let bs = u64::from(self.block_size);
        let start = index * bs;
        (size.saturating_sub(start)).min(bs) as usize
    }

    /// Offset of block `index` inside one shard stream of a part (framing
    /// included, file header excluded).
    pub fn shard_offset(&self, index: u64) -> u64 {
        let full = (self.shard_len(self.block_size as usize) + bitrot::HASH_LEN) as u64;
        index * full
    }
}

/// Length of the header at the start of every shard file.
pub const SHARD_HEADER_LEN: u64 = 16;
/// Magic of a shard file.
pub const SHARD_MAGIC: [u8; 4] = *b"STSH";
/// Version of the shard file format.
pub const SHARD_FORMAT_VERSION: u16 = 1;

/// The header of a shard file: magic, format version, checksum algorithm,
/// block size, layout and which shard the file holds (all little-endian).
pub fn shard_header(layout: &Layout, shard_index: usize) -> [u8; SHARD_HEADER_LEN as usize] {
    let mut h = [0u8; SHARD_HEADER_LEN as usize];
    h[..4].copy_from_slice(&SHARD_MAGIC);
    h[4..6].copy_from_slice(&SHARD_FORMAT_VERSION.to_le_bytes());
    h[6] = bitrot::ALGO_XXH3_64;
    h[8..12].copy_from_slice(&layout.block_size.to_le_bytes());
    h[12] = layout.data as u8;
    h[13] = layout.parity as u8;
    h[14] = shard_index as u8;
    h
}

/// Default parity for a set of `n` drives.
pub fn default_parity(n: usize) -> usize {
    match n {
        0..=1 => 0,
        2..=3 => 1,
        4..=5 => 2,
        6..=7 => 3,
        _ => 4,
    }
}

/// The parity bytes of one block, in a buffer that goes back to the kept
/// data buffers ([`crate::buffers`]) on drop: a stream encodes block after
/// block, and a fresh megabyte-sized allocation per block costs more in
/// page faults than the encoding itself.
#[derive(Debug)]
struct ParityBuf(Vec<u8>);

impl Drop for ParityBuf {
    fn drop(&mut self) {
        crate::buffers::give(std::mem::take(&mut self.0));
    }
}

/// One encoded block: the data shards are slices of the block itself (no
/// copy), the parity shards live in a pooled buffer, and every shard has its
/// checksum. [`EncodedBlock::write_framed`] emits shard `i` as stored on a
/// drive: `hash || payload` (zero-padded to the shard length).
#[derive(Debug)]
pub struct EncodedBlock {
    block: Bytes,
    data: usize,
    shard_len: usize,
    parity: ParityBuf,
    hashes: Vec<[u8; bitrot::HASH_LEN]>,
}

const ZEROS: [u8; 4096] = [0; 4096];

impl EncodedBlock {
    pub fn shard_count(&self) -> usize {
        self.hashes.len()
    }

    /// Shard `i` as stored: checksum, payload, padding, in that order.
    pub fn write_framed<E>(&self, i: usize, out: &mut impl FnMut(&[u8]) -> Result<(), E>) -> Result<(), E> {
        out(&self.hashes[i])?;
        if i < self.data {
            let lo = (i * self.shard_len).min(self.block.len());
            let hi = ((i + 1) * self.shard_len).min(self.block.len());
            out(&self.block[lo..hi])?;
            let mut pad = self.shard_len - (hi - lo);
            while pad > 0 {
                let n = pad.min(ZEROS.len());
                out(&ZEROS[..n])?;
                pad -= n;
            }
            Ok(())
        } else {
            let j = i - self.data;
            out(&self.parity.0[j * self.shard_len..(j + 1) * self.shard_len])
        }
    }

    /// Appends shard `i`, framed, to `v`.
    pub fn append_framed(&self, i: usize, v: &mut Vec<u8>) {
        let _ = self.write_framed(i, &mut |s: &[u8]| -> Result<(), std::convert::Infallible> {
            v.extend_from_slice(s);
            Ok(())
        });
    }

    /// Shard `i`, framed, as a new vector.
    pub fn framed(&self, i: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(bitrot::HASH_LEN + self.shard_len);
        self.append_framed(i, &mut v);
        v
    }
}

/// Encodes blocks into shards. Keeps its codec state and a padding
/// scratch between blocks, and takes parity buffers from the kept ones, so
/// a stream does not allocate per block.
pub struct Encoder {
    layout: Layout,
    rs: Option<ReedSolomonEncoder>,
    scratch: Vec<u8>,
}

impl Encoder {
    pub fn new(layout: Layout) -> Self {
        Self {
            layout,
            rs: None,
            scratch: Vec::new(),
        }
    }

    /// Splits `block` into `data + parity` shards with their checksums.
    pub fn encode_block(&mut self, block: Bytes) -> Result<EncodedBlock, ErasureError> {
        let k = self.layout.data;
        let m = self.layout.parity;
        let shard_len = self.layout.shard_len(block.len());
        let mut hashes = Vec::with_capacity(k + m);
        // Written whole below: the codec's output for every parity shard.
        let mut parity = ParityBuf(crate::buffers::take(m * shard_len));
        let mut rs = match self.rs.take() {
            Some(mut rs) if m > 0 => {
                rs.reset(k, m, shard_len)?;
                Some(rs)
            }
            None if m > 0 => Some(ReedSolomonEncoder::new(k, m, shard_len)?),
            _ => None,
        };
        for i in 0..k {
            let lo = (i * shard_len).min(block.len());
            let hi = ((i + 1) * shard_len).min(block.len());
            let shard: &[u8] = if hi - lo == shard_len {
                &block[lo..hi]
            } else {
                // The last shard of a short block: zero-padded copy.
                self.scratch.clear();
                self.scratch.extend_from_slice(&block[lo..hi]);
                self.scratch.resize(shard_len, 0);
                &self.scratch
            };
            hashes.push(bitrot::hash(shard));
            if let Some(rs) = &mut rs {
                rs.add_original_shard(shard)?;
            }
        }
        if let Some(rs) = &mut rs {
            let out = rs.encode()?;
            for (j, rec) in out.recovery_iter().enumerate() {
                parity.0[j * shard_len..(j + 1) * shard_len].copy_from_slice(rec);
            }
        }
        for j in 0..m {
            hashes.push(bitrot::hash(&parity.0[j * shard_len..(j + 1) * shard_len]));
        }
        self.rs = rs;
        Ok(EncodedBlock {
            block,
            data: k,
            shard_len,
            parity,
            hashes,
        })
    }
}

/// Rebuilds shards of one block. `shards[i]` is the payload (no checksum) of
/// shard `i`, or `None` when missing or corrupt. On success every `None` in
/// `0..data` (and in `data..` when `want_parity`) is filled in.
pub fn reconstruct(
    layout: &Layout,
    shards: &mut [Option<Vec<u8>>],
    want_parity: bool,
) -> Result<(), ErasureError> {
    let k = layout.data;
    let m = layout.parity;
    let have = shards.iter().filter(|s| s.is_some()).count();
    if have < k {
        return Err(ErasureError::NotEnoughShards { have, need: k });
    }
    let data_missing = shards[..k].iter().any(Option::is_none);
    if data_missing {
        let shard_len = shards.iter().flatten().next().map_or(0, Vec::len);
        let mut dec = ReedSolomonDecoder::new(k, m, shard_len)?;
        for (i, s) in shards.iter().enumerate() {
            if let Some(s) = s {
                if i < k {
                    dec.add_original_shard(i, s)?;
                } else {
                    dec.add_recovery_shard(i - k, s)?;
                }
            }
        }
        let res = dec.decode()?;
        for (i, s) in res.restored_original_iter() {
            shards[i] = Some(s.to_vec());
        }
    }
    if want_parity && shards[k..].iter().any(Option::is_none) {
        let shard_len = shards[0].as_ref().map_or(0, Vec::len);
        let mut enc = ReedSolomonEncoder::new(k, m, shard_len)?;
        for s in shards[..k].iter().flatten() {
            enc.add_original_shard(s)?;
        }
        let out = enc.encode()?;
        for (j, rec) in out.recovery_iter().enumerate() {
            if shards[k + j].is_none() {
                shards[k + j] = Some(rec.to_vec());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn join(layout: &Layout, shards: &[Option<Vec<u8>>], len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(len);
        for s in &shards[..layout.data] {
            out.extend_from_slice(s.as_ref().unwrap());
        }
        out.truncate(len);
        out
    }

    #[test]
    fn shard_sizes_are_even_and_cover_the_block() {
        let l = Layout::new(4, 2, 1 << 20).unwrap();
        for len in [1usize, 2, 3, 7, 4096, 1 << 20] {
            let s = l.shard_len(len);
            assert_eq!(s % 2, 0);
            assert!(s * 4 >= len);
        }
        assert_eq!(l.block_count(0), 0);
        assert_eq!(l.block_count(1), 1);
        assert_eq!(l.block_count((1 << 20) + 1), 2);
        assert_eq!(l.block_len((1 << 20) + 1, 1), 1);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_k_shards_rebuild_the_block(
            data in proptest::collection::vec(any::<u8>(), 1..20_000),
            k in 1usize..8, m in 1usize..5, seed in any::<u64>(),
        ) {
            let layout = Layout::new(k, m, 1 << 20).unwrap();
            let enc = Encoder::new(layout).encode_block(Bytes::from(data.clone())).unwrap();
            let framed: Vec<Vec<u8>> = (0..enc.shard_count()).map(|i| enc.framed(i)).collect();
            let mut shards: Vec<Option<Vec<u8>>> = framed
                .iter()
                .map(|f| Some(bitrot::open(f).unwrap().to_vec()))
                .collect();
            // Drop m shards chosen by the seed.
            let mut order: Vec<usize> = (0..k + m).collect();
            let mut s = seed;
            for i in (1..order.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (s >> 33) as usize % (i + 1));
            }
            for &i in &order[..m] {
                shards[i] = None;
            }
            reconstruct(&layout, &mut shards, true).unwrap();
            prop_assert_eq!(join(&layout, &shards, data.len()), data);
            for (i, f) in framed.iter().enumerate() {
                prop_assert_eq!(shards[i].as_deref().unwrap(), bitrot::open(f).unwrap());
            }
        }
    }

    #[test]
    fn too_few_shards_is_an_error() {
        let layout = Layout::new(4, 2, 1 << 20).unwrap();
        let enc = Encoder::new(layout)
            .encode_block(Bytes::from_static(&[7u8; 1000]))
            .unwrap();
        let mut shards: Vec<Option<Vec<u8>>> = (0..enc.shard_count())
            .map(|i| Some(bitrot::open(&enc.framed(i)).unwrap().to_vec()))
            .collect();
        shards[0] = None;
        shards[1] = None;
        shards[5] = None;
        assert!(matches!(
            reconstruct(&layout, &mut shards, false),
            Err(ErasureError::NotEnoughShards { have: 3, need: 4 })
        ));
    }
}
