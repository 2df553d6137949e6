//! A tenant's live sessions: a system Admin's opened for another tenant
//! (`X-Tenant-Id`) see that tenant's runs only, and the `websocketSessions`
//! quota holds them, at the upgrade, at SignalR's negotiate and for the plain
//! GET that says what an upgrade would get.

use std::time::Duration;

use awc::http::{Method, StatusCode};
use serde_json::json;

use crate::db::poll::eventually;
use crate::support::{spawn_app, DEPLOYER};
use crate::tenants::{audit_events, tenant_with_admin};

#[actix_web::test]
async fn x_tenant_id_opens_live_sessions_on_that_tenants_runs() {
    use crate::ws_support::WsClient;
    const RS: char = '\u{1e}';
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "watched", "Starter").await;
    let tid = tenant.to_string();
    let acting = [("X-Tenant-Id", tid.as_str())];
    let mut theirs = WsClient::connect_with(&admin, "/api/v1/ws", &acting).await.expect("upgrade for a system Admin");
    theirs.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(theirs.json().await["type"], "subscribed");
    let mut own = WsClient::connect(&admin, "/api/v1/ws").await;
    own.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(own.json().await["type"], "subscribed");

    // The SignalR hub over WebSockets: negotiate names the tenant; the upgrade,
    // which a browser cannot give headers, carries it over.
    let negotiate =
        admin.request_with(Method::POST, "/hubs/deployment/negotiate?negotiateVersion=1", &acting, None).await;
    assert_eq!(negotiate.status, StatusCode::OK, "{}", negotiate.text);
    let token = negotiate.body["connectionToken"].as_str().unwrap().to_string();
    let mut hub =
        WsClient::connect_with(&admin, &format!("/hubs/deployment?id={token}"), &[]).await.expect("hub upgrade");
    hub.send_text(format!("{}{RS}", json!({ "protocol": "json", "version": 1 }))).await;
    hub.raw_until(|f| f.contains("{}")).await;
    let subscribe = json!({ "type": 1, "invocationId": "1", "target": "SubscribeToAllDeployments", "arguments": [] });
    hub.send_text(format!("{subscribe}{RS}")).await;
    hub.raw_until(|f| f.contains("\"invocationId\":\"1\"")).await;

    let id = t.deploy("kmod-watched", "1.0.0", "Development", json!({})).await;
    let seen = theirs.until(|m| m["type"] == "DeploymentCompleted").await;
    assert!(seen.iter().all(|m| m["executionId"] == id.as_str()), "{seen:#?}");
    let frames = hub.raw_until(|f| f.contains("\"status\":\"Succeeded\"")).await;
    assert!(frames.iter().any(|f| f.contains(&id)), "{frames:?}");
    // The Admin's own session carries none of the tenant's runs.
    match own.recv_within(Duration::from_millis(500)).await {
        None => {}
        Some(other) => panic!("the system tenant's session saw {other:?}"),
    }

    // Audited once per session start: the WebSocket and the negotiate, not the hub's upgrade.
    let used = audit_events(&admin, tenant, "TenantOverrideUsed").await;
    let mut paths: Vec<String> = used.iter().map(|u| u.entry.details["path"].as_str().unwrap().to_string()).collect();
    paths.sort();
    assert_eq!(paths, ["/api/v1/ws", "/hubs/deployment/negotiate"], "{used:#?}");

    // Nobody else may name a tenant, on either endpoint.
    let deployer = admin.as_user(DEPLOYER).await;
    let refused = WsClient::connect_with(&deployer, "/api/v1/ws", &acting).await.err();
    assert_eq!(refused, Some(StatusCode::FORBIDDEN));
    let r = deployer.request_with(Method::POST, "/hubs/deployment/negotiate?negotiateVersion=1", &acting, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let refused = WsClient::connect_with(&admin, "/api/v1/ws", &[("X-Tenant-Id", "nope")]).await.err();
    assert_eq!(refused, Some(StatusCode::BAD_REQUEST));
}

#[actix_web::test]
async fn live_sessions_are_held_to_the_websocket_session_quota() {
    let admin = spawn_app(&[]).await;
    let (tenant, t) = tenant_with_admin(&admin, "chatty", "Free").await;
    let upgrade = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];
    // The same GET without the upgrade says what an upgrade would get (a browser is not told why its handshake
    // failed, so the dashboard asks so): here, that one would be admitted.
    let (status, body) = t.get("/api/v1/ws").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap_or_default().contains("would be admitted"), "{body}");
    let mut open = Vec::new();
    for _ in 0..5 {
        open.push(crate::ws_support::WsClient::connect(&t, "/api/v1/ws").await);
    }
    let (_, usage) = t.get(&format!("/api/tenants/{tenant}/usage")).await;
    let used = usage["quotas"].as_array().unwrap().iter().find(|q| q["quota"] == "websocketSessions").unwrap().clone();
    assert_eq!((used["used"].as_u64(), used["limit"].as_u64()), (Some(5), Some(5)), "{usage}");
    let r = t.request_with(Method::GET, "/api/v1/ws", &upgrade, None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "a capacity quota: {}", r.text);
    assert_eq!(r.body["quota"], "websocketSessions");
    // SignalR's negotiate says so too (walkthrough w2 #13), so that a client
    // whose transport shows no HTTP answer hears the reason.
    let r = t.call(Method::POST, "/hubs/deployment/negotiate?negotiateVersion=1", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    assert_eq!(
        (r.body["code"].as_str(), r.body["quota"].as_str()),
        (Some("quota_exceeded"), Some("websocketSessions"))
    );
    // Asked without the upgrade: the same refusal, and asking takes no place.
    for _ in 0..2 {
        let (status, body) = t.get("/api/v1/ws").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(
            (body["quota"].as_str(), body["limit"].as_u64(), body["current"].as_u64()),
            (Some("websocketSessions"), Some(5), Some(5))
        );
    }
    // Other tenants are not affected.
    let mine = crate::ws_support::WsClient::connect(&admin, "/api/v1/ws").await;
    mine.close().await;
    // Closing one gives its place back.
    open.pop().unwrap().close().await;
    eventually(Duration::from_secs(20), "a closed session gives its place back", async || {
        let (_, usage) = t.get(&format!("/api/tenants/{tenant}/usage")).await;
        usage["quotas"].as_array().unwrap().iter().any(|q| q["quota"] == "websocketSessions" && q["used"] == 4)
    })
    .await;
    open.push(crate::ws_support::WsClient::connect(&t, "/api/v1/ws").await);
}
