//! The PostgreSQL back-end for the conformance suite: each check gets a
//! freshly migrated database of its own (so checks run in parallel), and is
//! skipped, saying so on stderr, without HOTSWAP_TEST_DATABASE_URL.

use std::sync::Arc;
use std::time::Duration;

use hotswap::store::postgres::{PgMessageStore, PgPoolSettings};
use hotswap_actors::messaging::{RetryPolicy, SharedMessageStore};

use crate::support::TestDb;

/// The test profile's backoff: 100 ms ×2 capped at 400 ms.
pub fn test_retry() -> RetryPolicy {
    RetryPolicy { initial: Duration::from_millis(100), multiplier: 2, cap: Duration::from_millis(400) }
}

pub async fn open(db: &TestDb) -> PgMessageStore {
    PgMessageStore::connect(&db.url, &PgPoolSettings::default(), test_retry(), Duration::from_secs(24 * 3600))
        .await
        .expect("the message store opens on the test database")
}

/// A store on a database of its own; keep the `TestDb` until the check ends.
pub async fn store(test: &str) -> Option<(TestDb, SharedMessageStore)> {
    let db = TestDb::migrated(test).await?;
    let store = open(&db).await;
    Some((db, Arc::new(store)))
}
