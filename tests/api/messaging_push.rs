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
use crate::support::{spawn_app, TestApp};

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

/// Waits until the topic's dead-letter queue holds one letter; answers it.
async fn the_dead_letter(app: &TestApp, topic: &str) -> Value {
    let path = format!("/api/v1/topics/{topic}/dlq");
    let what = format!("a message of '{topic}' reaches the dead-letter queue");
    eventually(Duration::from_secs(10), &what, async || {
        app.get(&path).await.1.as_array().is_some_and(|l| l.len() == 1)
    })
    .await;
    app.get(&path).await.1[0].clone()
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
    the_dead_letter(&app, "doomed").await;
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

/// The rule of `messaging.push_allowed_networks` (here without loopback): a
/// literal loopback or metadata address is refused at creation, and a name
/// resolving to loopback fails at delivery, dead-lettered with the reason,
/// without a request reaching the endpoint.
#[actix_web::test]
async fn a_push_endpoint_on_a_refused_address_is_refused_at_creation_and_at_delivery() {
    let app = spawn_app(&[("HOTSWAP__MESSAGING__PUSH_ALLOWED_NETWORKS", "192.0.2.0/24")]).await;
    let receiver = Arc::new(Receiver { failures: 0, seen: Mutex::default(), calls: AtomicUsize::new(0) });
    let url = start_receiver(receiver.clone());
    topic(&app, json!({ "name": "guarded" })).await;
    for endpoint in [url.clone(), "http://169.254.169.254/latest/meta-data".into(), "http://[::1]:9/hook".into()] {
        let body =
            json!({ "topicName": "guarded", "consumerGroup": "g", "type": "Push", "consumerEndpoint": endpoint });
        let (status, err) = app.post("/api/v1/subscriptions", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{endpoint}: {err}");
        assert!(err.to_string().contains("push_allowed_networks"), "{endpoint}: {err}");
    }
    let by_name = url.replace("127.0.0.1", "localhost");
    subscribe(&app, "guarded", json!({ "type": "Push", "consumerEndpoint": by_name, "maxRetries": 0 })).await;
    publish(&app, "guarded", "secret-probe").await;
    let letter = the_dead_letter(&app, "guarded").await;
    assert!(letter["reason"].as_str().unwrap().contains("push_allowed_networks"), "{letter}");
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 0, "nothing reached the loopback endpoint");
}

/// Answers every push with a redirect to `/redirected`, and counts what
/// reaches that target.
async fn redirect(_: web::Json<Value>) -> HttpResponse {
    HttpResponse::TemporaryRedirect().insert_header(("Location", "/redirected")).finish()
}

/// A redirect's target was never checked against the address rule: it is
/// not followed, and the delivery counts as failed.
#[actix_web::test]
async fn a_push_endpoints_redirect_is_not_followed() {
    let app = spawn_app(&[]).await;
    let receiver = Arc::new(Receiver { failures: 0, seen: Mutex::default(), calls: AtomicUsize::new(0) });
    let data = web::Data::from(receiver.clone());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .route("/hook", web::post().to(redirect))
            .route("/redirected", web::post().to(receive))
    })
    .workers(1)
    .bind("127.0.0.1:0")
    .unwrap();
    let url = format!("http://{}/hook", server.addrs()[0]);
    actix_web::rt::spawn(server.run());
    topic(&app, json!({ "name": "redirected" })).await;
    subscribe(&app, "redirected", json!({ "type": "Push", "consumerEndpoint": url, "maxRetries": 0 })).await;
    publish(&app, "redirected", "x").await;
    let letter = the_dead_letter(&app, "redirected").await;
    assert!(letter["reason"].as_str().unwrap().contains("307"), "{letter}");
    assert_eq!(receiver.calls.load(Ordering::SeqCst), 0, "the redirect target got nothing");
}
