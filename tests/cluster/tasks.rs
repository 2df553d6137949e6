//! Cluster-wide sweeps: with two instances up, each sweep's passes run on
//! one of them only, and when that instance is killed the other takes the
//! sweeps over within a lease and one renewal.

use std::time::Instant;

use diesel::sql_types::Text;
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use super::*;

/// Every task under a lease, as its pass logs it.
const TASKS: [&str; 6] = [
    "audit-retention",
    "artifact-sweep",
    "secret-rotation",
    "message-retention",
    "enrolment-token-retention",
    "batch-runner",
];

/// Short sweep intervals, and the passes in the log.
fn sweeping() -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__LOGGING__LEVEL", "info,hotswap_actors::cluster=debug".to_string()),
        ("HOTSWAP__AUDIT__PURGE_INTERVAL", "200ms".to_string()),
        ("HOTSWAP__REGISTRY__GC_INTERVAL", "200ms".to_string()),
        ("HOTSWAP__SECRETS__ROTATION_ENABLED", "true".to_string()),
        ("HOTSWAP__SECRETS__CHECK_INTERVAL", "200ms".to_string()),
        ("HOTSWAP__MESSAGING__RETENTION_SWEEP_INTERVAL", "200ms".to_string()),
        ("HOTSWAP__AGENT__TOKEN_SWEEP_INTERVAL", "200ms".to_string()),
        ("HOTSWAP__RECOVERY__RECONCILE_INTERVAL", "200ms".to_string()),
    ]
}

/// How many passes of `task` the log shows.
fn passes(log: &str, task: &str) -> usize {
    let line = format!("cluster task {task} runs a pass here");
    log.lines().filter(|l| l.contains(&line)).count()
}

#[derive(QueryableByName)]
struct HolderRow {
    #[diesel(sql_type = Text)]
    task: String,
    #[diesel(sql_type = Text)]
    owner: String,
}

/// (task, holder) for every task lease in the database.
async fn holders(db: &TestDb) -> Vec<(String, String)> {
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect to the test database");
    let rows: Vec<HolderRow> =
        diesel::sql_query("SELECT task, owner FROM task_leases ORDER BY task").load(&mut conn).await.unwrap();
    rows.into_iter().map(|r| (r.task, r.owner)).collect()
}

/// Waits until `server`'s log shows a pass of every task.
async fn runs_every_task(server: &Server, name: &str) {
    eventually_ok(Duration::from_secs(20), &format!("{name} runs every task"), async || {
        let log = server.log_text();
        let missing: Vec<_> = TASKS.iter().filter(|t| passes(&log, t) == 0).collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no pass on {name} yet of {missing:?}"))
        }
    })
    .await;
}

fn all_held_by(owner: &str) -> Vec<(String, String)> {
    let mut expected: Vec<_> = TASKS.iter().map(|t| (t.to_string(), owner.to_string())).collect();
    expected.sort();
    expected
}

#[actix_web::test]
async fn each_sweep_runs_on_one_instance_and_moves_when_its_holder_is_killed() {
    let Some(db) =
        TestDb::migrated("cluster::each_sweep_runs_on_one_instance_and_moves_when_its_holder_is_killed").await
    else {
        return;
    };
    let logs = tempfile::tempdir().unwrap();
    let mut a = instance(&db, "a", logs.path(), &sweeping()).await;
    runs_every_task(&a, "a").await;
    let b = instance(&db, "b", logs.path(), &sweeping()).await;

    // Both up: a keeps passing every task, and b, which asks each task's
    // lease as often, runs none.
    let before: Vec<_> = TASKS.iter().map(|t| passes(&a.log_text(), t)).collect();
    eventually_ok(Duration::from_secs(20), "a runs more passes of every task while b is up", async || {
        let log = a.log_text();
        let behind: Vec<_> = TASKS.iter().zip(&before).filter(|(t, n)| passes(&log, t) < *n + 3).collect();
        if behind.is_empty() {
            Ok(())
        } else {
            Err(format!("{behind:?}"))
        }
    })
    .await;
    let b_log = b.log_text();
    for task in TASKS {
        assert_eq!(passes(&b_log, task), 0, "b ran {task} while a held it:\n{b_log}");
    }
    assert_eq!(holders(&db).await, all_held_by("a"));

    a.kill();
    let killed = Instant::now();
    runs_every_task(&b, "b").await;
    // The lease, b's next renewal, then the task's own interval.
    let bound = LEASE_TTL + LEASE_TTL / 3 + Duration::from_millis(200) + Duration::from_secs(1);
    let took = killed.elapsed();
    assert!(took <= bound, "the sweeps moved after {took:?}, over {bound:?}");
    assert_eq!(holders(&db).await, all_held_by("b"));
    assert!(b.log_text().contains("this instance runs the cluster task audit-retention now"));
}
