//! The audit trail: append-only, tenant-scoped, filtered and paged, and
//! written with the run changes it records.

use super::*;
use hotswap_actors::domain::{AuditActor, AuditCategory, AuditQuery, AuditResult, NewAuditEntry};

fn entry(tenant: TenantId, actor: &str, kind: &str, when: DateTime<Utc>) -> NewAuditEntry {
    let mut e = NewAuditEntry::new(tenant, AuditActor::user(Uuid::new_v4(), actor), AuditCategory::Security, kind)
        .resource("SigningKey", format!("key-{kind}"))
        .result(AuditResult::Denied)
        .message(format!("{actor} did {kind}"))
        .details(json!({ "n": 1 }));
    e.at = micros(when);
    e.actor.trace_id = Some(format!("trace-{kind}"));
    e.actor.source_address = Some("192.0.2.7".parse().unwrap());
    e.actor.user_agent = Some("curl/8".into());
    e
}

fn query(limit: u32) -> AuditQuery {
    AuditQuery { limit, ..AuditQuery::default() }
}

async fn audit_round_trip_filters_and_isolation(store: SharedStore) {
    let (a, b) = (tenant(), tenant());
    let entries: Vec<_> =
        (0..5).map(|i| entry(a, if i % 2 == 0 { "alice" } else { "bob" }, &format!("E{i}"), at(i, 0))).collect();
    store.append_audit(&entries).await.unwrap();
    store.append_audit(&[entry(b, "mallory", "E9", at(9, 0))]).await.unwrap();

    let all = store.list_audit(a, &query(100)).await.unwrap();
    assert_eq!(all.total, 5);
    let kinds: Vec<_> = all.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["E4", "E3", "E2", "E1", "E0"], "newest first");
    assert_eq!(all.items[4].entry, entries[0], "every field round-trips");

    let alice = store.list_audit(a, &AuditQuery { actor: Some("ALICE".into()), ..query(100) }).await.unwrap();
    assert_eq!(alice.total, 3);
    let ranged =
        store.list_audit(a, &AuditQuery { from: Some(at(1, 0)), to: Some(at(3, 0)), ..query(100) }).await.unwrap();
    assert_eq!(ranged.total, 3);
    let traced = store.list_audit(a, &AuditQuery { trace_id: Some("trace-E2".into()), ..query(100) }).await.unwrap();
    assert_eq!(traced.items.len(), 1);
    let none =
        store.list_audit(a, &AuditQuery { category: Some(AuditCategory::Deployment), ..query(100) }).await.unwrap();
    assert_eq!(none.total, 0);

    // Offset paging and cursor paging agree.
    let page2 = store.list_audit(a, &AuditQuery { offset: 2, ..query(2) }).await.unwrap();
    let cursor = store.list_audit(a, &AuditQuery { before_id: Some(all.items[1].id), ..query(2) }).await.unwrap();
    assert_eq!(page2.items, cursor.items);
    assert_eq!(cursor.total, 5, "the total ignores the cursor");

    let other = store.list_audit(b, &query(100)).await.unwrap();
    assert_eq!(other.total, 1, "tenant B sees only its own entry");
    assert_eq!(other.items[0].entry.actor.name, "mallory");
}

async fn run_changes_write_their_audit_entries(store: SharedStore) {
    let t = tenant();
    let r = run(t, "audited", at(0, 0), RunStatus::Running);
    let mut created = event(&r, "DeploymentCreated", 0);
    created.data = json!({ "actor": AuditActor::user("u-1", "deployer") });
    store.create_run(&r, &[created]).await.unwrap();
    let mut next = r.clone();
    next.revision += 1;
    store.save_run(&next, &[event(&r, "StageStarted", 1), event(&r, "DeploymentProgress", 2)]).await.unwrap();

    let page =
        store.list_audit(t, &AuditQuery { resource_id: Some(r.execution_id.to_string()), ..query(10) }).await.unwrap();
    let kinds: Vec<_> = page.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["StageStarted", "DeploymentCreated"], "progress events stay out of the trail");
    assert_eq!(page.items[1].entry.actor.name, "deployer");
    assert_eq!(page.items[0].entry.actor.name, "system");
    assert_eq!(page.items[0].entry.actor.trace_id.as_deref(), Some(r.trace_id.as_str()));

    // A refused save writes no audit entry either.
    let stale = store.save_run(&next, &[event(&r, "StageCompleted", 3)]).await;
    assert!(matches!(stale, Err(StoreError::Stale(_))));
    assert_eq!(store.list_audit(t, &query(10)).await.unwrap().total, 2);
}

async fn audit_purge_in_batches(store: SharedStore) {
    let t = tenant();
    let entries: Vec<_> = (0..7).map(|i| entry(t, "alice", &format!("P{i}"), at(i, 0))).collect();
    store.append_audit(&entries).await.unwrap();
    assert_eq!(store.purge_audit(at(5, 0), 3).await.unwrap(), 3);
    assert_eq!(store.purge_audit(at(5, 0), 3).await.unwrap(), 2);
    assert_eq!(store.purge_audit(at(5, 0), 3).await.unwrap(), 0);
    let left = store.list_audit(t, &query(10)).await.unwrap();
    let kinds: Vec<_> = left.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["P6", "P5"]);
}

async fn retention_pass_removes_only_entries_past_the_retention(store: SharedStore) {
    let t = tenant();
    let now = Utc::now();
    let old: Vec<_> = (0..5).map(|i| entry(t, "alice", &format!("Old{i}"), now - TimeDelta::days(40 + i))).collect();
    let recent = entry(t, "alice", "Recent", now - TimeDelta::days(2));
    store.append_audit(&old).await.unwrap();
    store.append_audit(std::slice::from_ref(&recent)).await.unwrap();
    let settings = hotswap_actors::settings::AuditSettings {
        retention_days: 30,
        purge_interval: std::time::Duration::from_secs(3600),
        purge_batch: 2,
    };
    let deleted = hotswap_actors::audit::purge_old_entries(store.clone(), settings).await;
    assert!(deleted >= 5, "every old entry goes, two per statement: {deleted}");
    let left = store.list_audit(t, &query(10)).await.unwrap();
    let kinds: Vec<_> = left.items.iter().map(|e| e.entry.event_type.as_str()).collect();
    assert_eq!(kinds, ["Recent"]);
}

conformance!(
    audit_round_trip_filters_and_isolation,
    run_changes_write_their_audit_entries,
    audit_purge_in_batches,
    retention_pass_removes_only_entries_past_the_retention,
);
