//! /metrics: HTTP metrics by route pattern and what the domain records.

use serde_json::json;

use crate::support::spawn_app;

fn value(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok()))
}

#[actix_web::test]
async fn metrics_record_http_routes_and_deployments() {
    let app = spawn_app(&[]).await;
    let before = app.get_text("/metrics").await;
    // Registered before anything happens.
    for series in [
        "hotswap_deployments_started_total{environment=\"QA\",strategy=\"Rolling\"}",
        "hotswap_approvals_requested_total{environment=\"Production\"}",
        "hotswap_approvals_granted_total{environment=\"Production\"}",
        "hotswap_approvals_rejected_total{environment=\"Production\"}",
        "hotswap_approvals_expired_total{environment=\"Production\"}",
        "hotswap_actor_restarts_total{kind=\"coordinator\"}",
        "hotswap_websocket_sessions{protocol=\"websocket\"}",
        "hotswap_actor_mailbox_backlog{kind=\"node\"}",
    ] {
        assert_eq!(value(&before, series), Some(0.0), "{series} in {before}");
    }
    let id = app.deploy("kmod-metrics", "1.0.0", "Development", json!({})).await;
    app.finished(&id).await;
    app.get(&format!("/api/v1/deployments/{id}")).await;
    app.get("/no/such/path").await;
    let failing = app
        .deploy("kmod-metrics", "2.0.0", "Development", json!({ "metadata": { "simulateDeployFailure": "1" } }))
        .await;
    app.finished(&failing).await;

    let m = app.get_text("/metrics").await;
    let dev = "{environment=\"Development\",strategy=\"Direct\"}";
    assert_eq!(value(&m, &format!("hotswap_deployments_started_total{dev}")), Some(2.0), "{m}");
    assert_eq!(value(&m, &format!("hotswap_deployments_succeeded_total{dev}")), Some(1.0));
    assert_eq!(value(&m, &format!("hotswap_deployments_failed_total{dev}")), Some(1.0));
    assert_eq!(value(&m, &format!("hotswap_deployments_rolled_back_total{dev}")), Some(1.0));
    assert_eq!(value(&m, "hotswap_nodes_updated_total{environment=\"Development\"}"), Some(3.0));
    assert_eq!(
        value(&m, "hotswap_deployment_duration_seconds_count{environment=\"Development\",status=\"Succeeded\",strategy=\"Direct\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "hotswap_stage_duration_seconds_count{stage=\"Security Scan\",status=\"Succeeded\"}"),
        Some(2.0)
    );
    // HTTP metrics use route patterns; unknown paths are masked.
    assert!(m.contains("endpoint=\"/api/v1/deployments/{id}\""), "{m}");
    assert!(m.contains("endpoint=\"UNKNOWN\""), "{m}");
    assert!(!m.contains("/no/such/path"));
    assert!(!m.contains(&id));
}

#[actix_web::test]
async fn metrics_bind_serves_metrics_on_their_own_address_without_a_token() {
    use hotswap::config::Settings;
    use hotswap::startup::Application;
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let vars = [("HOTSWAP__SERVER__BIND", "127.0.0.1:0"), ("HOTSWAP__METRICS__BIND", "127.0.0.1:0")]
        .map(|(k, v)| (k.to_string(), v.to_string()));
    let settings = Settings::load_from(&dir, "test", vars).unwrap();
    let app = Application::build(settings).await.unwrap();
    let (api, metrics) = (app.addr(), app.metrics_addr().expect("a metrics address"));
    assert_ne!(api, metrics);
    let handle = app.server_handle();
    actix_web::rt::spawn(app.run());
    let client = awc::Client::default();
    let mut res = client.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    assert_eq!(res.status(), awc::http::StatusCode::OK);
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(text.contains("hotswap_deployments_started_total"), "{text}");
    // Not on the API's address any more, whatever the token.
    let login = json!({ "username": "admin", "password": "Admin123!" });
    let mut res = client.post(format!("http://{api}/api/v1/authentication/login")).send_json(&login).await.unwrap();
    let token = res.json::<serde_json::Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let res = client.get(format!("http://{api}/metrics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), awc::http::StatusCode::NOT_FOUND);
    // The API's requests are still counted, and served on the metrics address.
    let mut res = client.get(format!("http://{metrics}/metrics")).send().await.unwrap();
    let text = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("hotswap_http_requests_total{")
            && l.contains("endpoint=\"/api/v1/authentication/login\"")),
        "{text}"
    );
    // Stopping the API stops the metrics server with it.
    handle.stop(true).await;
    crate::db::poll::eventually(
        std::time::Duration::from_secs(10),
        "the metrics server stops with the API",
        async || client.get(format!("http://{metrics}/metrics")).send().await.is_err(),
    )
    .await;
}
