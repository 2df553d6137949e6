//! The embedded migrations apply, revert one by one to nothing, and apply
//! again, on a fresh database, from inside an actix System (whose runtime is
//! single-threaded, as the server's is).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

mod support;

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use hotswap::store::postgres::migrate;

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    table_name: String,
}

/// Our tables in the public schema, sorted; diesel's bookkeeping table aside.
async fn tables(url: &str) -> Vec<String> {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    let rows: Vec<TableName> = diesel::sql_query(
        "SELECT table_name::text AS table_name FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' ORDER BY table_name",
    )
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.table_name).collect()
}

#[actix::test]
async fn migrations_apply_revert_to_zero_and_apply_again() {
    let Some(db) = support::TestDb::create("migrations::migrations_apply_revert_to_zero_and_apply_again").await else {
        return;
    };
    let known = migrate::known();
    assert!(known.len() >= 2, "{known:?}");
    assert!(migrate::status(&db.url).await.unwrap().iter().all(|(_, applied)| !applied));
    assert!(tables(&db.url).await.is_empty());

    let applied = migrate::run_pending(&db.url).await.unwrap();
    assert_eq!(applied, known);
    let status = migrate::status(&db.url).await.unwrap();
    assert_eq!(status, known.iter().map(|n| (n.clone(), true)).collect::<Vec<_>>());
    let full = tables(&db.url).await;
    for table in ["runs", "run_events", "nodes", "node_modules", "cluster_samples", "users", "tenants", "audit_log"] {
        assert!(full.iter().any(|t| t == table), "{table} missing from {full:?}");
    }
    // Nothing left to apply.
    assert!(migrate::run_pending(&db.url).await.unwrap().is_empty());

    // Newest first, one at a time, down to nothing.
    for (i, name) in known.iter().enumerate().rev() {
        assert_eq!(migrate::revert_last(&db.url).await.unwrap().as_deref(), Some(name.as_str()));
        let status = migrate::status(&db.url).await.unwrap();
        let expected: Vec<(String, bool)> = known.iter().enumerate().map(|(j, n)| (n.clone(), j < i)).collect();
        assert_eq!(status, expected);
    }
    assert_eq!(migrate::revert_last(&db.url).await.unwrap(), None);
    assert!(tables(&db.url).await.is_empty(), "down migrations leave tables behind");

    assert_eq!(migrate::run_pending(&db.url).await.unwrap(), known);
    assert_eq!(tables(&db.url).await, full);
}

#[actix::test]
async fn concurrent_runs_apply_each_migration_once() {
    let Some(db) = support::TestDb::create("migrations::concurrent_runs_apply_each_migration_once").await else {
        return;
    };
    let (a, b) = futures::join!(migrate::run_pending(&db.url), migrate::run_pending(&db.url));
    let mut all = a.unwrap();
    all.extend(b.unwrap());
    assert_eq!(all, migrate::known(), "the migration lock lets one runner apply everything");
}

#[actix::test]
async fn migrating_an_unreachable_server_is_unavailable() {
    match migrate::run_pending("postgres://hotswap:pw-s3cr3t@127.0.0.1:1/hotswap").await {
        Err(hotswap_actors::store::StoreError::Unavailable(m)) => assert!(!m.contains("pw-s3cr3t"), "{m}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

#[derive(QueryableByName)]
struct Json {
    #[diesel(sql_type = diesel::sql_types::Jsonb)]
    value: serde_json::Value,
}

async fn json(conn: &mut AsyncPgConnection, sql: &str) -> serde_json::Value {
    diesel::sql_query(sql).get_result::<Json>(conn).await.unwrap().value
}

/// Reverts the newest migrations, down to and including the one whose name
/// contains `name` (later ones are reverted first, as they would be).
async fn revert_through(url: &str, name: &str) {
    loop {
        let reverted =
            migrate::revert_last(url).await.unwrap().unwrap_or_else(|| panic!("no migration named {name} is applied"));
        if reverted.contains(name) {
            return;
        }
    }
}

/// Runs stored before node changes had a table of their own keep them: the
/// migration moves them out of the record in order, and reverting it puts
/// them back as they were.
#[actix::test]
async fn node_changes_move_out_of_the_record_and_back() {
    let Some(db) = support::TestDb::create("migrations::node_changes_move_out_of_the_record_and_back").await else {
        return;
    };
    migrate::run_pending(&db.url).await.unwrap();
    revert_through(&db.url, "run_node_changes").await;
    let changes = serde_json::json!([
        { "nodeId": "00000000-0000-0000-0000-00000000000a", "hostname": "qa-node-01", "environment": "QA",
          "before": { "active": null, "previous": null, "standby": null } },
        { "nodeId": "00000000-0000-0000-0000-00000000000b", "hostname": "qa-node-02", "environment": "QA",
          "before": { "active": { "version": "1.0.0" } } },
    ]);
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::sql_query(
        "INSERT INTO runs (tenant_id, execution_id, module_name, version, target_environment, status, \
                           created_at, created_at_nanos, revision, holds_module, record) \
         VALUES ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-0000000000ff', 'kmod', '2.0.0', \
                 'QA', 'Running', now(), 0, 3, true, jsonb_build_object('status', 'Running', 'changes', $1::jsonb))",
    )
    .bind::<diesel::sql_types::Jsonb, _>(&changes)
    .execute(&mut conn)
    .await
    .unwrap();

    migrate::run_pending(&db.url).await.unwrap();
    let moved = json(
        &mut conn,
        "SELECT jsonb_build_object('record', (SELECT record FROM runs), 'rows', (SELECT jsonb_agg(jsonb_build_object( \
           'seq', seq, 'nodeId', node_id, 'hostname', hostname, 'environment', environment, 'before', before) \
           ORDER BY seq) FROM run_node_changes)) AS value",
    )
    .await;
    assert_eq!(moved["record"], serde_json::json!({ "status": "Running" }), "the changes left the record");
    let rows = moved["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["seq"], i);
        for field in ["nodeId", "hostname", "environment", "before"] {
            assert_eq!(row[field], changes[i][field], "{field} of change {i}");
        }
    }

    revert_through(&db.url, "run_node_changes").await;
    let restored = json(&mut conn, "SELECT record AS value FROM runs").await;
    assert_eq!(restored["changes"], changes, "reverting puts the changes back in order");
}
