//! Secrets at rest: access-key secrets are stored sealed with AES-256-GCM
//! under a key derived from the root secret key (HMAC-SHA256 of it with a
//! fixed label), a random 96-bit nonce per seal, and the access key id as
//! associated data (a sealed secret moved to another key id does not
//! open). Stored as hex of `nonce ‖ ciphertext ‖ tag`. Session tokens
//! ([`super::sts`]) are sealed the same way under a key of their own
//! (another label).

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

/// A 256-bit key derived from the root secret for one purpose.
pub fn derive_key(root_secret: &str, label: &str) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as hmac::digest::KeyInit>::new_from_slice(root_secret.as_bytes())
        .expect("any key length");
    m.update(label.as_bytes());
    m.finalize().into_bytes().into()
}

impl Sealer {
    /// The sealer of access-key secrets.
    pub fn derive(root_secret: &str) -> Self {
        Self::labelled(root_secret, "strata iam secrets v1")
    }

    /// A sealer with its own key for another purpose.
    pub fn labelled(root_secret: &str, label: &str) -> Self {
        Self(Aes256Gcm::new(&derive_key(root_secret, label).into()))
    }

    pub fn seal(&self, id: &str, secret: &str) -> String {
        hex::encode(self.seal_bytes(id, secret.as_bytes()))
    }

    /// `nonce ‖ ciphertext ‖ tag` of `plain`, bound to `id`.
    pub fn seal_bytes(&self, id: &str, plain: &[u8]) -> Vec<u8> {
        let nonce: [u8; 12] = rand::random();
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: id.as_bytes(),
                },
            )
            .expect("sealing cannot fail");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        out
    }

    pub fn open(&self, id: &str, sealed: &str) -> Result<String, Unsealable> {
        let raw = hex::decode(sealed).map_err(|_| Unsealable)?;
        String::from_utf8(self.open_bytes(id, &raw)?).map_err(|_| Unsealable)
    }

    /// The plain bytes of what [`Self::seal_bytes`] sealed for `id`.
    pub fn open_bytes(&self, id: &str, raw: &[u8]) -> Result<Vec<u8>, Unsealable> {
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
        Ok(plain)
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
