//! `cargo bench --bench deployment_fanout -- scaling [MAX]`: Direct runs to
//! 10,000 and 100,000 simulated nodes under the development profile's
//! timings and the test profile's (heartbeats every 200 ms, metrics sampled
//! every 100 ms), each with the node and coordinator actors on one thread and
//! on two (`[supervision] actor_threads`). Every configuration runs in a
//! process of its own (the bench starts itself again), so that one
//! configuration's actors neither share memory nor compete for the cores
//! with the next. Per configuration: resident bytes per idle node, the median
//! time of ten consecutive runs (`HOTSWAP_SCALING_RUNS`), and resident memory
//! at rest after the first run and after the last, read once the core's idle
//! release has followed the run's end (after every run with
//! `HOTSWAP_SCALING_TRACE=1`). After each pair of lines, a ceiling for the speed-up: two
//! one-thread processes at once, the most a second core gives this work on
//! this machine when nothing at all is shared.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use hotswap_actors::hooks::CoreHooks;
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::{NodeCounts, PipelineSettings, SimulationSettings};
use hotswap_actors::store::MemoryStore;
use hotswap_actors::Orchestrator;

use super::{deploy_once, median, rss_kib};

/// `HOTSWAP_SCALING_RELEASE=0`: the core's idle memory release does nothing,
/// as it does in a process without the server's allocator hook (to measure
/// what the release changes, in the same binary).
fn release_memory() -> bool {
    std::env::var("HOTSWAP_SCALING_RELEASE").map_or(true, |v| v != "0")
}

/// `HOTSWAP_SCALING_RUNS` (default 10, at least 2): consecutive runs per process.
fn runs() -> usize {
    std::env::var("HOTSWAP_SCALING_RUNS").ok().and_then(|r| r.parse().ok()).filter(|r| *r >= 2).unwrap_or(10)
}

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
    /// Resident memory after every run, in KiB.
    rss_after_each_kib: Vec<u64>,
}

impl Figures {
    fn rss_after_first_kib(&self) -> u64 {
        self.rss_after_each_kib.first().copied().unwrap_or_default()
    }

    fn rss_after_last_kib(&self) -> u64 {
        self.rss_after_each_kib.last().copied().unwrap_or_default()
    }
}

/// Runs one configuration in this process and prints its figures on one line.
pub fn child(profile: &str, nodes: usize, threads: usize) {
    let profile = Profile::parse(profile).expect("profile is development or test");
    System::new().block_on(async move {
        let before = rss_kib();
        // The server's hook (`hotswap serve` passes the same one).
        let hooks = if release_memory() {
            CoreHooks { memory_release: Arc::new(hotswap::allocator::MimallocRelease), ..CoreHooks::default() }
        } else {
            CoreHooks::default()
        };
        let core = Orchestrator::start_with(Arc::new(MemoryStore::new()), profile.settings(nodes, threads), hooks)
            .await
            .expect("core starts");
        // Idle: let the heartbeats and samples of the first seconds settle.
        actix::clock::sleep(Duration::from_secs(2)).await;
        let idle = rss_kib().saturating_sub(before);
        let mut times = Vec::new();
        let mut resident = Vec::new();
        for i in 0..runs() {
            // Polled for its end only from half the fastest run so far.
            let quiet_for = times.iter().min().map_or(Duration::ZERO, |fastest: &Duration| *fastest / 2);
            let releases = core.memory_releases();
            times.push(deploy_once(&core, format!("2.0.{i}"), quiet_for).await);
            // Resident memory at rest: once the core has made the release
            // pass that follows the run's end (it does, with or without the
            // hook, so both modes are read at the same moment).
            let waiting = std::time::Instant::now();
            while core.memory_releases() == releases {
                assert!(waiting.elapsed() < Duration::from_secs(10), "no idle release within 10 s of the run's end");
                actix::clock::sleep(Duration::from_millis(5)).await;
            }
            resident.push(rss_kib());
        }
        let each: Vec<String> = resident.iter().map(u64::to_string).collect();
        println!("FIGURES {} {} {}", idle as f64 * 1024.0 / nodes as f64, median(times).as_nanos(), each.join(" "));
    });
    std::process::exit(0);
}

/// Starts one configuration in a process of its own.
fn spawn_child(profile: Profile, nodes: usize, threads: usize) -> Child {
    let exe = std::env::current_exe().expect("the bench's own path");
    Command::new(exe)
        .args(["scaling-child", profile.name(), &nodes.to_string(), &threads.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the bench starts itself")
}

/// Waits for a child and reads its figures (`None`, with its output on
/// stderr, when it failed).
fn figures_of(child: Child, profile: Profile, nodes: usize, threads: usize) -> Option<Figures> {
    let out = child.wait_with_output().expect("the bench's child ends");
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
        rss_after_each_kib: v[2..].iter().map(|k| *k as u64).collect(),
    })
}

fn run_child(profile: Profile, nodes: usize, threads: usize) -> Option<Figures> {
    figures_of(spawn_child(profile, nodes, threads), profile, nodes, threads)
}

/// What this machine gives a second core when nothing is shared: two
/// one-thread processes at the same time, each doing the same runs as the
/// one-thread line. Runs per second of the pair over those of one process
/// alone (`one_alone`, measured just before) is the most any sharing of
/// work between two actor threads could reach here; it falls short of 2x
/// where the two cores compete for the shared cache, memory bandwidth or
/// the host's other guests.
fn two_processes_ceiling(profile: Profile, nodes: usize, one_alone: Duration) -> Option<f64> {
    let pair = [spawn_child(profile, nodes, 1), spawn_child(profile, nodes, 1)];
    let mut medians = Vec::new();
    for child in pair {
        medians.push(figures_of(child, profile, nodes, 1)?.median_run.as_secs_f64());
    }
    let runs_per_second_of_pair: f64 = medians.iter().map(|m| 1.0 / m).sum();
    Some(runs_per_second_of_pair * one_alone.as_secs_f64())
}

fn print_line(nodes: usize, profile: Profile, threads: usize, f: &Figures, speedup: Option<f64>) {
    let speedup = speedup.map_or_else(|| "-".to_string(), |s| format!("{s:.2}x"));
    println!(
        "{nodes:>8} {:>12} {threads:>8} {:>10.1}ms {:>14.0} {:>10.1} MiB {:>10.1} MiB {speedup:>9}",
        profile.name(),
        f.median_run.as_secs_f64() * 1e3,
        f.idle_bytes_per_node,
        f.rss_after_first_kib() as f64 / 1024.0,
        f.rss_after_last_kib() as f64 / 1024.0,
    );
    if std::env::var_os("HOTSWAP_SCALING_TRACE").is_some() {
        let each: Vec<String> = f.rss_after_each_kib.iter().map(|k| format!("{:.0}", *k as f64 / 1024.0)).collect();
        println!("{:>8} resident after each run (MiB): {}", "", each.join(", "));
    }
}

fn median_of(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// `HOTSWAP_SCALING_ROUNDS` (default 1): how many times each configuration's
/// one-thread, two-thread and ceiling processes run, in turn. On a machine
/// whose speed swings from minute to minute one round says little; the
/// median over rounds of the speed-up measured within each round says more.
fn rounds() -> usize {
    std::env::var("HOTSWAP_SCALING_ROUNDS").ok().and_then(|r| r.parse().ok()).filter(|r| *r > 0).unwrap_or(1)
}

pub fn main(max: usize) {
    let sizes: Vec<usize> = [10_000, 100_000].into_iter().filter(|n| *n <= max).collect();
    let rounds = rounds();
    println!(
        "deployment_fanout scaling: Direct runs, median of {} consecutive runs, one process per line, {rounds} round(s)",
        runs()
    );
    println!(
        "{:>8} {:>12} {:>8} {:>12} {:>14} {:>14} {:>14} {:>9}",
        "nodes",
        "profile",
        "threads",
        "median run",
        "idle B/node",
        "RSS run 1",
        format!("RSS run {}", runs()),
        "speed-up"
    );
    for n in sizes {
        for profile in [Profile::Development, Profile::Test] {
            let (mut speedups, mut ceilings) = (Vec::new(), Vec::new());
            for _ in 0..rounds {
                let Some(one) = run_child(profile, n, 1) else { continue };
                print_line(n, profile, 1, &one, None);
                let Some(two) = run_child(profile, n, 2) else { continue };
                let speedup = one.median_run.as_secs_f64() / two.median_run.as_secs_f64();
                speedups.push(speedup);
                print_line(n, profile, 2, &two, Some(speedup));
                if let Some(ceiling) = two_processes_ceiling(profile, n, one.median_run) {
                    ceilings.push(ceiling);
                    println!(
                        "{n:>8} {:>12} {:>8} two one-thread processes at once: {ceiling:.2}x the runs of one \
                         (the speed-up is {:.0} % of it)",
                        profile.name(),
                        "ceiling",
                        100.0 * speedup / ceiling
                    );
                }
            }
            if rounds > 1 {
                let list = |v: &[f64]| v.iter().map(|x| format!("{x:.2}")).collect::<Vec<_>>().join(", ");
                println!(
                    "{n:>8} {:>12} {:>8} speed-up: median {:.2}x of {}; ceiling: median {:.2}x of {}",
                    profile.name(),
                    "rounds",
                    median_of(speedups.clone()).unwrap_or(f64::NAN),
                    list(&speedups),
                    median_of(ceilings.clone()).unwrap_or(f64::NAN),
                    list(&ceilings)
                );
            }
        }
    }
}
