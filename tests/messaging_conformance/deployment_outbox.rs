//! Run events on `hotswap.deployments` survive the death of the process that
//! stored them (PostgreSQL store and bus). The publisher's passes are driven
//! by hand, so the "crash" lands exactly where the test wants it: after an
//! event is stored and before it is published, and after an event is
//! published and before its outbox entry is cleared. A new publisher on a new
//! connection (the restarted process) then brings the subscriber every event
//! once, in order per run.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use hotswap::messaging::deployment_events::{event_id, message_for, DEPLOYMENTS_TOPIC};
use hotswap::messaging::deployment_outbox::{self, DeploymentOutbox};
use hotswap_actors::domain::{DeploymentRequest, Environment, RunEvent, RunRecord, RunStatus, TenantId};
use hotswap_actors::messaging::{NewSubscription, NewTopic, SharedMessageStore, SubscriptionKind};
use hotswap_actors::store::RunStore;
use serde_json::json;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::postgres_support;
use crate::support::TestDb;

fn run(tenant: TenantId, module: &str) -> RunRecord {
    let request = DeploymentRequest {
        module_name: module.into(),
        version: "2.0.0".into(),
        target_environment: Environment::Development,
        requester_email: "ops@example.com".into(),
        description: None,
        require_approval: false,
        metadata: Default::default(),
        strategy: None,
        canary_steps: None,
    };
    RunRecord::admitted(tenant, Uuid::new_v4(), request)
}

/// The run's `n`th event, of `kind`; `n` keeps the ids of two events apart.
fn event(run: &RunRecord, kind: &str, stage: &str, n: i64) -> RunEvent {
    RunEvent {
        tenant_id: run.tenant_id,
        execution_id: run.execution_id,
        at: run.created_at + TimeDelta::microseconds(n),
        kind: kind.into(),
        message: format!("{kind} {stage}"),
        data: json!({ "stage": stage }),
    }
}

/// The next revision of `run`, saved with `events`.
async fn save(store: &dyn RunStore, run: &mut RunRecord, status: RunStatus, events: &[RunEvent]) {
    run.revision += 1;
    run.status = status;
    store.save_run(run, events).await.unwrap();
}

/// Leases what the subscription holds until `expected` message ids arrived
/// (or 30 s passed), acking each; the ids in arrival order.
async fn receive(bus: &SharedMessageStore, tenant: TenantId, sub: Uuid, expected: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ids = Vec::new();
    while ids.len() < expected && Instant::now() < deadline {
        let wait = Duration::from_millis(500);
        for d in hotswap_actors::messaging::consume(bus.as_ref(), tenant, sub, 100, wait).await.unwrap() {
            bus.ack(tenant, sub, &d.message.message_id, Utc::now()).await.unwrap();
            ids.push(d.message.message_id.clone());
        }
    }
    ids
}

#[tokio::test]
async fn run_events_stored_before_a_crash_are_published_once_after_the_restart() {
    let Some(db) = TestDb::migrated("messaging_conformance::deployment_outbox").await else { return };
    let runs = db.store().await;
    let bus: SharedMessageStore = Arc::new(postgres_support::open(&db).await);
    let tenant = Uuid::new_v4();
    bus.create_topic(tenant, NewTopic::fan_out(DEPLOYMENTS_TOPIC), Utc::now()).await.unwrap();
    let spec = NewSubscription {
        topic_name: DEPLOYMENTS_TOPIC.into(),
        consumer_group: "watchers".into(),
        consumer_endpoint: "pull".into(),
        kind: SubscriptionKind::Pull,
        filter: None,
        max_retries: 3,
        ack_timeout: Duration::from_secs(60),
    };
    let sub = bus.create_subscription(tenant, spec, Utc::now()).await.unwrap().subscription_id;

    // The first process: run A is created and starts a stage; one pass publishes both.
    let mut a = run(tenant, "mod-a");
    let a_events = [
        event(&a, "DeploymentCreated", "", 1),
        event(&a, "StageStarted", "Deploy to Development", 2),
        event(&a, "NodeUpdated", "", 3), // not carried by the topic
        event(&a, "StageCompleted", "Deploy to Development", 4),
        event(&a, "DeploymentCompleted", "", 5),
    ];
    runs.create_run(&a, &a_events[..1]).await.unwrap();
    save(&runs, &mut a, RunStatus::Running, &a_events[1..2]).await;
    let mut topic_ready = HashSet::new();
    assert_eq!(deployment_outbox::drain(&bus, &runs, &mut topic_ready).await, 2);

    // Then more is stored, and the process dies before publishing it, except
    // for one event whose publish went through but whose outbox entry was not
    // cleared yet.
    save(&runs, &mut a, RunStatus::Running, &a_events[2..4]).await;
    save(&runs, &mut a, RunStatus::Succeeded, &a_events[4..]).await;
    let mut b = run(tenant, "mod-b");
    let b_events = [event(&b, "DeploymentCreated", "", 1), event(&b, "DeploymentFailed", "", 2)];
    runs.create_run(&b, &b_events[..1]).await.unwrap();
    save(&runs, &mut b, RunStatus::Failed, &b_events[1..]).await;
    let summary = a.summary();
    bus.publish(tenant, message_for(&summary, &a_events[3]).unwrap(), Utc::now()).await.unwrap();
    drop(runs);

    // The restarted process: a new connection, and the publisher's loop as the server runs it.
    let outbox: Arc<dyn DeploymentOutbox> = Arc::new(db.store().await);
    let publisher = deployment_outbox::spawn(bus.clone(), outbox.clone(), Arc::new(Notify::new()));

    let carried = |events: &[RunEvent]| -> Vec<String> {
        events.iter().filter(|e| e.kind != "NodeUpdated").map(event_id).collect()
    };
    let (a_ids, b_ids) = (carried(&a_events), carried(&b_events));
    let got = receive(&bus, tenant, sub, a_ids.len() + b_ids.len()).await;
    // Wait for the outbox to be empty: from then on nothing more is published.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !outbox.pending(1).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the outbox is never cleared");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let late = bus.lease(tenant, sub, 100, Utc::now()).await.unwrap();
    let got = [got, late.into_iter().map(|d| d.message.message_id.clone()).collect()].concat();
    publisher.abort();

    let unique: HashSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), got.len(), "an event arrived twice: {got:?}");
    let of = |ids: &[String]| -> Vec<String> { got.iter().filter(|id| ids.contains(id)).cloned().collect() };
    assert_eq!(of(&a_ids), a_ids, "run A's events, each once and in order");
    assert_eq!(of(&b_ids), b_ids, "run B's events, each once and in order");
    assert_eq!(got.len(), a_ids.len() + b_ids.len(), "nothing else: {got:?}");
}

/// The plan PostgreSQL runs for `sql` with `$1` set to `limit`, as JSON.
async fn plan_of(url: &str, sql: &str, limit: usize) -> serde_json::Value {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

    #[derive(diesel::QueryableByName)]
    struct Plan {
        #[diesel(sql_type = diesel::sql_types::Text)]
        plan: String,
    }
    let mut conn = AsyncPgConnection::establish(url).await.expect("connect to the test database");
    // EXPLAIN's output cannot be named as a column; a function of this session hands it back as text.
    diesel::sql_query(
        "CREATE FUNCTION pg_temp.plan_of(q text) RETURNS json LANGUAGE plpgsql AS \
         $$ DECLARE plan json; BEGIN EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || q INTO plan; RETURN plan; END $$",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let query = sql.replace("$1", &limit.to_string());
    let row: Plan = diesel::sql_query("SELECT pg_temp.plan_of($1)::text AS plan")
        .bind::<diesel::sql_types::Text, _>(query)
        .get_result(&mut conn)
        .await
        .unwrap();
    serde_json::from_str(&row.plan).unwrap()
}

/// Rows the plan read from `relation`, over every node that scans it. A
/// node's figures are per loop: the rows it returned and those its filter
/// dropped, times its loops.
fn rows_read(plan: &serde_json::Value, relation: &str) -> f64 {
    let own = if plan["Relation Name"] == relation {
        let per_loop =
            plan["Actual Rows"].as_f64().unwrap_or(0.0) + plan["Rows Removed by Filter"].as_f64().unwrap_or(0.0);
        per_loop * plan["Actual Loops"].as_f64().unwrap_or(1.0)
    } else {
        0.0
    };
    let below: f64 =
        plan["Plans"].as_array().map(|plans| plans.iter().map(|p| rows_read(p, relation)).sum()).unwrap_or(0.0);
    own + below
}

/// The publisher's read of its outbox looks up the events its entries name
/// and no others. The outbox is a queue that fills and empties within
/// seconds, so the planner's statistics of it are often those of a moment
/// when it was full: here taken with all 3,000 events waiting, after which
/// all but five are published. The read must still touch five rows of
/// `run_events`, not the whole history (a plain join was planned as a merge or
/// hash join over every stored event, on every pass).
#[tokio::test]
async fn the_outbox_read_does_not_grow_with_the_events_already_published() {
    let Some(db) = TestDb::migrated("messaging_conformance::outbox_read").await else { return };
    let runs = db.store().await;
    let tenant = Uuid::new_v4();
    for r in 0..30 {
        let mut stored = run(tenant, &format!("mod-{r}"));
        runs.create_run(&stored, &[event(&stored, "DeploymentCreated", "", 0)]).await.unwrap();
        let events: Vec<RunEvent> = (1..100).map(|n| event(&stored, "StageStarted", "Deploy", n)).collect();
        save(&runs, &mut stored, RunStatus::Running, &events).await;
    }
    let pending = runs.pending(10_000).await.unwrap();
    assert_eq!(pending.len(), 3_000, "every event stored waits in the outbox");
    db.execute("ANALYZE").await;
    let published: Vec<i64> = pending[..pending.len() - 5].iter().map(|p| p.entry).collect();
    runs.published(&published).await.unwrap();

    let plan = plan_of(&db.url, hotswap::store::postgres::deployment_outbox::PENDING_EVENTS_SQL, 256).await;
    let root = &plan[0]["Plan"];
    assert_eq!(root["Actual Rows"], 5, "the five entries left: {plan:#}");
    let read = rows_read(root, "run_events");
    assert!(read <= 5.0, "the read took {read} rows of run_events for 5 entries: {plan:#}");
}
