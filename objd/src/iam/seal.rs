//! Secrets at rest: access-key secrets are stored sealed with AES-256-GCM
//! under a key derived from the root secret key (HMAC-SHA256 of it with a
//! fixed label), a random 96-bit nonce per seal, and the access key id as
//! associated data (a sealed secret moved to another key id does not
//! open). Stored as hex of `nonce ‖ ciphertext ‖ tag`.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Seals and opens secrets with the deployment's derived key.
pub struct Sealer(Aes256Gcm);

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer")
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sealed secret does not open with this deployment's root secret key")]
pub struct Unsealable;

impl Sealer {
    pub fn derive(root_secret: &str) -> Self {
        let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(root_secret.as_bytes())
            .expect("any key length");
        m.update(b"strata iam secrets v1");
        let key: [u8; 32] = m.finalize().into_bytes().into();
        Self(Aes256Gcm::new(&key.into()))
    }

    pub fn seal(&self, id: &str, secret: &str) -> String {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            .expect("sealing cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        hex::encode(out)
    }

    pub fn open(&self, id: &str, sealed: &str) -> Result<String, Unsealable> {
        let raw = hex::decode(sealed).map_err(|_| Unsealable)?;
        if raw.len() < 12 + 16 {
            return Err(Unsealable);
        }
        let (nonce, body) = raw.split_at(12);
        let plain = self
            .0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| Unsealable)?;
        String::from_utf8(plain).map_err(|_| Unsealable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_id() {
        let s = Sealer::derive("root-secret-key");
        let sealed = s.seal("AKID", "the secret");
        assert!(!sealed.contains(&hex::encode("the secret")));
        assert_eq!(s.open("AKID", &sealed).unwrap(), "the secret");
        assert_ne!(s.seal("AKID", "the secret"), sealed, "a fresh nonce each time");
        assert_eq!(s.open("OTHER", &sealed), Err(Unsealable));
        assert_eq!(
            Sealer::derive("another-root").open("AKID", &sealed),
            Err(Unsealable)
        );
        let mut flipped = hex::decode(&sealed).unwrap();
        flipped[20] ^= 1;
        assert_eq!(s.open("AKID", &hex::encode(flipped)), Err(Unsealable));
        assert_eq!(s.open("AKID", "zz"), Err(Unsealable));
    }
}
