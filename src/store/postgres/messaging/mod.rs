//! The message bus on PostgreSQL: the core's `MessageStore` with the same
//! semantics as the in-memory back-end, in the `msg_*` tables (migration
//! `000090_message_bus`), so that messages survive restarts and several
//! instances share one bus.
//!
//! Files by job: `topics` (topics and subscriptions), `publish` (routing and
//! de-duplication), `lease` (leases, acks, nacks, retries, dead-lettering),
//! `queues` (the original API's message operations and the dead-letter
//! queue), `report` (metrics and the retention sweep), `listener` (LISTEN
//! for other instances' changes), `rows` (decoding).
//!
//! Every operation that changes more than one row runs in one transaction;
//! a publish locks its topic's row, which serialises the round-robin position
//! and the de-duplication window per topic. A lease takes its rows with
//! `FOR UPDATE SKIP LOCKED`, so concurrent consumers of one subscription
//! never hand out the same delivery. Time is always the caller's `now`.

mod lease;
mod listener;
mod publish;
mod queues;
mod report;
mod rows;
mod topics;
mod trait_impl;

use std::sync::Arc;
use std::time::Duration;

use diesel_async::pooled_connection::PoolableConnection;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use hotswap_actors::messaging::{MessagingError, RetryPolicy};
use hotswap_actors::store::StoreError;
use tokio::sync::Notify;

use super::errors::Redactor;
use super::pool::{self, PgConn, PgPool, PgPoolSettings};

/// The channel every instance listens on; a notification means "something
/// may have become leasable" (a publish, nack, replay or resume).
pub(super) const CHANNEL: &str = "hotswap_messages";

/// What a transaction body fails with: a database error, mapped once the
/// connection's state is known, or the bus's own verdict.
#[derive(Debug)]
pub(super) enum Failure {
    Db(diesel::result::Error),
    Bus(MessagingError),
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure::Db(e)
    }
}

impl From<MessagingError> for Failure {
    fn from(e: MessagingError) -> Self {
        Failure::Bus(e)
    }
}

/// The message bus's PostgreSQL back-end.
pub struct PgMessageStore {
    pool: PgPool,
    redactor: Redactor,
    retry: RetryPolicy,
    idempotency_window: Duration,
    notify: Arc<Notify>,
    /// Stops the LISTEN task when the store goes.
    _listener: listener::ListenerGuard,
}

impl PgMessageStore {
    /// Opens a pool of its own (so that consumers never starve run
    /// checkpoints of connections) and starts listening for changes made by
    /// every instance. The tables must exist: run the migrations first.
    pub async fn connect(
        url: &str,
        settings: &PgPoolSettings,
        retry: RetryPolicy,
        idempotency_window: Duration,
    ) -> Result<PgMessageStore, MessagingError> {
        let redactor = Redactor::for_url(url);
        let pool = pool::build(url, settings).map_err(|e| MessagingError::Backend(redactor.scrub(e)))?;
        let notify = Arc::new(Notify::new());
        let listener = listener::start(url.to_owned(), settings.connect_timeout, redactor.clone(), notify.clone());
        let store = PgMessageStore { pool, redactor, retry, idempotency_window, notify, _listener: listener };
        // One round trip, so that a wrong URL shows at start-up.
        let mut conn = store.conn().await?;
        if let Err(e) = diesel::sql_query("SELECT 1 FROM msg_topics LIMIT 1").execute(&mut *conn).await {
            return Err(store.db_error(&mut conn, e));
        }
        Ok(store)
    }

    async fn conn(&self) -> Result<PgConn, MessagingError> {
        self.pool
            .get()
            .await
            .map_err(|e| bus_error(self.redactor.pool(e, crate::store::postgres::errors::Detail::Public)))
    }

    fn db_error(&self, conn: &mut AsyncPgConnection, e: diesel::result::Error) -> MessagingError {
        let broken = conn.is_broken();
        bus_error(self.redactor.db(e, broken, crate::store::postgres::errors::Detail::Public))
    }

    fn failure(&self, conn: &mut AsyncPgConnection, f: Failure) -> MessagingError {
        match f {
            Failure::Db(e) => self.db_error(conn, e),
            Failure::Bus(e) => e,
        }
    }

    /// Wakes this instance's long-polls at once; the NOTIFY sent in the
    /// transaction wakes the other instances' (and this one's again).
    fn wake_local(&self) {
        self.notify.notify_waiters();
    }
}

/// The store's failure kinds as the bus's: "cannot reach the database now"
/// stays retryable (503), anything else is a back-end failure (500).
fn bus_error(e: StoreError) -> MessagingError {
    match e {
        StoreError::Unavailable(m) => MessagingError::Unavailable(m),
        other => MessagingError::Backend(other.to_string()),
    }
}
