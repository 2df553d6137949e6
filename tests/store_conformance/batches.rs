//! Deployment batches: round trips of the whole record (hostile strings
//! included), replacement by a later save, the running list across tenants
//! in creation order, tenant isolation, and the audit entry of every save.

use super::*;
use hotswap_actors::domain::{
    AuditActor, AuditCategory, AuditQuery, BatchRecord, BatchStatus, BatchStep, BatchStepStatus, NewAuditEntry,
};

fn batch(tenant: TenantId, created: DateTime<Utc>) -> BatchRecord {
    BatchRecord {
        tenant_id: tenant,
        batch_id: Uuid::new_v4(),
        target_environment: Environment::Qa,
        strategy: Some(Strategy::Rolling),
        requester_email: NASTY[4].into(),
        metadata: NASTY.iter().enumerate().map(|(i, n)| (format!("k{i}"), n.to_string())).collect(),
        allow_downgrade: true,
        created_by: AuditActor::user(Uuid::new_v4(), NASTY[0]),
        status: BatchStatus::Running,
        message: NASTY[5].into(),
        steps: vec![
            BatchStep {
                module: "kmod-base".into(),
                version: "1.0.0".into(),
                wave: 1,
                depends_on: vec![],
                status: BatchStepStatus::Running,
                execution_id: Some(Uuid::new_v4()),
                message: NASTY[6].into(),
                downgrade_audited: true,
            },
            BatchStep {
                module: "kmod-api".into(),
                version: "2.0.0-rc.1".into(),
                wave: 2,
                depends_on: vec!["kmod-base".into()],
                status: BatchStepStatus::Pending,
                execution_id: None,
                message: String::new(),
                downgrade_audited: false,
            },
        ],
        created_at: micros(created),
        updated_at: micros(created),
    }
}

fn audit(tenant: TenantId, kind: &str) -> NewAuditEntry {
    NewAuditEntry::new(tenant, AuditActor::system(), AuditCategory::Deployment, kind)
}

async fn audit_count(store: &SharedStore, tenant: TenantId) -> u64 {
    store.list_audit(tenant, &AuditQuery { limit: 100, ..AuditQuery::default() }).await.unwrap().total
}

async fn batches_round_trip_replace_and_list_running(store: SharedStore) {
    let (t1, t2) = (tenant(), tenant());
    let older = batch(t2, at(100, 0));
    let mut newer = batch(t1, at(200, 123_456_000));
    store.save_batch(&newer, &audit(t1, "DeploymentBatchCreated")).await.unwrap();
    store.save_batch(&older, &audit(t2, "DeploymentBatchCreated")).await.unwrap();
    assert_eq!(store.get_batch(t1, newer.batch_id).await.unwrap(), Some(newer.clone()));
    // Another tenant's id is not found.
    assert_eq!(store.get_batch(t2, newer.batch_id).await.unwrap(), None);
    let running: Vec<Uuid> = store.batches_in_flight().await.unwrap().iter().map(|b| b.batch_id).collect();
    assert_eq!(running, vec![older.batch_id, newer.batch_id], "every tenant's, oldest first");

    newer.steps[0].status = BatchStepStatus::Succeeded;
    newer.status = BatchStatus::Succeeded;
    newer.updated_at = micros(at(300, 0));
    store.save_batch(&newer, &audit(t1, "DeploymentBatchSucceeded")).await.unwrap();
    assert_eq!(store.get_batch(t1, newer.batch_id).await.unwrap(), Some(newer.clone()));
    let running: Vec<Uuid> = store.batches_in_flight().await.unwrap().iter().map(|b| b.batch_id).collect();
    assert_eq!(running, vec![older.batch_id], "a finished batch leaves the list");
    assert_eq!(audit_count(&store, t1).await, 2, "each save wrote its entry");
    assert_eq!(audit_count(&store, t2).await, 1);
}

/// A tenant's batches newest first, cut at the limit, paged from a batch;
/// none of another tenant's.
async fn recent_batches_newest_first_per_tenant(store: SharedStore) {
    let (mine, theirs) = (tenant(), tenant());
    let mut made: Vec<BatchRecord> = [300, 100, 200].iter().map(|s| batch(mine, at(*s, 0))).collect();
    // Two created in the same instant are told apart (and paged) by their ids.
    let mut twin = batch(mine, at(200, 0));
    twin.batch_id = Uuid::from_u128(made[2].batch_id.as_u128() ^ 1);
    made.push(twin);
    for b in &made {
        store.save_batch(b, &audit(mine, "DeploymentBatchCreated")).await.unwrap();
    }
    store.save_batch(&batch(theirs, at(400, 0)), &audit(theirs, "DeploymentBatchCreated")).await.unwrap();
    let ids = |batches: Vec<BatchRecord>| batches.iter().map(|b| b.batch_id).collect::<Vec<_>>();
    let (twin_a, twin_b) = (made[2].batch_id.max(made[3].batch_id), made[2].batch_id.min(made[3].batch_id));
    let newest_first = vec![made[0].batch_id, twin_a, twin_b, made[1].batch_id];
    assert_eq!(ids(store.recent_batches(mine, 10, None).await.unwrap()), newest_first);
    assert_eq!(ids(store.recent_batches(mine, 2, None).await.unwrap()), newest_first[..2].to_vec());
    assert_eq!(store.recent_batches(mine, 1, None).await.unwrap()[0], made[0], "whole records");
    assert_eq!(store.recent_batches(tenant(), 10, None).await.unwrap(), vec![]);
    // Paging: each page starts after the last batch of the one before, through the twins.
    let mut paged = Vec::new();
    let mut before = None;
    loop {
        let page = store.recent_batches(mine, 1, before).await.unwrap();
        let Some(last) = page.last() else { break };
        before = Some(last.cursor());
        paged.extend(ids(page));
    }
    assert_eq!(paged, newest_first, "every batch once, in order");
}

conformance!(batches_round_trip_replace_and_list_running, recent_batches_newest_first_per_tenant);
