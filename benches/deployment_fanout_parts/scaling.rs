//! `cargo bench --bench deployment_fanout -- scaling [MAX]`: Direct runs to
//! 10,000 and 100,000 simulated nodes under the development profile's
//! timings and the test profile's (heartbeats every 200 ms, metrics sampled
//! every 100 ms), each with the node and coordinator actors on one thread and
//! on two (`[supervision] actor_threads`). Every configuration runs in a
//! process of its own (the bench starts itself again), so that one
//! configuration's actors neither share memory nor compete for the cores
//! with the next. Per configuration: resident bytes per idle node, the median
//! time of ten consecutive runs, and resident memory after the first run and
//! after the tenth.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::{NodeCounts, PipelineSettings, SimulationSettings};
use hotswap_actors::store::MemoryStore;
use hotswap_actors::Orchestrator;

use super::{deploy_once, median, rss_kib};

const RUNS: usize = 10;

#[derive(Clone, Copy, PartialEq)]
enum Profile {
    Development,
    Test,
}

impl Profile {
    fn name(self) -> &'static str {
        match self {
            Profile::Development => "development",
            Profile::Test => "test",
        }
    }

    fn parse(s: &str) -> Option<Profile> {
        [Profile::Development, Profile::Test].into_iter().find(|p| p.name() == s)
    }

    fn settings(self, nodes: usize, threads: usize) -> CoreSettings {
        let pipeline =
            PipelineSettings { node_request_timeout: Duration::from_secs(60), ..PipelineSettings::default() };
        let (heartbeat, timeout, sample) = match self {
            Profile::Development => (Duration::from_secs(10), Duration::from_secs(30), Duration::from_secs(10)),
            Profile::Test => (Duration::from_millis(200), Duration::from_secs(1), Duration::from_millis(100)),
        };
        let simulation = SimulationSettings {
            nodes: NodeCounts { development: nodes, qa: 0, staging: 0, production: 0 },
            heartbeat_interval: heartbeat,
            heartbeat_timeout: timeout,
            metrics_sample_interval: sample,
            ..SimulationSettings::default()
        };
        let mut settings = CoreSettings { pipeline, simulation, sample_metrics: true, ..Default::default() };
        settings.supervision.actor_threads = threads;
        settings
    }
}

/// One configuration's figures, as the child process prints them.
struct Figures {
    idle_bytes_per_node: f64,
    median_run: Duration,
    rss_after_first_kib: u64,
    rss_after_last_kib: u64,
}

/// Runs one configuration in this process and prints its figures on one line.
pub fn child(profile: &str, nodes: usize, threads: usize) {
    let profile = Profile::parse(profile).expect("profile is development or test");
    System::new().block_on(async move {
        let before = rss_kib();
        let core = Orchestrator::start(Arc::new(MemoryStore::new()), profile.settings(nodes, threads))
            .await
            .expect("core starts");
        // Idle: let the heartbeats and samples of the first seconds settle.
        actix::clock::sleep(Duration::from_secs(2)).await;
        let idle = rss_kib().saturating_sub(before);
        let mut times = Vec::new();
        let mut resident = Vec::new();
        for i in 0..RUNS {
            times.push(deploy_once(&core, format!("2.0.{i}")).await);
            resident.push(rss_kib());
        }
        println!(
            "FIGURES {} {} {} {}",
            idle as f64 * 1024.0 / nodes as f64,
            median(times).as_nanos(),
            resident[0],
            resident[RUNS - 1]
        );
    });
    std::process::exit(0);
}

fn run_child(profile: Profile, nodes: usize, threads: usize) -> Option<Figures> {
    let exe = std::env::current_exe().expect("the bench's own path");
    let out = Command::new(exe)
        .args(["scaling-child", profile.name(), &nodes.to_string(), &threads.to_string()])
        .output()
        .expect("the bench starts itself");
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find_map(|l| l.strip_prefix("FIGURES ")) else {
        eprintln!(
            "{} nodes, {} profile, {threads} thread(s) failed:\n{text}{}",
            nodes,
            profile.name(),
            String::from_utf8_lossy(&out.stderr).lines().rev().take(20).collect::<Vec<_>>().join("\n")
        );
        return None;
    };
    let v: Vec<f64> = line.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    Some(Figures {
        idle_bytes_per_node: v[0],
        median_run: Duration::from_nanos(v[1] as u64),
        rss_after_first_kib: v[2] as u64,
        rss_after_last_kib: v[3] as u64,
    })
}

pub fn main(max: usize) {
    let sizes: Vec<usize> = [10_000, 100_000].into_iter().filter(|n| *n <= max).collect();
    println!("deployment_fanout scaling: Direct runs, median of {RUNS} consecutive runs, one process per line");
    println!(
        "{:>8} {:>12} {:>8} {:>12} {:>14} {:>14} {:>14} {:>9}",
        "nodes", "profile", "threads", "median run", "idle B/node", "RSS run 1", "RSS run 10", "speed-up"
    );
    for n in sizes {
        for profile in [Profile::Development, Profile::Test] {
            let mut one_thread: Option<Duration> = None;
            for threads in [1, 2] {
                let Some(f) = run_child(profile, n, threads) else { continue };
                let speedup = match (threads, one_thread) {
                    (1, _) => {
                        one_thread = Some(f.median_run);
                        "-".to_string()
                    }
                    (_, Some(base)) => format!("{:.2}x", base.as_secs_f64() / f.median_run.as_secs_f64()),
                    _ => "?".to_string(),
                };
                println!(
                    "{n:>8} {:>12} {threads:>8} {:>10.1}ms {:>14.0} {:>10.1} MiB {:>10.1} MiB {speedup:>9}",
                    profile.name(),
                    f.median_run.as_secs_f64() * 1e3,
                    f.idle_bytes_per_node,
                    f.rss_after_first_kib as f64 / 1024.0,
                    f.rss_after_last_kib as f64 / 1024.0,
                );
            }
        }
    }
}
