//! `[store]`: which back-end keeps the state, and its connection pool.

use serde::Deserialize;

use super::postgres::PgPoolSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    Memory,
    Postgres,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub backend: StoreBackend,
    pub url: String,
    pub pool: PgPoolSettings,
}

impl StoreSettings {
    pub fn validate(&self) -> Result<(), String> {
        if self.backend == StoreBackend::Postgres && self.url.trim().is_empty() {
            return Err("store.url is required when store.backend = \"postgres\" (HOTSWAP__STORE__URL)".into());
        }
        if self.pool.max_size == 0 {
            return Err("store.pool.max_size must be at least 1".into());
        }
        Ok(())
    }
}

// The URL may carry a password: never print it.
impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreSettings")
            .field("backend", &self.backend)
            .field("url", &if self.url.is_empty() { "" } else { "<set>" })
            .field("pool", &self.pool)
            .finish()
    }
}
