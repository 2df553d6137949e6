//! Approval gates end to end: the original's scenarios, expiry, the
//! self-approval policy, races, tenancy, notifications.

use crate::db::poll::{eventually, eventually_ok};
use std::sync::Arc;
use std::time::Duration;

use awc::http::StatusCode;
use hotswap_actors::domain::Environment::*;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::support::{spawn_app, stage, TestApp, DEPLOYER, VIEWER};
use crate::ws_support::WsClient;

fn gated() -> Value {
    json!({ "requireApproval": true })
}

async fn pending_run(app: &TestApp, module: &str, target: &str) -> String {
    let id = app.deploy(module, "1.0.0", target, gated()).await;
    let run = app.wait_for(&id, |r| r["status"] == "PendingApproval").await;
    assert_eq!(stage(&run, "Approval")["status"], "WaitingForApproval", "{run:#}");
    id
}

fn approve_path(id: &str) -> String {
    format!("/api/v1/approvals/deployments/{id}/approve")
}

fn reject_path(id: &str) -> String {
    format!("/api/v1/approvals/deployments/{id}/reject")
}

#[actix_web::test]
async fn a_gated_staging_run_waits_and_an_admin_approval_moves_it_on() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-gate", "Staging").await;
    // The gate comes before any node is touched.
    app.assert_all_active(Development, "kmod-gate", None).await;

    let (status, pending) = app.get("/api/v1/approvals/pending").await;
    assert_eq!(status, StatusCode::OK);
    let mine: Vec<_> =
        pending.as_array().unwrap().iter().filter(|p| p["deploymentExecutionId"] == id.as_str()).collect();
    assert_eq!(mine.len(), 1, "{pending:#}");
    assert_eq!(mine[0]["moduleName"], "kmod-gate");
    assert_eq!(mine[0]["targetEnvironment"], "Staging");
    assert_eq!(mine[0]["requesterEmail"], "dev@example.com");
    assert!(mine[0]["timeRemaining"].as_str().unwrap().ends_with('m'), "{}", mine[0]);
    assert!(mine[0]["secondsRemaining"].as_i64().unwrap() > 60, "{}", mine[0]);

    let (status, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(approval["status"], "Pending");

    let deployer = app.as_user(DEPLOYER).await;
    assert_eq!(deployer.post(&approve_path(&id), &json!({})).await.0, StatusCode::FORBIDDEN);
    assert_eq!(deployer.post(&reject_path(&id), &json!({})).await.0, StatusCode::FORBIDDEN);

    let (status, decided) = app.post(&approve_path(&id), &json!({ "reason": "change window open" })).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "Approved");
    assert_eq!(decided["respondedBy"], "admin@example.com");
    assert_eq!(decided["responseReason"], "change window open");

    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    assert_eq!(stage(&run, "Approval")["status"], "Succeeded");
    assert_eq!(stage(&run, "Approval")["message"], "Approved by admin@example.com. change window open");
    assert_eq!(stage(&run, "Deploy to Staging")["status"], "Succeeded");
    let names: Vec<_> = run["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(names[..3], ["Security Scan", "Approval", "Deploy to Development"]);
    app.assert_all_active(Staging, "kmod-gate", Some("1.0.0")).await;

    // A second decision is refused with the status it met.
    let (status, body) = app.post(&reject_path(&id), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["currentStatus"], "Approved");
    assert!(!app
        .get("/api/v1/approvals/pending")
        .await
        .1
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["deploymentExecutionId"] == id.as_str()));
}

#[actix_web::test]
async fn a_rejected_run_fails_without_touching_a_node() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-nope", "Production").await;
    let (status, decided) = app.post(&reject_path(&id), &json!({ "reason": "freeze" })).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["status"], "Rejected");
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed");
    assert_eq!(run["message"], "Rejected by admin@example.com: freeze");
    assert_eq!(stage(&run, "Approval")["status"], "Failed");
    assert_eq!(stage(&run, "Deploy to Development")["status"], "Skipped");
    for env in [Development, Qa, Staging, Production] {
        app.assert_all_active(env, "kmod-nope", None).await;
    }
    let (status, body) = app.post(&approve_path(&id), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["currentStatus"], "Rejected");
}

#[actix_web::test]
async fn which_runs_need_approval() {
    // Production is required by configuration; Staging only when asked.
    let app = spawn_app(&[("HOTSWAP__APPROVALS__REQUIRED_ENVIRONMENTS", "Production")]).await;
    let asked_dev = app.deploy("kmod-dev", "1.0.0", "Development", gated()).await;
    let unasked_staging = app.deploy("kmod-stg", "1.0.0", "Staging", json!({})).await;
    let unasked_prod = app.deploy("kmod-prd", "1.0.0", "Production", json!({ "requireApproval": false })).await;
    for id in [&asked_dev, &unasked_staging] {
        let run = app.finished(id).await;
        assert_eq!(run["status"], "Succeeded", "{run:#}");
        assert!(stage(&run, "Approval").is_null(), "no gate: {run:#}");
    }
    let run = app.wait_for(&unasked_prod, |r| r["status"] == "PendingApproval").await;
    assert_eq!(stage(&run, "Approval")["status"], "WaitingForApproval", "the request cannot opt out");
}

#[actix_web::test]
async fn two_pending_runs_are_decided_independently_and_a_race_has_one_winner() {
    let app = spawn_app(&[]).await;
    let (a, b) = (pending_run(&app, "kmod-a", "Staging").await, pending_run(&app, "kmod-b", "Staging").await);
    assert_eq!(app.post(&approve_path(&a), &json!({})).await.0, StatusCode::OK);
    // Both verdicts at once on b: exactly one wins, the other sees it.
    let (yes, no, empty) = (approve_path(&b), reject_path(&b), json!({}));
    let (approve, reject) = futures::join!(app.post(&yes, &empty), app.post(&no, &empty));
    let statuses = [approve.0, reject.0];
    assert!(statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::CONFLICT), "{statuses:?}");
    let winner = if approve.0 == StatusCode::OK { "Approved" } else { "Rejected" };
    let loser = if approve.0 == StatusCode::OK { &reject.1 } else { &approve.1 };
    assert_eq!(loser["currentStatus"], winner, "{loser}");
    assert_eq!(app.finished(&a).await["status"], "Succeeded");
    let expected = if winner == "Approved" { "Succeeded" } else { "Failed" };
    assert_eq!(app.finished(&b).await["status"], expected);
}

#[actix_web::test]
async fn an_approval_expires_on_its_timer_and_fails_the_run() {
    let app = spawn_app(&[("HOTSWAP__APPROVALS__TIMEOUT", "400ms")]).await;
    let id = app.deploy("kmod-late", "1.0.0", "Staging", gated()).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Failed", "{run:#}");
    assert!(run["message"].as_str().unwrap().starts_with("Approval request expired after 400ms"), "{}", run["message"]);
    assert_eq!(stage(&run, "Approval")["status"], "Failed");
    let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    assert_eq!(approval["status"], "Expired");
    assert_eq!(approval["respondedBy"], Value::Null);
    let (status, body) = app.post(&approve_path(&id), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["currentStatus"], "Expired");
    app.assert_all_active(Development, "kmod-late", None).await;
}

#[actix_web::test]
async fn self_approval_follows_the_policy() {
    let app = spawn_app(&[("HOTSWAP__APPROVALS__ALLOW_SELF_APPROVAL", "false")]).await;
    // The admin requests; the admin may not approve it, another admin may.
    let id = pending_run(&app, "kmod-self", "Staging").await;
    let (status, body) = app.post(&approve_path(&id), &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["message"].as_str().unwrap().contains("allow_self_approval"), "{body}");
    let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    assert_eq!(approval["status"], "Pending", "a refused decision changes nothing");
    let other = app.new_user("second-admin", &["Admin"], None).await;
    let (status, decided) = other.post(&approve_path(&id), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{decided}");
    assert_eq!(decided["respondedBy"], "second-admin@example.com");
    assert_eq!(app.finished(&id).await["status"], "Succeeded");
}

#[actix_web::test]
async fn the_decider_is_the_token_never_the_body() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-who", "Staging").await;
    let (status, body) = app.post(&approve_path(&id), &json!({ "approverEmail": "ceo@example.com" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = app.post(&approve_path(&id), &json!({ "approverEmail": "ADMIN@example.com" })).await;
    assert_eq!(status, StatusCode::OK, "the caller's own address, in any case, is accepted");
    // Unknown runs and malformed ids are 404; no token is 401.
    let unknown = uuid::Uuid::new_v4();
    assert_eq!(app.post(&approve_path(&unknown.to_string()), &json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/approvals/deployments/not-a-guid").await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.anonymous().get("/api/v1/approvals/pending").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(app.as_user(VIEWER).await.get("/api/v1/approvals/pending").await.0, StatusCode::OK);
}

/// A decision whose body does not parse is refused, not taken with no reason.
#[actix_web::test]
async fn a_decision_body_that_does_not_parse_is_refused() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-typo", "Staging").await;
    for bad in [&br#"{"reason":5}"#[..], b"not json"] {
        let (status, body) = app.post_raw(&reject_path(&id), "application/json", bad.to_vec()).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_request")), "{body}");
    }
    let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    assert_eq!(approval["status"], "Pending", "{approval}");
    let r = app.call(awc::http::Method::POST, &approve_path(&id), None).await;
    assert_eq!((r.status, &r.body["status"]), (StatusCode::OK, &json!("Approved")), "no body is no reason: {}", r.text);
}

#[actix_web::test]
async fn another_tenants_approvals_are_invisible() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-tenant", "Staging").await;
    let outsider = app
        .new_user(
            "outside-admin",
            &["Admin"],
            Some(crate::tenants::provision(&app, "outside-approvals", "Starter").await),
        )
        .await;
    assert_eq!(outsider.get(&format!("/api/v1/approvals/deployments/{id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(outsider.post(&approve_path(&id), &json!({})).await.0, StatusCode::NOT_FOUND);
    assert_eq!(outsider.get("/api/v1/approvals/pending").await.1, json!([]));
    let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    assert_eq!(approval["status"], "Pending");
}

#[actix_web::test]
async fn the_last_minute_of_a_pending_approval_is_counted_in_seconds() {
    let app = spawn_app(&[("HOTSWAP__APPROVALS__TIMEOUT", "50s")]).await;
    let id = pending_run(&app, "kmod-last-minute", "Staging").await;
    let (_, pending) = app.get("/api/v1/approvals/pending").await;
    let mine = pending.as_array().unwrap().iter().find(|p| p["deploymentExecutionId"] == id.as_str()).unwrap();
    // The original's format has no seconds; the exact count is beside it.
    assert_eq!(mine["timeRemaining"], "0m", "{mine}");
    let seconds = mine["secondsRemaining"].as_i64().unwrap();
    assert!((1..=50).contains(&seconds), "{mine}");
}

#[actix_web::test]
async fn aborting_a_waiting_run_closes_its_approval() {
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-abort", "Staging").await;
    let deployer = app.as_user(DEPLOYER).await;
    assert_eq!(deployer.post(&format!("/api/v1/deployments/{id}/abort"), &json!({})).await.0, StatusCode::ACCEPTED);
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Cancelled");
    // Its Approval stage ended with the wait rather than waiting for ever.
    let gate = crate::support::stage(&run, "Approval");
    assert_eq!(gate["status"], "Skipped", "{run:#}");
    assert!(!gate["endTime"].is_null() && gate["message"].as_str().unwrap().contains("aborted"), "{gate}");
    let approval = eventually_ok(Duration::from_secs(10), "the approval closes", async || {
        let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
        if approval["status"] == "Rejected" {
            Ok(approval)
        } else {
            Err(approval.to_string())
        }
    })
    .await;
    assert_eq!(approval["responseReason"], "the deployment was aborted by deployer");

    // The trail says the abort closed it, and who aborted; nobody rejected it.
    let (_, found) = app.get(&format!("/api/v1/auditlogs?resourceId={id}&category=Approval")).await;
    let items = found["items"].as_array().unwrap();
    let kinds: Vec<_> = items.iter().map(|e| e["eventType"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ApprovalClosed", "ApprovalRequested"], "newest first: {found:#}");
    let closed = &items[0];
    assert_eq!(closed["actor"]["name"], "deployer", "{closed:#}");
    assert_eq!(closed["resourceType"], "Deployment");
    assert_eq!(closed["details"]["approvalId"], approval["approvalId"]);
    assert!(closed["message"].as_str().unwrap().contains("aborted by deployer"), "{closed:#}");

    // Nothing was rolled back, and the refusal of a rollback says why.
    let (status, refused) = app.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
    assert_eq!(refused["currentStatus"], "Cancelled");
    let message = refused["message"].as_str().unwrap();
    assert!(message.contains("was cancelled") && message.contains("Succeeded or Failed"), "{refused}");
    assert!(!message.contains("already been rolled back"), "{refused}");
}

#[actix_web::test]
async fn live_clients_see_the_request_and_the_decision() {
    let app = spawn_app(&[]).await;
    let mut ws = WsClient::connect(&app, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "all": true })).await;
    ws.json().await;
    let id = pending_run(&app, "kmod-live-gate", "Staging").await;
    let before = ws.until(|m| m["type"] == "ApprovalRequested").await;
    let changed = before.iter().rev().find(|m| m["type"] == "DeploymentStatusChanged").unwrap();
    assert_eq!(changed["data"]["status"], "PendingApproval");
    assert_eq!(before.last().unwrap()["executionId"], id.as_str());
    app.post(&approve_path(&id), &json!({})).await;
    let after = ws.until(|m| m["type"] == "ApprovalDecided").await;
    assert_eq!(after.last().unwrap()["data"]["status"], "Approved");
    assert_eq!(after.last().unwrap()["data"]["decidedBy"], "admin@example.com");
    ws.until(|m| m["type"] == "DeploymentCompleted").await;

    // An abort at the gate ends the approval too: live clients hear it as
    // they hear a decision (they heard nothing, and kept it as waiting).
    let aborted = pending_run(&app, "kmod-live-gate-abort", "Staging").await;
    ws.until(|m| m["type"] == "ApprovalRequested" && m["executionId"] == aborted.as_str()).await;
    app.post(&format!("/api/v1/deployments/{aborted}/abort"), &json!({})).await;
    let after = ws.until(|m| m["type"] == "DeploymentStatusChanged" && m["data"]["status"] == "Cancelled").await;
    let decided = after.iter().find(|m| m["type"] == "ApprovalDecided" && m["executionId"] == aborted.as_str());
    let decided = decided.unwrap_or_else(|| panic!("no ApprovalDecided: {after:#?}"));
    assert_eq!(decided["data"]["status"], "Rejected", "{decided}");
    assert_eq!(decided["data"]["reason"], "the deployment was aborted by admin", "{decided}");
}

/// A webhook receiver that fails its first `failures` requests with 500.
async fn receiver(failures: usize) -> (String, Arc<Mutex<Vec<(String, Value)>>>, Arc<Mutex<usize>>) {
    use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
    let received = Arc::new(Mutex::new(Vec::new()));
    let attempts = Arc::new(Mutex::new(0usize));
    let (r, a) = (received.clone(), attempts.clone());
    let server = HttpServer::new(move || {
        let (r, a) = (r.clone(), a.clone());
        App::new().route(
            "/hook",
            web::post().to(move |req: HttpRequest, body: web::Json<Value>| {
                let (r, a) = (r.clone(), a.clone());
                async move {
                    let mut n = a.lock();
                    *n += 1;
                    if *n <= failures {
                        return HttpResponse::InternalServerError().finish();
                    }
                    let event =
                        req.headers().get("X-HotSwap-Event").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    r.lock().push((event, body.into_inner()));
                    HttpResponse::NoContent().finish()
                }
            }),
        )
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (format!("http://{addr}/hook"), received, attempts)
}

#[actix_web::test]
async fn webhooks_receive_requests_and_decisions_with_retries() {
    let (url, received, attempts) = receiver(2).await;
    let app = spawn_app(&[("HOTSWAP__NOTIFICATIONS__WEBHOOKS", url.as_str())]).await;
    let id = pending_run(&app, "kmod-hook", "Staging").await;
    app.post(&approve_path(&id), &json!({ "reason": "ok" })).await;
    assert_eq!(app.finished(&id).await["status"], "Succeeded", "the run never waits on a webhook");
    eventually(Duration::from_secs(10), "both webhooks are delivered", async || received.lock().len() >= 2).await;
    let got = received.lock().clone();
    let events: Vec<_> = got.iter().map(|(e, _)| e.as_str()).collect();
    assert!(events.contains(&"ApprovalRequested") && events.contains(&"ApprovalGranted"), "{events:?}");
    let granted = &got.iter().find(|(e, _)| e == "ApprovalGranted").unwrap().1;
    assert_eq!(granted["executionId"], id.as_str());
    assert_eq!(granted["decidedBy"], "admin@example.com");
    assert_eq!(granted["reason"], "ok");
    assert_eq!(granted["moduleName"], "kmod-hook");
    assert!(*attempts.lock() >= 4, "two failures were retried: {} attempts", attempts.lock());
}

#[actix_web::test]
async fn approval_metrics_count_requests_and_decisions() {
    let app = spawn_app(&[]).await;
    let (a, b) = (pending_run(&app, "kmod-m1", "Staging").await, pending_run(&app, "kmod-m2", "Staging").await);
    app.post(&approve_path(&a), &json!({})).await;
    app.post(&reject_path(&b), &json!({})).await;
    app.finished(&a).await;
    app.finished(&b).await;
    let text = app.get_text("/metrics").await;
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name) && l.contains("environment=\"Staging\""))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(value("hotswap_approvals_requested_total"), 2.0, "{text}");
    assert_eq!(value("hotswap_approvals_granted_total"), 1.0);
    assert_eq!(value("hotswap_approvals_rejected_total"), 1.0);
}

#[actix_web::test]
async fn a_decision_stored_by_another_instance_wakes_the_run() {
    use hotswap_actors::domain::{
        ApprovalDecision, ApprovalStatus, AuditActor, AuditCategory, NewAuditEntry, DEFAULT_TENANT,
    };
    let app = spawn_app(&[]).await;
    let id = pending_run(&app, "kmod-elsewhere", "Staging").await;
    let (_, approval) = app.get(&format!("/api/v1/approvals/deployments/{id}")).await;
    let approval_id: uuid::Uuid = approval["approvalId"].as_str().unwrap().parse().unwrap();
    // Written straight into the store, as another instance's actor would: this
    // process's actor is not told, only the store changes.
    let decision = ApprovalDecision {
        status: ApprovalStatus::Approved,
        at: chrono::Utc::now(),
        by_id: None,
        by_email: Some("other-instance@example.com".into()),
        reason: None,
    };
    let entry = NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::Approval, "ApprovalGranted");
    app.orchestrator.store().decide_approval(DEFAULT_TENANT, approval_id, &decision, &entry).await.unwrap();
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    assert_eq!(stage(&run, "Approval")["message"], "Approved by other-instance@example.com.");
}
