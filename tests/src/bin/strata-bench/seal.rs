//! What encryption costs on one core: sealing and opening 1 MiB of data
//! as objd's packages with each cipher, beside the MD5 every PUT computes
//! for its ETag (the baseline a PUT pays already) and RustCrypto's
//! AES-256-GCM.

use super::{Stats, random_bytes, repeat};
use md5::{Digest, Md5};
use objd::meta::EncryptionRecord;
use objd::sse::package::{Opener, Sealer, package_size};
use objd::sse::{Algorithm, DataKey};
use std::time::Duration;

pub fn seal(block: u64, duration: f64, json: bool) {
    let input = random_bytes(block as usize);
    let report = |name: &str, n: u64, el: Duration| {
        Stats {
            name: name.to_owned(),
            size: block,
            concurrency: 1,
            elapsed: el,
            ops: n,
            bytes: n * block,
            ..Default::default()
        }
        .report(json)
    };
    let (n, el) = repeat(duration, || {
        std::hint::black_box(Md5::digest(&input));
    });
    report("md5 (every PUT)", n, el);
    // RustCrypto's AES-256-GCM on the same packages, for comparison (objd
    // computes both ciphers with ring).
    let rc = <aes_gcm::Aes256Gcm as aes_gcm::aead::KeyInit>::new(&[7u8; 32].into());
    let mut buf = input.to_vec();
    let (n, el) = repeat(duration, || {
        for chunk in buf.chunks_mut(65_508) {
            let nonce = aes_gcm::Nonce::from_slice(&[0u8; 12]);
            std::hint::black_box(
                aes_gcm::aead::AeadInPlace::encrypt_in_place_detached(&rc, nonce, b"", chunk).expect("seal"),
            );
        }
    });
    report("seal aes-256-gcm (RustCrypto)", n, el);
    let key = DataKey::random();
    for (name, algo) in [
        ("aes-256-gcm", Algorithm::Aes256Gcm),
        ("chacha20-poly1305", Algorithm::ChaCha20Poly1305),
    ] {
        let rec = EncryptionRecord {
            mode: 1,
            algo: algo as u8,
            package: package_size(1 << 20),
            ..Default::default()
        };
        let (n, el) = repeat(duration, || {
            let mut s = Sealer::new(&key, &rec, 1).expect("sealer");
            std::hint::black_box(s.seal(&input, true));
        });
        report(&format!("seal {name}"), n, el);
        let sealed = Sealer::new(&key, &rec, 1).expect("sealer").seal(&input, true);
        let o = Opener::new(&key, &rec, 1, sealed.len() as u64).expect("opener");
        let (n, el) = repeat(duration, || {
            for (i, p) in sealed.chunks(rec.package as usize).enumerate() {
                std::hint::black_box(o.open(i as u64, p).expect("opens"));
            }
        });
        report(&format!("open {name}"), n, el);
    }
}
