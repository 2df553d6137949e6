//! Secret values sealed for a store that others can read (the PostgreSQL
//! back-end): AES-256-GCM under `secrets.encryption_key`, a fresh random
//! nonce per value, and the secret's id and version as associated data, so
//! that a sealed value copied onto another row or version does not open.
//! Whoever reads the database (a replica, a backup) learns nothing of the
//! values without the key, which lives only in the instances' settings.

use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine;

use super::{SecretError, SecretValue};

/// AES-GCM's nonce, stored before the ciphertext.
const NONCE_BYTES: usize = 12;

pub struct SealingKey(Aes256Gcm);

impl SealingKey {
    /// The key from its base64 text (`openssl rand -base64 32`): exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<SealingKey, String> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).map_err(|_| {
            "secrets.encryption_key is not base64 (make one with `openssl rand -base64 32`)".to_string()
        })?;
        if bytes.len() != 32 {
            return Err(format!(
                "secrets.encryption_key holds {} bytes where AES-256 needs 32 (make one with `openssl rand -base64 32`)",
                bytes.len()
            ));
        }
        Ok(SealingKey(Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes))))
    }

    /// The nonce followed by the ciphertext and its tag.
    pub fn seal(&self, id: &str, version: u32, value: &SecretValue) -> Result<Vec<u8>, SecretError> {
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let aad = associated_data(id, version);
        let sealed = self
            .0
            .encrypt(&nonce, Payload { msg: value.expose().as_bytes(), aad: &aad })
            .map_err(|_| SecretError::Invalid(format!("cannot seal version {version} of {id}")))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The value `seal` sealed for this id and version; an error when the key
    /// is another one or the bytes were altered or moved.
    pub fn open(&self, id: &str, version: u32, sealed: &[u8]) -> Result<SecretValue, SecretError> {
        let refused = || {
            SecretError::Unavailable(format!(
                "version {version} of {id} does not open with secrets.encryption_key (another key, or altered)"
            ))
        };
        if sealed.len() < NONCE_BYTES {
            return Err(refused());
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let aad = associated_data(id, version);
        let plain =
            self.0.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad: &aad }).map_err(|_| refused())?;
        String::from_utf8(plain).map(SecretValue::new).map_err(|_| refused())
    }
}

fn associated_data(id: &str, version: u32) -> Vec<u8> {
    format!("hotswap secret {id} v{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(fill: u8) -> SealingKey {
        SealingKey::from_base64(&base64::engine::general_purpose::STANDARD.encode([fill; 32])).unwrap()
    }

    #[test]
    fn a_value_opens_only_as_what_it_was_sealed_for() {
        let value = SecretValue::new("the signing key");
        let sealed = key(1).seal("jwt-signing-key", 2, &value).unwrap();
        assert!(!sealed.windows(15).any(|w| w == b"the signing key"), "no plain text at rest");
        assert!(key(1).open("jwt-signing-key", 2, &sealed).unwrap() == value);
        assert!(key(2).open("jwt-signing-key", 2, &sealed).is_err(), "another key");
        assert!(key(1).open("jwt-signing-key", 3, &sealed).is_err(), "moved to another version");
        assert!(key(1).open("other", 2, &sealed).is_err(), "moved to another secret");
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key(1).open("jwt-signing-key", 2, &altered).is_err(), "altered");
        let again = key(1).seal("jwt-signing-key", 2, &value).unwrap();
        assert_ne!(sealed, again, "a fresh nonce each time");
    }

    #[test]
    fn a_key_must_be_32_bytes_of_base64() {
        assert!(SealingKey::from_base64("not base64!").err().unwrap().contains("not base64"));
        let short = base64::engine::general_purpose::STANDARD.encode([0u8; 16]);
        assert!(SealingKey::from_base64(&short).err().unwrap().contains("holds 16 bytes"));
    }
}
