//! Sixteen MD5 streams advanced together, one in each 32-bit lane of the
//! AVX-512 registers. MD5 is a chain of dependent 32-bit steps, so one
//! stream cannot use wide registers; sixteen independent streams can, and
//! cost about as much as three hashed one after the other.
//!
//! The one module of objd with `unsafe` code besides the allocator call in
//! `main.rs`: SIMD intrinsics and raw reads of the streams' buffers.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::md5::{K, S, word};

/// Streams one call advances.
pub const LANES: usize = 16;

/// Whether this CPU can run [`compress16`].
pub fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
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

/// Advances `states[l]` over `blocks` 64-byte blocks read from `ptrs[l]`.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]) and every `ptrs[l]` must be
/// valid for reading `blocks * 64` bytes.
#[target_feature(enable = "avx512f")]
pub unsafe fn compress16(states: &mut [[u32; 4]; LANES], ptrs: &[*const u8; LANES], blocks: usize) {
    let mut cols = [[0u32; LANES]; 4];
    for (l, s) in states.iter().enumerate() {
        for (c, v) in cols.iter_mut().zip(s) {
            c[l] = *v;
        }
    }
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
    for (l, s) in states.iter_mut().enumerate() {
        for (v, c) in s.iter_mut().zip(&cols) {
            *v = c[l];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::md5::{INIT, compress};
    use super::*;

    #[test]
    fn every_lane_matches_the_scalar_function() {
        if !available() {
            return;
        }
        // Sixteen separate buffers of different contents, so a lane that
        // read another lane's words would be caught.
        let bufs: Vec<Vec<u8>> = (0..LANES)
            .map(|l| (0..64 * 9).map(|i| (i * (l + 3) + l * 31) as u8).collect())
            .collect();
        let mut states = [INIT; LANES];
        states[5] = [1, 2, 3, 4];
        let mut want = states;
        let ptrs: [*const u8; LANES] = std::array::from_fn(|l| bufs[l].as_ptr());
        unsafe { compress16(&mut states, &ptrs, 9) };
        for l in 0..LANES {
            compress(&mut want[l], &bufs[l]);
        }
        assert_eq!(states, want);
    }
}
