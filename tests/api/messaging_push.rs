//! Push subscriptions against a small HTTP receiver the test runs: a 2xx
//! acks, anything else is retried and finally dead-lettered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use awc::http::StatusCode;
use parking_lot::Mutex;
use serde_json::{json, Value};

use crate::db::poll::eventually;
use crate::messaging_api::{publish, subscribe, topic};
use crate::support::spawn_app;

/// Answers 500 to the first `failures` requests and 200 after; keeps the bodies.
struct Receiver {
    failures: usize,
    seen: Mutex<Vec<Value>>,
    calls: AtomicUsize,
}

async fn receive(receiver: web::Data<Receiver>, body: web::Json<Value>) -> HttpResponse {
    receiver.seen.lock().push(body.into_inner());
    if receiver.calls.fetch_add(1, Ordering::SeqCst) < receiver.failures {
        HttpResponse::InternalServerError().finish()
    } else {
        HttpResponse::Ok().finish()
    }
}

/// Starts a receiver and answers its URL.
fn start_receiver(receiver: Arc<Receiver>) -> String {
    let data = web::Data::from(receiver);
    let server = HttpServer::new(move || App::new().app_data(data.clone()).route("/hook", web::post().to(receive)))
        .workers(1)
        .bind("127.0.0.1:0")
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    format!("http://{addr}/hook")
}

#[actix_web::test]
async fn a_push_subscription_retries_until_its_endpoint_accepts() {
    let app = spawn_app(&[]).await;
    let receiver = Arc::new(Receiver { failures: 2, seen: Mutex::default(), calls: AtomicUsize::new(0) });
    let url = start_receiver(receiver.clone());
    topic(&app, json!({ "name": "pushed" })).await;
    subscribe(&app, "pushed", json!({ "type": "Push", "consumerEndpoint": url, "maxRetries": 3 })).await;
    publish(&app, "pushed", "hello").await;

    eventually(Duration::from_secs(10), "the third push is acknowledged", async || {
        app.get("/api/v1/topics/pushed/metrics").await.1["acknowledged"] == 1
    })
    .await;
    let seen = receiver.seen.lock().clone();
    let attempts: Vec<&Value> = seen.iter().map(|d| &d["deliveryAttempts"]).collect();
    assert_eq!(attempts, [&json!(1), &json!(2), &json!(3)]);
    assert!(seen.iter().all(|d| d["payload"] == "hello"));
}

#[actix_web::test]
async fn a_push_endpoint_that_always_fails_dead_letters_the_message() {
    let app = spawn_app(&[]).await;
    let receiver = Arc::new(Receiver { failures: usize::MAX, seen: Mutex::default(), calls: AtomicUsize::new(0) });
    let url = start_receiver(receiver.clone());
    topic(&app, json!({ "name": "doomed" })).await;
    let sub = subscribe(&app, "doomed", json!({ "type": "Push", "consumerEndpoint": url, "maxRetries": 1 })).await;
    publish(&app, "doomed", "x").await;
    eventually(Duration::from_secs(10), "the message reaches the dead-letter queue", async || {
        app.get("/api/v1/topics/doomed/dlq").await.1.as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 2, "one delivery and one retry");
    let (status, _) = app.get(&format!("/api/v1/subscriptions/{sub}")).await;
    assert_eq!(status, StatusCode::OK);
}

/// A REST consume of a Push subscription would compete with its delivery
/// loop for the same messages: refused, as the WebSocket refuses it.
#[actix_web::test]
async fn a_push_subscription_cannot_be_consumed_over_rest() {
    let app = spawn_app(&[]).await;
    let receiver = Arc::new(Receiver { failures: 0, seen: Mutex::default(), calls: AtomicUsize::new(0) });
    let url = start_receiver(receiver);
    topic(&app, json!({ "name": "pushed-only" })).await;
    let sub = subscribe(&app, "pushed-only", json!({ "type": "Push", "consumerEndpoint": url })).await;
    let (status, err) = app.get(&format!("/api/v1/messages/consume/pushed-only?subscriptionId={sub}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"].as_str().unwrap().contains("Push subscription"), "{err}");
}
