//! The secrets agents present: enrolment tokens (`hse_…`) and session
//! credentials (`hss_…`). Only their SHA-256 is ever stored.

use crate::crypto::{random, sha256_hex};

pub const ENROLMENT_PREFIX: &str = "hse_";
pub const SESSION_PREFIX: &str = "hss_";

/// A fresh secret with `prefix`, and its hash.
pub fn generate(prefix: &str) -> Result<(String, String), String> {
    let secret = format!("{prefix}{}", random::secret_string(43)?);
    let hash = sha256_hex(secret.as_bytes());
    Ok((secret, hash))
}

pub fn hash(secret: &str) -> String {
    sha256_hex(secret.as_bytes())
}
