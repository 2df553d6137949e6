//! The audit trail through its API: every kind of event appears with the
//! right actor and tenant; reading is for Admins, paged and tenant-scoped.

use awc::http::{Method, StatusCode};
use hotswap_actors::domain::DEFAULT_TENANT;
use serde_json::{json, Value};

use crate::support::{spawn_app, stage, TestApp, DEPLOYER, VIEWER};

/// The newest entries of `event` (at most 100), newest first.
async fn entries(app: &TestApp, event: &str) -> Vec<Value> {
    let (status, page) = app.get(&format!("/api/v1/auditlogs?eventType={event}&limit=100")).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// The one entry of `event` about `resource`, asserting who did it.
async fn one(app: &TestApp, event: &str, resource: &str, actor: &str) -> Value {
    let all = entries(app, event).await;
    let found: Vec<_> = all.iter().filter(|e| e["resourceId"] == resource).collect();
    assert_eq!(found.len(), 1, "one {event} for {resource}: {all:#?}");
    let e = found[0].clone();
    assert_eq!(e["actor"]["name"], actor, "{e:#}");
    assert_eq!(e["tenantId"], DEFAULT_TENANT.to_string(), "{e:#}");
    e
}

#[actix_web::test]
async fn logins_lockouts_logouts_and_user_changes_are_recorded() {
    let app = spawn_app(&[("HOTSWAP__AUTH__MAX_FAILED_LOGINS", "3")]).await;
    let admin_id = app.get("/api/v1/authentication/me").await.1["id"].as_str().unwrap().to_string();
    let logins = entries(&app, "LoginSucceeded").await;
    let mine = logins.iter().find(|e| e["resourceId"] == admin_id.as_str()).expect("the admin's login");
    assert_eq!(mine["actor"]["name"], "admin");
    assert_eq!(mine["category"], "Authentication");
    assert_eq!(mine["actor"]["sourceAddress"], "127.0.0.1");
    assert!(mine["actor"]["traceId"].as_str().unwrap().len() == 32, "{mine}");

    let bad = |user: &str| json!({ "username": user, "password": "not-the-password" });
    let anon = app.anonymous();
    assert_eq!(anon.post("/api/v1/authentication/login", &bad("nobody-here")).await.0, StatusCode::UNAUTHORIZED);
    let unknown = entries(&app, "LoginFailed").await;
    assert!(unknown.iter().any(|e| e["actor"]["name"] == "anonymous" && e["details"]["reason"] == "unknown user"));
    assert!(
        !serde_json::to_string(&unknown).unwrap().contains("nobody-here"),
        "typed names of unknown users are not kept"
    );
    assert!(!serde_json::to_string(&unknown).unwrap().contains("not-the-password"));

    let victim = app.new_user("audit-victim", &["Viewer"], None).await;
    let victim_id = victim.get("/api/v1/authentication/me").await.1["id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        anon.post("/api/v1/authentication/login", &bad("audit-victim")).await;
    }
    let failed = entries(&app, "LoginFailed").await;
    assert!(failed.iter().filter(|e| e["resourceId"] == victim_id.as_str()).count() >= 3);
    let locked = one(&app, "AccountLocked", &victim_id, "audit-victim").await;
    assert_eq!(locked["result"], "Denied");

    let viewer = app.as_user(VIEWER).await;
    assert_eq!(viewer.post("/api/v1/authentication/logout", &json!({})).await.0, StatusCode::NO_CONTENT);
    assert_eq!(entries(&app, "Logout").await[0]["actor"]["name"], "viewer");

    let user_path = format!("/api/v1/users/{victim_id}");
    assert_eq!(app.put(&format!("{user_path}/roles"), &json!({ "roles": ["Deployer"] })).await.0, StatusCode::OK);
    assert_eq!(app.post(&format!("{user_path}/disable"), &json!({})).await.0, StatusCode::OK);
    assert_eq!(app.post(&format!("{user_path}/enable"), &json!({})).await.0, StatusCode::OK);
    let reset = json!({ "password": "another-long-password" });
    assert_eq!(app.post(&format!("{user_path}/password"), &reset).await.0, StatusCode::NO_CONTENT);
    for event in ["UserCreated", "UserRolesChanged", "UserDisabled", "UserEnabled", "UserPasswordReset"] {
        let e = one(&app, event, &victim_id, "admin").await;
        assert_eq!(e["category"], "UserManagement");
        assert!(!e.to_string().contains("another-long-password"), "no password in {e}");
        assert!(!e.to_string().contains("$2"), "no hash in {e}");
    }
    let roles = one(&app, "UserRolesChanged", &victim_id, "admin").await;
    assert_eq!(roles["details"]["roles"], json!(["Deployer"]));
}

#[actix_web::test]
async fn runs_verbs_rollbacks_approvals_and_admin_actions_are_recorded() {
    let app = spawn_app(&[("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "60s")]).await;
    let deployer = app.as_user(DEPLOYER).await;
    let dev = deployer.deploy("kmod-audited", "1.0.0", "Development", json!({})).await;
    assert_eq!(deployer.finished(&dev).await["status"], "Succeeded");
    let created = one(&app, "DeploymentCreated", &dev, "deployer").await;
    assert_eq!(created["category"], "Deployment");
    assert_eq!(created["details"]["module"], "kmod-audited");
    let stages = entries(&app, "StageCompleted").await;
    let deploy_stage = stages
        .iter()
        .find(|e| e["resourceId"] == dev.as_str() && e["details"]["stage"] == "Deploy to Development")
        .expect("the deploy stage's completion");
    assert_eq!(deploy_stage["actor"]["name"], "system");
    assert!(deploy_stage["message"].as_str().unwrap().contains("Succeeded"), "{deploy_stage}");
    assert_eq!(deploy_stage["details"]["nodesDeployed"], 3, "node counts per stage: {deploy_stage}");
    assert_eq!(deploy_stage["details"]["nodesFailed"], 0);
    one(&app, "DeploymentCompleted", &dev, "system").await;

    assert_eq!(deployer.post(&format!("/api/v1/deployments/{dev}/rollback"), &json!({})).await.0, StatusCode::ACCEPTED);
    let rollback = one(&app, "RollbackRequested", &dev, "deployer").await;
    assert!(rollback["details"]["nodesAffected"].as_u64().unwrap() > 0);
    deployer.finished(&dev).await;

    // Verbs on a canary that bakes for a minute.
    let prod = deployer.deploy("kmod-steered", "1.0.0", "Production", json!({})).await;
    deployer.wait_for(&prod, |r| stage(r, "Deploy to Production")["status"] == "Running").await;
    let mut verb_traces = std::collections::HashMap::new();
    for verb in ["pause", "resume", "abort"] {
        let reply = app.call(Method::POST, &format!("/api/v1/deployments/{prod}/{verb}"), Some(json!({}))).await;
        assert_eq!(reply.status, StatusCode::ACCEPTED, "{verb}: {}", reply.text);
        verb_traces.insert(verb, reply.header("x-trace-id").expect("every answer names its trace").to_string());
    }
    let finished = app.finished(&prod).await;
    assert_eq!(finished["status"], "Cancelled");
    // Every verb under one event type (pause and resume were DeploymentStatusChanged).
    let verbs = entries(&app, "VerbAccepted").await;
    let by_admin: Vec<_> = verbs.iter().filter(|e| e["resourceId"] == prod.as_str()).collect();
    for verb in ["pause", "resume", "abort"] {
        let entry = by_admin.iter().find(|e| e["details"]["verb"] == verb);
        assert!(entry.is_some_and(|e| e["actor"]["name"] == "admin"), "{verb}: {by_admin:#?}");
    }
    assert_eq!(by_admin.len(), 3, "{by_admin:#?}");
    // Each verb's entry carries the trace its caller was given, and names the run's.
    let (_, about_prod) = app.get(&format!("/api/v1/auditlogs?resourceId={prod}&limit=100")).await;
    for (verb, trace) in &verb_traces {
        let entry = about_prod["items"].as_array().unwrap().iter().find(|e| e["details"]["verb"] == *verb);
        let entry = entry.unwrap_or_else(|| panic!("{verb}: {about_prod:#}"));
        assert_eq!(entry["actor"]["traceId"], trace.as_str(), "{verb}: {entry}");
        assert_eq!(entry["details"]["runTraceId"], finished["traceId"], "{verb}: {entry}");
    }
    one(&app, "DeploymentCancelled", &prod, "system").await;

    // An approval, granted.
    let gated = deployer.deploy("kmod-gated", "1.0.0", "Staging", json!({ "requireApproval": true })).await;
    deployer.wait_for(&gated, |r| r["status"] == "PendingApproval").await;
    let approval = app.get(&format!("/api/v1/approvals/deployments/{gated}")).await.1;
    let approval_id = approval["approvalId"].as_str().unwrap().to_string();
    app.post(&format!("/api/v1/approvals/deployments/{gated}/approve"), &json!({ "reason": "ok" })).await;
    // The decision is about the run, as the request is: the run's id finds both.
    let granted = one(&app, "ApprovalGranted", &gated, "admin").await;
    assert_eq!(granted["category"], "Approval");
    assert_eq!(granted["resourceType"], "Deployment");
    assert_eq!(granted["details"]["approvalId"], approval_id.as_str());
    assert_eq!(granted["details"]["reason"], "ok");
    one(&app, "ApprovalRequested", &gated, "system").await;
    let (_, trail) = app.get(&format!("/api/v1/auditlogs/approvals/{gated}")).await;
    let kinds: Vec<_> = trail.as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ApprovalRequested", "ApprovalGranted"]);
    let (_, found) = app.get(&format!("/api/v1/auditlogs?resourceId={gated}&category=Approval")).await;
    let kinds: Vec<_> = found["items"].as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ApprovalGranted", "ApprovalRequested"], "newest first: {found:#}");
    app.finished(&gated).await;

    // Operators acting on supervised actors.
    let (status, body) = app.post("/api/v1/admin/actors/node:development-node-01/restart", &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let restart = one(&app, "ActorRestart", "node:development-node-01", "admin").await;
    assert_eq!(restart["category"], "Administration");

    // The run's whole story, by run and by trace id.
    let (status, by_run) = app.get(&format!("/api/v1/auditlogs/deployments/{dev}")).await;
    assert_eq!(status, StatusCode::OK);
    let story: Vec<_> = by_run.as_array().unwrap().iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(story.first(), Some(&"DeploymentCreated"), "oldest first: {story:?}");
    assert!(story.contains(&"RollbackRequested") && story.contains(&"DeploymentRolledBack"), "{story:?}");
    let trace = by_run[0]["actor"]["traceId"].as_str().unwrap().to_string();
    let (_, by_trace) = app.get(&format!("/api/v1/auditlogs/trace/{trace}")).await;
    assert!(by_trace.as_array().unwrap().iter().all(|e| e["actor"]["traceId"] == trace.as_str()));
    assert!(by_trace.as_array().unwrap().iter().any(|e| e["eventType"] == "DeploymentCompleted"));
}

#[actix_web::test]
async fn reading_the_trail_is_for_admins_paged_and_validated() {
    let app = spawn_app(&[]).await;
    for path in ["/api/v1/auditlogs", "/api/v1/auditlogs/category/Authentication"] {
        assert_eq!(app.as_user(DEPLOYER).await.get(path).await.0, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(app.anonymous().get(path).await.0, StatusCode::UNAUTHORIZED, "{path}");
    }
    let bad = [
        "/api/v1/auditlogs/category/Authentication?pageNumber=0",
        "/api/v1/auditlogs/category/Authentication?pageSize=0",
        "/api/v1/auditlogs/category/Authentication?pageSize=101",
        "/api/v1/auditlogs/category/NoSuchCategory",
        "/api/v1/auditlogs/trace/%20",
        "/api/v1/auditlogs/deployments/00000000-0000-0000-0000-000000000000",
        "/api/v1/auditlogs/approvals/not-a-guid",
        "/api/v1/auditlogs/authentication/admin?startDate=2026-02-01T00:00:00Z&endDate=2026-01-01T00:00:00Z",
        "/api/v1/auditlogs?limit=0",
        "/api/v1/auditlogs?limit=500",
        "/api/v1/auditlogs?cursor=-3",
        "/api/v1/auditlogs?category=Nope",
        "/api/v1/auditlogs?bogus=1",
    ];
    for path in bad {
        let (status, body) = app.get(path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body["message"].is_string(), "{path}: {body}");
    }
    // There is no way to change or delete an entry.
    for method in [Method::DELETE, Method::PUT, Method::PATCH] {
        let r = app.call(method.clone(), "/api/v1/auditlogs", Some(json!({}))).await;
        assert!(matches!(r.status.as_u16(), 404 | 405), "{method} answered {}", r.status);
    }

    // Enough logins for three pages of two.
    for _ in 0..5 {
        app.login(("viewer", "Viewer123!")).await;
    }
    let (status, page) = app.get("/api/v1/auditlogs/category/Authentication?pageNumber=2&pageSize=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page.as_array().unwrap().len(), 2);
    let (_, by_name) = app.get("/api/v1/auditlogs/authentication/viewer?pageSize=100").await;
    assert!(by_name.as_array().unwrap().len() >= 5);
    assert!(by_name.as_array().unwrap().iter().all(|e| e["actor"]["name"] == "viewer"));

    // Cursor paging visits every entry once, newest first.
    let mut seen = Vec::new();
    let mut cursor: Option<i64> = None;
    loop {
        let path = match cursor {
            Some(c) => format!("/api/v1/auditlogs?category=Authentication&limit=2&cursor={c}"),
            None => "/api/v1/auditlogs?category=Authentication&limit=2".to_string(),
        };
        let (_, page) = app.get(&path).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
        match page["nextCursor"].as_i64() {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let total = app.get("/api/v1/auditlogs?category=Authentication&limit=1").await.1["total"].as_u64().unwrap();
    assert_eq!(seen.len() as u64, total);
    assert!(seen.windows(2).all(|w| w[0] > w[1]), "{seen:?}");
}

#[actix_web::test]
async fn another_tenant_sees_only_its_own_entries() {
    let app = spawn_app(&[]).await;
    let id = app.deploy("kmod-private", "1.0.0", "Development", json!({})).await;
    app.finished(&id).await;
    let outsider = app
        .new_user("audit-outsider", &["Admin"], Some(crate::tenants::provision(&app, "outside-audit", "Starter").await))
        .await;
    let (status, page) = outsider.get("/api/v1/auditlogs?limit=100").await;
    assert_eq!(status, StatusCode::OK);
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty(), "its own login is there");
    assert!(items.iter().all(|e| e["tenantId"] != DEFAULT_TENANT.to_string()), "{items:#?}");
    assert_eq!(outsider.get(&format!("/api/v1/auditlogs/deployments/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(outsider.get("/api/v1/auditlogs/authentication/admin").await.0, StatusCode::NOT_FOUND);
}
