//! The SignalR hub driven by the official @microsoft/signalr client
//! (tests/signalr). Needs node and `npm ci` in tests/signalr
//! (scripts/signalr-test.sh does both); skips loudly without them.

use std::path::PathBuf;
use std::process::Stdio;

use awc::http::StatusCode;
use serde_json::json;

use crate::support::spawn_app;

#[actix_web::test]
async fn the_official_signalr_client_works_against_the_hub() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/signalr");
    if !dir.join("node_modules/@microsoft/signalr").exists() {
        eprintln!(
            "\n*** SKIPPED the SignalR client test: {}/node_modules is missing. Run scripts/signalr-test.sh (npm ci) ***\n",
            dir.display()
        );
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
async fn negotiate_offers_websockets_and_tokens_are_single_use() {
    let app = spawn_app(&[]).await;
    let (status, body) = app.post("/hubs/deployment/negotiate?negotiateVersion=1", &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["negotiateVersion"], 1);
    assert_eq!(body["availableTransports"][0]["transport"], "WebSockets");
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
