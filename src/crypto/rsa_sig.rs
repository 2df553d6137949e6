//! RSA public keys (SPKI or PKCS#1 PEM) and detached signatures over the
//! SHA-256 of an artifact, PKCS#1 v1.5 or PSS: what `openssl dgst -sha256
//! -sign key.pem` produces. Key generation and signing serve the CLI.

use hotswap_actors::domain::SignatureAlgorithm;
use rsa::pkcs1::{DecodeRsaPrivateKey, DecodeRsaPublicKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, PrivateKey, Pss, PublicKey};
use sha2::{Digest, Sha256};

/// The smallest modulus accepted for a trusted key.
pub const MIN_KEY_BITS: u32 = 2048;
/// What `hotswap keygen` makes.
pub const KEYGEN_BITS: usize = 3072;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not an RSA public key in PEM (SubjectPublicKeyInfo or PKCS#1)")]
    NotAPublicKey,
    #[error("the key is not an RSA private key in PEM (PKCS#8 or PKCS#1)")]
    NotAPrivateKey,
    #[error("the key has {bits} bits; at least {min} are required")]
    TooShort { bits: u32, min: u32 },
    #[error("{0}")]
    Other(String),
}

/// A parsed public key with what the registry shows of it.
#[derive(Debug, Clone)]
pub struct TrustedKey {
    pub key: PublicKey,
    pub bits: u32,
    /// "sha256:" + hex SHA-256 of the SubjectPublicKeyInfo DER.
    pub fingerprint: String,
    /// The key re-encoded as SPKI PEM.
    pub spki_pem: String,
}

/// Parses a PEM public key in either common form and refuses short keys.
pub fn parse_public_key(pem: &str, min_bits: u32) -> Result<TrustedKey, KeyError> {
    let pem = pem.trim();
    let key = PublicKey::from_public_key_pem(pem)
        .or_else(|_| PublicKey::from_pkcs1_pem(pem))
        .map_err(|_| KeyError::NotAPublicKey)?;
    let bits = key.n().bit_width();
    if bits < min_bits {
        return Err(KeyError::TooShort { bits, min: min_bits });
    }
    let der = key.to_public_key_der().map_err(|e| KeyError::Other(e.to_string()))?;
    let spki_pem = key.to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Other(e.to_string()))?;
    Ok(TrustedKey { fingerprint: format!("sha256:{}", super::sha256_hex(der.as_bytes())), key, bits, spki_pem })
}

/// Whether `signature` is `key`'s signature of the artifact whose SHA-256 is `digest`.
pub fn verify_digest(key: &PublicKey, algorithm: SignatureAlgorithm, digest: &[u8; 32], signature: &[u8]) -> bool {
    match algorithm {
        SignatureAlgorithm::RsaPkcs1v15Sha256 => key.verify(Pkcs1v15Sign::new::<Sha256>(), digest, signature).is_ok(),
        // Any salt length: openssl signs with the largest by default, other
        // tools with the digest's length.
        SignatureAlgorithm::RsaPssSha256 => {
            let pss = Pss { blinded: false, digest: Sha256::new(), salt_len: None };
            key.verify(pss, digest, signature).is_ok()
        }
    }
}

/// A fresh key pair: the private key as PKCS#8 PEM, the public as SPKI PEM.
pub fn generate_key_pair() -> Result<(String, String), KeyError> {
    use rsa::Generate;
    let key = PrivateKey::try_generate().map_err(|e| KeyError::Other(format!("key generation failed: {e}")))?;
    debug_assert_eq!(key.n().bit_width() as usize, KEYGEN_BITS);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Other(e.to_string()))?;
    let public = key.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| KeyError::Other(e.to_string()))?;
    Ok((private.to_string(), public))
}

pub fn parse_private_key(pem: &str) -> Result<PrivateKey, KeyError> {
    let pem = pem.trim();
    PrivateKey::from_pkcs8_pem(pem).or_else(|_| PrivateKey::from_pkcs1_pem(pem)).map_err(|_| KeyError::NotAPrivateKey)
}

/// Signs the SHA-256 of `artifact`.
pub fn sign(key: &PrivateKey, algorithm: SignatureAlgorithm, artifact: &[u8]) -> Result<Vec<u8>, KeyError> {
    let signed = match algorithm {
        SignatureAlgorithm::RsaPkcs1v15Sha256 => key.pkcs1v15_sign::<Sha256>(artifact),
        SignatureAlgorithm::RsaPssSha256 => key.pss_sign::<Sha256>(artifact),
    };
    signed.map_err(|e| KeyError::Other(format!("signing failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_verify_with_both_paddings() {
        let (private, public) = generate_key_pair().unwrap();
        let key = parse_private_key(&private).unwrap();
        let trusted = parse_public_key(&public, MIN_KEY_BITS).unwrap();
        assert_eq!(trusted.bits, KEYGEN_BITS as u32);
        assert!(trusted.fingerprint.starts_with("sha256:") && trusted.fingerprint.len() == 71);
        let artifact = b"module bytes";
        let digest = crate::crypto::sha256(artifact);
        for alg in [SignatureAlgorithm::RsaPkcs1v15Sha256, SignatureAlgorithm::RsaPssSha256] {
            let sig = sign(&key, alg, artifact).unwrap();
            assert!(verify_digest(&trusted.key, alg, &digest, &sig), "{alg:?}");
            assert!(!verify_digest(&trusted.key, alg, &crate::crypto::sha256(b"other bytes"), &sig), "{alg:?}");
        }
        let pkcs1 = sign(&key, SignatureAlgorithm::RsaPkcs1v15Sha256, artifact).unwrap();
        assert!(!verify_digest(&trusted.key, SignatureAlgorithm::RsaPssSha256, &digest, &pkcs1), "padding is checked");
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert_eq!(parse_public_key("hello", MIN_KEY_BITS).unwrap_err(), KeyError::NotAPublicKey);
        assert_eq!(
            parse_private_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----").unwrap_err(),
            KeyError::NotAPrivateKey
        );
    }
}
