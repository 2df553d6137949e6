//! Tenants: the /api/tenants lifecycle, quotas admitted under concurrency and
//! released however a run ends, suspension, deletion, the audited
//! X-Tenant-Id override, usage and analytics.

use crate::db::poll::eventually;
use std::time::Duration;

use awc::http::{Method, StatusCode};
use hotswap_actors::domain::{AuditCategory, AuditQuery, AuditResult, DEFAULT_TENANT};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app, TestApp, DEPLOYER};

/// Keeps runs to QA and beyond active for a long while (Development alone is quick).
const SLOW: (&str, &str) = ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "30s");

/// Provisions a tenant through the API as the system admin; answers its id.
pub async fn provision(admin: &TestApp, subdomain: &str, tier: &str) -> Uuid {
    let body = json!({ "name": format!("Tenant {subdomain}"), "subdomain": subdomain, "tier": tier,
        "contactEmail": format!("ops@{subdomain}.example.com") });
    let (status, tenant) = admin.post("/api/tenants", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{tenant}");
    assert_eq!(tenant["status"], "Active", "{tenant}");
    tenant["tenantId"].as_str().unwrap().parse().unwrap()
}

/// A tenant of `tier` and its Admin, as that Admin sees the server.
pub async fn tenant_with_admin(admin: &TestApp, subdomain: &str, tier: &str) -> (Uuid, TestApp) {
    let id = provision(admin, subdomain, tier).await;
    let user = admin.new_user(&format!("{subdomain}-admin"), &["Admin"], Some(id)).await;
    (id, user)
}

fn deployment(module: &str, target: &str) -> Value {
    crate::db::requests::deployment(module, "1.0.0", target)
}

pub async fn audit_events(app: &TestApp, tenant: Uuid, event_type: &str) -> Vec<hotswap_actors::domain::AuditEntry> {
    let query = AuditQuery {
        category: Some(AuditCategory::TenantManagement),
        event_type: Some(event_type.into()),
        limit: 100,
        ..AuditQuery::default()
    };
    app.orchestrator.store().list_audit(tenant, &query).await.unwrap().items
}

#[actix_web::test]
async fn create_read_list_update_and_bad_input() {
    let admin = spawn_app(&[]).await;
    let body = json!({ "name": "Acme", "subdomain": "Acme-Corp", "tier": "Starter", "contactEmail": "ops@acme.example.com",
        "metadata": { "region": "eu" } });
    let r = admin.call(Method::POST, "/api/tenants", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let t = r.body;
    let id = t["tenantId"].as_str().unwrap().to_string();
    assert_eq!(r.headers.get("location").unwrap(), &format!("/api/tenants/{id}"));
    assert_eq!(t["subdomain"], "acme-corp", "lowercased");
    assert_eq!((t["status"].as_str(), t["tier"].as_str()), (Some("Active"), Some("Starter")));
    assert_eq!(t["resourceQuota"]["maxConcurrentRuns"], 3);
    assert_eq!(t["metadata"]["region"], "eu");
    let audited = audit_events(&admin, id.parse().unwrap(), "TenantCreated").await;
    assert_eq!(audited.len(), 1);
    assert_eq!(audited[0].entry.actor.name, "admin");

    // Its own clusters, sized by tier (Starter: at most 5 nodes per environment).
    let clusters = admin.request_with(Method::GET, "/api/v1/clusters", &[("X-Tenant-Id", &id)], None).await.body;
    let sizes: Vec<_> = clusters.as_array().unwrap().iter().map(|c| c["totalNodes"].clone()).collect();
    assert_eq!(sizes, [json!(3), json!(5), json!(5), json!(5)], "{clusters}");

    let (status, got) = admin.get(&format!("/api/tenants/{id}")).await;
    assert_eq!((status, got["name"].as_str()), (StatusCode::OK, Some("Acme")));
    let (_, all) = admin.get("/api/tenants").await;
    let subdomains: Vec<_> = all.as_array().unwrap().iter().map(|t| t["subdomain"].clone()).collect();
    assert_eq!(subdomains, [json!("system"), json!("acme-corp")], "the system tenant is seeded");
    let (_, suspended) = admin.get("/api/tenants?status=suspended").await;
    assert_eq!(suspended, json!([]));
    let (status, body) = admin.get("/api/tenants?status=Sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    // A page at a time, with the total; a subdomain in any case finds its tenant.
    let second = admin.call(Method::GET, "/api/tenants?page=2&pageSize=1", None).await;
    assert_eq!(second.body.as_array().unwrap().len(), 1, "{}", second.body);
    assert_eq!((second.body[0]["subdomain"].as_str(), second.header("x-total-count")), (Some("acme-corp"), Some("2")));
    let found = admin.call(Method::GET, "/api/tenants?subdomain=ACME-CORP", None).await;
    assert_eq!((found.body[0]["tenantId"].as_str(), found.header("x-total-count")), (Some(id.as_str()), Some("1")));
    for bad in ["page=0", "pageSize=0", "pageSize=1001"] {
        let (status, body) = admin.get(&format!("/api/tenants?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
    }

    let (status, updated) = admin
        .put(&format!("/api/tenants/{id}"), &json!({ "name": "Acme Inc", "metadata": { "tier-note": "x" } }))
        .await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["name"], "Acme Inc");
    assert_eq!(updated["metadata"], json!({ "region": "eu", "tier-note": "x" }), "metadata is merged");

    // Bad input: the right 4xx with a JSON body, nothing stored.
    let taken = json!({ "name": "Dup", "subdomain": "ACME-corp", "contactEmail": "a@b.example.com" });
    let (status, body) = admin.post("/api/tenants", &taken).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already taken"), "{body}");
    for (field, value) in [
        ("subdomain", json!("www")),
        ("subdomain", json!("-edge")),
        ("subdomain", json!("under_score")),
        ("subdomain", json!("")),
        ("subdomain", json!("x".repeat(64))),
        ("contactEmail", json!("not-an-email")),
        // Outside the form the API document states (schemathesis found the
        // server taking what its document refuses).
        ("contactEmail", json!("ops@acme.example*")),
        ("contactEmail", json!("o ps@acme.example")),
        ("contactEmail", json!("ops@-acme.example")),
        ("contactEmail", json!(format!("{}@acme.example", "a".repeat(65)))),
        ("name", json!("   ")),
        ("tier", json!("Gold")),
        ("tier", json!(9)),
        ("customDomain", json!("not a domain")),
    ] {
        let mut body = json!({ "name": "Bad", "subdomain": "bad-input", "contactEmail": "a@b.example.com" });
        body[field] = value.clone();
        let (status, reply) = admin.post("/api/tenants", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field} = {value}: {reply}");
        assert!(reply["message"].is_string(), "{reply}");
    }
    for raw in
        ["{", "[]", "{\"name\": \"x\"}", "{\"name\":\"x\",\"subdomain\":\"y\",\"contactEmail\":\"a@b.co\",\"extra\":1}"]
    {
        let (status, reply) = admin.post_raw("/api/tenants", "application/json", raw.as_bytes().to_vec()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{raw}: {reply}");
    }
    let (_, after) = admin.get("/api/tenants").await;
    assert_eq!(after.as_array().unwrap().len(), 2, "no refused tenant was stored: {after}");
    for path in ["/api/tenants/not-a-uuid", &format!("/api/tenants/{}", Uuid::new_v4())] {
        let (status, body) = admin.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
    }
    let (status, _) = admin.put(&format!("/api/tenants/{id}"), &json!({ "contactEmail": "nope" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn lifecycle_moves_that_make_no_sense_are_409() {
    let admin = spawn_app(&[]).await;
    let id = provision(&admin, "life", "Free").await;
    let path = |verb: &str| format!("/api/tenants/{id}{verb}");

    let (status, t) = admin.post(&path("/suspend"), &json!({ "reason": "unpaid invoice" })).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    assert_eq!(t["status"], "Suspended");
    assert!(t["suspendedAt"].is_string());
    assert_eq!(t["metadata"]["suspension_reason"], "unpaid invoice");
    assert_eq!(admin.post(&path("/suspend"), &json!({})).await.0, StatusCode::CONFLICT, "already suspended");
    let (status, t) = admin.post(&path("/activate"), &json!({})).await;
    assert_eq!((status, t["status"].as_str(), &t["suspendedAt"]), (StatusCode::OK, Some("Active"), &Value::Null));
    assert_eq!(admin.post(&path("/activate"), &json!({})).await.0, StatusCode::CONFLICT, "already active");

    let (status, t) = admin.put(&path("/subscription"), &json!({ "tier": "Professional" })).await;
    assert_eq!((status, t["tier"].as_str()), (StatusCode::OK, Some("Professional")));
    assert_eq!(t["resourceQuota"]["maxConcurrentRuns"], 10, "the quota follows the tier");
    assert_eq!(admin.put(&path("/subscription"), &json!({ "tier": "Platinum" })).await.0, StatusCode::BAD_REQUEST);

    let r = admin.call(Method::DELETE, &path(""), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["message"], "Tenant deleted successfully");
    let (_, t) = admin.get(&path("")).await;
    assert_eq!(t["status"], "Deleted", "a soft delete keeps the record");
    assert!(t["deletedAt"].is_string());
    for (method, verb, body) in [
        (Method::POST, "/activate", None),
        (Method::POST, "/suspend", None),
        (Method::PUT, "/subscription", Some(json!({ "tier": "Free" }))),
        (Method::PUT, "", Some(json!({ "name": "Zombie" }))),
        (Method::DELETE, "", None),
    ] {
        let r = admin.call(method.clone(), &path(verb), body).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{method} {verb} on a deleted tenant: {}", r.text);
    }
    // Each change is in the tenant's own trail and in the platform's (the
    // system tenant's), where its Admins find every tenant's lifecycle.
    for event in ["TenantCreated", "TenantSuspended", "TenantActivated", "TenantTierChanged", "TenantDeleted"] {
        assert_eq!(audit_events(&admin, id, event).await.len(), 1, "{event} audited once");
        let platform = audit_events(&admin, DEFAULT_TENANT, event).await;
        let about_it = platform.iter().filter(|e| e.entry.resource_id == Some(id.to_string())).count();
        assert_eq!(about_it, 1, "{event} in the system tenant's trail");
    }

    // The system tenant can be neither suspended nor deleted, and keeps its tier.
    let system = format!("/api/tenants/{DEFAULT_TENANT}");
    assert_eq!(admin.post(&format!("{system}/suspend"), &json!({})).await.0, StatusCode::CONFLICT);
    assert_eq!(admin.call(Method::DELETE, &system, None).await.status, StatusCode::CONFLICT);
    let (status, body) = admin.put(&format!("{system}/subscription"), &json!({ "tier": "Free" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(admin.get(&system).await.1["tier"], "Custom");
}

#[actix_web::test]
async fn concurrent_creates_admit_exactly_the_concurrent_run_quota() {
    let admin = spawn_app(&[SLOW]).await;
    let (tenant, tadmin) = tenant_with_admin(&admin, "burst", "Starter").await;
    let replies = futures::future::join_all(
        (0..10).map(|i| tadmin.call(Method::POST, "/api/v1/deployments", Some(deployment(&format!("kmod-{i}"), "QA")))),
    )
    .await;
    let admitted: Vec<_> = replies.iter().filter(|r| r.status == StatusCode::ACCEPTED).collect();
    assert_eq!(
        admitted.len(),
        3,
        "Starter admits exactly 3 at once: {:?}",
        replies.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for refused in replies.iter().filter(|r| r.status != StatusCode::ACCEPTED) {
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS, "{}", refused.text);
        assert_eq!(refused.body["error"], "Quota exceeded");
        assert_eq!(refused.body["quota"], "concurrentRuns");
        assert_eq!((refused.body["limit"].as_u64(), refused.body["current"].as_u64()), (Some(3), Some(3)));
        assert!(refused.body["message"].as_str().unwrap().contains("3 of 3"), "{}", refused.text);
    }
    let denials = audit_events(&admin, tenant, "RunRefusedByQuota").await;
    assert_eq!(denials.len(), 7);
    assert!(denials.iter().all(|d| d.entry.result == AuditResult::Denied && d.entry.actor.name == "burst-admin"));

    let (_, usage) = tadmin.get(&format!("/api/tenants/{tenant}/usage")).await;
    let used = |q: &str| usage["quotas"].as_array().unwrap().iter().find(|x| x["quota"] == q).unwrap()["used"].clone();
    assert_eq!(used("concurrentRuns"), 3, "{usage}");
    assert_eq!(used("runsPerDay"), 3, "refused runs are not counted: {usage}");

    // Aborting one frees its slot.
    let id = admitted[0].body["executionId"].as_str().unwrap();
    assert_eq!(tadmin.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.0, StatusCode::ACCEPTED);
    tadmin.finished(id).await;
    let (status, body) = tadmin.post("/api/v1/deployments", &deployment("kmod-late", "QA")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    // The system tenant is not limited by another tenant's quota.
    admin.deploy("kmod-0", "1.0.0", "QA", json!({})).await;
}

/// Free tier: one run at a time. Each way a run can end gives the slot back.
#[actix_web::test]
async fn capacity_comes_back_after_success_failure_cancel_rollback_and_a_crashed_coordinator() {
    let admin = spawn_app(&[SLOW, ("HOTSWAP__SUPERVISION__COORDINATOR__MAX_RESTARTS", "1")]).await;
    let (tenant, t) = tenant_with_admin(&admin, "one-slot", "Free").await;
    let refused = || async { t.post("/api/v1/deployments", &deployment("kmod-b", "Development")).await.0 };

    // Success.
    let id = t.deploy("kmod-a", "1.0.0", "Development", json!({})).await;
    assert_eq!(t.finished(&id).await["status"], "Succeeded");
    // Failure.
    let id = t.deploy("kmod-a", "1.0.1", "Development", json!({ "metadata": { "simulateDeployFailure": "1" } })).await;
    assert_eq!(t.finished(&id).await["status"], "Failed");
    // Cancel: while it runs, the one slot is taken.
    let id = t.deploy("kmod-a", "1.0.2", "QA", json!({})).await;
    assert_eq!(refused().await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(t.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.0, StatusCode::ACCEPTED);
    assert_eq!(t.finished(&id).await["status"], "Cancelled");
    // Rollback of a finished run.
    let id = t.deploy("kmod-a", "1.0.3", "Development", json!({})).await;
    t.finished(&id).await;
    let (status, body) = t.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    t.finished(&id).await;
    // A coordinator that keeps crashing is escalated; its run ends Failed.
    let id = t.deploy("kmod-a", "1.0.4", "QA", json!({})).await;
    let child = format!("run:{id}");
    for restarts in [1, 2] {
        eventually(Duration::from_secs(5), "the coordinator comes up to be crashed", async || {
            t.orchestrator.crash(tenant, &child)
        })
        .await;
        // Until the supervisor has seen this incarnation end, the next crash
        // could reach it instead of its successor: a panicking actor's
        // address stays open while its backtrace is printed.
        eventually(Duration::from_secs(10), "the supervisor sees the coordinator end", async || {
            let children = t.orchestrator.supervision().await;
            let child = children.iter().find_map(|s| s.child(&child).map(|c| (c.restarts, c.state)));
            child.is_some_and(|(n, state)| n >= restarts || state == hotswap_actors::supervision::ChildState::Failed)
        })
        .await;
    }
    let run = t.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");

    let id = t.deploy("kmod-a", "1.0.5", "Development", json!({})).await;
    assert_eq!(t.finished(&id).await["status"], "Succeeded", "the slot is free after all of the above");
    let (_, usage) = t.get(&format!("/api/tenants/{tenant}/usage")).await;
    assert_eq!(usage["quotas"][0]["used"], 0, "{usage}");
}

#[actix_web::test]
async fn capacity_quotas_are_403_and_name_the_quota() {
    let admin = spawn_app(&[]).await;
    let (_, t) = tenant_with_admin(&admin, "three-mods", "Free").await;
    for m in ["kmod-1", "kmod-2", "kmod-3"] {
        let id = t.deploy(m, "1.0.0", "Development", json!({})).await;
        t.finished(&id).await;
    }
    let (status, body) = t.post("/api/v1/deployments", &deployment("kmod-4", "Development")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(
        (body["quota"].as_str(), body["limit"].as_u64(), body["current"].as_u64()),
        (Some("modules"), Some(3), Some(3))
    );
    // A module it already has is no new capacity.
    let (status, body) = t.post("/api/v1/deployments", &deployment("kmod-2", "Development")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[actix_web::test]
async fn a_suspended_tenant_reads_but_cannot_start_or_steer_runs_until_activated() {
    let admin = spawn_app(&[SLOW]).await;
    let (tenant, t) = tenant_with_admin(&admin, "paused-co", "Starter").await;
    let running = t.deploy("kmod-s", "1.0.0", "QA", json!({})).await;
    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);

    // Sign-in and reads still work.
    let again = t.as_user(("paused-co-admin", "a-long-enough-password")).await;
    assert_eq!(again.get("/api/v1/deployments").await.0, StatusCode::OK);
    let (status, run) = again.get(&format!("/api/v1/deployments/{running}")).await;
    assert_eq!((status, run["status"].as_str()), (StatusCode::OK, Some("Running")), "on_suspend = continue");
    // New runs and verbs do not.
    let (status, body) = again.post("/api/v1/deployments", &deployment("kmod-new", "Development")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Suspended"), "{body}");
    for verb in ["pause", "abort", "promote", "rollback"] {
        let (status, body) = again.post(&format!("/api/v1/deployments/{running}/{verb}"), &json!({})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{verb}: {body}");
    }
    // Nor does anything else that changes the tenant: users, enrolment tokens, topics.
    let user = json!({ "username": "late-joiner", "email": "late@example.com", "password": "a-long-enough-password",
                       "roles": ["Viewer"] });
    let writes = [
        ("/api/v1/users", user),
        ("/api/v1/agents/tokens", json!({ "environment": "Development" })),
        ("/api/v1/topics", json!({ "name": "suspended.orders", "type": "Queue" })),
    ];
    for (path, body) in &writes {
        let (status, reply) = again.post(path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains("Suspended"), "{path}: {reply}");
    }
    // A Viewer's queries are reads.
    let (status, reply) = again.post("/api/v1/graph/queries/match", &json!({ "entityType": "Run" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");

    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/activate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again.post(&format!("/api/v1/deployments/{running}/abort"), &json!({})).await.0, StatusCode::ACCEPTED);
    again.deploy("kmod-new", "1.0.0", "Development", json!({})).await;
}

/// Walkthrough w2 #10: offboarding a suspended tenant whose run waits at its
/// approval. Its own users may not steer the run; an Admin of the system
/// tenant acting for it may abort it (audited), as the delete's 409 says.
#[actix_web::test]
async fn a_system_admin_aborts_a_suspended_tenants_run_so_that_it_can_be_deleted() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "offboarded", "Starter").await;
    let id = t.deploy("kmod-gated", "1.0.0", "Staging", json!({ "requireApproval": true })).await;
    t.wait_for(&id, |r| r["status"] == "PendingApproval").await;
    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!({ "reason": "offboarding" })).await;
    assert_eq!(status, StatusCode::OK);

    let r = admin.call(Method::DELETE, &format!("/api/tenants/{tenant}"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("X-Tenant-Id"), "says how to abort: {}", r.text);
    let t = t.as_user(("offboarded-admin", "a-long-enough-password")).await;
    assert_eq!(t.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.0, StatusCode::FORBIDDEN);
    let tid = tenant.to_string();
    let acting = [("X-Tenant-Id", tid.as_str())];
    // Abort only: the platform does not drive a suspended tenant's runs on.
    let pause = admin.request_with(Method::POST, &format!("/api/v1/deployments/{id}/pause"), &acting, None).await;
    assert_eq!(pause.status, StatusCode::FORBIDDEN, "{}", pause.text);
    let abort = admin.request_with(Method::POST, &format!("/api/v1/deployments/{id}/abort"), &acting, None).await;
    assert_eq!(abort.status, StatusCode::ACCEPTED, "{}", abort.text);
    let run = t.wait_for(&id, |r| r["status"] == "Cancelled").await;
    assert_eq!(run["status"], "Cancelled");
    let overrides = audit_events(&admin, tenant, "TenantOverrideUsed").await;
    assert!(overrides.iter().any(|e| e.entry.message.contains(&format!("{id}/abort"))), "{overrides:#?}");

    let r = admin.call(Method::DELETE, &format!("/api/tenants/{tenant}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // A deleted tenant's runs are steered by nobody.
    let abort = admin.request_with(Method::POST, &format!("/api/v1/deployments/{id}/abort"), &acting, None).await;
    assert_eq!(abort.status, StatusCode::FORBIDDEN, "{}", abort.text);
}

/// Walkthrough w2 #5: a deleted tenant keeps its subdomain and its users'
/// names, and the refusals say so rather than read as if someone used them.
#[actix_web::test]
async fn a_deleted_tenants_subdomain_and_usernames_are_refused_saying_the_tenant_is_deleted() {
    let admin = spawn_app(&[]).await;
    let tenant = provision(&admin, "gone-co", "Free").await;
    admin.new_user("gone-co-dep", &["Deployer"], Some(tenant)).await;
    let r = admin.call(Method::DELETE, &format!("/api/tenants/{tenant}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let again =
        json!({ "name": "Gone again", "subdomain": "Gone-Co", "tier": "Free", "contactEmail": "ops@gone.example.com" });
    let (status, reply) = admin.post("/api/tenants", &again).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.contains(&tenant.to_string()) && message.contains("deleted"), "{reply}");

    let user = |name: &str, tenant_id: Option<Uuid>| {
        let mut body = json!({ "username": name, "email": format!("{name}@example.com"),
                               "password": "a-long-enough-password", "roles": ["Viewer"] });
        if let Some(t) = tenant_id {
            body["tenantId"] = json!(t);
        }
        body
    };
    let (status, reply) = admin.post("/api/v1/users", &user("GONE-CO-DEP", None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("which is deleted"), "{reply}");
    // A name taken in a live tenant is refused as before.
    let (status, reply) = admin.post("/api/v1/users", &user("viewer", None)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(!reply["message"].as_str().unwrap().contains("deleted"), "{reply}");

    let (status, reply) = admin.post("/api/v1/users", &user("gone-co-late", Some(tenant))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["details"].to_string().contains("which is deleted"), "{reply}");
    let (status, reply) = admin.post("/api/v1/users", &user("nowhere-late", Some(Uuid::new_v4()))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["details"].to_string().contains("names no tenant"), "{reply}");
}

/// Walkthrough w2 #13: a custom domain names one tenant (any case).
#[actix_web::test]
async fn a_custom_domain_another_tenant_claims_is_refused() {
    let admin = spawn_app(&[]).await;
    let (racer, hooli) = (provision(&admin, "racer", "Free").await, provision(&admin, "hooli", "Free").await);
    let claim = json!({ "customDomain": "deploy.race.example" });
    assert_eq!(admin.put(&format!("/api/tenants/{racer}"), &claim).await.0, StatusCode::OK);
    assert_eq!(admin.put(&format!("/api/tenants/{racer}"), &claim).await.0, StatusCode::OK, "its own again");
    let (status, reply) =
        admin.put(&format!("/api/tenants/{hooli}"), &json!({ "customDomain": "DEPLOY.RACE.EXAMPLE" })).await;
    assert_eq!(status, StatusCode::CONFLICT, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains(&racer.to_string()), "{reply}");
    let new = json!({ "name": "Third", "subdomain": "third", "tier": "Free", "contactEmail": "ops@third.example.com",
                      "customDomain": "deploy.race.example" });
    assert_eq!(admin.post("/api/tenants", &new).await.0, StatusCode::CONFLICT);
    // Given up, it is free for another.
    assert_eq!(admin.put(&format!("/api/tenants/{racer}"), &json!({ "customDomain": "" })).await.0, StatusCode::OK);
    assert_eq!(admin.put(&format!("/api/tenants/{hooli}"), &claim).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn with_on_suspend_pause_runs_pause_and_resume_with_the_tenant() {
    let admin = spawn_app(&[SLOW, ("HOTSWAP__TENANTS__ON_SUSPEND", "pause")]).await;
    let (tenant, t) = tenant_with_admin(&admin, "pausing", "Starter").await;
    let id = t.deploy("kmod-p", "1.0.0", "QA", json!({})).await;
    t.wait_for(&id, |r| r["status"] == "Running").await;
    let (status, body) = admin.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    t.wait_for(&id, |r| r["status"] == "Paused").await;
    let (status, _) = admin.post(&format!("/api/tenants/{tenant}/activate"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    t.wait_for(&id, |r| r["status"] == "Running").await;
}

#[actix_web::test]
async fn deleting_is_refused_while_runs_are_active_and_ends_the_tenant() {
    let admin = spawn_app(&[SLOW]).await;
    let (tenant, t) = tenant_with_admin(&admin, "doomed", "Starter").await;
    let id = t.deploy("kmod-d", "1.0.0", "QA", json!({})).await;
    let r = admin.call(Method::DELETE, &format!("/api/tenants/{tenant}"), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("active runs"), "{}", r.text);
    t.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await;
    t.finished(&id).await;
    let r = admin.call(Method::DELETE, &format!("/api/tenants/{tenant}"), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Its users sign in no more; its clusters are gone; its history stays readable to the operator.
    let r = t
        .anonymous()
        .call(
            Method::POST,
            "/api/v1/authentication/login",
            Some(json!({ "username": "doomed-admin", "password": "a-long-enough-password" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text);
    // Tokens issued before the deletion end with it, not when they expire.
    for path in ["/api/v1/authentication/me", "/api/v1/users", "/api/v1/deployments"] {
        let (status, body) = t.get(path).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}: {body}");
    }
    let (status, body) = t.post("/api/v1/agents/tokens", &json!({ "environment": "Development" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let tid = tenant.to_string();
    let r = admin.request_with(Method::GET, "/api/v1/clusters", &[("X-Tenant-Id", &tid)], None).await;
    assert!(r.body.as_array().unwrap().iter().all(|c| c["totalNodes"] == 0), "{}", r.text);
    let r = admin.request_with(Method::GET, &format!("/api/v1/deployments/{id}"), &[("X-Tenant-Id", &tid)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = admin
        .request_with(Method::POST, "/api/v1/deployments", &[("X-Tenant-Id", &tid)], Some(deployment("kmod-k", "QA")))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}

/// What a system Admin acting for a tenant does with users and approvals
/// happens in that tenant: never, silently, in the Admin's own.
#[actix_web::test]
async fn x_tenant_id_manages_that_tenants_users_and_decides_its_approvals() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "acted-users", "Starter").await;
    let tid = tenant.to_string();
    let acting = [("X-Tenant-Id", tid.as_str())];
    let new_user = json!({ "username": "acted-deployer", "email": "dep@acted-users.example.com",
        "password": "a-long-enough-password", "roles": ["Deployer"] });
    let r = admin.request_with(Method::POST, "/api/v1/users", &acting, Some(new_user.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["tenantId"], json!(tid), "created in the tenant acted for: {}", r.text);
    let user_id = r.body["id"].as_str().unwrap().to_string();
    let names = |body: &Value| -> Vec<String> {
        body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect()
    };
    let listed = admin.request_with(Method::GET, "/api/v1/users", &acting, None).await;
    assert!(names(&listed.body).contains(&"acted-deployer".to_string()), "{}", listed.text);
    let (_, own) = admin.get("/api/v1/users").await;
    assert!(!names(&own).contains(&"acted-deployer".to_string()), "not in the Admin's own tenant: {own}");
    let disable = format!("/api/v1/users/{user_id}/disable");
    assert_eq!(admin.request_with(Method::POST, &disable, &[], None).await.status, StatusCode::NOT_FOUND);
    let r = admin.request_with(Method::POST, &disable, &acting, None).await;
    assert_eq!((r.status, r.body["isActive"].clone()), (StatusCode::OK, json!(false)), "{}", r.text);
    // A body naming another tenant than the header is refused, not guessed.
    let mut elsewhere = new_user;
    elsewhere["username"] = json!("acted-other");
    elsewhere["tenantId"] = json!(DEFAULT_TENANT.to_string());
    let r = admin.request_with(Method::POST, "/api/v1/users", &acting, Some(elsewhere)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);

    // The tenant's gated run is approved by the system Admin acting for it.
    let id = t.deploy("kmod-acted", "1.0.0", "Staging", json!({ "requireApproval": true })).await;
    t.wait_for(&id, |r| r["status"] == "PendingApproval").await;
    let approve = format!("/api/v1/approvals/deployments/{id}/approve");
    let r = admin.request_with(Method::POST, &approve, &acting, Some(json!({ "reason": "window open" }))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "Approved", "{}", r.text);
    assert_eq!(t.finished(&id).await["status"], "Succeeded");
}

/// Live updates follow the header like the REST routes: a system Admin acting
/// for a tenant watches that tenant's runs over the WebSocket and the SignalR
/// hub; each session's start is audited once in that tenant; anyone else is refused.
#[actix_web::test]
async fn x_tenant_id_is_for_system_admins_only_and_audited() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "acted-for", "Starter").await;
    let theirs = t.deploy("kmod-x", "1.0.0", "Development", json!({})).await;
    let tid = tenant.to_string();

    let r = admin.request_with(Method::GET, "/api/v1/deployments", &[("X-Tenant-Id", &tid)], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let ids: Vec<_> = r.body.as_array().unwrap().iter().map(|d| d["executionId"].clone()).collect();
    assert_eq!(ids, [json!(theirs)]);
    let used = audit_events(&admin, tenant, "TenantOverrideUsed").await;
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].entry.actor.name, "admin");
    assert_eq!(used[0].entry.details["path"], "/api/v1/deployments");
    // Without the header: the admin's own tenant.
    assert_eq!(admin.get(&format!("/api/v1/deployments/{theirs}")).await.0, StatusCode::NOT_FOUND);

    let deployer = admin.as_user(DEPLOYER).await;
    let system = DEFAULT_TENANT.to_string();
    for (who, caller, header) in
        [("a system Deployer", &deployer, tid.as_str()), ("another tenant's Admin", &t, system.as_str())]
    {
        let r = caller.request_with(Method::GET, "/api/v1/deployments", &[("X-Tenant-Id", header)], None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.text);
    }
    let r = admin.request_with(Method::GET, "/api/v1/deployments", &[("X-Tenant-Id", "nope")], None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let unknown = Uuid::new_v4().to_string();
    let r = admin.request_with(Method::GET, "/api/v1/deployments", &[("X-Tenant-Id", &unknown)], None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

#[actix_web::test]
async fn another_tenants_admin_sees_only_their_own_tenant_and_manages_none() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "nosy", "Free").await;
    let (_, list) = t.get("/api/tenants").await;
    let ids: Vec<_> = list.as_array().unwrap().iter().map(|x| x["tenantId"].clone()).collect();
    assert_eq!(ids, [json!(tenant)]);
    assert_eq!(t.get(&format!("/api/tenants/{tenant}")).await.0, StatusCode::OK);
    assert_eq!(t.get(&format!("/api/tenants/{tenant}/usage")).await.0, StatusCode::OK);
    assert_eq!(t.get(&format!("/api/tenants/{DEFAULT_TENANT}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.get(&format!("/api/tenants/{DEFAULT_TENANT}/usage")).await.0, StatusCode::NOT_FOUND);
    let body = json!({ "name": "x", "subdomain": "sneaky", "contactEmail": "a@b.example.com" });
    assert_eq!(t.post("/api/tenants", &body).await.0, StatusCode::FORBIDDEN);
    assert_eq!(t.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        t.put(&format!("/api/tenants/{tenant}/subscription"), &json!({ "tier": "Custom" })).await.0,
        StatusCode::FORBIDDEN
    );
}

#[actix_web::test]
async fn a_crashed_tenant_actor_is_restarted_and_keeps_admitting() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "crashy", "Free").await;
    let child = format!("tenant:{tenant}");
    let (status, body) = t.post(&format!("/api/v1/admin/actors/{child}/crash"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    eventually(Duration::from_secs(20), "the tenant actor restarts", async || {
        let (_, c) = t.get(&format!("/api/v1/admin/actors/{child}")).await;
        c["restarts"] == 1 && c["state"] == "Running"
    })
    .await;
    // Another tenant's actor is out of reach.
    assert_eq!(
        t.post(&format!("/api/v1/admin/actors/tenant:{DEFAULT_TENANT}/crash"), &json!({})).await.0,
        StatusCode::NOT_FOUND
    );
    eventually(Duration::from_secs(20), "runs are admitted again", async || {
        t.post("/api/v1/deployments", &deployment("kmod-c", "Development")).await.0 == StatusCode::ACCEPTED
    })
    .await;
}

#[actix_web::test]
async fn usage_report_counts_the_tenants_runs_by_status() {
    let admin = spawn_app(&[]).await;
    let (_, t) = tenant_with_admin(&admin, "reported", "Starter").await;
    let ok = t.deploy("kmod-r", "1.0.0", "Development", json!({})).await;
    t.finished(&ok).await;
    let failed =
        t.deploy("kmod-r", "1.0.1", "Development", json!({ "metadata": { "simulateDeployFailure": "1" } })).await;
    t.finished(&failed).await;
    let (status, report) = t.get("/api/v1/analytics/usage").await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["totalRuns"], 2, "{report}");
    assert_eq!(report["runsByStatus"], json!({ "Succeeded": 1, "Failed": 1 }), "{report}");
    assert!(report["nodeUpdates"].as_u64().unwrap() >= 2, "{report}");
    // The system tenant's report does not include them.
    let (_, own) = admin.get("/api/v1/analytics/usage").await;
    assert_eq!(own["totalRuns"], 0, "{own}");
    let (status, _) = t.get("/api/v1/analytics/usage?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = t.get("/api/v1/analytics/usage?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, empty) = t.get("/api/v1/analytics/usage?from=2020-01-01T00:00:00Z&to=2020-02-01T00:00:00Z").await;
    assert_eq!(empty["totalRuns"], 0);
}

#[actix_web::test]
async fn runs_per_day_are_counted_from_the_stored_runs() {
    let admin = spawn_app(&[]).await;
    let (_, t) = tenant_with_admin(&admin, "daily", "Free").await;
    for i in 0..10 {
        let id = t.deploy("kmod-daily", &format!("1.0.{i}"), "Development", json!({})).await;
        t.finished(&id).await;
    }
    let (status, body) =
        t.post("/api/v1/deployments", &crate::db::requests::deployment("kmod-daily", "1.1.0", "Development")).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(
        (body["quota"].as_str(), body["limit"].as_u64(), body["current"].as_u64()),
        (Some("runsPerDay"), Some(10), Some(10))
    );
    // It frees up at the next UTC midnight, which the answer says.
    let retry_after = body["retryAfter"].as_i64().unwrap_or(0);
    assert!((1..=86_400).contains(&retry_after), "{body}");
    // A bigger tier lifts it at once.
    let tenant = t.get("/api/v1/authentication/me").await.1["tenantId"].as_str().unwrap().to_string();
    assert_eq!(
        admin.put(&format!("/api/tenants/{tenant}/subscription"), &json!({ "tier": "Starter" })).await.0,
        StatusCode::OK
    );
    let (status, body) =
        t.post("/api/v1/deployments", &crate::db::requests::deployment("kmod-daily", "1.1.0", "Development")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}
