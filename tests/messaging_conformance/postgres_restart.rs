//! HotSwap on PostgreSQL, killed (SIGKILL) and started again: no publish it
//! acknowledged is lost, the ack it took is kept, and a delivery leased but
//! not acked before the kill is delivered again once its lease runs out.
//! Also the bus's refusals of bad input, over HTTP on this back-end.

use awc::http::StatusCode;
use serde_json::json;

use crate::process::{free_port, Server};
use crate::restart_scenario::{nothing_acknowledged_is_lost, publish_lease_and_ack_one};
use crate::support::TestDb;

fn vars(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__MESSAGING__BACKEND", "postgres".to_string()),
    ]
}

#[actix_web::test]
async fn a_killed_instance_loses_no_acknowledged_publish_and_redelivers_unacked_leases() {
    let Some(db) = TestDb::create("messaging_conformance::postgres_restart").await else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars(&db), dir.path().join("first.log")).await;

    let before = publish_lease_and_ack_one(&first).await;
    first.kill();

    let second = Server::start(port, &vars(&db), dir.path().join("second.log")).await;
    let metrics = nothing_acknowledged_is_lost(&second, &before).await;
    assert_eq!(metrics["published"], 3, "{metrics}");
    assert_eq!(metrics["acknowledged"], 3, "{metrics}");

    bad_input_is_refused_over_http(&second).await;
}

/// The bad input on this back-end: unknown topic 404, priority 10
/// 400, a payload over 1 MiB 413.
async fn bad_input_is_refused_over_http(server: &Server) {
    let (status, err) =
        server.post("/api/v1/messages", &json!({ "topicName": "nowhere", "payload": "x" })).await.expect("publish");
    assert_eq!(status, StatusCode::NOT_FOUND, "{err}");
    let body = json!({ "topicName": "orders", "payload": "x", "priority": 10 });
    let (status, err) = server.post("/api/v1/messages", &body).await.expect("publish");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let big = "x".repeat(1024 * 1024 + 1);
    let (status, err) =
        server.post("/api/v1/messages", &json!({ "topicName": "orders", "payload": big })).await.expect("publish");
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{err}");
}
