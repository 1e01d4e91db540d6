//! The package format of encrypted objects: arbitrary bytes given to the
//! package opener as a stored part never panic and never open (nothing
//! authenticates without the data key); arbitrary plaintext sealed with
//! arbitrary package sizes, ciphers and part numbers opens back to itself,
//! and with any one bit flipped its package fails to open.
#![no_main]

use libfuzzer_sys::fuzz_target;
use objd::meta::EncryptionRecord;
use objd::sse::DataKey;
use objd::sse::package::{Opener, Sealer};

fuzz_target!(|data: &[u8]| {
    if data.len() < 8 {
        return;
    }
    let (head, body) = data.split_at(8);
    let package = 29 + u32::from(u16::from_le_bytes([head[0], head[1]])) % 2000;
    let rec = EncryptionRecord {
        mode: 1,
        algo: 1 + head[2] % 2,
        package,
        ..Default::default()
    };
    let part = u32::from(head[3]);
    let key = DataKey::from_bytes([7; 32]);
    let size = package as usize;

    if let Ok(o) = Opener::new(&key, &rec, part, body.len() as u64) {
        for (i, p) in body.chunks(size).enumerate() {
            assert!(o.open(i as u64, p).is_err(), "unsealed bytes opened");
        }
        let (s, e, _) = o.sealed_range(0, body.len() as u64, body.len() as u64);
        assert!(s <= e && e <= body.len() as u64);
    }

    let mut sealer = Sealer::new(&key, &rec, part).unwrap();
    let sealed = sealer.seal(body, true);
    assert_eq!(sealed.len() as u64, rec.sealed_len(body.len() as u64));
    let o = Opener::new(&key, &rec, part, sealed.len() as u64).unwrap();
    let mut plain = Vec::new();
    for (i, p) in sealed.chunks(size).enumerate() {
        plain.extend(o.open(i as u64, p).unwrap());
    }
    assert_eq!(plain, body);
    let at = usize::from(u16::from_le_bytes([head[4], head[5]])) % sealed.len();
    let mut bad = sealed.clone();
    bad[at] ^= 1 << (head[6] % 8);
    let index = at / size;
    let end = ((index + 1) * size).min(bad.len());
    assert!(
        o.open(index as u64, &bad[index * size..end]).is_err(),
        "a flipped bit went unnoticed"
    );
});
