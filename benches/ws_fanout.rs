//! `cargo bench --bench ws_fanout [-- CLIENTS RUNS]`: live-update fan-out.
//!
//! Starts the server (test profile, in-memory store, simulated clusters of
//! 3/5/10/20 nodes) and runs RUNS deployments (default 10) to Production,
//! twice: first with no client connected, then with CLIENTS WebSocket clients
//! (default 1,000) subscribed to every deployment. Prints the runs' own
//! durations both times, the messages delivered per second, the delivery
//! latency (from the event's timestamp to its arrival at a client) and the
//! server's share of it. The clients run in the same process.
//!
//! Knobs (environment): BAKE_MS canary bake per step (default 2000; rolling
//! waits are half, smoke-test polls a quarter); LOCKSTEP=1 starts all runs at
//! once instead of spread over one bake time; CLIENT_THREADS (default 2);
//! WORKERS server workers (default 0: one per core); any HOTSWAP__… setting,
//! e.g. HOTSWAP__WEBSOCKET__FLUSH_DELAY=0s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use actix::System;
use awc::ws::{Frame, Message};
use chrono::{DateTime, Utc};
use futures::{SinkExt, StreamExt};
use hotswap::config::Settings;
use hotswap::startup::Application;
use serde_json::{json, Value};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Per client: messages received and each one's latency in microseconds.
type Received = Vec<(usize, Vec<u32>)>;

fn latency_us(text: &[u8], now: DateTime<Utc>) -> Option<u32> {
    let s = std::str::from_utf8(text).ok()?;
    // Keys are sorted: the timestamp comes after the data, near the end.
    let start = s.rfind("\"timestamp\":\"")? + 13;
    let end = start + s[start..].find('"')?;
    let at = DateTime::parse_from_rfc3339(&s[start..end]).ok()?;
    Some((now - at.with_timezone(&Utc)).num_microseconds()?.max(0) as u32)
}

/// One client: connect, subscribe to all, then count and time every message.
async fn client(
    url: String,
    connected: Arc<AtomicUsize>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> (usize, Vec<u32>) {
    let (_, mut conn) = awc::Client::builder()
        .timeout(Duration::from_secs(30))
        .finish()
        .ws(url)
        .connect()
        .await
        .expect("client connects");
    conn.send(Message::Text(json!({ "type": "subscribe", "all": true }).to_string().into())).await.unwrap();
    let mut latencies = Vec::with_capacity(1024);
    let mut count = 0;
    let mut acked = false;
    loop {
        let frame = tokio::select! {
            _ = stop.changed() => break,
            frame = conn.next() => match frame {
                None => break,
                Some(frame) => frame.expect("frame"),
            },
        };
        match frame {
            Frame::Text(t) if !acked => {
                assert!(
                    t.starts_with(b"{\"all\":true,\"type\":\"subscribed\"}")
                        || t.windows(10).any(|w| w == b"subscribed")
                );
                acked = true;
                connected.fetch_add(1, Ordering::Relaxed);
            }
            Frame::Text(t) => {
                count += 1;
                if let Some(us) = latency_us(&t, Utc::now()) {
                    latencies.push(us);
                }
            }
            Frame::Ping(p) => conn.send(Message::Pong(p)).await.unwrap(),
            Frame::Close(_) => break,
            _ => {}
        }
    }
    (count, latencies)
}

/// Starts `n` clients spread over `threads` threads, each with an actix System of its own.
fn start_clients(
    url: String,
    n: usize,
    threads: usize,
) -> (Arc<AtomicUsize>, tokio::sync::watch::Sender<bool>, mpsc::Receiver<Received>) {
    let connected = Arc::new(AtomicUsize::new(0));
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, rx) = mpsc::channel();
    for t in 0..threads {
        let share = n / threads + usize::from(t < n % threads);
        let (url, c, s, tx) = (url.clone(), connected.clone(), stop_rx.clone(), tx.clone());
        std::thread::spawn(move || {
            System::new().block_on(async move {
                let results: Rc<RefCell<Received>> = Rc::default();
                let mut handles = Vec::new();
                for i in 0..share {
                    let (url, c, s, results) = (url.clone(), c.clone(), s.clone(), results.clone());
                    handles.push(actix_web::rt::spawn(async move {
                        let r = client(url, c, s).await;
                        results.borrow_mut().push(r);
                    }));
                    // Do not flood the accept queue.
                    if i % 100 == 99 {
                        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                for h in handles {
                    let _ = h.await;
                }
                let out = std::mem::take(&mut *results.borrow_mut());
                tx.send(out).unwrap();
            });
        });
    }
    (connected, stop, rx)
}

/// Starts `runs` deployments at once and returns each run's duration.
async fn run_batch(http: &awc::Client, base: &str, runs: usize, tag: &str, stagger: Duration) -> Vec<Duration> {
    let mut ids = Vec::new();
    for i in 0..runs {
        if i > 0 {
            actix_web::rt::time::sleep(stagger).await;
        }
        let body = json!({ "moduleName": format!("fan-{tag}-{i}"), "version": "1.0.0",
            "targetEnvironment": "Production", "requesterEmail": "bench@example.com" });
        let mut res = http.post(format!("{base}/api/v1/deployments")).send_json(&body).await.unwrap();
        let v: Value = res.json().await.unwrap();
        ids.push(v["executionId"].as_str().unwrap_or_else(|| panic!("run refused: {v}")).to_string());
    }
    let mut durations = Vec::new();
    for id in ids {
        loop {
            let mut res = http.get(format!("{base}/api/v1/deployments/{id}")).send().await.unwrap();
            let run: Value = res.json().limit(16 << 20).await.unwrap();
            if run["endTime"].is_string() {
                assert_eq!(run["status"], "Succeeded", "{run:#}");
                let start: DateTime<Utc> = run["startTime"].as_str().unwrap().parse().unwrap();
                let end: DateTime<Utc> = run["endTime"].as_str().unwrap().parse().unwrap();
                durations.push((end - start).to_std().unwrap());
                break;
            }
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
    }
    durations
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}

fn summary(d: &[Duration]) -> String {
    let mut ms: Vec<f64> = d.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    format!("median {:.0} ms, max {:.0} ms", ms[ms.len() / 2], ms[ms.len() - 1])
}

fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let clients = args.first().copied().unwrap_or(1000);
    let runs = args.get(1).copied().unwrap_or(10);
    // The runs' pace: the canary bake time; rolling health-check delays are half
    // of it, blue-green smoke-test polls a quarter.
    let bake_ms: u64 = std::env::var("BAKE_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    let (bake, rolling, smoke) = (format!("{bake_ms}ms"), format!("{}ms", bake_ms / 2), format!("{}ms", bake_ms / 4));
    System::new().block_on(async move {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
        let vars = [
            ("HOTSWAP__SERVER__BIND", "127.0.0.1:0"),
            ("HOTSWAP__SERVER__WORKERS", std::env::var("WORKERS").as_deref().unwrap_or("0")),
            ("HOTSWAP__LOGGING__LEVEL", "error"),
            ("HOTSWAP__WEBSOCKET__PING_INTERVAL", "5s"),
            ("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "10s"),
            ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", rolling.as_str()),
            ("HOTSWAP__PIPELINE__BLUEGREEN_SMOKE_TEST_INTERVAL", smoke.as_str()),
            ("HOTSWAP__PIPELINE__BLUEGREEN_SMOKE_TEST_TIMEOUT", "30s"),
            ("HOTSWAP__PIPELINE__CANARY_BAKE_TIME", bake.as_str()),
            ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "10s"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let settings = Settings::load_from(&dir, "test", vars).expect("settings");
        let app = Application::build(settings).await.expect("server starts");
        let base = format!("http://{}", app.addr());
        actix_web::rt::spawn(app.run());
        let token = {
            let login = json!({ "username": "admin", "password": "Admin123!" });
            let mut res = awc::Client::new().post(format!("{base}/api/v1/authentication/login")).send_json(&login).await.unwrap();
            let v: Value = res.json().await.unwrap();
            v["token"].as_str().expect("demo admin token").to_string()
        };
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .add_default_header(("Authorization", format!("Bearer {token}")))
            .finish();

        println!(
            "ws_fanout: {runs} deployments to Production (38 nodes each, Direct/Rolling/BlueGreen/Canary), {clients} clients, canary bake {bake_ms} ms"
        );
        // Started one after another, spread over one bake time, as runs that
        // overlap without moving in lockstep; LOCKSTEP=1 starts them together.
        let stagger = if std::env::var_os("LOCKSTEP").is_some() {
            Duration::ZERO
        } else {
            Duration::from_millis(bake_ms / runs.max(1) as u64)
        };
        println!("runs start {} ms apart", stagger.as_millis());
        let alone = run_batch(&http, &base, runs, "alone", stagger).await;
        println!("runs without clients:        {}", summary(&alone));

        let client_threads = std::env::var("CLIENT_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
        // Browsers' way of authenticating a WebSocket: the token in the query.
        let url = format!("{}/api/v1/ws?access_token={token}", base.replacen("http", "ws", 1));
        let (connected, stop, results) = start_clients(url, clients, client_threads);
        let t0 = Instant::now();
        while connected.load(Ordering::Relaxed) < clients {
            assert!(t0.elapsed() < Duration::from_secs(60), "only {} clients connected", connected.load(Ordering::Relaxed));
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        println!("{clients} clients connected and subscribed in {:.1} s", t0.elapsed().as_secs_f64());
        let started = Instant::now();
        let watched = run_batch(&http, &base, runs, "watched", stagger).await;
        let runs_done = started.elapsed();
        // Let the last messages arrive, then stop the clients.
        actix_web::rt::time::sleep(Duration::from_millis(1000)).await;
        stop.send(true).unwrap();
        let received: Received = (0..client_threads).flat_map(|_| results.recv().expect("client results")).collect();
        println!("runs with {clients} clients:     {}", summary(&watched));
        let counts: Vec<usize> = received.iter().map(|(c, _)| *c).collect();
        let total: usize = counts.iter().sum();
        let mut latencies: Vec<u32> = received.into_iter().flat_map(|(_, l)| l).collect();
        latencies.sort_unstable();
        println!(
            "messages per client: min {} max {}; {} delivered in {:.2} s of runs = {:.0} messages/s ({:.0} events/s per client)",
            counts.iter().min().unwrap(),
            counts.iter().max().unwrap(),
            total,
            runs_done.as_secs_f64(),
            total as f64 / runs_done.as_secs_f64(),
            *counts.iter().max().unwrap() as f64 / runs_done.as_secs_f64()
        );
        println!(
            "delivery latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            pct(&latencies, 0.5),
            pct(&latencies, 0.9),
            pct(&latencies, 0.99),
            pct(&latencies, 1.0)
        );
        let mut res = http.get(format!("{base}/metrics")).send().await.unwrap();
        let text = String::from_utf8(res.body().limit(16 << 20).await.unwrap().to_vec()).unwrap();
        // Server side: from the bus receiving an event to a session writing it.
        let bucket = |le: &str| -> f64 {
            let key = format!("hotswap_websocket_delivery_seconds_bucket{{protocol=\"websocket\",le=\"{le}\"}} ");
            text.lines().find_map(|l| l.strip_prefix(key.as_str())?.trim().parse().ok()).unwrap_or(0.0)
        };
        let all = bucket("+Inf").max(1.0);
        println!(
            "server side, bus to session: {:.1}% within 10 ms, {:.1}% within 25 ms, {:.1}% within 50 ms, {:.1}% within 100 ms",
            bucket("0.01") * 100.0 / all,
            bucket("0.025") * 100.0 / all,
            bucket("0.05") * 100.0 / all,
            bucket("0.1") * 100.0 / all
        );
    });
    std::process::exit(0);
}
