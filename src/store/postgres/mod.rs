//! The PostgreSQL store: the same contract as the core's in-memory store,
//! kept in a database so that runs survive restarts and replicas share them.
//!
//! Files by job: `pool` (connections), `migrate` (schema), `runs`, `nodes`,
//! `metrics`, `users` (users and revoked tokens) and `audit` for the store traits,
//! `grouped_saves` (run saves that arrive together, written in one transaction),
//! `errors` (failure mapping),
//! `codec` (column conversions) and `schema` (diesel's table definitions).

mod agents;
mod approvals;
mod artifact_chunks;
mod audit;
mod batches;
mod cached_sql;
mod codec;
pub mod deployment_outbox;
mod errors;
mod graph;
mod grouped_saves;
mod installation;
mod leases;
mod messaging;
mod metrics;
pub mod migrate;
mod module_registry;
mod nodes;
mod pool;
mod run_changes;
mod runs;
pub mod schema;
mod schema_registry;
mod secrets;
mod slot_batches;
mod tenants;
mod users;

use async_trait::async_trait;
use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hotswap_actors::store::{Store, StoreError, StoreResult};

use errors::{Detail, Failure, Redactor};
pub use grouped_saves::GroupedSaves;
pub use messaging::PgMessageStore;
pub use pool::PgPoolSettings;
use pool::{PgConn, PgPool};
pub use secrets::PgSecrets;

/// A store in PostgreSQL, sharing a pool of connections.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    redactor: Redactor,
    /// How long a run or task lease lasts unless renewed.
    lease_ttl: std::time::Duration,
    /// Run saves waiting to be written together (`grouped_saves`).
    saves: std::sync::Arc<grouped_saves::SaveQueue>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL stays out of debug output: it may hold a password.
        let status = self.pool.status();
        f.debug_struct("PgStore").field("max_size", &status.max_size).field("size", &status.size).finish()
    }
}

impl PgStore {
    /// Builds the pool and makes one round trip, so that a wrong URL or an
    /// unreachable server shows at start-up. Does not run migrations: see
    /// [`migrate::run_pending`].
    pub async fn connect(url: &str, settings: &PgPoolSettings) -> Result<PgStore, StoreError> {
        let redactor = Redactor::for_url(url);
        let pool = pool::build(url, settings).map_err(|e| StoreError::Other(redactor.scrub(e)))?;
        let store =
            PgStore { pool, redactor, lease_ttl: hotswap_actors::store::DEFAULT_LEASE_TTL, saves: Default::default() };
        store.ping().await?;
        Ok(store)
    }

    /// The same store with leases lasting `ttl` unless renewed
    /// (`cluster.lease_ttl`, the same on every instance).
    pub fn with_lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// The lease length in milliseconds, as the SQL binds it.
    fn lease_ttl_ms(&self) -> i64 {
        i64::try_from(self.lease_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    async fn conn(&self) -> StoreResult<PgConn> {
        self.pool.get().await.map_err(|e| self.redactor.pool(e, Detail::Public))
    }

    /// Maps a database error seen on `conn`.
    fn db_error(&self, conn: &mut AsyncPgConnection, e: diesel::result::Error) -> StoreError {
        let broken = conn.is_broken();
        self.redactor.db(e, broken, Detail::Public)
    }

    fn failure(&self, conn: &mut AsyncPgConnection, f: Failure) -> StoreError {
        let broken = matches!(f, Failure::Db(_)) && conn.is_broken();
        self.redactor.failure(f, broken)
    }
}

#[async_trait]
impl Store for PgStore {
    /// With the database's own words: `/health/ready` shows them to Admins.
    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.pool.get().await.map_err(|e| self.redactor.pool(e, Detail::Operators))?;
        match diesel::sql_query("SELECT 1").execute(&mut *conn).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let broken = conn.is_broken();
                Err(self.redactor.db(e, broken, Detail::Operators))
            }
        }
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

impl PgStore {
    /// Most connections, open connections, and those lent out right now.
    pub fn pool_use(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.max_size, status.size, status.size.saturating_sub(status.available))
    }
}
