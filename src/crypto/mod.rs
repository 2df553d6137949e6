//! Cryptography for the registry and the secrets: RSA keys and detached
//! signatures over SHA-256 (`rsa_sig`), digests, and random values from the
//! operating system's CSPRNG (`random`).

pub mod random;
pub mod rsa_sig;
mod secret;
mod service_url;

pub use secret::Secret;
pub use service_url::ServiceUrl;

use sha2::{Digest, Sha256};

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// Whether `s` looks like a hex SHA-256 (64 lower-case hex digits).
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_of_known_input() {
        assert_eq!(super::sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert!(super::is_sha256_hex(&super::sha256_hex(b"")));
        assert!(!super::is_sha256_hex("ABC"));
    }
}
