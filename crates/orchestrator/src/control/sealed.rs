//! Secrets sealed with the fleet key, for the few an agent needs (the SMTP password, the SMS
//! gateway's token): they travel and rest encrypted, and are opened in memory only when used.
//!
//! ChaCha20-Poly1305 under a key derived from the fleet key with HKDF-SHA256, so the key that
//! signs requests never encrypts anything itself. Each value is bound to its purpose (the
//! associated data), so a sealed token cannot be passed off as a password.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use serde::{Deserialize, Serialize};

use super::FleetKey;
use crate::secret::Secret;

/// What HKDF derives the sealing key for.
const INFO: &[u8] = b"orchestrator sealed secrets v1";

/// An encrypted secret: hexadecimal nonce and ciphertext (with its tag).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: String,
    pub ciphertext: String,
}

/// A sealed secret that does not open: another fleet's key, another purpose, or damage.
#[derive(Debug, thiserror::Error)]
#[error("the sealed {purpose} does not open with this fleet's key")]
pub struct OpenError {
    purpose: String,
}

fn cipher(key: &FleetKey) -> ChaCha20Poly1305 {
    let hkdf = hkdf::Hkdf::<sha2::Sha256>::new(None, key.as_bytes());
    let mut derived = [0u8; 32];
    hkdf.expand(INFO, &mut derived).expect("32 bytes is a valid HKDF-SHA256 length");
    ChaCha20Poly1305::new(Key::from_slice(&derived))
}

/// Encrypts `secret` for `purpose` (such as `smtp password`).
pub fn seal(key: &FleetKey, purpose: &str, secret: &Secret) -> Sealed {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("the system has a random source");
    let payload = Payload { msg: secret.expose().as_bytes(), aad: purpose.as_bytes() };
    let ciphertext = cipher(key)
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("encrypting a short value in memory cannot fail");
    Sealed { nonce: hex::encode(nonce), ciphertext: hex::encode(ciphertext) }
}

/// Decrypts a value sealed for `purpose`.
pub fn open(key: &FleetKey, purpose: &str, sealed: &Sealed) -> Result<Secret, OpenError> {
    let failed = || OpenError { purpose: purpose.to_string() };
    let nonce = hex::decode(&sealed.nonce).map_err(|_| failed())?;
    let ciphertext = hex::decode(&sealed.ciphertext).map_err(|_| failed())?;
    if nonce.len() != 12 {
        return Err(failed());
    }
    let payload = Payload { msg: &ciphertext, aad: purpose.as_bytes() };
    let plain = cipher(key).decrypt(Nonce::from_slice(&nonce), payload).map_err(|_| failed())?;
    String::from_utf8(plain).map(Secret::new).map_err(|_| failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_purpose() {
        let key = FleetKey::generate();
        let secret = Secret::new("hunter2-smtp");
        let sealed = seal(&key, "smtp password", &secret);
        assert!(!sealed.ciphertext.contains(&hex::encode("hunter2")));
        assert_eq!(open(&key, "smtp password", &sealed).expect("opens"), secret);
        assert!(open(&FleetKey::generate(), "smtp password", &sealed).is_err());
        assert!(open(&key, "sms token", &sealed).is_err());
        let mut damaged = sealed.clone();
        damaged.ciphertext.replace_range(0..2, "00");
        if damaged != sealed {
            assert!(open(&key, "smtp password", &damaged).is_err());
        }
    }

    #[test]
    fn the_same_secret_seals_differently_each_time() {
        let key = FleetKey::generate();
        let secret = Secret::new("token");
        assert_ne!(seal(&key, "p", &secret), seal(&key, "p", &secret));
    }
}
