//! Schema migrations, embedded from `migrations/` at build time.
//!
//! diesel's migration harness is synchronous; diesel-async's wrapper blocks
//! on a tokio runtime to drive the connection. That cannot happen on the
//! single-threaded runtime of an actix System, so every job here runs on a
//! thread of its own with a multi-threaded runtime of its own, and the caller
//! awaits the answer without blocking its runtime.

use std::error::Error;
use std::time::Duration;

use diesel::migration::{MigrationSource, MigrationVersion};
use diesel::pg::Pg;
use diesel_async::{AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use hotswap_actors::store::StoreError;

use super::errors::{is_connectivity, Redactor};

pub const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// Longest wait for the migration connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Session lock key ("hotswap" in ASCII) that keeps two replicas starting at
/// once from migrating the same database together.
const MIGRATION_LOCK: i64 = 0x0068_6f74_7377_6170;

type Harness = AsyncMigrationHarness<AsyncPgConnection>;
type JobResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// Applies every pending migration; returns their names, oldest first.
pub async fn run_pending(url: &str) -> Result<Vec<String>, StoreError> {
    with_harness(url, |h| {
        let applied = h.run_pending_migrations(MIGRATIONS)?;
        names_of(&applied)
    })
    .await
}

/// Reverts the newest applied migration; returns its name, or `None` when
/// none is applied.
pub async fn revert_last(url: &str) -> Result<Option<String>, StoreError> {
    with_harness(url, |h| {
        if h.applied_migrations()?.is_empty() {
            return Ok(None);
        }
        let reverted = h.revert_last_migration(MIGRATIONS)?;
        Ok(names_of(&[reverted])?.pop())
    })
    .await
}

/// Every known migration, oldest first, with whether it is applied.
pub async fn status(url: &str) -> Result<Vec<(String, bool)>, StoreError> {
    with_harness(url, |h| {
        let applied = h.applied_migrations()?;
        let known = MigrationSource::<Pg>::migrations(&MIGRATIONS)?;
        Ok(known.iter().map(|m| (m.name().to_string(), applied.contains(&m.name().version()))).collect())
    })
    .await
}

/// The embedded migrations' names, oldest first.
pub fn known() -> Vec<String> {
    MigrationSource::<Pg>::migrations(&MIGRATIONS)
        .map(|all| all.iter().map(|m| m.name().to_string()).collect())
        .unwrap_or_default()
}

/// Directory names for versions, as `status` shows them.
fn names_of(versions: &[MigrationVersion<'_>]) -> JobResult<Vec<String>> {
    let known = MigrationSource::<Pg>::migrations(&MIGRATIONS)?;
    Ok(versions
        .iter()
        .map(|v| {
            known
                .iter()
                .find(|m| m.name().version() == *v)
                .map(|m| m.name().to_string())
                .unwrap_or_else(|| v.to_string())
        })
        .collect())
}

async fn with_harness<T, F>(url: &str, job: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&mut Harness) -> JobResult<T> + Send + 'static,
{
    let url = url.to_owned();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hotswap-migrate".into())
        .spawn(move || {
            let _ = tx.send(run_job(&url, job));
        })
        .map_err(|e| StoreError::Other(format!("cannot start the migration thread: {e}")))?;
    rx.await.map_err(|_| StoreError::Other("the migration thread panicked".into()))?
}

fn run_job<T, F>(url: &str, job: F) -> Result<T, StoreError>
where
    F: FnOnce(&mut Harness) -> JobResult<T>,
{
    let redactor = Redactor::for_url(url);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("hotswap-migrate-io")
        .enable_all()
        .build()
        .map_err(|e| StoreError::Other(format!("cannot start the migration runtime: {e}")))?;
    // Entered, not blocked on: the harness picks this runtime up and blocks
    // on it itself, while its worker drives the connection.
    let _entered = runtime.enter();
    let mut conn = runtime
        .block_on(super::pool::establish(url, CONNECT_TIMEOUT))
        .map_err(|e| redactor.connection(&e, super::errors::Detail::Operators))?;
    runtime
        .block_on(
            diesel::sql_query("SELECT pg_advisory_lock($1)")
                .bind::<diesel::sql_types::BigInt, _>(MIGRATION_LOCK)
                .execute(&mut conn),
        )
        .map_err(|e| redactor.db(e, false, super::errors::Detail::Operators))?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let outcome = job(&mut harness).map_err(|e| classify(&redactor, e));
    // Closing the connection releases the session lock.
    drop(harness);
    outcome
}

fn classify(redactor: &Redactor, e: Box<dyn Error + Send + Sync>) -> StoreError {
    let message = redactor.scrub(format!("migration failed: {e}"));
    // A failing migration arrives wrapped; its cause may be a lost connection.
    let mut cause: Option<&(dyn Error + 'static)> = Some(e.as_ref());
    while let Some(c) = cause {
        if c.downcast_ref::<diesel::result::Error>().is_some_and(is_connectivity) {
            return StoreError::Unavailable(message);
        }
        cause = c.source();
    }
    StoreError::Other(message)
}
