//! Scratch PostgreSQL databases for tests: each test gets a database of its
//! own, so tests run in parallel, and the database is dropped afterwards.
#![allow(dead_code)] // Each test binary uses part of this.

use std::io::Write;

pub mod npm;
pub mod pki;
pub mod poll;
pub mod requests;

use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap::store::postgres::{migrate, PgPoolSettings, PgStore};

pub const URL_VAR: &str = "HOTSWAP_TEST_DATABASE_URL";

/// A database created for one test; dropped (WITH (FORCE), so open pool
/// connections do not keep it alive) when this value is.
pub struct TestDb {
    admin_url: String,
    pub name: String,
    pub url: String,
}

/// The admin URL, or `None` after saying on stderr that `test` is skipped.
/// Written straight to stderr: the test harness captures `eprintln!`, and a
/// skip must not pass unnoticed.
pub fn admin_url(test: &str) -> Option<String> {
    match std::env::var(URL_VAR) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let _ = writeln!(std::io::stderr(), "{test}: skipped: {URL_VAR} is not set");
            None
        }
    }
}

impl TestDb {
    /// A fresh, empty database, or `None` when no server is configured.
    pub async fn create(test: &str) -> Option<TestDb> {
        let admin_url = admin_url(test)?;
        let name = format!("hotswap_t_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&admin_url)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot connect to {URL_VAR}: {e}"));
        // The name is ours and plain ASCII: nothing to quote beyond the identifier.
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut admin)
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot create database {name}: {e}"));
        let url = with_database(&admin_url, &name);
        Some(TestDb { admin_url, name, url })
    }

    /// A fresh database with every migration applied.
    pub async fn migrated(test: &str) -> Option<TestDb> {
        let db = Self::create(test).await?;
        migrate::run_pending(&db.url).await.unwrap_or_else(|e| panic!("{test}: migrations failed: {e}"));
        Some(db)
    }

    pub async fn store(&self) -> PgStore {
        PgStore::connect(&self.url, &PgPoolSettings::default()).await.expect("connect to the test database")
    }

    /// Runs one statement on the test database, for tests that poke at it.
    pub async fn execute(&self, sql: &str) {
        let mut conn = AsyncPgConnection::establish(&self.url).await.expect("connect to the test database");
        diesel::sql_query(sql).execute(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Drops the database now, while the test still holds this value.
    pub fn drop_now(&self) {
        drop_database(&self.admin_url, &self.name);
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        drop_database(&self.admin_url, &self.name);
    }
}

/// Drop runs synchronously, possibly inside a test's runtime: do the async
/// work on a thread with a small runtime of its own.
fn drop_database(admin_url: &str, name: &str) {
    let admin_url = admin_url.to_owned();
    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
    let outcome = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async {
            let mut admin = AsyncPgConnection::establish(&admin_url).await.map_err(|e| e.to_string())?;
            diesel::sql_query(sql).execute(&mut admin).await.map_err(|e| e.to_string())
        })
    })
    .join();
    if !matches!(outcome, Ok(Ok(_))) {
        let _ = writeln!(std::io::stderr(), "warning: could not drop test database {name}: {outcome:?}");
    }
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a postgres:// URL");
    let (authority, path_and_query) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let query = path_and_query.find('?').map(|i| &path_and_query[i..]).unwrap_or("");
    format!("{scheme}://{authority}/{name}{query}")
}

#[test]
fn replaces_the_database_name() {
    assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
    assert_eq!(with_database("postgres://u:p@h/db?sslmode=disable", "x"), "postgres://u:p@h/x?sslmode=disable");
    assert_eq!(with_database("postgresql://h", "x"), "postgresql://h/x");
    assert_eq!(with_database("postgres://h?a=b", "x"), "postgres://h/x?a=b");
}
