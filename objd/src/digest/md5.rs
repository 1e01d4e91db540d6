//! MD5 (RFC 1321) as a state that can be advanced a whole 64-byte block at
//! a time, either here one stream at a time or, several streams together,
//! by [`super::lanes`]. Uploads hash their bodies with it for the ETag.

/// The initial chaining values (RFC 1321, 3.3).
pub(super) const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

/// The per-step additive constants: the integer part of 2^32 x |sin(i + 1)|.
pub(super) const K: [u32; 64] = [
    0xd76aa478, 0xe8c7b756, 0x242070db, 0xc1bdceee, 0xf57c0faf, 0x4787c62a, 0xa8304613, 0xfd469501,
    0x698098d8, 0x8b44f7af, 0xffff5bb1, 0x895cd7be, 0x6b901122, 0xfd987193, 0xa679438e, 0x49b40821,
    0xf61e2562, 0xc040b340, 0x265e5a51, 0xe9b6c7aa, 0xd62f105d, 0x02441453, 0xd8a1e681, 0xe7d3fbc8,
    0x21e1cde6, 0xc33707d6, 0xf4d50d87, 0x455a14ed, 0xa9e3e905, 0xfcefa3f8, 0x676f02d9, 0x8d2a4c8a,
    0xfffa3942, 0x8771f681, 0x6d9d6122, 0xfde5380c, 0xa4beea44, 0x4bdecfa9, 0xf6bb4b60, 0xbebfbc70,
    0x289b7ec6, 0xeaa127fa, 0xd4ef3085, 0x04881d05, 0xd9d4d039, 0xe6db99e5, 0x1fa27cf8, 0xc4ac5665,
    0xf4292244, 0x432aff97, 0xab9423a7, 0xfc93a039, 0x655b59c3, 0x8f0ccc92, 0xffeff47d, 0x85845dd1,
    0x6fa87e4f, 0xfe2ce6e0, 0xa3014314, 0x4e0811a1, 0xf7537e82, 0xbd3af235, 0x2ad7d2bb, 0xeb86d391,
];

/// Left-rotation amounts, four per round.
pub(super) const S: [[u32; 4]; 4] = [[7, 12, 17, 22], [5, 9, 14, 20], [4, 11, 16, 23], [6, 10, 15, 21]];

/// The message word step `i` adds.
pub(super) const fn word(i: usize) -> usize {
    match i / 16 {
        0 => i,
        1 => (5 * i + 1) % 16,
        2 => (3 * i + 5) % 16,
        _ => (7 * i) % 16,
    }
}

/// The MD5 of a stream being hashed: chaining values, bytes seen, and the
/// bytes of a block not yet whole.
#[derive(Clone)]
pub struct Md5 {
    pub(super) abcd: [u32; 4],
    len: u64,
    tail: [u8; 64],
    tail_len: usize,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    pub fn new() -> Self {
        Self {
            abcd: INIT,
            len: 0,
            tail: [0; 64],
            tail_len: 0,
        }
    }

    /// Hashes `data` here.
    pub fn update(&mut self, data: &[u8]) {
        let blocks = self.split(data);
        compress(&mut self.abcd, &data[blocks]);
    }

    /// Takes `data` in except its whole blocks: completes and hashes a
    /// buffered partial block from its head, keeps what follows its whole
    /// blocks, and returns the range of those blocks, which the caller
    /// must hash into `abcd` before this state is used again.
    pub(super) fn split(&mut self, data: &[u8]) -> std::ops::Range<usize> {
        self.len += data.len() as u64;
        let mut start = 0;
        if self.tail_len > 0 {
            start = (64 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + start].copy_from_slice(&data[..start]);
            self.tail_len += start;
            if self.tail_len < 64 {
                return start..start;
            }
            let block = self.tail;
            compress(&mut self.abcd, &block);
            self.tail_len = 0;
        }
        let end = start + (data.len() - start) / 64 * 64;
        self.tail_len = data.len() - end;
        self.tail[..self.tail_len].copy_from_slice(&data[end..]);
        start..end
    }

    /// Pads the stream and returns its digest.
    pub fn finish(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut pad = [0u8; 128];
        pad[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
        pad[self.tail_len] = 0x80;
        let total = if self.tail_len < 56 { 64 } else { 128 };
        pad[total - 8..total].copy_from_slice(&bits.to_le_bytes());
        compress(&mut self.abcd, &pad[..total]);
        let mut out = [0u8; 16];
        for (o, v) in out.chunks_exact_mut(4).zip(self.abcd) {
            o.copy_from_slice(&v.to_le_bytes());
        }
        out
    }
}

/// The steps of round `R`: `a = b + rotl(a + f(b, c, d) + K[i] + M[word(i)], s)`.
#[inline(always)]
fn round<const R: usize>(v: &mut [u32; 4], m: &[u32; 16]) {
    let [mut a, mut b, mut c, mut d] = *v;
    for j in 0..16 {
        let i = R * 16 + j;
        let f = match R {
            0 => (b & c) | (!b & d),
            1 => (b & d) | (c & !d),
            2 => b ^ c ^ d,
            _ => c ^ (b | !d),
        };
        let t = a
            .wrapping_add(f)
            .wrapping_add(K[i])
            .wrapping_add(m[word(i)])
            .rotate_left(S[R][j % 4]);
        (a, b, c, d) = (d, b.wrapping_add(t), b, c);
    }
    *v = [a, b, c, d];
}

/// Advances `abcd` over `blocks`, a whole number of 64-byte blocks.
pub(super) fn compress(abcd: &mut [u32; 4], blocks: &[u8]) {
    debug_assert_eq!(blocks.len() % 64, 0);
    for block in blocks.chunks_exact(64) {
        let mut m = [0u32; 16];
        for (w, b) in m.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        let mut v = *abcd;
        round::<0>(&mut v, &m);
        round::<1>(&mut v, &m);
        round::<2>(&mut v, &m);
        round::<3>(&mut v, &m);
        for (s, x) in abcd.iter_mut().zip(v) {
            *s = s.wrapping_add(x);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oracle(data: &[u8]) -> [u8; 16] {
        <md5::Md5 as md5::Digest>::digest(data).into()
    }

    #[test]
    fn known_answers() {
        // RFC 1321, A.5.
        let hex = |d: &[u8]| hex::encode(Md5::new().tap_update(d).finish());
        assert_eq!(hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(b"abc"), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(b"12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
            "57edf4a22be3c955ac49da2e2107b67a"
        );
    }

    #[test]
    fn any_split_of_any_length_matches() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for len in [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 129, 1000] {
            let whole = oracle(&data[..len]);
            for cut in [0, 1, 3, 63, 64, 65, len / 2, len] {
                let cut = cut.min(len);
                let mut h = Md5::new();
                h.update(&data[..cut]);
                h.update(&data[cut..len]);
                assert_eq!(h.finish(), whole, "len {len} cut {cut}");
            }
        }
    }

    impl Md5 {
        fn tap_update(mut self, d: &[u8]) -> Self {
            self.update(d);
            self
        }
    }
}
