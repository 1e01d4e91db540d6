//! Several MD5 streams advanced together, one in each 32-bit lane of the
//! vector registers: sixteen with AVX-512, eight (twice over, for sixteen)
//! with AVX2. MD5 is a chain of dependent 32-bit steps, so one stream
//! cannot use wide registers; independent streams can, each step one
//! vector instruction where the scalar code has one scalar instruction.
//!
//! Most of objd's `unsafe` code is here (the rest: the allocator trim in
//! `main.rs`, the pool's call into these lanes, the direct writes' file
//! flags in `drive/direct.rs`): SIMD intrinsics and raw reads of the
//! streams' buffers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::md5::{K, S, word};

/// Streams one call advances.
pub const LANES: usize = 16;

/// The vector unit that advances the lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Sixteen lanes in one register.
    Avx512,
    /// Eight lanes in one register, two passes for sixteen.
    Avx2,
}

impl Isa {
    /// Whether this CPU has it.
    pub fn here(self) -> bool {
        match self {
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
        }
    }
}

/// The units this CPU has for the lanes, widest first.
pub fn units() -> impl Iterator<Item = Isa> {
    [Isa::Avx512, Isa::Avx2].into_iter().filter(|i| i.here())
}

/// The widest unit this CPU has for the lanes (`None`: hash each stream
/// alone).
pub fn best() -> Option<Isa> {
    units().next()
}

/// Advances `states[l]` over `data[l]` with `isa`, when this CPU has it
/// (false if not): each of `data` a whole number of 64-byte blocks, as
/// many as the shortest holds. A safe entry for measuring the units.
pub fn advance(isa: Isa, states: &mut [[u32; 4]; LANES], data: [&[u8]; LANES]) -> bool {
    if !isa.here() {
        return false;
    }
    let blocks = data.iter().map(|d| d.len() / 64).min().unwrap_or(0);
    let ptrs = data.map(<[u8]>::as_ptr);
    // SAFETY: the CPU has `isa`, and every buffer holds `blocks` blocks.
    unsafe { compress(isa, states, &ptrs, blocks, LANES) };
    true
}

/// Advances `states[l]` over `blocks` 64-byte blocks read from `ptrs[l]`,
/// for the first `used` lanes at least (the others may be left as they
/// were or advanced over their pointers' bytes).
///
/// # Safety
/// The CPU must have `isa` ([`Isa::here`]) and every `ptrs[l]` must be
/// valid for reading `blocks * 64` bytes.
pub(super) unsafe fn compress(
    isa: Isa,
    states: &mut [[u32; 4]; LANES],
    ptrs: &[*const u8; LANES],
    blocks: usize,
    used: usize,
) {
    match isa {
        Isa::Avx512 => unsafe { compress16(states, ptrs, blocks) },
        Isa::Avx2 => {
            for half in 0..used.div_ceil(8).min(LANES / 8) {
                let lanes = half * 8..half * 8 + 8;
                let mut st: [[u32; 4]; 8] = std::array::from_fn(|l| states[lanes.start + l]);
                let p: [*const u8; 8] = std::array::from_fn(|l| ptrs[lanes.start + l]);
                unsafe { compress8(&mut st, &p, blocks) };
                states[lanes].copy_from_slice(&st);
            }
        }
    }
}

/// One step of a round: `a = b + rotl(a + f(b, c, d) + K[i] + M[word(i)], s)`
/// with `f` given as the truth table of a ternary-logic instruction.
macro_rules! round {
    ($table:literal, $round:literal, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident) => {
        for j in 0..16 {
            let i = $round * 16 + j;
            let f = _mm512_ternarylogic_epi32::<$table>($b, $c, $d);
            let t = _mm512_add_epi32(
                _mm512_add_epi32($a, f),
                _mm512_add_epi32(_mm512_set1_epi32(K[i] as i32), $m[word(i)]),
            );
            let t = _mm512_rolv_epi32(t, _mm512_set1_epi32(S[$round][j % 4] as i32));
            ($a, $b, $c, $d) = ($d, _mm512_add_epi32($b, t), $b, $c);
        }
    };
}

/// [`compress`] with AVX-512.
///
/// # Safety
/// As [`compress`], with AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn compress16(states: &mut [[u32; 4]; LANES], ptrs: &[*const u8; LANES], blocks: usize) {
    let mut cols = columns(states);
    let load = |c: &[u32; LANES]| unsafe { _mm512_loadu_si512(c.as_ptr().cast()) };
    let (mut a0, mut b0, mut c0, mut d0) = (load(&cols[0]), load(&cols[1]), load(&cols[2]), load(&cols[3]));
    // Each lane's address as an offset from lane 0's: one gather per half
    // of the lanes fetches a message word of every stream.
    let base = ptrs[0];
    let mut offs = [0i64; LANES];
    for (o, p) in offs.iter_mut().zip(ptrs) {
        *o = (*p as i64).wrapping_sub(base as i64);
    }
    let lo = unsafe { _mm512_loadu_si512(offs.as_ptr().cast()) };
    let hi = unsafe { _mm512_loadu_si512(offs[8..].as_ptr().cast()) };
    for blk in 0..blocks {
        let at = unsafe { base.add(blk * 64) };
        let mut m = [_mm512_setzero_si512(); 16];
        for (w, mw) in m.iter_mut().enumerate() {
            let p = unsafe { at.add(w * 4) };
            let l = unsafe { _mm512_i64gather_epi32::<1>(lo, p.cast()) };
            let h = unsafe { _mm512_i64gather_epi32::<1>(hi, p.cast()) };
            *mw = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(l), h);
        }
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        round!(0xCA, 0, a, b, c, d, m);
        round!(0xE4, 1, a, b, c, d, m);
        round!(0x96, 2, a, b, c, d, m);
        round!(0x39, 3, a, b, c, d, m);
        a0 = _mm512_add_epi32(a0, a);
        b0 = _mm512_add_epi32(b0, b);
        c0 = _mm512_add_epi32(c0, c);
        d0 = _mm512_add_epi32(d0, d);
    }
    for (c, v) in cols.iter_mut().zip([a0, b0, c0, d0]) {
        unsafe { _mm512_storeu_si512(c.as_mut_ptr().cast(), v) };
    }
    rows(&cols, states);
}

/// A round with AVX2: four times the four steps, each step `a = b +
/// rotl(a + f(b, c, d) + K[i] + M[word(i)], s)` with `f` the round's
/// function and the rotation a shift each way by the step's constant.
macro_rules! round8 {
    ($f:ident, $round:literal, [$s0:literal, $s1:literal, $s2:literal, $s3:literal], $a:ident, $b:ident, $c:ident, $d:ident, $m:ident) => {
        for q in 0..4 {
            let i = $round * 16 + q * 4;
            step8!($f, $s0, i, $a, $b, $c, $d, $m);
            step8!($f, $s1, i + 1, $a, $b, $c, $d, $m);
            step8!($f, $s2, i + 2, $a, $b, $c, $d, $m);
            step8!($f, $s3, i + 3, $a, $b, $c, $d, $m);
        }
    };
}

macro_rules! step8 {
    ($f:ident, $s:literal, $i:expr, $a:ident, $b:ident, $c:ident, $d:ident, $m:ident) => {
        let i = $i;
        let f = $f!($b, $c, $d);
        let t = _mm256_add_epi32(
            _mm256_add_epi32($a, f),
            _mm256_add_epi32(_mm256_set1_epi32(K[i] as i32), $m[word(i)]),
        );
        let t = _mm256_or_si256(_mm256_slli_epi32::<$s>(t), _mm256_srli_epi32::<{ 32 - $s }>(t));
        ($a, $b, $c, $d) = ($d, _mm256_add_epi32($b, t), $b, $c);
    };
}

/// F = (b & c) | (!b & d), as d ^ (b & (c ^ d)).
macro_rules! f8 {
    ($b:ident, $c:ident, $d:ident) => {
        _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d)))
    };
}

/// G = (b & d) | (c & !d), as c ^ (d & (b ^ c)).
macro_rules! g8 {
    ($b:ident, $c:ident, $d:ident) => {
        _mm256_xor_si256($c, _mm256_and_si256($d, _mm256_xor_si256($b, $c)))
    };
}

/// H = b ^ c ^ d.
macro_rules! h8 {
    ($b:ident, $c:ident, $d:ident) => {
        _mm256_xor_si256($b, _mm256_xor_si256($c, $d))
    };
}

/// I = c ^ (b | !d).
macro_rules! i8 {
    ($b:ident, $c:ident, $d:ident) => {
        _mm256_xor_si256(
            $c,
            _mm256_or_si256($b, _mm256_xor_si256($d, _mm256_set1_epi32(-1))),
        )
    };
}

/// Eight lanes with AVX2. Each lane's block is loaded as two rows of
/// eight words, and the rows of the eight lanes transposed into one vector
/// per word (AVX2's gathers are no faster than that on the CPUs that lack
/// AVX-512).
///
/// # Safety
/// As [`compress`], with AVX2.
#[target_feature(enable = "avx2")]
unsafe fn compress8(states: &mut [[u32; 4]; 8], ptrs: &[*const u8; 8], blocks: usize) {
    let mut cols = columns(states);
    let load = |c: &[u32; 8]| unsafe { _mm256_loadu_si256(c.as_ptr().cast()) };
    let (mut a0, mut b0, mut c0, mut d0) = (load(&cols[0]), load(&cols[1]), load(&cols[2]), load(&cols[3]));
    for blk in 0..blocks {
        let mut m = [_mm256_setzero_si256(); 16];
        for half in 0..2 {
            let rows: [__m256i; 8] = std::array::from_fn(|l| unsafe {
                _mm256_loadu_si256(ptrs[l].add(blk * 64 + half * 32).cast())
            });
            m[half * 8..half * 8 + 8].copy_from_slice(&transpose8(rows));
        }
        let (mut a, mut b, mut c, mut d) = (a0, b0, c0, d0);
        round8!(f8, 0, [7, 12, 17, 22], a, b, c, d, m);
        round8!(g8, 1, [5, 9, 14, 20], a, b, c, d, m);
        round8!(h8, 2, [4, 11, 16, 23], a, b, c, d, m);
        round8!(i8, 3, [6, 10, 15, 21], a, b, c, d, m);
        a0 = _mm256_add_epi32(a0, a);
        b0 = _mm256_add_epi32(b0, b);
        c0 = _mm256_add_epi32(c0, c);
        d0 = _mm256_add_epi32(d0, d);
    }
    for (c, v) in cols.iter_mut().zip([a0, b0, c0, d0]) {
        unsafe { _mm256_storeu_si256(c.as_mut_ptr().cast(), v) };
    }
    rows(&cols, states);
}

/// The lanes' states as four columns (every lane's `a`, then `b`, ...),
/// for loading into vectors.
fn columns<const N: usize>(states: &[[u32; 4]; N]) -> [[u32; N]; 4] {
    std::array::from_fn(|c| std::array::from_fn(|l| states[l][c]))
}

/// [`columns`] back into the lanes' states.
fn rows<const N: usize>(cols: &[[u32; N]; 4], states: &mut [[u32; 4]; N]) {
    for (l, s) in states.iter_mut().enumerate() {
        *s = std::array::from_fn(|c| cols[c][l]);
    }
}

/// Rows of eight 32-bit words to columns: word `w` of row `r` becomes
/// lane `r` of vector `w`.
#[target_feature(enable = "avx2")]
fn transpose8(r: [__m256i; 8]) -> [__m256i; 8] {
    // Pairs of rows interleaved by word, then by pairs of words: each
    // 128-bit half then holds one word of four rows.
    let t: [__m256i; 8] = std::array::from_fn(|i| {
        let (x, y) = (r[i / 2 * 2], r[i / 2 * 2 + 1]);
        if i % 2 == 0 {
            _mm256_unpacklo_epi32(x, y)
        } else {
            _mm256_unpackhi_epi32(x, y)
        }
    });
    let u = [
        _mm256_unpacklo_epi64(t[0], t[2]),
        _mm256_unpackhi_epi64(t[0], t[2]),
        _mm256_unpacklo_epi64(t[1], t[3]),
        _mm256_unpackhi_epi64(t[1], t[3]),
        _mm256_unpacklo_epi64(t[4], t[6]),
        _mm256_unpackhi_epi64(t[4], t[6]),
        _mm256_unpacklo_epi64(t[5], t[7]),
        _mm256_unpackhi_epi64(t[5], t[7]),
    ];
    // u[k] holds words k (low half) and k + 4 (high half) of rows 0-3,
    // u[k + 4] the same of rows 4-7.
    std::array::from_fn(|w| {
        let (lo, hi) = (u[w % 4], u[w % 4 + 4]);
        if w < 4 {
            _mm256_permute2x128_si256::<0x20>(lo, hi)
        } else {
            _mm256_permute2x128_si256::<0x31>(lo, hi)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::md5::{INIT, compress};
    use super::*;

    /// Every unit this CPU has gives every lane's scalar result: sixteen
    /// separate buffers of different contents, so a lane that read another
    /// lane's words would be caught, and with fewer lanes in use than there
    /// are (the lanes in use must still be right).
    #[test]
    fn every_lane_matches_the_scalar_function() {
        let bufs: Vec<Vec<u8>> = (0..LANES)
            .map(|l| (0..64 * 9).map(|i| (i * (l + 3) + l * 31) as u8).collect())
            .collect();
        let ptrs: [*const u8; LANES] = std::array::from_fn(|l| bufs[l].as_ptr());
        let mut start = [INIT; LANES];
        start[5] = [1, 2, 3, 4];
        let mut want = start;
        for l in 0..LANES {
            compress(&mut want[l], &bufs[l]);
        }
        let mut tried = 0;
        for isa in units() {
            for used in [LANES, 8, 3] {
                let mut states = start;
                unsafe { super::compress(isa, &mut states, &ptrs, 9, used) };
                assert_eq!(states[..used], want[..used], "{isa:?}, {used} lanes in use");
            }
            tried += 1;
        }
        // The x86-64 machines this runs on have AVX2 at least.
        assert!(tried > 0, "no vector unit to test");
    }
}
