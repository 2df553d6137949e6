//! Live updates across instances: a WebSocket client on instance B hears
//! every event of a run that instance A drives, exactly as a client on A
//! does, in order; the official SignalR client on A hears every status
//! change of a run that B drives.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use awc::ws;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::cluster::Cluster;
use crate::process::Server;
use crate::support::npm::npm_ci;
use crate::support::poll::eventually;
use crate::support::requests::deployment;

/// A WebSocket client subscribed to every run, keeping what it hears.
pub struct Watcher {
    heard: Arc<Mutex<Vec<Value>>>,
}

impl Watcher {
    /// Connects to `server`'s /api/v1/ws and waits for the subscription's ack.
    pub async fn connect(server: &Server) -> Watcher {
        let url = format!("{}/api/v1/ws?access_token={}", server.base.replacen("http", "ws", 1), server.token());
        let (_, mut socket) = awc::Client::new().ws(url).connect().await.expect("the WebSocket opens");
        socket.send(ws::Message::Text(r#"{"type":"subscribe","all":true}"#.into())).await.expect("subscribe sent");
        let heard = Arc::new(Mutex::new(Vec::new()));
        let keep = heard.clone();
        actix_web::rt::spawn(async move {
            while let Some(Ok(frame)) = socket.next().await {
                match frame {
                    ws::Frame::Text(text) => {
                        if let Ok(message) = serde_json::from_slice::<Value>(&text) {
                            keep.lock().push(message);
                        }
                    }
                    // The server drops clients that do not answer its pings.
                    ws::Frame::Ping(bytes) if socket.send(ws::Message::Pong(bytes.clone())).await.is_err() => return,
                    ws::Frame::Close(_) => return,
                    _ => {}
                }
            }
        });
        let watcher = Watcher { heard };
        eventually(Duration::from_secs(10), "the subscription is acknowledged", async || {
            watcher.heard.lock().iter().any(|m| m["type"] == "subscribed")
        })
        .await;
        watcher
    }

    /// The run-event messages heard about `run`, in order.
    pub fn of_run(&self, run: &str) -> Vec<Value> {
        self.heard.lock().iter().filter(|m| m["executionId"] == run && m.get("timestamp").is_some()).cloned().collect()
    }

    /// Whether the run's end was heard.
    pub fn heard_end(&self, run: &str) -> bool {
        self.of_run(run).iter().any(|m| {
            m["type"] == "DeploymentCompleted"
                || m["type"] == "DeploymentFailed"
                || (m["type"] == "DeploymentStatusChanged" && m["data"]["status"] == "Cancelled")
        })
    }
}

pub async fn create_run(on: &Server, module: &str) -> String {
    let (status, run) = on.post("/api/v1/deployments", &deployment(module, "1.0.0", "Development")).await.unwrap();
    assert_eq!(status.as_u16(), 202, "{run}");
    run["executionId"].as_str().expect("executionId").to_string()
}

#[actix_web::test]
async fn a_websocket_client_on_b_sees_every_event_of_a_run_a_drives_once_and_in_order() {
    let Some(cluster) = Cluster::start("redis_live_ws", "redis://127.0.0.1:6379", &[]).await else { return };
    let (on_a, on_b) = (Watcher::connect(&cluster.a).await, Watcher::connect(&cluster.b).await);
    let run = create_run(&cluster.a, "kmod-backplane").await;
    let ended = cluster.a.finished(&run, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "Succeeded", "{ended:#}");
    eventually(Duration::from_secs(10), "both clients heard the run end", async || {
        on_a.heard_end(&run) && on_b.heard_end(&run)
    })
    .await;
    let (here, there) = (on_a.of_run(&run), on_b.of_run(&run));
    assert!(here.len() >= 5, "a whole run has several events: {here:#?}");
    // Same messages, same order, none twice: B's client hears what A's does.
    assert_eq!(there, here, "{}", cluster.logs());
}

#[actix_web::test]
async fn a_client_on_b_alone_hears_the_node_updates_of_a_run_a_drives() {
    // No client on A: A's coordinator must still make the live-only node
    // updates, for the clients of the other instances.
    let Some(cluster) = Cluster::start("redis_live_alone", "redis://127.0.0.1:6379", &[]).await else { return };
    let on_b = Watcher::connect(&cluster.b).await;
    let run = create_run(&cluster.a, "kmod-backplane-alone").await;
    let ended = cluster.a.finished(&run, Duration::from_secs(60)).await;
    assert_eq!(ended["status"], "Succeeded", "{ended:#}");
    eventually(Duration::from_secs(10), "B's client heard the run end", async || on_b.heard_end(&run)).await;
    let heard = on_b.of_run(&run);
    let updates: Vec<&Value> = heard.iter().filter(|m| m["type"] == "NodeUpdated").collect();
    assert!(!updates.is_empty(), "no node update reached B: {heard:#?}\n{}", cluster.logs());
    let nodes = updates[0]["data"]["nodes"].as_array().map_or(0, Vec::len);
    assert!(nodes > 0, "the update names the nodes of its wave: {:#}", updates[0]);
}

#[actix_web::test]
async fn the_official_signalr_client_on_a_hears_every_status_change_of_a_run_b_drives() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/signalr");
    if let Err(reason) = npm_ci(&dir, "@microsoft/signalr").await {
        return eprintln!("\n*** SKIPPED the SignalR backplane test: {reason} ***\n");
    }
    let Some(cluster) = Cluster::start("redis_live_signalr", "redis://127.0.0.1:6379", &[]).await else { return };
    let on_b = Watcher::connect(&cluster.b).await;
    let mut client = tokio::process::Command::new("node")
        .arg("watch_run.mjs")
        .current_dir(&dir)
        .env("HOTSWAP_URL", &cluster.a.base)
        .env("HOTSWAP_TOKEN", cluster.a.token())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut lines = BufReader::new(client.stdout.take().expect("stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert!(matches!(&ready, Ok(Ok(Some(line))) if line == "READY"), "the client never subscribed: {ready:?}");
    let run = create_run(&cluster.b, "kmod-hub-backplane").await;
    let mut stdin = client.stdin.take().expect("stdin");
    stdin.write_all(format!("{run}\n").as_bytes()).await.expect("run id sent");
    let mut heard = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await.expect("node's output") {
            heard.push(line);
        }
    })
    .await;
    assert!(read.is_ok(), "the client never finished: {heard:?}");
    let status = client.wait().await.expect("node ends");
    assert!(status.success(), "the client did not hear the run end: {heard:?}\n{}", cluster.logs());
    let mut statuses: Vec<String> = heard
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("a JSON line")["status"].as_str().unwrap_or("").into())
        .collect();
    // The reference: what a client of the driving instance heard.
    eventually(Duration::from_secs(10), "B's own client heard the run end", async || on_b.heard_end(&run)).await;
    // The hub client stops soon after the first status that ends the run
    // (watch_run.mjs); how many repeats of that status each side heard before
    // stopping varies, so both are compared up to the first.
    let mut expected: Vec<String> = on_b
        .of_run(&run)
        .iter()
        .filter(|m| m["type"] == "DeploymentStatusChanged")
        .map(|m| m["data"]["status"].as_str().unwrap_or("").into())
        .collect();
    let ended = ["Succeeded", "Failed", "Cancelled", "RolledBack"];
    for side in [&mut statuses, &mut expected] {
        if let Some(end) = side.iter().position(|s| ended.contains(&s.as_str())) {
            side.truncate(end + 1);
        }
    }
    assert_eq!(statuses, expected, "the hub on A against a WebSocket client on B");
    assert_eq!(statuses.last().map(String::as_str), Some("Succeeded"));
}

/// SignalR behind a load balancer that does not keep a client on one
/// instance: the client negotiates with A and opens its connection on B
/// (a WebSocket, or the first poll of Long Polling). A token still opens one
/// connection only, whichever instance is asked.
#[actix_web::test]
async fn a_signalr_token_negotiated_with_a_opens_one_connection_on_b() {
    let Some(cluster) = Cluster::start("redis_live_negotiate", "redis://127.0.0.1:6379", &[]).await else { return };
    let negotiate = async |server: &Server| -> String {
        let url = format!("{}/hubs/deployment/negotiate?negotiateVersion=1", server.base);
        let mut reply = awc::Client::new().post(url).bearer_auth(server.token()).send().await.expect("negotiate");
        assert_eq!(reply.status().as_u16(), 200, "negotiate");
        let body: Value = reply.json().await.expect("negotiate answers JSON");
        body["connectionToken"].as_str().expect("a connection token").to_string()
    };
    let hub = |server: &Server, token: &str| {
        format!("{}/hubs/deployment?id={token}&access_token={}", server.base.replacen("http", "ws", 1), server.token())
    };

    let token = negotiate(&cluster.a).await;
    let (_, mut socket) =
        awc::Client::new().ws(hub(&cluster.b, &token)).connect().await.expect("B opens the connection A negotiated");
    socket.send(ws::Message::Text("{\"protocol\":\"json\",\"version\":1}\u{1e}".into())).await.expect("handshake sent");
    let answer = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.expect("a handshake answer");
    assert!(matches!(&answer, Some(Ok(ws::Frame::Text(text))) if &text[..] == b"{}\x1e"), "{answer:?}");
    for server in [&cluster.a, &cluster.b] {
        let again = awc::Client::new().ws(hub(server, &token)).connect().await;
        assert!(again.is_err(), "a used token opened a second connection on {}", server.base);
    }

    let token = negotiate(&cluster.a).await;
    let first_poll = awc::Client::new()
        .get(format!("{}/hubs/deployment?id={token}", cluster.b.base))
        .bearer_auth(cluster.b.token())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .expect("the first poll is answered");
    assert_eq!(first_poll.status().as_u16(), 200, "B opens the Long Polling connection A negotiated");
}
