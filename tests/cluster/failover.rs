//! Losing the instance that drives a run: SIGKILL hands the run to the
//! other instance once the lease runs out; SIGSTOP past the lease, then
//! SIGCONT, leaves the former owner fenced off, and it lets the run go.

use std::time::{Duration, Instant};

use diesel::sql_types::Jsonb;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::Value;

use super::*;

const M: &str = "kmod-clustered";
/// Long enough that the owner is stopped in the middle of a bake.
const BAKE: &str = "3s";

/// Waits until the run bakes its first canary wave in Production.
async fn in_production_bake(server: &Server, id: &str) {
    eventually_ok(Duration::from_secs(60), "the run bakes its first Production wave", async || {
        let run = run_on(server, id).await;
        let prod = run["stages"].as_array().and_then(|s| s.iter().find(|st| st["name"] == "Deploy to Production"));
        match (prod, run["currentWait"]["kind"].as_str()) {
            (Some(p), Some("CanaryBake")) if p["status"] == "Running" => Ok(()),
            _ => Err(format!("{:#}", run["stages"])),
        }
    })
    .await;
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Jsonb)]
    value: Value,
}

/// One JSON value per row of `sql` on the cluster's database.
async fn json_rows(db: &TestDb, sql: &str) -> Vec<Value> {
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect to the test database");
    let rows: Vec<JsonRow> = diesel::sql_query(sql).load(&mut conn).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.into_iter().map(|r| r.value).collect()
}

/// Each node's version history as stored shows the run's change once: the
/// run recorded every node once before changing it, and every node serves
/// 2.0.0 with 1.0.0 before it (a second load would have pushed 2.0.0 there).
async fn every_node_changed_once(db: &TestDb, server: &Server, id: &str) {
    // Each change is a row of its own (a checkpoint appends the new ones).
    let changes = json_rows(
        db,
        &format!(
            "SELECT jsonb_build_object('nodeId', node_id, 'hostname', hostname) AS value \
             FROM run_node_changes WHERE execution_id = '{id}' ORDER BY seq"
        ),
    )
    .await;
    let mut changed: Vec<_> = changes.iter().map(|c| c["nodeId"].as_str().unwrap().to_string()).collect();
    changed.sort();
    let before = changed.len();
    changed.dedup();
    assert_eq!(changed.len(), before, "a node recorded twice: {changes:#?}");
    let slots = json_rows(db, &format!("SELECT slots AS value FROM node_modules WHERE module_name = '{M}'")).await;
    let mut nodes = 0;
    for env in ["Development", "QA", "Staging", "Production"] {
        let versions = server.versions(env, M).await;
        assert!(versions.iter().all(|v| v.as_deref() == Some("2.0.0")), "{env}: {versions:?}");
        nodes += versions.len();
    }
    assert_eq!((changed.len(), slots.len()), (nodes, nodes), "every node changed, once");
    for s in &slots {
        assert_eq!(
            (s["active"]["version"].as_str(), s["previous"]["version"].as_str()),
            (Some("2.0.0"), Some("1.0.0")),
            "{s}"
        );
    }
}

/// A first run puts 1.0.0 everywhere; the second, 2.0.0 in two canary waves
/// in Production, is created on `a`. Its id once it bakes the first wave.
async fn second_run_in_bake(a: &Server) -> String {
    let mut first = deployment(M, "1.0.0", "Production");
    first["canarySteps"] = json!([100]);
    let id = create(a, &first).await;
    let run = a.finished(&id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "Succeeded", "{:#}", run["message"]);
    let mut second = deployment(M, "2.0.0", "Production");
    second["canarySteps"] = json!([50, 100]);
    let id = create(a, &second).await;
    in_production_bake(a, &id).await;
    id
}

#[actix_web::test]
async fn the_owner_killed_mid_bake_hands_its_run_to_the_other_instance() {
    let Some(db) = TestDb::migrated("cluster::the_owner_killed_mid_bake_hands_its_run_to_the_other_instance").await
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let bake = [("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", BAKE.to_string())];
    let mut a = instance(&db, "a", logs.path(), &bake).await;
    let b = instance(&db, "b", logs.path(), &bake).await;
    let id = second_run_in_bake(&a).await;
    assert_eq!(run_on(&b, &id).await["ownerInstance"], "a", "the instance that admitted the run drives it");

    a.kill();
    let killed = Instant::now();
    owned_by(&b, &id, "b", Duration::from_secs(10)).await;
    let took = killed.elapsed();
    // The lease may have been renewed just before the kill; b looks every third of a lease.
    let bound = LEASE_TTL + LEASE_TTL / 3 + Duration::from_millis(500);
    assert!(took <= bound, "takeover took {took:?}, over the lease and one renewal ({bound:?})");

    let run = b.finished(&id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}\n{}", b.log_text());
    every_node_changed_once(&db, &b, &id).await;
    assert!(b.log_text().contains("taking over runs whose owner stopped renewing its lease"), "{}", b.log_text());
}

#[actix_web::test]
async fn an_owner_stopped_past_its_lease_is_fenced_off_and_lets_the_run_go() {
    let Some(db) = TestDb::migrated("cluster::an_owner_stopped_past_its_lease_is_fenced_off_and_lets_the_run_go").await
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let bake = [("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", BAKE.to_string())];
    let a = instance(&db, "a", logs.path(), &bake).await;
    let b = instance(&db, "b", logs.path(), &bake).await;
    let id = second_run_in_bake(&a).await;

    let bake_until = run_on(&b, &id).await["currentWait"]["until"].as_str().unwrap().to_string();
    let bake_until = chrono::DateTime::parse_from_rfc3339(&bake_until).unwrap().to_utc();
    a.signal("STOP");
    owned_by(&b, &id, "b", Duration::from_secs(10)).await;
    // Woken after its bake has run out, a's first act is the checkpoint
    // that ends the bake.
    eventually_ok(Duration::from_secs(10), "a's bake runs out while it is stopped", async || {
        if chrono::Utc::now() > bake_until + chrono::TimeDelta::milliseconds(200) {
            Ok(())
        } else {
            Err("baking".into())
        }
    })
    .await;
    a.signal("CONT");

    // That write is refused by the fence, and a stops driving the run
    // without retrying it.
    eventually_ok(Duration::from_secs(10), "a's write is fenced and it lets the run go", async || {
        let log = a.log_text();
        if log.contains("no longer ours; coordinator stops") && log.contains("is now driven by b") {
            Ok(())
        } else {
            Err(log.lines().filter(|l| l.contains(&id)).collect::<Vec<_>>().join("\n"))
        }
    })
    .await;
    let run = b.finished(&id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}\n{}", b.log_text());
    assert_eq!(run["ownerInstance"], "b");
    every_node_changed_once(&db, &b, &id).await;
    let a_log = a.log_text();
    assert!(!a_log.contains("checkpoint refused; coordinator restarts"), "a retried a fenced run:\n{a_log}");
    assert_eq!(run_on(&a, &id).await["status"], "Succeeded", "a reads the run b finished");
}
