//! Push subscriptions across a restart of the real binary: the delivery
//! loops of the subscriptions a durable bus kept are resumed whatever
//! HotSwap's own store holds. Played on JetStream beside the memory
//! `[store]` (which starts empty, so it lists no tenant to resume) and on
//! PostgreSQL (store and bus; the PostgreSQL bus needs that store).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use awc::http::StatusCode;
use parking_lot::Mutex;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::jetstream::{nats_url, remove_everything};
use crate::process::{free_port, Server};
use crate::support::poll::eventually;
use crate::support::TestDb;

/// The payloads the endpoint received, in order.
type Received = Arc<Mutex<Vec<String>>>;

async fn receive(received: web::Data<Mutex<Vec<String>>>, body: web::Json<Value>) -> HttpResponse {
    received.lock().push(body["payload"].as_str().unwrap_or_default().to_string());
    HttpResponse::Ok().finish()
}

/// Starts an endpoint that accepts every delivery; answers its URL.
fn start_endpoint(received: Received) -> String {
    let data = web::Data::from(received);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/hook", web::post().to(receive)))
        .workers(1)
        .bind("127.0.0.1:0")
        .expect("endpoint binds");
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{addr}/hook")
}

async fn publish(server: &Server, payload: &str) {
    let body = json!({ "topicName": "pushed", "payload": payload });
    let (status, msg) = server.post("/api/v1/messages", &body).await.expect("publish");
    assert_eq!(status, StatusCode::CREATED, "{msg}");
}

async fn delivered(received: &Received, payload: &str) {
    let what = format!("'{payload}' is pushed to the endpoint");
    eventually(Duration::from_secs(20), &what, async || received.lock().iter().any(|p| p == payload)).await;
}

/// A push subscription delivers before a SIGKILL and, after the restart,
/// delivers what is published then.
async fn push_resumes_after_a_restart(vars: Vec<(&'static str, String)>) {
    let received: Received = Arc::default();
    let url = start_endpoint(received.clone());
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let mut first = Server::start(port, &vars, dir.path().join("first.log")).await;
    let (status, body) = first.post("/api/v1/topics", &json!({ "name": "pushed" })).await.expect("topic");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let sub = json!({ "topicName": "pushed", "consumerGroup": "g", "type": "Push", "consumerEndpoint": url, "maxRetries": 3 });
    let (status, body) = first.post("/api/v1/subscriptions", &sub).await.expect("subscription");
    assert_eq!(status, StatusCode::CREATED, "{body}");
    publish(&first, "before").await;
    delivered(&received, "before").await;

    first.kill();
    let second = Server::start(port, &vars, dir.path().join("second.log")).await;
    publish(&second, "after").await;
    delivered(&received, "after").await;
}

#[actix_web::test]
async fn jetstream_push_deliveries_resume_after_a_restart_beside_a_memory_store() {
    let Some(url) = nats_url() else { return };
    let prefix = format!("P{}", &Uuid::new_v4().simple().to_string()[..12]);
    let vars = vec![
        ("HOTSWAP__MESSAGING__BACKEND", "jetstream".to_string()),
        ("HOTSWAP__MESSAGING__NATS_URL", url.clone()),
        ("HOTSWAP__MESSAGING__NATS_PREFIX", prefix.clone()),
        ("HOTSWAP__MESSAGING__NATS_OWNER_LEASE", "2s".to_string()),
    ];
    // On the test's own thread (the HTTP client is not Send), and cleaned
    // up whether it passed or not.
    let outcome = actix_web::rt::spawn(push_resumes_after_a_restart(vars)).await;
    remove_everything(&url, &prefix).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

#[actix_web::test]
async fn postgres_push_deliveries_resume_after_a_restart() {
    let Some(db) = TestDb::create("messaging_conformance::push_restart").await else { return };
    let vars = vec![
        ("HOTSWAP__STORE__BACKEND", "postgres".to_string()),
        ("HOTSWAP__STORE__URL", db.url.clone()),
        ("HOTSWAP__MESSAGING__BACKEND", "postgres".to_string()),
    ];
    push_resumes_after_a_restart(vars).await;
}
