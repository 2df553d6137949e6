//! HotSwap on JetStream, the real binary: SIGKILLed between publish and
//! ack, then started again on the same prefix. No acknowledged publish is
//! lost, the ack taken before the kill holds, and the delivery leased but not
//! acked comes back once its lease (the server's AckWait) runs out. Also:
//! a second live instance on a held prefix refuses to start (one instance
//! per prefix, docs/MESSAGING.md).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::jetstream::{nats_url, remove_everything};
use crate::process::{free_port, Server};

fn vars(url: &str, prefix: &str) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__MESSAGING__BACKEND", "jetstream".to_string()),
        ("HOTSWAP__MESSAGING__NATS_URL", url.to_string()),
        ("HOTSWAP__MESSAGING__NATS_PREFIX", prefix.to_string()),
        ("HOTSWAP__MESSAGING__NATS_OWNER_LEASE", "2s".to_string()),
    ]
}

async fn consume(server: &Server, sub: &str, max: u32, wait_ms: u64) -> Vec<Value> {
    let path = format!("/api/v1/messages/consume/orders?subscriptionId={sub}&max={max}&waitMs={wait_ms}");
    let (status, body) = server.get(&path).await.expect("consume");
    assert_eq!(status, StatusCode::OK, "{body}\n{}", server.log_text());
    body["messages"].as_array().expect("messages").clone()
}

/// Starts a second `hotswap serve` on the held prefix and answers its exit
/// status and log (it must not come up).
fn second_instance(vars: &[(&str, String)], log: std::path::PathBuf) -> (bool, String) {
    let file = std::fs::File::create(&log).expect("log file");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hotswap"));
    cmd.arg("serve")
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP_CONFIG_DIR", std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"))
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .stdout(file.try_clone().expect("log handle"))
        .stderr(file);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("hotswap starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "a second instance on a held prefix kept running:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    (status.success(), std::fs::read_to_string(&log).unwrap_or_default())
}

#[actix_web::test]
async fn a_killed_instance_loses_no_acknowledged_publish_and_redelivers_unacked_leases() {
    let Some(url) = nats_url() else { return };
    let prefix = format!("R{}", &Uuid::new_v4().simple().to_string()[..12]);
    // On the test's own thread (the HTTP client is not Send), and cleaned
    // up whether it passed or not.
    let outcome = actix_web::rt::spawn(run(url.clone(), prefix.clone())).await;
    remove_everything(&url, &prefix).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn run(url: String, prefix: String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let vars = vars(&url, &prefix);
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;

    let (status, body) = first.post("/api/v1/topics", &json!({ "name": "orders" })).await.expect("topic");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub_body = json!({ "topicName": "orders", "consumerGroup": "g", "consumerEndpoint": "pull",
                           "ackTimeout": "5s", "maxRetries": 3 });
    let (status, sub) = first.post("/api/v1/subscriptions", &sub_body).await.expect("subscription");
    assert_eq!(status, StatusCode::CREATED, "{sub}");
    let sub = sub["subscriptionId"].as_str().expect("subscriptionId").to_string();
    let mut ids = Vec::new();
    for payload in ["m1", "m2", "m3"] {
        let (status, msg) =
            first.post("/api/v1/messages", &json!({ "topicName": "orders", "payload": payload })).await.expect("pub");
        assert_eq!(status, StatusCode::CREATED, "{msg}");
        ids.push(msg["messageId"].as_str().expect("messageId").to_string());
    }
    let leased = consume(&first, &sub, 2, 0).await;
    let leased_payloads: Vec<&str> = leased.iter().map(|d| d["payload"].as_str().unwrap()).collect();
    assert_eq!(leased_payloads, ["m1", "m2"]);
    let (status, body) =
        first.post(&format!("/api/v1/messages/{}/ack?subscriptionId={sub}", ids[0]), &Value::Null).await.expect("ack");
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");

    // While the first runs, a second instance on its prefix refuses to start.
    let (started, log) = second_instance(&vars, dir.path().join("intruder.log"));
    assert!(!started && log.contains("one instance per prefix"), "the second instance: {log}");

    first.kill();
    let second = Server::start(port, &vars, dir.path().join("second.log")).await;
    for id in &ids {
        let (status, msg) = second.get(&format!("/api/messages/{id}")).await.expect("get message");
        assert_eq!(status, StatusCode::OK, "{id} lost: {msg}");
    }
    // m3 was never leased; m2's lease runs out 5 s after the first consume
    // (the server's AckWait) and it comes back as its second attempt. m1
    // was acked and must never come again.
    let mut seen: BTreeMap<String, u64> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "redeliveries missing: saw {seen:?}\n{}", second.log_text());
        for d in consume(&second, &sub, 10, 1000).await {
            let payload = d["payload"].as_str().unwrap().to_string();
            assert_ne!(payload, "m1", "an acknowledged message was delivered again");
            let id = d["messageId"].as_str().unwrap();
            let (status, _) = second
                .post(&format!("/api/v1/messages/{id}/ack?subscriptionId={sub}"), &Value::Null)
                .await
                .expect("ack");
            assert_eq!(status, StatusCode::NO_CONTENT);
            assert!(seen.insert(payload, d["deliveryAttempts"].as_u64().unwrap()).is_none(), "a duplicate");
        }
    }
    assert_eq!(seen, BTreeMap::from([("m2".to_string(), 2), ("m3".to_string(), 1)]));
    assert!(consume(&second, &sub, 10, 300).await.is_empty(), "nothing else is left");
    let (_, metrics) = second.get("/api/v1/topics/orders/metrics").await.expect("metrics");
    assert_eq!(metrics["depth"][&sub], 0, "{metrics}");
}
