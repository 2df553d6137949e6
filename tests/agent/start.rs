//! What the agent says when it cannot start: a host that never enrolled and
//! was given no token has nothing to connect with, and retrying cannot change that.

use std::process::Stdio;
use std::time::Duration;

use crate::process::free_port;

#[actix_web::test]
async fn an_agent_with_no_credential_and_no_token_stops_at_once_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("never-enrolled");
    let agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["agent", "--server", &format!("http://127.0.0.1:{}", free_port()), "--data-dir"])
        .arg(&data)
        .env_remove("HOTSWAP_AGENT__TOKEN")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(30), agent).await.expect("the agent stops by itself").unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("state.json holds no session credential") && stderr.contains("--token"), "{stderr}");
}
