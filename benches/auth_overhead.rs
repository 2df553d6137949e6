//! `cargo bench --bench auth_overhead`: throughput of an authenticated
//! `GET /api/v1/deployments/{id}` on the full server, against the same
//! handler served without the authentication, tenant and rate-limit layers
//! (every other layer kept), measured with wrk in the same run.
//!
//! Both servers run in this process with one HTTP worker each and share one
//! orchestrator and store; wrk loads one at a time, alternating (which goes
//! first alternates too), for `ROUNDS` rounds. Prints each round's requests
//! per second and ratio, and the median of the ratios. Needs `wrk` on the PATH. Optional arguments: seconds per
//! round (default 10) and connections (default 32).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use actix_web::middleware::{from_fn, NormalizePath, TrailingSlash};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use hotswap::auth::client::TrustedProxies;
use hotswap::auth::headers::{security_headers, SecurityHeaders};
use hotswap::config::Settings;
use hotswap::http::deployments::run_view;
use hotswap::startup::{cors, Application};
use hotswap::web::trace::assign_trace_id;
use hotswap::web::ApiError;
use hotswap::web::AppState;
use hotswap_actors::domain::DEFAULT_TENANT;
use serde_json::{json, Value};
use tracing_actix_web::TracingLogger;

const ROUNDS: usize = 5;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The handler of the full route, with the tenant fixed instead of taken from a token.
async fn bare_get(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let id = req.match_info().get("id").unwrap_or_default().to_string();
    run_view(&state, DEFAULT_TENANT, &id).await
}

fn requests_per_second(url: &str, token: Option<&str>, seconds: u64, connections: u32) -> f64 {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = cmd.arg(url).output().expect("wrk runs (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "every response must be 200:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:").map(|v| v.trim().parse::<f64>().expect("a number")))
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[actix_web::main]
async fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let connections: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let vars = [
        ("HOTSWAP__SERVER__BIND", "127.0.0.1:0"),
        ("HOTSWAP__SERVER__WORKERS", "1"),
        ("HOTSWAP__LOGGING__LEVEL", "error"),
        // Limits on, high enough never to refuse: each request still takes its window's check.
        ("HOTSWAP__RATE_LIMIT__ENABLED", "true"),
        ("HOTSWAP__RATE_LIMIT__DEPLOYMENTS", "4000000000"),
        ("HOTSWAP__RATE_LIMIT__GLOBAL", "4000000000"),
        ("HOTSWAP__RATE_LIMIT__LOGIN", "4000000000"),
    ];
    let settings =
        Settings::load_from(&dir, "test", vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).expect("settings");
    let app = Application::build(settings.clone()).await.expect("server starts");
    let full = format!("http://{}", app.addr());
    let orchestrator = app.orchestrator.clone();
    actix_web::rt::spawn(app.run());

    // The baseline: the same layers and handler, less authentication, tenant and rate limits.
    let state = web::Data::new(AppState { orchestrator, trace_url: settings.server.trace_url.clone() });
    let headers = web::Data::new(
        SecurityHeaders::new(&settings.security_headers, false, TrustedProxies::default()).expect("headers"),
    );
    let cors_settings = settings.cors.clone();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let bare = format!("http://{}", listener.local_addr().unwrap());
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(headers.clone())
            .wrap(cors(&cors_settings))
            .wrap(from_fn(security_headers))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(from_fn(assign_trace_id))
            .wrap(TracingLogger::default())
            .route("/api/v1/deployments/{id}", web::get().to(bare_get))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);

    // A finished run to read, created and logged in for over the API.
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let mut login = client
        .post(format!("{full}/api/v1/authentication/login"))
        .send_json(&json!({ "username": "viewer", "password": "Viewer123!" }))
        .await
        .unwrap();
    let token = login.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();
    let deployer: Value = client
        .post(format!("{full}/api/v1/authentication/login"))
        .send_json(&json!({ "username": "deployer", "password": "Deploy123!" }))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut created = client
        .post(format!("{full}/api/v1/deployments"))
        .bearer_auth(deployer["token"].as_str().unwrap())
        .send_json(&json!({ "moduleName": "kmod-bench", "version": "1.0.0", "targetEnvironment": "Development",
            "requesterEmail": "bench@example.com" }))
        .await
        .unwrap();
    let id = created.json::<Value>().await.unwrap()["executionId"].as_str().unwrap().to_string();
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let path = format!("/api/v1/deployments/{id}");

    let (full_url, bare_url) = (format!("{full}{path}"), format!("{bare}{path}"));
    // wrk blocks: run it off the System's thread, which the orchestrator's actors use.
    let check = |url: String, token: Option<String>| {
        actix_web::rt::task::spawn_blocking(move || requests_per_second(&url, token.as_deref(), 1, 4))
    };
    // Warm-up; also proves both answer 200.
    check(bare_url.clone(), None).await.unwrap();
    check(full_url.clone(), Some(token.clone())).await.unwrap();
    let unauthenticated = client.get(&full_url).send().await.unwrap().status();
    assert_eq!(unauthenticated, 401, "the full server needs the token");

    println!("GET {path}: wrk -t1 -c{connections} -d{seconds}s, one server worker each, {ROUNDS} rounds");
    let (mut bare_rps, mut full_rps, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        let (b, f, t) = (bare_url.clone(), full_url.clone(), token.clone());
        let (b_rps, f_rps) = actix_web::rt::task::spawn_blocking(move || {
            if round % 2 == 1 {
                let b_rps = requests_per_second(&b, None, seconds, connections);
                (b_rps, requests_per_second(&f, Some(&t), seconds, connections))
            } else {
                let f_rps = requests_per_second(&f, Some(&t), seconds, connections);
                (requests_per_second(&b, None, seconds, connections), f_rps)
            }
        })
        .await
        .unwrap();
        println!(
            "round {round}: baseline {b_rps:>9.0} req/s   with auth+tenant+rate limit {f_rps:>9.0} req/s   ratio {:.3}",
            f_rps / b_rps
        );
        bare_rps.push(b_rps);
        full_rps.push(f_rps);
        ratios.push(f_rps / b_rps);
    }
    let (b, f, r) = (median(bare_rps), median(full_rps), median(ratios));
    println!("median ratio {r:.3}: the layers cost {:.1} % of the baseline throughput", 100.0 * (1.0 - r));
    println!("medians: baseline {b:.0} req/s, full {f:.0} req/s (ratio of medians {:.3})", f / b);
}
