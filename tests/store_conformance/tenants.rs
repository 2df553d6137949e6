//! Tenants: round trips, unique subdomains, compare-and-set saves written
//! with their audit entries, and the run counts quotas and reports rely on.

use super::*;
use hotswap_actors::domain::{
    AuditActor, AuditCategory, AuditQuery, NewAuditEntry, Quota, TenantRecord, TenantStatus, Tier,
};

pub(crate) fn record(subdomain: &str, created: DateTime<Utc>) -> TenantRecord {
    let mut metadata = BTreeMap::new();
    for (i, nasty) in NASTY.iter().enumerate() {
        metadata.insert(format!("k{i}"), nasty.to_string());
    }
    TenantRecord {
        tenant_id: Uuid::new_v4(),
        name: NASTY[5].to_string(),
        subdomain: subdomain.to_string(),
        custom_domain: Some("deploy.example.com".into()),
        contact_email: "ops@example.com".into(),
        status: TenantStatus::Provisioning,
        tier: Tier::Professional,
        quota: Quota { max_websocket_sessions: u32::MAX, ..Tier::Professional.default_quota() },
        metadata,
        created_at: micros(created),
        updated_at: micros(created),
        suspended_at: None,
        deleted_at: None,
        paused_runs: vec![Uuid::new_v4(), Uuid::new_v4()],
        revision: 1,
    }
}

pub(crate) fn audit(t: &TenantRecord, kind: &str) -> NewAuditEntry {
    NewAuditEntry::new(t.tenant_id, AuditActor::user("u-9", "operator"), AuditCategory::TenantManagement, kind)
        .resource("Tenant", t.tenant_id)
}

async fn trail(store: &SharedStore, t: &TenantRecord) -> Vec<String> {
    let page = store.list_audit(t.tenant_id, &AuditQuery { limit: 100, ..AuditQuery::default() }).await.unwrap();
    page.items.into_iter().rev().map(|e| e.entry.event_type).collect()
}

pub(crate) fn sub(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

async fn tenants_round_trip_and_list_by_status(store: SharedStore) {
    let first = record(&sub("first"), at(0, 0));
    let mut second = record(&sub("second"), at(1, 0));
    second.status = TenantStatus::Suspended;
    second.suspended_at = Some(micros(at(2, 5_000)));
    second.custom_domain = None;
    second.paused_runs.clear();
    store.create_tenant(&second, &[audit(&second, "TenantCreated")]).await.unwrap();
    store.create_tenant(&first, &[audit(&first, "TenantCreated")]).await.unwrap();

    assert_eq!(store.get_tenant(first.tenant_id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.get_tenant(second.tenant_id).await.unwrap(), Some(second.clone()));
    assert_eq!(store.get_tenant(Uuid::new_v4()).await.unwrap(), None);

    let mine = |all: Vec<TenantRecord>| -> Vec<Uuid> {
        all.into_iter().map(|t| t.tenant_id).filter(|id| [first.tenant_id, second.tenant_id].contains(id)).collect()
    };
    assert_eq!(mine(store.list_tenants(None).await.unwrap()), [first.tenant_id, second.tenant_id], "oldest first");
    assert_eq!(mine(store.list_tenants(Some(TenantStatus::Suspended)).await.unwrap()), [second.tenant_id]);
    assert!(mine(store.list_tenants(Some(TenantStatus::Deleted)).await.unwrap()).is_empty());
    assert_eq!(trail(&store, &first).await, ["TenantCreated"]);
}

async fn subdomains_are_unique_ignoring_case(store: SharedStore) {
    let name = sub("acme");
    let t = record(&name, at(0, 0));
    store.create_tenant(&t, &[audit(&t, "TenantCreated")]).await.unwrap();
    let dup = record(&name.to_uppercase(), at(1, 0));
    match store.create_tenant(&dup, &[audit(&dup, "TenantCreated")]).await {
        Err(StoreError::Conflict(m)) => assert!(m.contains("already taken"), "{m}"),
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(store.get_tenant(dup.tenant_id).await.unwrap(), None);
    assert!(trail(&store, &dup).await.is_empty(), "a refused create writes no audit entry");
    let same_id = TenantRecord { subdomain: sub("other"), ..t.clone() };
    assert!(matches!(store.create_tenant(&same_id, &[audit(&t, "X")]).await, Err(StoreError::Conflict(_))));
}

async fn saves_are_compare_and_set_and_audited(store: SharedStore) {
    let t = record(&sub("cas"), at(0, 0));
    store.create_tenant(&t, &[audit(&t, "TenantCreated")]).await.unwrap();
    let mut next = t.clone();
    for status in [TenantStatus::Active, TenantStatus::Suspended, TenantStatus::Deprovisioning, TenantStatus::Deleted] {
        next.status = status;
        next.revision += 1;
        next.tier = Tier::Custom;
        next.quota = Quota::UNLIMITED;
        next.deleted_at = (status == TenantStatus::Deleted).then(|| micros(at(9, 0)));
        next.updated_at = micros(at(next.revision as i64, 1_000));
        store.save_tenant(&next, &[audit(&next, status.as_str())]).await.unwrap();
        assert_eq!(store.get_tenant(t.tenant_id).await.unwrap(), Some(next.clone()));
    }
    let stale = TenantRecord { name: "stale".into(), ..next.clone() };
    assert!(matches!(store.save_tenant(&stale, &[audit(&t, "Stale")]).await, Err(StoreError::Stale(_))));
    assert_eq!(store.get_tenant(t.tenant_id).await.unwrap(), Some(next.clone()), "a stale save changes nothing");
    let unknown = record(&sub("ghost"), at(0, 0));
    assert!(matches!(store.save_tenant(&unknown, &[audit(&unknown, "X")]).await, Err(StoreError::NotFound(_))));
    assert_eq!(trail(&store, &t).await, ["TenantCreated", "Active", "Suspended", "Deprovisioning", "Deleted"]);
}

async fn concurrent_saves_of_one_revision_have_one_winner(store: SharedStore) {
    let t = record(&sub("race"), at(0, 0));
    store.create_tenant(&t, &[audit(&t, "TenantCreated")]).await.unwrap();
    let contenders: Vec<TenantRecord> =
        (0..6).map(|i| TenantRecord { name: format!("writer {i}"), revision: 2, ..t.clone() }).collect();
    let audits: Vec<NewAuditEntry> = contenders.iter().map(|c| audit(c, "Saved")).collect();
    let saves = contenders.iter().zip(&audits).map(|(c, a)| store.save_tenant(c, std::slice::from_ref(a)));
    let results = futures::future::join_all(saves).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1, "{results:?}");
    assert!(results.iter().filter(|r| r.is_err()).all(|r| matches!(r, Err(StoreError::Stale(_)))), "{results:?}");
    assert_eq!(trail(&store, &t).await, ["TenantCreated", "Saved"]);
}

async fn run_counts_come_from_the_stored_runs(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let empty = store.run_counts(t, at(0, 0), "kmod-a").await.unwrap();
    assert_eq!((empty.active, empty.created_since, empty.modules, empty.module_known), (0, 0, 0, false));

    let old_done = run(t, "kmod-a", at(-100, 0), RunStatus::Succeeded);
    let running = run(t, "kmod-b", at(10, 0), RunStatus::Running);
    let paused = run(t, "kmod-c", at(20, 0), RunStatus::Paused);
    for r in [&old_done, &running, &paused] {
        store.create_run(r, &[]).await.unwrap();
    }
    store.create_run(&run(other, "kmod-z", at(30, 0), RunStatus::Running), &[]).await.unwrap();
    let counts = store.run_counts(t, at(0, 0), "kmod-a").await.unwrap();
    assert_eq!((counts.active, counts.created_since, counts.modules, counts.module_known), (2, 2, 3, true));
    assert!(!store.run_counts(t, at(0, 0), "kmod-z").await.unwrap().module_known, "another tenant's module");

    // Ending a run gives its capacity back at once; a rollback in progress takes it again.
    store.save_run(&finished(&paused, RunStatus::Cancelled), &[]).await.unwrap();
    let mut rolling = finished(&running, RunStatus::Succeeded);
    rolling.rollback = Some(rollback_in_progress(1, at(40, 0)));
    store.save_run(&rolling, &[]).await.unwrap();
    assert_eq!(store.run_counts(t, at(0, 0), "").await.unwrap().active, 1);
    let mut done = rolling.clone();
    done.revision += 1;
    done.rollback.as_mut().unwrap().status = RollbackState::COMPLETED.into();
    store.save_run(&done, &[]).await.unwrap();
    assert_eq!(store.run_counts(t, at(0, 0), "").await.unwrap().active, 0);
    assert_eq!(store.run_counts(other, at(0, 0), "").await.unwrap().active, 1);
}

async fn usage_counts_by_period(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let a = run(t, "kmod-u1", at(10, 0), RunStatus::Succeeded);
    let b = run(t, "kmod-u2", at(20, 0), RunStatus::Failed);
    let c = run(t, "kmod-u3", at(30, 0), RunStatus::Succeeded);
    let outside = run(t, "kmod-u4", at(500, 0), RunStatus::Succeeded);
    let mut approval = event(&a, "ApprovalRequested", 1);
    approval.at = at(15, 0);
    let mut late_approval = event(&a, "ApprovalGranted", 2);
    late_approval.at = at(600, 0);
    store.create_run(&a, &[approval, late_approval, event(&a, "StageStarted", 3)]).await.unwrap();
    for r in [&b, &c, &outside] {
        store.create_run(r, &[]).await.unwrap();
    }
    store.create_run(&run(other, "kmod-u1", at(10, 0), RunStatus::Failed), &[]).await.unwrap();

    let usage = store.usage_counts(t, at(0, 0), at(100, 0)).await.unwrap();
    assert_eq!(usage.runs_by_status, BTreeMap::from([("Failed".to_string(), 1), ("Succeeded".to_string(), 2)]));
    assert_eq!(usage.node_updates, 3, "one changed node per run");
    assert_eq!(usage.approval_events, 1);
    assert_eq!(store.usage_counts(t, at(1000, 0), at(2000, 0)).await.unwrap(), Default::default());
}

/// One change may be written to several trails (the tenant's and the
/// platform's): every entry is stored with the change, and none without it.
async fn a_change_is_written_to_every_trail_it_names_or_to_none(store: SharedStore) {
    let t = record(&sub("trails"), at(0, 0));
    let platform = record(&sub("platform"), at(0, 0));
    let in_both = |kind: &str, of: &TenantRecord| {
        let own = audit(of, kind);
        [own.clone(), NewAuditEntry { tenant_id: platform.tenant_id, ..own }]
    };
    store.create_tenant(&t, &in_both("TenantCreated", &t)).await.unwrap();
    let next = TenantRecord { status: TenantStatus::Active, revision: 2, ..t.clone() };
    store.save_tenant(&next, &in_both("TenantProvisioned", &next)).await.unwrap();
    // Refused: a stale revision, and a subdomain already taken.
    let stale = TenantRecord { name: "stale".into(), ..next.clone() };
    assert!(store.save_tenant(&stale, &in_both("Stale", &stale)).await.is_err());
    let taken = TenantRecord { tenant_id: Uuid::new_v4(), ..t.clone() };
    assert!(store.create_tenant(&taken, &in_both("Taken", &taken)).await.is_err());
    assert_eq!(trail(&store, &t).await, ["TenantCreated", "TenantProvisioned"]);
    assert_eq!(trail(&store, &platform).await, ["TenantCreated", "TenantProvisioned"]);
}

conformance!(
    tenants_round_trip_and_list_by_status,
    subdomains_are_unique_ignoring_case,
    saves_are_compare_and_set_and_audited,
    a_change_is_written_to_every_trail_it_names_or_to_none,
    concurrent_saves_of_one_revision_have_one_winner,
    run_counts_come_from_the_stored_runs,
    usage_counts_by_period,
);
