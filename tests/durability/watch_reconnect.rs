//! `hotswap status --watch` outlives a restart of the server it watches: it
//! tries again until the server is back and follows the run to its end.

use std::process::Stdio;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::process::{free_port, Server};
use crate::support::TestDb;

#[actix_web::test]
async fn a_watch_follows_its_run_across_a_restart_of_the_server() {
    let Some(db) = TestDb::create("a_watch_follows_its_run_across_a_restart_of_the_server").await else {
        return;
    };
    let logs = tempfile::tempdir().expect("log dir");
    let port = free_port();
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        // Long enough to restart the server while the run waits.
        ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", "3s".to_string()),
    ];
    let mut first = Server::start(port, &vars, logs.path().join("first.log")).await;
    let body = json!({ "moduleName": "kmod-watched", "version": "1.0.0", "targetEnvironment": "Production", "requesterEmail": "ops@example.com" });
    let (status, reply) = first.post("/api/v1/deployments", &body).await.expect("create");
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let id = reply["executionId"].as_str().unwrap().to_string();
    let mut watch = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["status", &id, "--watch"])
        .env("HOTSWAP_SERVER", &first.base)
        .env("HOTSWAP_TOKEN", first.token())
        .env("HOME", logs.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the CLI runs");
    let mut lines = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let mut output = String::new();
    // The watch is following the run once it shows the canary's stage.
    let following = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.expect("the watch's output") {
            output.push_str(&line);
            output.push('\n');
            if line.contains("Deploy to Production") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(following, Ok(true)), "the watch never showed the canary stage:\n{output}");
    first.kill();
    let second = Server::start(port, &vars, logs.path().join("second.log")).await;
    let ended = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("the watch's output") {
            output.push_str(&line);
            output.push('\n');
        }
        watch.wait().await.expect("the watch ends")
    })
    .await
    .expect("the watch ended within two minutes");
    let mut errors = String::new();
    if let Some(mut stderr) = watch.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = stderr.read_to_string(&mut errors).await;
    }
    let run = second.finished(&id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "Succeeded", "{run:#}");
    assert_eq!(ended.code(), Some(0), "the watch reports the run's success:\n{output}\n{errors}");
    assert!(output.contains("reconnecting"), "it said it lost the server:\n{output}");
}
