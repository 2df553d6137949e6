//! `cargo bench --bench deployment_fanout`: a Direct deployment of one module
//! to N simulated nodes with zero waits, beside a floor of plain actix
//! request/response round trips to N actors measured in the same run.
//!
//! Prints one line per N with medians and the ratio to the floor, and the
//! resident memory the node actors add. Optional argument: the largest N.
//! With `scaling` first: profiles, actor threads and memory over ten runs
//! (see `deployment_fanout_parts/scaling.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use futures::future::join_all;
use hotswap_actors::domain::{DeploymentRequest, Environment, DEFAULT_TENANT};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::{NodeCounts, PipelineSettings, SimulationSettings};
use hotswap_actors::store::{MemoryStore, RunFilter};
use hotswap_actors::Orchestrator;

#[path = "deployment_fanout_parts/scaling.rs"]
mod scaling;

const ROUNDS: usize = 5;

// The same allocator as the server binary, for the floor and the deployment alike.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Echo;
impl Actor for Echo {
    type Context = Context<Self>;
}

#[derive(Message)]
#[rtype(result = "u64")]
struct Ping(u64);

impl Handler<Ping> for Echo {
    type Result = u64;
    fn handle(&mut self, msg: Ping, _: &mut Self::Context) -> u64 {
        msg.0 + 1
    }
}

/// One request/response to each of `actors`, all in flight together.
async fn floor_round(actors: &[Addr<Echo>]) -> Duration {
    let start = Instant::now();
    let answers = join_all(actors.iter().enumerate().map(|(i, a)| a.send(Ping(i as u64)))).await;
    let elapsed = start.elapsed();
    assert!(answers.into_iter().all(|r| r.is_ok()));
    elapsed
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn settings(nodes: usize) -> CoreSettings {
    let pipeline = PipelineSettings {
        rolling_health_check_delay: Duration::ZERO,
        canary_bake_time: Duration::ZERO,
        node_request_timeout: Duration::from_secs(60),
        ..PipelineSettings::default()
    };
    let simulation = SimulationSettings {
        nodes: NodeCounts { development: nodes, qa: 0, staging: 0, production: 0 },
        heartbeat_interval: Duration::from_secs(30),
        heartbeat_timeout: Duration::from_secs(120),
        ..SimulationSettings::default()
    };
    CoreSettings { pipeline, simulation, sample_metrics: false, ..Default::default() }
}

/// One Direct run to its end; answers how long it took. The end is found by
/// polling every 200 µs, which only starts after `quiet_for`: a poll that
/// wakes the bench's own thread thousands of times a run takes a core from
/// the actor threads whenever they use both.
async fn deploy_once(orchestrator: &Orchestrator, version: String, quiet_for: Duration) -> Duration {
    let request = DeploymentRequest {
        module_name: "bench-module".into(),
        version,
        target_environment: Environment::Development,
        requester_email: "bench@example.com".into(),
        description: None,
        require_approval: false,
        metadata: Default::default(),
        strategy: None,
        canary_steps: None,
    };
    let start = Instant::now();
    let run = orchestrator
        .create_deployment(DEFAULT_TENANT, request, &hotswap_actors::domain::AuditActor::system())
        .await
        .expect("run created");
    // Summaries are cheap to read, unlike a record holding every node change;
    // the store is read only once no coordinator is live, because reading it
    // every 200 µs took the store's lock against the run's own writes and a
    // core's tenth from the actor threads (a 2-thread run's second core).
    let filter = RunFilter { page: 1, page_size: 1, ..Default::default() };
    actix::clock::sleep(quiet_for.saturating_sub(start.elapsed())).await;
    let elapsed = loop {
        if orchestrator.active_runs() == 0 {
            let newest = orchestrator.list_runs(DEFAULT_TENANT, &filter).await.expect("store read");
            if newest.items.first().is_some_and(|r| r.execution_id == run.execution_id && !r.status.is_active()) {
                break start.elapsed();
            }
        }
        actix::clock::sleep(Duration::from_micros(200)).await;
    };
    let done = orchestrator.store().get_run(DEFAULT_TENANT, run.execution_id).await.unwrap().unwrap();
    assert_eq!(done.status.as_str(), "Succeeded", "{}", done.message);
    if std::env::var_os("BENCH_STAGES").is_some() {
        for s in &done.stages {
            let d = s.end_time.zip(s.start_time).map(|(e, b)| (e - b).num_microseconds().unwrap_or(0)).unwrap_or(0);
            eprintln!(
                "  {:<24} {:>10} us  (starts {} us after creation)",
                s.name,
                d,
                (s.start_time.unwrap() - done.created_at).num_microseconds().unwrap_or(0)
            );
        }
        eprintln!(
            "  finished {} us after creation",
            (done.finished_at.unwrap() - done.created_at).num_microseconds().unwrap_or(0)
        );
    }
    elapsed
}

fn main() {
    // The server's memory settings (`hotswap serve`): no transparent huge pages.
    hotswap::huge_pages::opt_out().expect("set the process's transparent huge pages flag");
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("scaling-child") {
        let number = |i: usize| args.get(i).and_then(|a| a.parse().ok()).expect("scaling-child PROFILE NODES THREADS");
        return scaling::child(&args[1], number(2), number(3));
    }
    let max: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(100_000);
    if args.iter().any(|a| a == "scaling") {
        return scaling::main(max);
    }
    let sizes: Vec<usize> = [1_000, 10_000, 100_000].into_iter().filter(|n| *n <= max).collect();
    println!("deployment_fanout: Direct deployment vs. plain actix round trips, median of {ROUNDS} rounds");
    println!("{:>8} {:>12} {:>14} {:>7} {:>16}", "nodes", "floor", "deployment", "ratio", "node actors RSS");
    // One System for every size; the process exits without tearing it down.
    System::new().block_on(async move {
        for n in sizes {
            let echoes: Vec<Addr<Echo>> = (0..n).map(|_| Echo.start()).collect();
            floor_round(&echoes).await; // warm-up
            let mut floors = Vec::new();
            for _ in 0..ROUNDS {
                floors.push(floor_round(&echoes).await);
            }
            drop(echoes);

            let before = rss_kib();
            let orchestrator =
                Orchestrator::start(Arc::new(MemoryStore::new()), settings(n)).await.expect("core starts");
            let resident = rss_kib().saturating_sub(before);
            deploy_once(&orchestrator, "0.0.1".into(), Duration::ZERO).await; // warm-up
            let mut runs = Vec::new();
            for i in 0..ROUNDS {
                runs.push(deploy_once(&orchestrator, format!("1.0.{i}"), Duration::ZERO).await);
            }
            let (floor, run) = (median(floors), median(runs));
            println!(
                "{n:>8} {:>10.2}ms {:>12.2}ms {:>6.1}x {:>12.1} MiB",
                floor.as_secs_f64() * 1e3,
                run.as_secs_f64() * 1e3,
                run.as_secs_f64() / floor.as_secs_f64(),
                resident as f64 / 1024.0
            );
        }
    });
    std::process::exit(0);
}
