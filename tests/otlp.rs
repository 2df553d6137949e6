//! Traces reach an OTLP/HTTP collector with the run's span tree: the HTTP
//! request, the run's creation, the run, one span per stage and one per
//! node call. The collector here is a small HTTP server in the test that
//! decodes OTLP protobuf with opentelemetry-proto. A test binary of its own:
//! it installs the process-wide tracing subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "support/mod.rs"]
mod db;
#[path = "api/support.rs"]
#[allow(dead_code)]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use hotswap::config::{LogFormat, LoggingSettings, TelemetrySettings};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

type Received = Arc<Mutex<Vec<Span>>>;

async fn collect(body: web::Bytes, received: web::Data<Received>) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body.as_ref()) {
        Ok(request) => {
            let spans = request.resource_spans.into_iter().flat_map(|r| r.scope_spans).flat_map(|s| s.spans);
            received.lock().unwrap().extend(spans);
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .body(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(e) => HttpResponse::BadRequest().body(format!("not OTLP protobuf: {e}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attr(span: &Span, key: &str) -> Option<String> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    span.attributes.iter().find(|kv| kv.key == key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    })
}

#[actix_web::test]
async fn a_runs_spans_reach_the_collector_with_their_parents() {
    let received: Received = Arc::default();
    let data = web::Data::new(received.clone());
    let collector =
        HttpServer::new(move || App::new().app_data(data.clone()).route("/v1/traces", web::post().to(collect)))
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
    let endpoint = format!("http://{}", collector.addrs()[0]);
    actix_web::rt::spawn(collector.run());

    let telemetry = TelemetrySettings {
        otlp_endpoint: endpoint.as_str().into(),
        service_name: "hotswap-otlp-test".into(),
        level: "info".into(),
        sample_ratio: 1.0,
    };
    let guard =
        hotswap::telemetry::init(&LoggingSettings { format: LogFormat::Pretty, level: "warn".into() }, &telemetry);
    let app = support::spawn_app(&[("HOTSWAP__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str())]).await;

    let mut res = awc::Client::new()
        .post(format!("{}/api/v1/deployments", app.base))
        .bearer_auth(app.token.clone().expect("logged in"))
        .send_json(&db::requests::deployment("kmod-otel", "1.0.0", "Development"))
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let header = res.headers().get("x-trace-id").unwrap().to_str().unwrap().to_string();
    let body: serde_json::Value = res.json().await.unwrap();
    let trace_id = body["traceId"].as_str().unwrap().to_string();
    let id = body["executionId"].as_str().unwrap().to_string();
    assert_eq!(header, trace_id, "the request's trace is the run's trace");
    assert_eq!(body["links"]["trace"], format!("http://localhost:16686/trace/{trace_id}"));
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["traceId"], trace_id.as_str());

    // The run's span ends when its coordinator stops; wait for it to arrive.
    let spans = db::poll::eventually_ok(Duration::from_secs(20), "the run's spans arrive", async || {
        guard.flush();
        let spans: Vec<Span> =
            received.lock().unwrap().iter().filter(|s| hex(&s.trace_id) == trace_id).cloned().collect();
        if spans.iter().any(|s| s.name == "deployment") && spans.iter().any(|s| s.name == "stage Validation") {
            Ok(spans)
        } else {
            Err(format!("{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
        }
    })
    .await;
    let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}"));
    let create = by_name("deployment.create");
    let run_span = by_name("deployment");
    assert_eq!(run_span.parent_span_id, create.span_id, "the run continues the span it was created in");
    assert_eq!(attr(run_span, "execution_id").as_deref(), Some(id.as_str()));
    let request = spans.iter().find(|s| s.span_id == create.parent_span_id).expect("the creation's parent is exported");
    assert!(attr(request, "http.route").is_some_and(|r| r.contains("/api/v1/deployments")), "{request:?}");
    for stage in ["stage Security Scan", "stage Deploy to Development", "stage Validation"] {
        assert_eq!(by_name(stage).parent_span_id, run_span.span_id, "{stage} is a child of the run");
    }
    let deploy_stage = by_name("stage Deploy to Development");
    let loads: Vec<_> = spans.iter().filter(|s| s.name == "node LoadVersion").collect();
    assert_eq!(loads.len(), 3, "one span per node call");
    assert!(loads.iter().all(|s| s.parent_span_id == deploy_stage.span_id));
    let hosts: Vec<_> = loads.iter().filter_map(|s| attr(s, "node.hostname")).collect();
    assert!(hosts.contains(&"development-node-01".to_string()), "{hosts:?}");
    // The span travels with the message: the node actor's store write is its child.
    let persists: Vec<_> = spans.iter().filter(|s| s.name == "node.persist").collect();
    assert_eq!(persists.len(), 3, "{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>());
    assert!(persists.iter().all(|p| loads.iter().any(|l| l.span_id == p.parent_span_id)));
    let verify: Vec<_> = spans.iter().filter(|s| s.name == "node VerifyModule").collect();
    assert!(verify.iter().all(|s| s.parent_span_id == by_name("stage Validation").span_id) && verify.len() == 3);

    // A token in the query string (as browsers send it to the live endpoints)
    // never reaches the collector: the request span records it redacted.
    let token = app.token.clone().expect("logged in");
    let mut res = awc::Client::new()
        .get(format!("{}/api/v1/clusters?access_token={token}&client_secret=hunter2", app.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let marked_trace = res.headers().get("x-trace-id").unwrap().to_str().unwrap().to_string();
    let _ = res.body().await;
    let request = db::poll::eventually_ok(Duration::from_secs(20), "the request's span is exported", async || {
        guard.flush();
        let spans = received.lock().unwrap().clone();
        spans
            .into_iter()
            .find(|s| hex(&s.trace_id) == marked_trace && attr(s, "http.target").is_some())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let target = attr(&request, "http.target").unwrap();
    assert_eq!(target, "/api/v1/clusters?access_token=REDACTED&client_secret=REDACTED");
    let everything = format!("{:?}", received.lock().unwrap());
    assert!(!everything.contains(&token) && !everything.contains("hunter2"), "a secret reached the collector");

    // A call to more nodes than the limit is traced as one event on the
    // stage's span that counts them: no span per node call, and no node's
    // store write starts a trace of its own.
    let many = (hotswap_actors::coordinator::NODE_SPANS_UP_TO + 1).to_string();
    let large = support::spawn_app(&[
        ("HOTSWAP__TELEMETRY__OTLP_ENDPOINT", endpoint.as_str()),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", many.as_str()),
    ])
    .await;
    let persists_before = received.lock().unwrap().iter().filter(|s| s.name == "node.persist").count();
    let (status, body) =
        large.post("/api/v1/deployments", &db::requests::deployment("kmod-otel", "1.0.0", "Development")).await;
    assert_eq!(status, 202, "{body}");
    let (id, trace_id) = (body["executionId"].as_str().unwrap(), body["traceId"].as_str().unwrap().to_string());
    assert_eq!(large.finished(id).await["status"], "Succeeded");
    let spans = db::poll::eventually_ok(Duration::from_secs(20), "the large run's spans arrive", async || {
        guard.flush();
        let spans: Vec<Span> =
            received.lock().unwrap().iter().filter(|s| hex(&s.trace_id) == trace_id).cloned().collect();
        if spans.iter().any(|s| s.name == "stage Validation") {
            Ok(spans)
        } else {
            Err(format!("{:?}", spans.iter().map(|s| &s.name).collect::<Vec<_>>()))
        }
    })
    .await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with("node ")), "{names:?}");
    let deploy_stage = spans.iter().find(|s| s.name == "stage Deploy to Development").expect("the deploy stage's span");
    let counted: Vec<_> = deploy_stage.events.iter().filter(|e| e.name == "node calls not traced one by one").collect();
    assert_eq!(counted.len(), 1, "{:?}", deploy_stage.events);
    let nodes = counted[0].attributes.iter().find(|kv| kv.key == "nodes").and_then(|kv| kv.value.clone());
    assert!(format!("{nodes:?}").contains(&many), "{nodes:?}");
    guard.flush();
    let persists_after = received.lock().unwrap().iter().filter(|s| s.name == "node.persist").count();
    assert_eq!(persists_after, persists_before, "a node's write without a traced call exports no span");
    drop(guard);
}
