//! `GET /api/v1/agents`: the tenant's hosts by host name, a page at a time,
//! filtered by environment, host name and connection.

use awc::http::{Method, StatusCode};
use chrono::Utc;
use hotswap_actors::domain::{AgentRecord, AuditActor, AuditCategory, Environment, NewAuditEntry, DEFAULT_TENANT};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{spawn_app, TestApp};

/// Records `count` hosts of `environment` as enrolled (none connected): the
/// listing reads the store, so no agent process is needed here.
async fn enrolled(app: &TestApp, environment: Environment, prefix: &str, count: usize) {
    let (status, token) = app.post("/api/v1/agents/tokens", &json!({ "environment": environment })).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let token_id: Uuid = token["id"].as_str().unwrap().parse().unwrap();
    for i in 0..count {
        let agent = AgentRecord {
            tenant_id: DEFAULT_TENANT,
            node_id: Uuid::new_v4(),
            hostname: format!("{prefix}-{i:03}"),
            environment,
            labels: Default::default(),
            agent_version: "test".into(),
            token_id,
            session_hash: format!("test-session-{prefix}-{i}"),
            address: None,
            enrolled_at: Utc::now(),
            last_seen_at: Utc::now(),
        };
        let audit =
            NewAuditEntry::new(DEFAULT_TENANT, AuditActor::system(), AuditCategory::Administration, "AgentEnrolled");
        app.orchestrator.store().save_agent(&agent, &audit).await.unwrap();
    }
}

fn hostnames(body: &Value) -> Vec<String> {
    body.as_array().unwrap().iter().map(|a| a["hostname"].as_str().unwrap().to_string()).collect()
}

#[actix_web::test]
async fn the_agent_list_pages_by_host_name_and_filters() {
    let app = spawn_app(&[]).await;
    enrolled(&app, Environment::Qa, "qa", 5).await;
    enrolled(&app, Environment::Production, "prod", 3).await;

    let reply = app.call(Method::GET, "/api/v1/agents?page=2&pageSize=3", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        (reply.header("X-Total-Count"), reply.header("X-Page"), reply.header("X-Page-Size")),
        (Some("8"), Some("2"), Some("3"))
    );
    assert_eq!(hostnames(&reply.body), ["qa-000", "qa-001", "qa-002"], "prod-* sort first");

    let reply = app.call(Method::GET, "/api/v1/agents?environment=qa&page=2&pageSize=3", None).await;
    assert_eq!(reply.header("X-Total-Count"), Some("5"));
    assert_eq!(hostnames(&reply.body), ["qa-003", "qa-004"]);

    let (_, one) = app.get("/api/v1/agents?hostname=prod-001").await;
    assert_eq!(hostnames(&one), ["prod-001"]);
    assert_eq!(one[0]["connected"], false);
    let (_, none) = app.get("/api/v1/agents?connected=true").await;
    assert_eq!(none, json!([]), "no agent process is connected");
    let reply = app.call(Method::GET, "/api/v1/agents?connected=false", None).await;
    assert_eq!((reply.header("X-Total-Count"), hostnames(&reply.body).len()), (Some("8"), 8));

    // Past the last page: an empty page that still counts them all.
    let reply = app.call(Method::GET, "/api/v1/agents?page=9&pageSize=3", None).await;
    assert_eq!(
        (reply.status, reply.body.clone(), reply.header("X-Total-Count")),
        (StatusCode::OK, json!([]), Some("8"))
    );

    for bad in ["page=0", "pageSize=0", "pageSize=1001", "environment=Moon", "connected=maybe", "colour=red"] {
        let reply = app.call(Method::GET, &format!("/api/v1/agents?{bad}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text);
        assert!(reply.body["message"].is_string() && reply.body["traceId"].is_string(), "{bad}: {}", reply.text);
    }
}

#[actix_web::test]
async fn enrolment_tokens_page_newest_first_and_filter_by_state() {
    let app = spawn_app(&[]).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let (status, token) = app.post("/api/v1/agents/tokens", &json!({ "environment": "QA" })).await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        ids.push(token["id"].as_str().unwrap().to_string());
    }
    let (status, _) = app.post(&format!("/api/v1/agents/tokens/{}/revoke", ids[0]), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, short) = app.post("/api/v1/agents/tokens", &json!({ "environment": "QA", "expiresIn": 1 })).await;
    let short = short["id"].as_str().unwrap().to_string();

    let listed = |query: &'static str| {
        let app = app.clone();
        async move {
            let reply = app.call(Method::GET, &format!("/api/v1/agents/tokens?{query}"), None).await;
            assert_eq!(reply.status, StatusCode::OK, "{query}: {}", reply.text);
            let ids: Vec<String> =
                reply.body.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_string()).collect();
            (ids, reply.header("X-Total-Count").map(str::to_string))
        }
    };
    // The one-second token expires by itself; until then it is usable.
    crate::db::poll::eventually(std::time::Duration::from_secs(10), "the short token expires", async || {
        listed("state=expired").await.0 == [short.clone()]
    })
    .await;
    assert_eq!(listed("state=revoked").await, (vec![ids[0].clone()], Some("1".into())));
    assert_eq!(listed("state=usable").await, (vec![ids[2].clone(), ids[1].clone()], Some("2".into())));
    assert_eq!(listed("pageSize=3&page=2").await, (vec![ids[0].clone()], Some("4".into())), "newest first");
    for bad in ["state=lost", "pageSize=0", "page=0", "pageSize=1001"] {
        let reply = app.call(Method::GET, &format!("/api/v1/agents/tokens?{bad}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text);
    }
}

/// With a retention of a second, a token that expired is forgotten by the
/// sweep; a usable one stays.
#[actix_web::test]
async fn an_expired_token_is_forgotten_after_its_retention() {
    let app =
        spawn_app(&[("HOTSWAP__AGENT__TOKEN_RETENTION", "1s"), ("HOTSWAP__AGENT__TOKEN_SWEEP_INTERVAL", "100ms")])
            .await;
    let (_, short) = app.post("/api/v1/agents/tokens", &json!({ "environment": "QA", "expiresIn": 1 })).await;
    let (_, kept) = app.post("/api/v1/agents/tokens", &json!({ "environment": "QA" })).await;
    crate::db::poll::eventually(std::time::Duration::from_secs(15), "the expired token is forgotten", async || {
        let (_, tokens) = app.get("/api/v1/agents/tokens").await;
        let ids: Vec<&str> = tokens.as_array().unwrap().iter().filter_map(|t| t["id"].as_str()).collect();
        assert!(ids.contains(&kept["id"].as_str().unwrap()), "the usable token stays: {tokens}");
        !ids.contains(&short["id"].as_str().unwrap())
    })
    .await;
}
