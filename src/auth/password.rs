//! Password hashing with bcrypt. Hashing and checking take a deliberate
//! while (cost 12 is about a quarter of a second), so both run on the
//! blocking thread pool, never on an HTTP worker.

/// A password as typed: `Debug` never shows it.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    pub fn new(value: impl Into<String>) -> Password {
        Password(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed: {0}")]
pub struct HashError(String);

pub struct PasswordHasher {
    cost: u32,
    /// A hash of a random password at the same cost: unknown usernames are
    /// checked against it, so that they take as long as known ones.
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher").field("cost", &self.cost).finish()
    }
}

impl PasswordHasher {
    pub async fn new(cost: u32) -> Result<PasswordHasher, HashError> {
        let random = Password::new(uuid::Uuid::new_v4().to_string());
        let dummy = hash_with(cost, random).await?;
        Ok(PasswordHasher { cost, dummy })
    }

    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        hash_with(self.cost, password.clone()).await
    }

    /// Whether `password` matches `hash`. A malformed stored hash matches nothing.
    pub async fn verify(&self, password: &Password, hash: &str) -> bool {
        // bcrypt reads only the first 72 bytes, so a longer password would
        // match the one that is its start. No password set here is longer
        // (they are refused past 72 bytes): a longer one is a wrong one, and
        // it is still checked, so that it takes as long as any other.
        let too_long = password.expose().len() > BCRYPT_MAX_BYTES;
        let (password, hash) = (password.clone(), hash.to_string());
        let matched = actix_web::web::block(move || bcrypt::verify(password.expose(), &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        matched && !too_long
    }

    /// Spends the time a real check would, and always fails.
    pub async fn verify_dummy(&self, password: &Password) -> bool {
        let _ = self.verify(password, &self.dummy).await;
        false
    }
}

/// The bytes of a password bcrypt reads.
const BCRYPT_MAX_BYTES: usize = 72;

async fn hash_with(cost: u32, password: Password) -> Result<String, HashError> {
    actix_web::web::block(move || bcrypt::hash(password.expose(), cost))
        .await
        .map_err(|e| HashError(e.to_string()))?
        .map_err(|e| HashError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_password_longer_than_bcrypt_reads_is_not_the_one_it_starts_with() {
        let hasher = PasswordHasher::new(4).await.unwrap();
        let set = "p".repeat(72);
        let hash = hasher.hash(&Password::new(set.clone())).await.unwrap();
        assert!(hasher.verify(&Password::new(set.clone()), &hash).await);
        assert!(!hasher.verify(&Password::new(format!("{set}EXTRA")), &hash).await);
    }

    #[actix_web::test]
    async fn hashes_verify_and_stay_secret() {
        let hasher = PasswordHasher::new(4).await.unwrap();
        let pw = Password::new("correct horse battery staple");
        let hash = hasher.hash(&pw).await.unwrap();
        assert!(hash.starts_with("$2b$04$"), "{hash}");
        assert!(hasher.verify(&pw, &hash).await);
        assert!(!hasher.verify(&Password::new("wrong"), &hash).await);
        assert!(!hasher.verify(&pw, "not a hash").await);
        assert!(!hasher.verify_dummy(&pw).await);
        assert!(!format!("{pw:?} {hasher:?}").contains("horse"));
    }
}
