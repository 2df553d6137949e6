//! A suspended tenant's agents are cut off within seconds: their sessions
//! close, their nodes show `Unreachable`, and they cannot connect again.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::agents::Agent;
use crate::process::{free_port, Server};
use crate::support::poll::{eventually, eventually_ok};
use crate::support::TestDb;

/// A request as the system Admin acting for `tenant` (`X-Tenant-Id`).
async fn as_tenant(
    server: &Server,
    method: Method,
    path: &str,
    tenant: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let req = client
        .request(method, format!("{}{path}", server.base))
        .bearer_auth(server.token())
        .insert_header(("X-Tenant-Id", tenant));
    let mut res = match body {
        Some(body) => req.send_json(&body).await.unwrap(),
        None => req.send().await.unwrap(),
    };
    let bytes = res.body().await.unwrap();
    (res.status(), serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[actix_web::test]
async fn suspending_a_tenant_closes_its_agent_sessions_within_seconds() {
    let root = tempfile::tempdir().unwrap();
    let vars = [("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string())];
    let server = Server::start(free_port(), &vars, root.path().join("server.log")).await;
    let body =
        json!({ "name": "Agents Suspended", "subdomain": "agents-suspended", "contactEmail": "ops@example.com" });
    let (status, created) = server.post("/api/tenants", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let tenant = created["tenantId"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(30), "the tenant is active", async || {
        let (_, t) = server.get(&format!("/api/tenants/{tenant}")).await.unwrap();
        t["status"] == "Active"
    })
    .await;
    let token_body = json!({ "environment": "Development", "expiresIn": 3600 });
    let (status, token) = as_tenant(&server, Method::POST, "/api/v1/agents/tokens", &tenant, Some(token_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let agent = Agent::start(&server, token["token"].as_str().unwrap(), "suspended-host", root.path());
    let node_status = async || {
        let (_, cluster) = as_tenant(&server, Method::GET, "/api/v1/clusters/Development", &tenant, None).await;
        cluster["nodes"][0]["status"].as_str().map(str::to_string).ok_or_else(|| format!("{cluster}"))
    };
    eventually_ok(Duration::from_secs(60), "the agent joins the tenant's cluster", async || {
        match node_status().await? {
            s if s == "Running" => Ok(()),
            other => Err(other),
        }
    })
    .await;

    let (status, suspended) = server.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{suspended}");
    let at = Instant::now();
    eventually(Duration::from_secs(10), "the node is unreachable", async || {
        node_status().await.is_ok_and(|s| s == "Unreachable")
    })
    .await;
    assert!(at.elapsed() < Duration::from_secs(5), "took {:?}", at.elapsed());
    // It keeps trying and is refused (the tenant is not active).
    eventually(Duration::from_secs(20), "the agent is refused on reconnection", async || {
        agent.log().contains("the server refused the enrolment token (401)")
    })
    .await;
    assert_eq!(node_status().await.unwrap(), "Unreachable");
}

/// One of two instances on one database; `redis_prefix`: with Redis (and
/// its signals), else alone with the periodic refresh every second.
async fn instance(db: &TestDb, name: &str, root: &std::path::Path, redis_prefix: Option<&str>) -> Server {
    let mut vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__CLUSTER__INSTANCE_ID", name.to_string()),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "0".to_string()),
        ("HOTSWAP__REGISTRY__ARTIFACT_DIR", root.join("artifacts").display().to_string()),
    ];
    match redis_prefix {
        Some(prefix) => {
            vars.push(("HOTSWAP__REDIS__URL", "redis://127.0.0.1:6379".to_string()));
            vars.push(("HOTSWAP__REDIS__KEY_PREFIX", prefix.to_string()));
        }
        None => vars.push(("HOTSWAP__TENANTS__REFRESH_INTERVAL", "1s".to_string())),
    }
    Server::start(free_port(), &vars, root.join(format!("{name}.log"))).await
}

/// The agent's session is held by `b`; the tenant is suspended through `a`.
/// `b`'s per-second check reads its own actor's view of the tenant, which a
/// signal over Redis (or, without Redis, the periodic refresh) brings up to
/// date: before, `b` kept the session for as long as nothing else made its
/// actor read the store (minutes, in a walkthrough).
async fn suspended_through_the_other_instance(test: &str, with_redis: bool) {
    let Some(db) = TestDb::migrated(test).await else { return };
    let root = tempfile::tempdir().unwrap();
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let redis = with_redis.then_some(prefix.as_str());
    let a = instance(&db, "a", root.path(), redis).await;
    let b = instance(&db, "b", root.path(), redis).await;
    let body =
        json!({ "name": "Suspended Elsewhere", "subdomain": "suspended-elsewhere", "contactEmail": "ops@example.com" });
    let (status, created) = a.post("/api/tenants", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let tenant = created["tenantId"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(30), "the tenant is active", async || {
        a.get(&format!("/api/tenants/{tenant}")).await.is_ok_and(|(_, t)| t["status"] == "Active")
    })
    .await;
    let token_body = json!({ "environment": "Development", "expiresIn": 3600 });
    let (status, token) = as_tenant(&b, Method::POST, "/api/v1/agents/tokens", &tenant, Some(token_body)).await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let agent = Agent::start(&b, token["token"].as_str().unwrap(), "held-by-b", root.path());
    let connected_to_b = async || {
        let (_, agents) = as_tenant(&b, Method::GET, "/api/v1/agents", &tenant, None).await;
        agents.as_array().and_then(|a| a.first()).map(|a| a["connected"] == true).unwrap_or(false)
    };
    eventually(Duration::from_secs(60), "b holds the agent's session", connected_to_b).await;

    let (status, suspended) = a.post(&format!("/api/tenants/{tenant}/suspend"), &json!({})).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{suspended}");
    eventually(Duration::from_secs(8), "b closes the session of a tenant suspended through a", async || {
        !connected_to_b().await
    })
    .await;
    eventually(Duration::from_secs(20), "the agent is refused on reconnection", async || agent.log().contains("(401)"))
        .await;
}

#[actix_web::test]
async fn a_tenant_suspended_through_another_instance_cuts_its_agents_off_at_once_over_redis() {
    suspended_through_the_other_instance("agent::suspended_through_another_instance_redis", true).await;
}

#[actix_web::test]
async fn a_tenant_suspended_through_another_instance_cuts_its_agents_off_without_redis() {
    suspended_through_the_other_instance("agent::suspended_through_another_instance_alone", false).await;
}
