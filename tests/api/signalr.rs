//! The SignalR hub driven by the official @microsoft/signalr client
//! (tests/signalr). Needs node and `npm ci` in tests/signalr
//! (scripts/signalr-test.sh does both); skips loudly without them.

use std::path::PathBuf;
use std::process::Stdio;

use awc::http::StatusCode;
use serde_json::json;

use crate::db::npm::npm_ci;
use crate::support::spawn_app;

#[actix_web::test]
async fn the_official_signalr_client_works_against_the_hub() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/signalr");
    if let Err(reason) = npm_ci(&dir, "@microsoft/signalr").await {
        eprintln!("\n*** SKIPPED the SignalR client test: {reason} ***\n");
        return;
    }
    let app = spawn_app(&[]).await;
    let child = tokio::process::Command::new("node")
        .args(["--test", "hub.test.mjs"])
        .current_dir(&dir)
        .env("HOTSWAP_URL", &app.base)
        .env("HOTSWAP_TOKEN", app.token.clone().expect("logged in"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("\n*** SKIPPED the SignalR client test: cannot run node: {e} ***\n");
            return;
        }
    };
    let out = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the node test finished within a minute")
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the SignalR client test failed");
}

#[actix_web::test]
async fn negotiate_offers_every_transport_and_tokens_are_single_use() {
    let app = spawn_app(&[]).await;
    let (status, body) = app.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["negotiateVersion"], 1);
    let offered: Vec<&str> =
        body["availableTransports"].as_array().unwrap().iter().map(|t| t["transport"].as_str().unwrap()).collect();
    assert_eq!(offered, ["WebSockets", "ServerSentEvents", "LongPolling"]);
    let token = body["connectionToken"].as_str().unwrap().to_string();
    let bearer = app.token.clone().expect("logged in");
    let url = format!("{}/hubs/deployment?id={token}&access_token={bearer}", app.base.replacen("http://", "ws://", 1));
    let (res, _conn) = awc::Client::new().ws(&url).connect().await.expect("upgrade");
    assert_eq!(res.status(), StatusCode::SWITCHING_PROTOCOLS);
    // The same token again, or a made-up one, is unknown.
    let again = awc::Client::new().ws(&url).connect().await;
    assert!(again.is_err(), "a used token is refused");
    let (status, body) = app.get("/hubs/deployment").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// The hub protocol by hand, so that it is covered where node is missing too.
#[actix_web::test]
async fn the_hub_speaks_the_json_hub_protocol() {
    use crate::ws_support::WsClient;
    const RS: char = '\u{1e}';
    let app = spawn_app(&[]).await;
    let (_, negotiated) = app.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    let token = negotiated["connectionToken"].as_str().unwrap();
    let mut hub = WsClient::connect(&app, &format!("/hubs/deployment?id={token}")).await;
    // Records end with the separator; the hub's frames are text, not JSON.
    hub.send_text(format!("{}{RS}", json!({ "protocol": "json", "version": 1 }))).await;
    let frames = hub.raw_until(|f| f.contains("{}")).await;
    assert!(frames.last().unwrap().starts_with(&format!("{{}}{RS}")), "{frames:?}");
    let invoke = |id: &str, target: &str, args: serde_json::Value| {
        format!("{}{RS}", json!({ "type": 1, "invocationId": id, "target": target, "arguments": args }))
    };
    hub.send_text(invoke("1", "SubscribeToAllDeployments", json!([]))).await;
    let done = hub.raw_until(|f| f.contains("\"invocationId\":\"1\"")).await;
    let completion: serde_json::Value = serde_json::from_str(done.last().unwrap().trim_end_matches(RS)).unwrap();
    assert_eq!(completion, json!({ "type": 3, "invocationId": "1" }));
    hub.send_text(invoke("2", "SubscribeToDeployment", json!([null]))).await;
    let refused = hub.raw_until(|f| f.contains("\"invocationId\":\"2\"")).await;
    assert!(refused.last().unwrap().contains("executionId is required"), "{refused:?}");
    hub.send_text(invoke("9", "SubscribeToDeployment", json!([5]))).await;
    let refused = hub.raw_until(|f| f.contains("\"invocationId\":\"9\"")).await;
    assert!(refused.last().unwrap().contains("executionId must be a string"), "{refused:?}");
    hub.send_text(invoke("3", "SubscribeToDeployment", json!(["a", "b"]))).await;
    let refused = hub.raw_until(|f| f.contains("\"invocationId\":\"3\"")).await;
    assert!(refused.last().unwrap().contains("expects 1"), "{refused:?}");

    let id = app.deploy("kmod-hub-raw", "1.0.0", "Development", json!({})).await;
    let frames = hub.raw_until(|f| f.contains("\"status\":\"Succeeded\"")).await;
    let events: Vec<serde_json::Value> = frames
        .iter()
        .flat_map(|f| {
            f.split(RS).filter(|r| !r.is_empty()).map(|r| serde_json::from_str(r).unwrap()).collect::<Vec<_>>()
        })
        .filter(|m: &serde_json::Value| m["type"] == 1)
        .collect();
    assert!(events.iter().all(|e| e["target"] == "DeploymentStatusChanged"), "all-deployments gets status only");
    assert_eq!(events[0]["arguments"][0]["executionId"], id.as_str());
    assert_eq!(events[0]["arguments"][0]["status"], "Running");
    // The server pings (test profile: every 200 ms).
    let pings = hub.raw_until(|f| f.contains("\"type\":6")).await;
    assert!(!pings.is_empty());
}
