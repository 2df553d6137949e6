//! Two instances of the real binary on one fresh database and one Redis.

use crate::process::{free_port, Server};
use crate::support::TestDb;

pub struct Cluster {
    pub a: Server,
    pub b: Server,
    // Dropped after the servers (fields drop in order): the database outlives
    // the processes using it.
    _db: TestDb,
    _logs: tempfile::TempDir,
}

/// The settings both instances share: the database, Redis under a prefix of
/// this test's own, and no reconciler (see main.rs).
fn shared_vars(db: &TestDb, redis_url: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__REDIS__URL", redis_url.to_string()),
        ("HOTSWAP__REDIS__KEY_PREFIX", format!("t{}", uuid::Uuid::new_v4().simple())),
        ("HOTSWAP__RECOVERY__RECONCILE_INTERVAL", "0s".to_string()),
    ]
}

impl Cluster {
    /// `None` (the test is skipped, saying so) without a test database.
    pub async fn start(test: &str, redis_url: &str, extra: &[(&'static str, String)]) -> Option<Cluster> {
        let db = TestDb::migrated(test).await?;
        let logs = tempfile::tempdir().expect("log dir");
        let mut vars = shared_vars(&db, redis_url);
        vars.extend(extra.iter().cloned());
        // One after the other: the second finds the demo users seeded.
        let a = Server::start(free_port(), &vars, logs.path().join("a.log")).await;
        let b = Server::start(free_port(), &vars, logs.path().join("b.log")).await;
        Some(Cluster { a, b, _db: db, _logs: logs })
    }

    /// Both logs, for a failure's message.
    pub fn logs(&self) -> String {
        format!("--- instance A ---\n{}\n--- instance B ---\n{}", self.a.log_text(), self.b.log_text())
    }
}
