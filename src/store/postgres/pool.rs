//! The connection pool: deadpool over diesel-async connections.

use std::time::Duration;

use deadpool::managed::{Hook, HookError, HookResult, Metrics};
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::{Object, Pool};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, PoolError as PoolManagerError, RecyclingMethod,
};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde::Deserialize;

pub(super) type PgPool = Pool<AsyncPgConnection>;
pub(super) type PgConn = Object<AsyncPgConnection>;
pub(super) type PoolError = diesel_async::pooled_connection::deadpool::PoolError;

/// How the store's connection pool behaves.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgPoolSettings {
    /// Most connections open at once.
    pub max_size: usize,
    /// Longest wait for a new connection to be established.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Longest wait for a free connection when all are in use.
    #[serde(with = "humantime_serde")]
    pub wait_timeout: Duration,
    /// Longest wait for the health check of a connection being reused.
    #[serde(with = "humantime_serde")]
    pub recycle_timeout: Duration,
    /// Longest any one statement may run on a pooled connection (PostgreSQL's
    /// `statement_timeout`); a statement stuck behind a lock or a half-open
    /// connection is cancelled and the call answers "unavailable". Zero: none.
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for PgPoolSettings {
    fn default() -> Self {
        PgPoolSettings {
            max_size: 16,
            connect_timeout: Duration::from_secs(5),
            wait_timeout: Duration::from_secs(5),
            recycle_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
        }
    }
}

/// Establishes one connection, giving up after `timeout`.
pub(super) async fn establish(url: &str, timeout: Duration) -> Result<AsyncPgConnection, ConnectionError> {
    match tokio::time::timeout(timeout, AsyncPgConnection::establish(url)).await {
        Ok(result) => result,
        Err(_) => {
            Err(ConnectionError::BadConnection(format!("no connection within {}", humantime::format_duration(timeout))))
        }
    }
}

/// A pooled connection handed out less than this long ago is reused without
/// a test query.
const VERIFY_AFTER_IDLE: Duration = Duration::from_secs(1);

/// Checks a connection that has been idle for `idle` before it is handed
/// out again; one that fails is dropped and the pool takes or opens another.
async fn verify_idle(conn: &mut AsyncPgConnection, idle: Duration) -> HookResult<PoolManagerError> {
    if idle < VERIFY_AFTER_IDLE {
        return Ok(());
    }
    conn.batch_execute("SELECT 1").await.map_err(|e| HookError::Backend(PoolManagerError::QueryError(e)))
}

/// Builds the pool; no connection is opened until one is needed.
pub(super) fn build(url: &str, settings: &PgPoolSettings) -> Result<PgPool, String> {
    if settings.max_size == 0 {
        return Err("the pool's max_size must be at least 1".into());
    }
    let connect_timeout = settings.connect_timeout;
    let statement_timeout = settings.statement_timeout.as_millis();
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    // "Fast" recycling (a broken connection or one left in a transaction is
    // dropped) and, in `verify_idle`, a test query only for a connection that
    // has not been handed out for a while: a busy pool no longer pays a
    // round trip per checkout (half the statements of a running deployment
    // were those test queries). The price: after a server restart, a
    // connection used within the last second may fail one call with
    // Unavailable (callers retry it) before the pool drops it
    // (`store_conformance postgres_only::terminated_connections_are_replaced`).
    config.recycling_method = RecyclingMethod::Fast;
    config.custom_setup = Box::new(move |url| {
        let url = url.to_owned();
        Box::pin(async move {
            let mut conn = establish(&url, connect_timeout).await?;
            if statement_timeout > 0 {
                // A number, not text from outside: nothing to quote.
                conn.batch_execute(&format!("SET statement_timeout = {statement_timeout}"))
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
            Ok(conn)
        })
    });
    let manager = AsyncDieselConnectionManager::new_with_config(url, config);
    Pool::builder(manager)
        .max_size(settings.max_size)
        .wait_timeout(Some(settings.wait_timeout))
        .create_timeout(Some(settings.connect_timeout))
        .recycle_timeout(Some(settings.recycle_timeout))
        .runtime(deadpool::Runtime::Tokio1)
        .pre_recycle(Hook::<AsyncDieselConnectionManager<AsyncPgConnection>>::async_fn(|conn, metrics: &Metrics| {
            Box::pin(verify_idle(conn, metrics.last_used()))
        }))
        .build()
        // The builder's errors name no URL, but say nothing more than needed.
        .map_err(|e| format!("cannot build the database pool: {e}"))
}
