//! Approval gates: opened with their run, decided exactly once, read by run
//! and by tenant.

use super::*;
use chrono::SubsecRound;
use hotswap_actors::domain::{
    ApprovalDecision, ApprovalRecord, ApprovalStatus, AuditActor, AuditCategory, AuditQuery, DecisionOutcome,
    NewAuditEntry,
};

fn approval(r: &RunRecord, requested: DateTime<Utc>) -> ApprovalRecord {
    let requested = requested.trunc_subsecs(6);
    ApprovalRecord {
        tenant_id: r.tenant_id,
        approval_id: Uuid::new_v4(),
        execution_id: r.execution_id,
        module_name: r.request.module_name.clone(),
        version: r.request.version.clone(),
        target_environment: Environment::Production,
        requester_id: Some(Uuid::new_v4()),
        requester_email: "dev@example.com".into(),
        status: ApprovalStatus::Pending,
        requested_at: requested,
        timeout_at: requested + TimeDelta::hours(24),
        decided_at: None,
        decided_by_id: None,
        decided_by_email: None,
        reason: None,
    }
}

fn decision(status: ApprovalStatus, by: &str) -> ApprovalDecision {
    ApprovalDecision {
        status,
        at: Utc::now().trunc_subsecs(6),
        by_id: Some(Uuid::new_v4()),
        by_email: Some(by.into()),
        reason: Some(format!("{by} says {}", status.as_str())),
    }
}

fn audit(tenant: TenantId, by: &str) -> NewAuditEntry {
    NewAuditEntry::new(tenant, AuditActor::user(Uuid::new_v4(), by), AuditCategory::Approval, "ApprovalGranted")
}

/// A stored run, then the same run one revision on, waiting for `approval`.
async fn opened(store: &SharedStore, t: TenantId, module: &str) -> (RunRecord, ApprovalRecord) {
    let r = run(t, module, at(0, 0), RunStatus::Running);
    store.create_run(&r, &[]).await.unwrap();
    let mut waiting = r.clone();
    waiting.status = RunStatus::PendingApproval;
    waiting.revision += 1;
    let a = approval(&r, at(1, 0));
    let requested = event(&r, "ApprovalRequested", 1);
    store.open_approval(&a, &waiting, &[requested]).await.unwrap();
    (waiting, a)
}

async fn approvals_open_with_their_run_and_decide_once(store: SharedStore) {
    let t = tenant();
    let (waiting, a) = opened(&store, t, "gated").await;
    assert_eq!(store.get_run(t, waiting.execution_id).await.unwrap().unwrap().status, RunStatus::PendingApproval);
    assert_eq!(store.get_approval(t, a.approval_id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.approval_for_run(t, waiting.execution_id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.pending_approvals(t).await.unwrap(), vec![a.clone()]);

    // Opening the same approval again (a coordinator repeating its step) is harmless.
    let mut again = waiting.clone();
    again.revision += 1;
    store.open_approval(&a, &again, &[]).await.unwrap();
    assert_eq!(store.pending_approvals(t).await.unwrap().len(), 1);

    let yes = decision(ApprovalStatus::Approved, "alice@example.com");
    let DecisionOutcome::Decided(decided) =
        store.decide_approval(t, a.approval_id, &yes, &audit(t, "alice")).await.unwrap()
    else {
        panic!("the first decision wins");
    };
    assert_eq!(decided.status, ApprovalStatus::Approved);
    assert_eq!(decided.decided_by_email.as_deref(), Some("alice@example.com"));
    assert_eq!(decided.decided_at, Some(yes.at));
    let no = decision(ApprovalStatus::Rejected, "bob@example.com");
    let late = store.decide_approval(t, a.approval_id, &no, &audit(t, "bob")).await.unwrap();
    assert_eq!(late, DecisionOutcome::AlreadyDecided(decided.clone()), "a second decision changes nothing");
    assert!(store.pending_approvals(t).await.unwrap().is_empty());

    // The request came from the run's events, the decision from its own entry; the loser wrote none.
    let trail = store
        .list_audit(t, &AuditQuery { category: Some(AuditCategory::Approval), limit: 10, ..Default::default() })
        .await
        .unwrap();
    let kinds: Vec<_> =
        trail.items.iter().map(|e| (e.entry.event_type.as_str(), e.entry.actor.name.as_str())).collect();
    assert_eq!(kinds, [("ApprovalGranted", "alice"), ("ApprovalRequested", "system")]);
}

async fn concurrent_decisions_have_one_winner(store: SharedStore) {
    let t = tenant();
    let (_, a) = opened(&store, t, "raced").await;
    let attempts = (0..8).map(|i| {
        let store = store.clone();
        let status = if i % 2 == 0 { ApprovalStatus::Approved } else { ApprovalStatus::Rejected };
        async move {
            store
                .decide_approval(t, a.approval_id, &decision(status, &format!("u{i}@x.io")), &audit(t, "u"))
                .await
                .unwrap()
        }
    });
    let outcomes = futures::future::join_all(attempts).await;
    let winners: Vec<_> = outcomes.iter().filter(|o| matches!(o, DecisionOutcome::Decided(_))).collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let DecisionOutcome::Decided(won) = winners[0] else { unreachable!() };
    for o in &outcomes {
        if let DecisionOutcome::AlreadyDecided(seen) = o {
            assert_eq!(seen, won, "every loser sees the winning decision");
        }
    }
    let entries = store
        .list_audit(t, &AuditQuery { event_type: Some("ApprovalGranted".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(entries.total, 1, "only the winner wrote an audit entry");
}

async fn approvals_are_scoped_by_tenant(store: SharedStore) {
    let (a_tenant, b_tenant) = (tenant(), tenant());
    let (run_a, a) = opened(&store, a_tenant, "mine").await;
    assert_eq!(store.get_approval(b_tenant, a.approval_id).await.unwrap(), None);
    assert_eq!(store.approval_for_run(b_tenant, run_a.execution_id).await.unwrap(), None);
    assert!(store.pending_approvals(b_tenant).await.unwrap().is_empty());
    let outcome = store
        .decide_approval(
            b_tenant,
            a.approval_id,
            &decision(ApprovalStatus::Approved, "eve@x.io"),
            &audit(b_tenant, "eve"),
        )
        .await
        .unwrap();
    assert_eq!(outcome, DecisionOutcome::NotFound);
    assert_eq!(store.get_approval(a_tenant, a.approval_id).await.unwrap().unwrap().status, ApprovalStatus::Pending);
}

async fn a_stale_run_save_opens_no_approval(store: SharedStore) {
    let t = tenant();
    let r = run(t, "stale-gate", at(0, 0), RunStatus::Running);
    store.create_run(&r, &[]).await.unwrap();
    // Same revision as stored: refused, and the approval is not written.
    let a = approval(&r, at(1, 0));
    assert!(matches!(store.open_approval(&a, &r, &[]).await, Err(StoreError::Stale(_))));
    assert_eq!(store.get_approval(t, a.approval_id).await.unwrap(), None);
}

async fn lockout_and_logins_write_their_entries(store: SharedStore) {
    let t = tenant();
    let u = user(t, &name("audited"));
    store.create_user(&u, &noted(t)).await.unwrap();
    let policy = LockoutPolicy { max_failed_attempts: 2, duration: std::time::Duration::from_secs(300) };
    let now = Utc::now();
    let failed = |n: u32| {
        NewAuditEntry::new(t, AuditActor::user(u.id, u.username.clone()), AuditCategory::Authentication, "LoginFailed")
            .details(json!({ "n": n }))
    };
    store.record_failed_login(t, u.id, now, &policy, &failed(1)).await.unwrap();
    store.record_failed_login(t, u.id, now, &policy, &failed(2)).await.unwrap();
    store.record_failed_login(t, u.id, now, &policy, &failed(3)).await.unwrap();
    let q = AuditQuery { category: Some(AuditCategory::Authentication), limit: 10, ..Default::default() };
    let kinds: Vec<_> =
        store.list_audit(t, &q).await.unwrap().items.iter().map(|e| e.entry.event_type.clone()).collect();
    assert_eq!(
        kinds,
        ["LoginFailed", "AccountLocked", "LoginFailed", "LoginFailed"],
        "locked once, on the second failure"
    );
}

conformance!(
    approvals_open_with_their_run_and_decide_once,
    concurrent_decisions_have_one_winner,
    approvals_are_scoped_by_tenant,
    a_stale_run_save_opens_no_approval,
    lockout_and_logins_write_their_entries,
);
