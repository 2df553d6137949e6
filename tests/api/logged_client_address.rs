//! The client address in the request span (and so in every log line and
//! trace of the request) is the one the trusted proxies vouch for.

use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use crate::db::poll::eventually;

#[actix_web::test]
async fn the_logged_client_address_ignores_forwarding_headers_nobody_vouches_for() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HOTSWAP__LOGGING__FORMAT", "json")
        .env("HOTSWAP__LOGGING__LEVEL", "debug")
        // This test's client is the trusted proxy: only the hops it appends count.
        .env("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1/32")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("hotswap runs");
    let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
    eventually(Duration::from_secs(20), "the server is up", async || {
        client.get(format!("{base}/health")).send().await.is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    let login = json!({ "username": "admin", "password": "not-the-password" });
    let url = format!("{base}/api/v1/authentication/login");
    // `Forwarded` is not what the proxies write: nobody vouches for it.
    let res = client.post(&url).insert_header(("Forwarded", "for=198.51.100.7")).send_json(&login).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // The left hop is the client's own word; the right one the proxy's.
    let res =
        client.post(&url).insert_header(("X-Forwarded-For", "203.0.113.5, 10.9.8.7")).send_json(&login).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let logs = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(logs.contains(r#""http.client_ip":"10.9.8.7""#), "the proxy's hop is recorded: {logs}");
    assert!(logs.contains(r#""http.client_ip":"127.0.0.1""#), "else the peer: {logs}");
    for spoofed in ["198.51.100.7", "203.0.113.5"] {
        assert!(!logs.contains(spoofed), "{spoofed} was written by the client and is not logged: {logs}");
    }
}
