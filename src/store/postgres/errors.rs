//! Pool and database failures as `StoreError`s.
//!
//! Anything that says "the database cannot be reached right now" becomes
//! `Unavailable`, which the coordinators retry; the rest becomes `Other`.
//! No message carries the connection URL or its password.

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

/// Removes secrets taken from the connection URL from error messages.
#[derive(Clone, Default)]
pub(super) struct Redactor {
    secrets: Vec<String>,
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
        Redactor { secrets }
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

    pub(super) fn pool(&self, e: PoolError) -> StoreError {
        use deadpool::managed::PoolError as P;
        use diesel_async::pooled_connection::PoolError as Backend;
        match e {
            P::Timeout(kind) => {
                StoreError::Unavailable(format!("no database connection available ({kind:?} timed out)"))
            }
            P::Closed => StoreError::Unavailable("the database pool is closed".into()),
            P::Backend(Backend::ConnectionError(e)) => self.connection(&e),
            P::Backend(Backend::QueryError(e)) => {
                StoreError::Unavailable(self.scrub(format!("a pooled database connection failed its check: {e}")))
            }
            P::PostCreateHook(e) => {
                StoreError::Unavailable(self.scrub(format!("setting up a database connection failed: {e}")))
            }
            P::NoRuntimeSpecified => StoreError::Other("the database pool has no runtime for its timeouts".into()),
        }
    }

    /// Failing to connect at all, whatever the reason (refused, timed out,
    /// rejected credentials, missing database), leaves the store unavailable.
    pub(super) fn connection(&self, e: &ConnectionError) -> StoreError {
        StoreError::Unavailable(self.scrub(format!("cannot connect to the database: {e}")))
    }

    /// `broken` tells whether the connection was closed or left in an unusable
    /// state by the failure, which makes any error a connectivity one.
    pub(super) fn db(&self, e: DbError, broken: bool) -> StoreError {
        if broken || is_connectivity(&e) {
            return StoreError::Unavailable(self.scrub(format!("the database connection failed: {e}")));
        }
        StoreError::Other(self.scrub(format!("database error: {e}")))
    }

    pub(super) fn failure(&self, f: Failure, broken: bool) -> StoreError {
        match f {
            Failure::Db(e) => self.db(e, broken),
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
    fn scrubs_encoded_and_decoded_passwords() {
        let r = Redactor::for_url("postgres://u:s3cr%40t@h/db");
        assert_eq!(r.scrub("bad s3cr@t and s3cr%40t"), "bad *** and ***");
        assert!(!r.scrub("connecting to postgres://u:s3cr%40t@h/db failed").contains("s3cr"));
    }
}
