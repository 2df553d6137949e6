//! Pool and database failures as `StoreError`s.
//!
//! Anything that says "the database cannot be reached right now" becomes
//! `Unavailable`, which the coordinators retry; the rest becomes `Other`.
//! No message carries the connection URL or its password.
//!
//! An `Unavailable` error reaches clients as a 503, anonymous ones included
//! (a login during an outage), so its message says only what failed. The
//! server's own words (which name the database, its host or its user) go to
//! the log, at most every [`DETAIL_LOG_EVERY`], and to `ping`, which
//! `/health/ready` shows to Admins alone.

use diesel::result::{ConnectionError, DatabaseErrorKind, Error as DbError};
use hotswap_actors::store::StoreError;

use super::pool::PoolError;

/// What a transaction body can fail with: a database error, to be mapped
/// once the connection's state is known, or a verdict of the store itself.
#[derive(Debug)]
pub(super) enum Failure {
    Db(DbError),
    Store(StoreError),
}

impl From<DbError> for Failure {
    fn from(e: DbError) -> Self {
        Failure::Db(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

/// Server messages that mean the server is going away, starting, or full.
/// The driver does not expose SQLSTATE codes through diesel's error type,
/// so these are matched on the message PostgreSQL sends.
const UNAVAILABLE_MESSAGES: &[&str] = &[
    "terminating connection",
    "the database system is",
    "too many clients",
    "connection slots are reserved",
    "server closed the connection",
    "connection closed",
    "canceling statement due to conflict with recovery",
    // `statement_timeout` (set on every pooled connection) ran out.
    "canceling statement due to statement timeout",
];

/// How often an outage's detail is written to the log, at most.
const DETAIL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Removes secrets taken from the connection URL from error messages.
#[derive(Clone, Default)]
pub(super) struct Redactor {
    secrets: Vec<String>,
    /// When an outage's detail was last logged (ms since the epoch).
    detail_logged_at: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

/// Whether an `Unavailable` error keeps the database's own words (for
/// `ping`, read by Admins) or says only what failed (for everyone else).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Detail {
    Public,
    Operators,
}

impl Redactor {
    pub(super) fn for_url(url: &str) -> Self {
        let mut secrets = Vec::new();
        if let Some(password) = url_password(url) {
            if !password.is_empty() {
                let decoded = percent_decode(password);
                if decoded != password && !decoded.is_empty() {
                    secrets.push(decoded);
                }
                secrets.push(password.to_string());
            }
        }
        // The whole URL too, in case a driver quotes it back.
        secrets.push(url.to_string());
        // Longest first, so that a secret inside another is not half-replaced.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets, detail_logged_at: Default::default() }
    }

    /// `Unavailable` with `public` as its message, or `detail` for operators;
    /// the detail is logged either way, now and then.
    fn unavailable(&self, public: &str, detail: String, to: Detail) -> StoreError {
        let detail = self.scrub(detail);
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.detail_logged_at.load(std::sync::atomic::Ordering::Relaxed);
        let due = now.saturating_sub(last) >= DETAIL_LOG_EVERY.as_millis() as i64;
        if due && self.detail_logged_at.swap(now, std::sync::atomic::Ordering::Relaxed) == last {
            tracing::warn!(error = %detail, "the database is unavailable");
        }
        StoreError::Unavailable(if to == Detail::Operators { detail } else { public.to_string() })
    }

    pub(super) fn scrub(&self, message: impl Into<String>) -> String {
        let mut message = message.into();
        for secret in &self.secrets {
            if message.contains(secret.as_str()) {
                message = message.replace(secret.as_str(), "***");
            }
        }
        message
    }

    pub(super) fn pool(&self, e: PoolError, to: Detail) -> StoreError {
        use deadpool::managed::PoolError as P;
        use diesel_async::pooled_connection::PoolError as Backend;
        match e {
            P::Timeout(kind) => {
                StoreError::Unavailable(format!("no database connection available ({kind:?} timed out)"))
            }
            P::Closed => StoreError::Unavailable("the database pool is closed".into()),
            P::Backend(Backend::ConnectionError(e)) => self.connection(&e, to),
            P::Backend(Backend::QueryError(e)) => self.unavailable(
                "a pooled database connection failed its check",
                format!("a pooled database connection failed its check: {e}"),
                to,
            ),
            P::PostCreateHook(e) => self.unavailable(
                "setting up a database connection failed",
                format!("setting up a database connection failed: {e}"),
                to,
            ),
            P::NoRuntimeSpecified => StoreError::Other("the database pool has no runtime for its timeouts".into()),
        }
    }

    /// Failing to connect at all, whatever the reason (refused, timed out,
    /// rejected credentials, missing database), leaves the store unavailable.
    pub(super) fn connection(&self, e: &ConnectionError, to: Detail) -> StoreError {
        self.unavailable("cannot connect to the database", format!("cannot connect to the database: {e}"), to)
    }

    /// `broken` tells whether the connection was closed or left in an unusable
    /// state by the failure, which makes any error a connectivity one.
    pub(super) fn db(&self, e: DbError, broken: bool, to: Detail) -> StoreError {
        if broken || is_connectivity(&e) {
            return self.unavailable(
                "the database connection failed",
                format!("the database connection failed: {e}"),
                to,
            );
        }
        StoreError::Other(self.scrub(format!("database error: {e}")))
    }

    pub(super) fn failure(&self, f: Failure, broken: bool) -> StoreError {
        match f {
            Failure::Db(e) => self.db(e, broken, Detail::Public),
            Failure::Store(e) => e,
        }
    }
}

pub(super) fn is_connectivity(e: &DbError) -> bool {
    match e {
        DbError::DatabaseError(DatabaseErrorKind::UnableToSendCommand | DatabaseErrorKind::ClosedConnection, _) => true,
        // A standby that was promoted away from, or a primary demoted under us.
        DbError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction, _) => true,
        DbError::DatabaseError(_, info) => {
            let message = info.message().to_ascii_lowercase();
            UNAVAILABLE_MESSAGES.iter().any(|m| message.contains(m))
        }
        DbError::BrokenTransactionManager => true,
        DbError::RollbackErrorOnCommit { rollback_error, .. } => is_connectivity(rollback_error),
        _ => false,
    }
}

/// The password of a `postgres://user:password@host/db` URL or of a
/// `key=value` connection string.
fn url_password(url: &str) -> Option<&str> {
    if let Some(rest) = url.strip_prefix("postgres://").or_else(|| url.strip_prefix("postgresql://")) {
        let authority = rest.split(['/', '?']).next().unwrap_or("");
        let userinfo = authority.rsplit_once('@')?.0;
        return userinfo.split_once(':').map(|(_, p)| p);
    }
    url.split_whitespace().find_map(|kv| kv.strip_prefix("password=")).map(|p| p.trim_matches('\''))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_passwords_in_both_url_forms() {
        assert_eq!(url_password("postgres://u:s3cr%40t@h:5432/db?x=1"), Some("s3cr%40t"));
        assert_eq!(url_password("postgresql://u@h/db"), None);
        assert_eq!(url_password("host=h user=u password=hunter2 dbname=d"), Some("hunter2"));
    }

    #[test]
    fn clients_read_what_failed_and_operators_why() {
        let r = Redactor::for_url("postgres://ops:pw@db.internal.example/hotswap");
        let refused = ConnectionError::BadConnection(
            "database \"hotswap\" is not currently accepting connections (user ops at db.internal.example)".into(),
        );
        let public = r.connection(&refused, Detail::Public).to_string();
        assert!(public.contains("cannot connect to the database"), "{public}");
        for named in ["hotswap\"", "ops", "db.internal.example"] {
            assert!(!public.contains(named), "{public} names {named}");
        }
        let detail = r.connection(&refused, Detail::Operators).to_string();
        assert!(detail.contains("not currently accepting connections") && detail.contains("db.internal.example"));
        let closed = DbError::DatabaseError(
            DatabaseErrorKind::ClosedConnection,
            Box::new("server at 10.1.2.3 closed".to_string()),
        );
        assert!(!r.db(closed, false, Detail::Public).to_string().contains("10.1.2.3"));
    }

    #[test]
    fn scrubs_encoded_and_decoded_passwords() {
        let r = Redactor::for_url("postgres://u:s3cr%40t@h/db");
        assert_eq!(r.scrub("bad s3cr@t and s3cr%40t"), "bad *** and ***");
        assert!(!r.scrub("connecting to postgres://u:s3cr%40t@h/db failed").contains("s3cr"));
    }
}
