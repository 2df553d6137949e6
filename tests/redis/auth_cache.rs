//! The auth cache (users and revocations, with Redis) never outlives a change
//! made on the other instance: logout, disable, role and password changes
//! reach instance B at once, far inside the cache's 30 s time to live.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::{json, Value};

use crate::cluster::Cluster;
use crate::process::Server;
use crate::support::poll::eventually;

/// Well under `auth_cache_ttl` (30 s): only an invalidation ends an entry this soon.
const PROPAGATION: Duration = Duration::from_secs(3);
const PASSWORD: &str = "twelve-chars-at-least";

fn client() -> awc::Client {
    awc::Client::builder().timeout(Duration::from_secs(10)).finish()
}

async fn login(server: &Server, password: &str) -> String {
    let body = json!({ "username": "cached", "password": password });
    let mut res = client().post(format!("{}/api/v1/authentication/login", server.base)).send_json(&body).await.unwrap();
    let reply: Value = res.json().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{reply}");
    reply["token"].as_str().unwrap().to_string()
}

/// GET `path` with `token`: the status.
async fn status_of(server: &Server, path: &str, token: &str) -> u16 {
    let res = client().get(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap();
    res.status().as_u16()
}

/// GET `path` with `token`: the status and the body, for a failure's message.
async fn answer(server: &Server, path: &str, token: &str) -> (u16, String) {
    let mut res = client().get(format!("{}{path}", server.base)).bearer_auth(token).send().await.unwrap();
    let body = res.body().await.map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
    (res.status().as_u16(), body)
}

/// Whether the token is taken at all.
async fn me(server: &Server, token: &str) -> u16 {
    status_of(server, "/api/v1/authentication/me", token).await
}

/// The user list, for Admins only.
async fn users_list(server: &Server, token: &str) -> u16 {
    status_of(server, "/api/v1/users", token).await
}

async fn refused_on(server: &Server, token: &str, what: &str) {
    eventually(PROPAGATION, what, async || me(server, token).await == 401).await;
}

#[actix_web::test]
async fn changes_on_one_instance_end_what_the_other_cached_at_once() {
    let Some(cluster) = Cluster::start("redis_auth_cache", "redis://127.0.0.1:6379", &[]).await else { return };
    let (a, b) = (&cluster.a, &cluster.b);
    let body = json!({ "username": "cached", "email": "cached@example.com", "password": PASSWORD, "roles": ["Admin"] });
    let (status, user) = a.post("/api/v1/users", &body).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let id = user["id"].as_str().unwrap().to_string();

    // Role change: B served the user from its cache as an Admin, then sees
    // it is a Viewer now (the user list is for Admins).
    let token = login(a, PASSWORD).await;
    // A refusal says why (the body) and what both instances logged.
    let (status, body) = answer(b, "/api/v1/users", &token).await;
    assert_eq!(status, 200, "{body}\n{}", cluster.logs());
    let (status, _) = a.put(&format!("/api/v1/users/{id}/roles"), &json!({ "roles": ["Viewer"] })).await.unwrap();
    assert!(status.is_success());
    eventually(PROPAGATION, "B sees the new roles", async || users_list(b, &token).await == 403).await;

    // Logout on A: the token is refused on B.
    let res = client().post(format!("{}/api/v1/authentication/logout", a.base)).bearer_auth(&token).send().await;
    assert!(res.unwrap().status().is_success());
    refused_on(b, &token, "B refuses the logged-out token").await;

    // Disabled on A: B refuses the user's token.
    let token = login(a, PASSWORD).await;
    assert_eq!(me(b, &token).await, 200);
    assert!(a.post(&format!("/api/v1/users/{id}/disable"), &json!({})).await.unwrap().0.is_success());
    refused_on(b, &token, "B refuses a disabled user's token").await;

    // Password reset on A: tokens issued before it are refused on B.
    assert!(a.post(&format!("/api/v1/users/{id}/enable"), &json!({})).await.unwrap().0.is_success());
    let token = login(a, PASSWORD).await;
    assert_eq!(me(b, &token).await, 200);
    let reset = json!({ "password": "another-twelve-chars" });
    assert!(a.post(&format!("/api/v1/users/{id}/password"), &reset).await.unwrap().0.is_success());
    refused_on(b, &token, "B refuses a token issued before the password reset").await;
}
