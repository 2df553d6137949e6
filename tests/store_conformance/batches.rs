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
            },
            BatchStep {
                module: "kmod-api".into(),
                version: "2.0.0-rc.1".into(),
                wave: 2,
                depends_on: vec!["kmod-base".into()],
                status: BatchStepStatus::Pending,
                execution_id: None,
                message: String::new(),
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

conformance!(batches_round_trip_replace_and_list_running);
