//! The official SignalR client (tests/signalr/reconnect.test.mjs) reconnects
//! on its own across a restart of the real server, over WebSockets and Long
//! Polling, and hears the runs started afterwards. Needs node and the client
//! that `npm ci` installs in tests/signalr; skips, saying so, without them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::process::{free_port, Server};
use crate::support::npm::npm_ci;

/// The tests of this file run in parallel; one `npm ci` at a time.
static INSTALL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How the server goes away while the client is connected.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// SIGKILL: the connection just breaks.
    Kill,
    /// SIGTERM: the server sends the hub's close message allowing a reconnect
    /// (the client checks it heard it), then stops.
    Terminate,
}

async fn reconnects_over(transport: &str, stop: Stop) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/signalr");
    let installing = INSTALL.lock().await;
    if let Err(reason) = npm_ci(&dir, "@microsoft/signalr").await {
        return eprintln!("\n*** SKIPPED the SignalR reconnect test: {reason} ***\n");
    }
    drop(installing);
    let logs = tempfile::tempdir().expect("log dir");
    let port = free_port();
    let mut server = Server::start(port, &[], logs.path().join("first.log")).await;
    let mut client = tokio::process::Command::new("node")
        .args(["--test", "reconnect.test.mjs"])
        .current_dir(&dir)
        .env("HOTSWAP_URL", &server.base)
        .env("HOTSWAP_TOKEN", server.token())
        .env("HOTSWAP_TRANSPORT", transport)
        .env("HOTSWAP_EXPECT_SHUTDOWN_CLOSE", if stop == Stop::Terminate { "1" } else { "" })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(client.stdout.take().expect("stdout")).lines();
    let mut output = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.expect("node's output") {
            output.push_str(&line);
            output.push('\n');
            if line.contains("RESTART_NOW") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(waited, Ok(true)), "the client never connected:\n{output}");
    match stop {
        Stop::Kill => server.kill(),
        Stop::Terminate => {
            let ended = server.terminate();
            assert!(ended.success(), "SIGTERM ended the server with {ended}; log:\n{}", server.log_text());
        }
    }
    let restarted = Server::start(port, &[], logs.path().join("second.log")).await;
    let finished = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.expect("node's output") {
            output.push_str(&line);
            output.push('\n');
        }
        client.wait().await.expect("node ends")
    })
    .await
    .expect("the reconnect test finished within two minutes");
    let mut errors = String::new();
    if let Some(mut stderr) = client.stderr.take() {
        use tokio::io::AsyncReadExt;
        let _ = stderr.read_to_string(&mut errors).await;
    }
    assert!(
        finished.success(),
        "the client did not reconnect over {transport}:\n{output}{errors}\nserver log:\n{}",
        restarted.log_text()
    );
}

#[actix_web::test]
async fn the_official_client_reconnects_over_websockets_across_a_restart() {
    reconnects_over("WebSockets", Stop::Kill).await;
}

#[actix_web::test]
async fn the_official_client_is_told_of_a_clean_stop_and_reconnects_over_websockets() {
    reconnects_over("WebSockets", Stop::Terminate).await;
}

#[actix_web::test]
async fn the_official_client_is_told_of_a_clean_stop_and_reconnects_over_long_polling() {
    reconnects_over("LongPolling", Stop::Terminate).await;
}

#[actix_web::test]
async fn the_official_client_reconnects_over_long_polling_across_a_restart() {
    reconnects_over("LongPolling", Stop::Kill).await;
}
