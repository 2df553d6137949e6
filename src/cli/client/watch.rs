//! Following a run live: the events of /api/v1/ws drive the display, and
//! each event that changes the run's state is followed by one read of the
//! run, so what is shown is the server's own record (nothing is polled on a
//! timer). On a terminal: a progress bar for the stage in progress, a bar per
//! finished wave and a countdown of the current wait; elsewhere: plain lines.
//! Ctrl-C stops watching; the run goes on. The connection itself: `live_socket`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::api::Api;
pub use super::live_socket::Live;
use super::output::{counted, human, say, Out};
use super::wave_nodes::WaveNodes;
use super::{run_exit, Exit, Failure};

/// How long a watch keeps trying to reach the server again once it lost it:
/// long enough for a restart, or for another instance to take the run over.
const RECONNECT_FOR: Duration = Duration::from_secs(120);

/// The longest pause between two tries.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(5);

/// Follows run `id` to its end (or to its approval gate with
/// `until_approval`) and answers the exit code its outcome means. `live`,
/// when given, was subscribed before the run was created: every event of the
/// run is in it, so the display is drawn from the events alone.
pub async fn follow(api: &Api, out: Out, id: &str, live: Option<Live>, until_approval: bool) -> Result<Exit, Failure> {
    let from_start = live.is_some();
    let mut live = match live {
        Some(live) => live,
        None => {
            let mut live = Live::connect(api).await?;
            live.subscribe(Some(id)).await?;
            live
        }
    };
    let sizes = cluster_sizes(api).await;
    let mut view = View::new(out, id, sizes);
    let run = read_run(api, id).await?;
    view.learn(&run);
    if !from_start {
        // Catch up with what happened before this watch began.
        if let Some(exit) = view.sync(&run, until_approval) {
            return Ok(view.finish(exit, &run));
        }
    }
    let mut ticker = actix_web::rt::time::interval(Duration::from_millis(250));
    // One listener for the whole watch: a Ctrl-C that comes while a read of
    // the run is in flight is kept for the next turn, not lost.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let next = tokio::select! {
            m = live.next() => m,
            _ = &mut ctrl_c => {
                view.interrupted();
                return Ok(Exit::Interrupted);
            }
            _ = ticker.tick() => { view.tick(); continue; }
        };
        let step = match next {
            Ok(Some(message)) => handle(api, &mut view, id, &message, until_approval).await,
            // A server that stops (a restart, a crash) ends the socket either way.
            Ok(None) | Err(_) => Err(Failure::general("the live connection was lost")),
        };
        match step {
            Ok(Some(exit)) => return Ok(exit),
            Ok(None) => {}
            // A refusal (4xx: the token expired, the run is not there) is final.
            Err(refused) if refused.exit == Exit::Usage => return Err(refused),
            // The server is gone for now: the run goes on without it.
            Err(_) => {
                let (again, run) = tokio::select! {
                    reopened = reconnect(api, id, &view) => reopened?,
                    _ = &mut ctrl_c => {
                        view.interrupted();
                        return Ok(Exit::Interrupted);
                    }
                };
                live = again;
                // Catch up on what happened while disconnected.
                if let Some(exit) = view.sync(&run, until_approval) {
                    return Ok(view.finish(exit, &run));
                }
            }
        }
    }
}

/// Opens the live connection again and reads the run, with back-off, while
/// the server cannot be reached or answers 5xx; gives up after
/// [`RECONNECT_FOR`], or at once on a refusal (4xx).
async fn reconnect(api: &Api, id: &str, view: &View) -> Result<(Live, Value), Failure> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(250);
    let mut attempt = 0;
    loop {
        attempt += 1;
        view.note(&format!(
            "live connection lost; reconnecting (try {attempt}, for up to {}s)",
            RECONNECT_FOR.as_secs()
        ));
        actix_web::rt::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        let reopened = async {
            let mut live = Live::connect(api).await?;
            live.subscribe(Some(id)).await?;
            let run = read_run(api, id).await?;
            Ok::<_, Failure>((live, run))
        };
        match reopened.await {
            Ok(reopened) => return Ok(reopened),
            Err(refused) if refused.exit == Exit::Usage => return Err(refused),
            Err(e) if started.elapsed() >= RECONNECT_FOR => {
                return Err(e.context(&format!(
                    "stopped watching after {}s without the server (the run goes on; `hotswap status {id} --watch` follows it again)",
                    RECONNECT_FOR.as_secs()
                )))
            }
            Err(_) => {}
        }
    }
}

/// Shows what `message` says about run `id`; answers the exit code once the
/// run has ended (or reached its approval gate with `until_approval`).
async fn handle(
    api: &Api,
    view: &mut View,
    id: &str,
    message: &Value,
    until_approval: bool,
) -> Result<Option<Exit>, Failure> {
    if message["executionId"].as_str() != Some(id) {
        return Ok(None);
    }
    if view.out.json() {
        say!("{message}");
    }
    let data = &message["data"];
    match message["type"].as_str().unwrap_or_default() {
        "NodeUpdated" => view.wave(data),
        "StageStarted" => view.stage_event_started(data["stage"].as_str().unwrap_or_default()),
        "StageCompleted" => {
            // The event names the outcome; the stored stage has its own
            // message (the event's is a summary) and its node counts.
            let run = read_run(api, id).await?;
            let name = data["stage"].as_str().unwrap_or_default();
            let stored = run["stages"].as_array().into_iter().flatten().find(|s| s["name"] == name);
            let mut stage = stored.cloned().unwrap_or_else(|| data.clone());
            stage["status"] = data["status"].clone();
            view.stage_event_completed(&stage);
        }
        // A smoke test that waits says for which nodes and why.
        "SmokeTestWaiting" => view.line(&format!("  {}", data["message"].as_str().unwrap_or_default())),
        "DeploymentProgress" => {
            let run = read_run(api, id).await?;
            view.wait_after_wave(&run["currentWait"], data["environment"].as_str().unwrap_or_default());
        }
        "ApprovalRequested" | "ApprovalDecided" => {
            let run = read_run(api, id).await?;
            view.show_wait(&run["currentWait"]);
        }
        "DeploymentStatusChanged" => {
            let status = data["status"].as_str().unwrap_or_default();
            let ends = !matches!(status, "Running" | "Paused" | "PendingApproval")
                || (status == "PendingApproval" && until_approval);
            let run = read_run(api, id).await?;
            if ends {
                // The run as stored: stages never reached show as Skipped.
                let exit = view.sync(&run, until_approval).unwrap_or_else(|| run_exit(&run));
                return Ok(Some(view.finish(exit, &run)));
            }
            view.run_status(status);
        }
        _ => {}
    }
    Ok(None)
}

async fn read_run(api: &Api, id: &str) -> Result<Value, Failure> {
    api.get(&format!("/api/v1/deployments/{id}")).await
}

/// Node counts per environment, for the stage bars; empty when unreadable.
async fn cluster_sizes(api: &Api) -> BTreeMap<String, u64> {
    let Ok(clusters) = api.get("/api/v1/clusters").await else {
        return BTreeMap::new();
    };
    clusters
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| Some((c["environment"].as_str()?.to_string(), c["totalNodes"].as_u64()?)))
        .collect()
}

fn until(wait: &Value) -> Option<DateTime<Utc>> {
    wait["until"].as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()).map(|t| t.with_timezone(&Utc))
}

/// When a wait ends, as the log lines' clock shows it: with the date when
/// that is another day (an approval waits a day: "until 00:42:50" read as
/// the past).
fn deadline(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M:%S UTC").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    }
}

fn wait_name(kind: &str) -> &str {
    match kind {
        "HealthCheckDelay" => "health-check delay",
        "CanaryBake" => "canary bake",
        "SmokeTest" => "smoke test (deadline)",
        "Approval" => "approval",
        other => other,
    }
}

/// A finished bar drawn as text, for lines that stay on the screen.
fn static_bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 { width } else { (done as usize * width).div_ceil(total as usize).min(width) };
    format!("[{}{}]", "█".repeat(filled), "░".repeat(width - filled))
}

struct View {
    out: Out,
    id: String,
    sizes: BTreeMap<String, u64>,
    /// The status each stage was last shown with.
    shown: BTreeMap<String, String>,
    run_status: String,
    /// Waves seen per environment.
    waves: BTreeMap<String, u64>,
    strategies: BTreeMap<String, String>,
    /// Each stage as the run listed it: environment and strategy.
    stages: BTreeMap<String, Value>,
    wait: Option<(String, DateTime<Utc>, String)>,
    multi: Option<MultiProgress>,
    stage_bar: Option<(String, ProgressBar)>,
    wait_bar: Option<ProgressBar>,
}

impl View {
    fn new(out: Out, id: &str, sizes: BTreeMap<String, u64>) -> View {
        // JSON output prints the events themselves; plain lines would spoil it.
        let multi =
            (out.interactive && !out.json()).then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stdout()));
        View {
            out,
            id: id.to_string(),
            sizes,
            shown: BTreeMap::new(),
            run_status: String::new(),
            waves: BTreeMap::new(),
            strategies: BTreeMap::new(),
            stages: BTreeMap::new(),
            wait: None,
            multi,
            stage_bar: None,
            wait_bar: None,
        }
    }

    /// A line that stays: above the bars on a terminal, else with a timestamp.
    fn line(&self, text: &str) {
        if self.out.json() {
            return;
        }
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(text);
            }
            None => say!("{} {text}", Utc::now().format("%H:%M:%S%.3fZ")),
        }
    }

    fn note(&self, text: &str) {
        self.line(&self.out.dim(text));
    }

    fn stage_started(&mut self, stage: &Value) {
        let name = stage["name"].as_str().unwrap_or_default().to_string();
        let env = stage["environment"].as_str().map(str::to_string);
        let strategy = stage["strategy"].as_str().map(str::to_string);
        let size = env.as_ref().and_then(|e| self.sizes.get(e)).copied();
        let mut header = format!("▶ {}", self.out.bold(&name));
        if let Some(strategy) = &strategy {
            header.push_str(&format!(" · {strategy}"));
        }
        if let Some(n) = size {
            header.push_str(&format!(" · {}", counted(n, "node")));
        }
        self.line(&header);
        if let (Some(env), Some(strategy)) = (&env, &strategy) {
            self.strategies.insert(env.clone(), strategy.clone());
        }
        if let (Some(multi), Some(n)) = (&self.multi, size) {
            let bar = multi.add(ProgressBar::new(n));
            bar.set_style(
                ProgressStyle::with_template("  {prefix} [{bar:30}] {pos}/{len} nodes {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("█▉░"),
            );
            bar.set_prefix(name.clone());
            if let Some((_, old)) = self.stage_bar.replace((name, bar)) {
                old.finish_and_clear();
            }
        }
    }

    /// Remembers the run's stages (names, environments, strategies).
    fn learn(&mut self, run: &Value) {
        for stage in run["stages"].as_array().into_iter().flatten() {
            if let Some(name) = stage["name"].as_str() {
                self.stages.insert(name.to_string(), stage.clone());
            }
            if let (Some(env), Some(strategy)) = (stage["environment"].as_str(), stage["strategy"].as_str()) {
                self.strategies.insert(env.to_string(), strategy.to_string());
            }
        }
    }

    fn stage_event_started(&mut self, name: &str) {
        if self.shown.get(name).is_some_and(|s| s != "Pending") {
            return;
        }
        let stage = self.stages.get(name).cloned().unwrap_or_else(|| json!({ "name": name }));
        self.stage_started(&stage);
        self.shown.insert(name.to_string(), "Running".into());
    }

    /// A completed stage: `{name, status, message, nodesDeployed?, nodesFailed?}`.
    fn stage_event_completed(&mut self, data: &Value) {
        let name = data["name"].as_str().or(data["stage"].as_str()).unwrap_or_default().to_string();
        let status = data["status"].as_str().unwrap_or_default().to_string();
        if self.shown.get(&name) == Some(&status) {
            return;
        }
        self.stage_event_started(&name);
        self.stage_ended(&name, &status, data);
        self.shown.insert(name, status);
    }

    fn run_status(&mut self, status: &str) {
        if status != self.run_status {
            if status == "Paused" || (self.run_status == "Paused" && status == "Running") {
                self.line(&format!("run {}", self.out.status(status)));
            }
            self.run_status = status.to_string();
        }
    }

    /// A `NodeUpdated` event: one wave (or blue-green phase) of one environment.
    fn wave(&mut self, data: &Value) {
        let env = data["environment"].as_str().unwrap_or_default().to_string();
        let stage_name = format!("Deploy to {env}");
        // The wave's event can outrun the stage's start on the wire.
        self.stage_event_started(&stage_name);
        // A wave means the previous wait is over.
        self.end_wait();
        let action = data["action"].as_str().unwrap_or("Updated");
        let WaveNodes { total, ok, hosts, failed } = WaveNodes::of(data);
        let label = if action == "Updated" {
            let n = self.waves.entry(env.clone()).or_insert(0);
            // The server numbers the wave; a server without that field is
            // counted here (right only if this watch saw every wave).
            *n = data["wave"].as_u64().map_or(*n + 1, |w| w + 1);
            match self.strategies.get(&env).map(String::as_str) {
                Some("Rolling") => format!("batch {n}"),
                Some("Canary") => format!("step {n}"),
                _ => "all nodes".to_string(),
            }
        } else {
            match action {
                "StandbyLoaded" => "standby loaded".to_string(),
                "Switched" => "switched".to_string(),
                "Restored" => "restored".to_string(),
                other => other.to_lowercase(),
            }
        };
        let mut text = format!(
            "  {env} {label} {} {ok}/{} {}",
            static_bar(ok, total, 20),
            counted(total, "node"),
            self.out.dim(&hosts)
        );
        if !failed.is_empty() {
            text.push_str(&format!(" {} {}", self.out.status("Failed"), failed.join("; ")));
        }
        self.line(&text);
        if action == "Updated" || action == "Switched" {
            if let Some((name, bar)) = &self.stage_bar {
                if *name == stage_name {
                    bar.inc(ok);
                }
            }
        }
    }

    /// Shows what changed since the last read of the run. Answers the exit
    /// code once the watch is over.
    fn sync(&mut self, run: &Value, until_approval: bool) -> Option<Exit> {
        for stage in run["stages"].as_array().into_iter().flatten() {
            let name = stage["name"].as_str().unwrap_or_default().to_string();
            let status = stage["status"].as_str().unwrap_or_default().to_string();
            if let (Some(env), Some(strategy)) = (stage["environment"].as_str(), stage["strategy"].as_str()) {
                self.strategies.insert(env.to_string(), strategy.to_string());
            }
            let before = self.shown.get(&name).cloned().unwrap_or_else(|| "Pending".into());
            if before == status {
                if status == "Running" {
                    self.stage_progress(&name, stage);
                }
                continue;
            }
            if before == "Pending" && status != "Skipped" {
                self.stage_started(stage);
            }
            match status.as_str() {
                "Running" => self.stage_progress(&name, stage),
                "Pending" => {}
                "WaitingForApproval" => self.line(&format!(
                    "  {} {}",
                    self.out.status("WaitingForApproval"),
                    self.out.dim(stage["message"].as_str().unwrap_or_default())
                )),
                ended => self.stage_ended(&name, ended, stage),
            }
            self.shown.insert(name, status);
        }
        self.show_wait(&run["currentWait"]);
        let status = run["status"].as_str().unwrap_or_default().to_string();
        self.run_status(&status);
        match status.as_str() {
            "Running" | "Paused" => None,
            "PendingApproval" if !until_approval => None,
            _ => Some(run_exit(run)),
        }
    }

    fn stage_progress(&self, name: &str, stage: &Value) {
        if let (Some((bar_name, bar)), Some(done)) = (&self.stage_bar, stage["nodesDeployed"].as_u64()) {
            if bar_name == name && done > bar.position() {
                bar.set_position(done);
            }
        }
    }

    fn end_wait(&mut self) {
        if let Some(bar) = self.wait_bar.take() {
            bar.finish_and_clear();
        }
        self.wait = None;
    }

    fn stage_ended(&mut self, name: &str, status: &str, stage: &Value) {
        self.end_wait();
        if let Some((bar_name, bar)) = &self.stage_bar {
            if bar_name == name {
                bar.finish_and_clear();
                self.stage_bar = None;
            }
        }
        let mark = match status {
            "Succeeded" => "✔",
            "Skipped" => "–",
            "RolledBack" => "↺",
            _ => "✘",
        };
        let message = stage["message"].as_str().unwrap_or_default();
        let counts = match (stage["nodesDeployed"].as_u64(), stage["nodesFailed"].as_u64()) {
            (Some(d), Some(f)) if f > 0 => format!(" ({d} deployed, {f} failed)"),
            _ => String::new(),
        };
        if status == "Skipped" {
            self.line(&self.out.dim(&format!("{mark} {name}: Skipped")));
        } else {
            self.line(&format!("{mark} {name}: {}{counts} {}", self.out.status(status), self.out.dim(message)));
        }
    }

    /// The wait armed after the wave just shown, if the run (read after the
    /// event) is still in it; a read that is already past it shows nothing.
    fn wait_after_wave(&mut self, wait: &Value, env: &str) {
        let seen = self.waves.get(env).copied().unwrap_or(0);
        // A wait of the whole environment (a blue-green smoke test) follows
        // its standby; one after a wave, that wave.
        let same_wave =
            wait["environment"] == env && wait["wave"].as_u64().map(|w| w + 1).is_none_or(|after| after == seen);
        if same_wave {
            self.show_wait(wait);
        }
    }

    fn show_wait(&mut self, wait: &Value) {
        let next = until(wait).map(|t| {
            let kind = wait["kind"].as_str().unwrap_or_default().to_string();
            let what = match (wait["environment"].as_str(), wait["wave"].as_u64()) {
                (Some(env), Some(w)) => {
                    let unit =
                        if self.strategies.get(env).map(String::as_str) == Some("Canary") { "step" } else { "batch" };
                    format!("{} after {env} {unit} {}", wait_name(&kind), w + 1)
                }
                (Some(env), None) => format!("{} in {env}", wait_name(&kind)),
                _ => wait_name(&kind).to_string(),
            };
            (kind, t, what)
        });
        if next.as_ref().map(|(k, t, _)| (k, t)) == self.wait.as_ref().map(|(k, t, _)| (k, t)) {
            return;
        }
        if let Some(bar) = self.wait_bar.take() {
            bar.finish_and_clear();
        }
        self.wait = next;
        let Some((_, t, what)) = &self.wait else { return };
        let left = *t - Utc::now();
        match &self.multi {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("  {spinner} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_message(format!("{what}: {} left", human(left)));
                self.wait_bar = Some(bar);
            }
            None => self.line(&format!("  waiting: {what}, {} (until {})", human(left), deadline(*t, Utc::now()))),
        }
    }

    /// Redraws the countdown; nothing is asked of the server.
    fn tick(&self) {
        if let (Some(bar), Some((_, t, what))) = (&self.wait_bar, &self.wait) {
            bar.set_message(format!("{what}: {} left", human(*t - Utc::now())));
            bar.tick();
        }
    }

    fn clear_bars(&mut self) {
        if let Some(bar) = self.wait_bar.take() {
            bar.finish_and_clear();
        }
        if let Some((_, bar)) = self.stage_bar.take() {
            bar.finish_and_clear();
        }
    }

    fn finish(&mut self, exit: Exit, run: &Value) -> Exit {
        self.clear_bars();
        if self.out.json() {
            say!("{}", json!({ "type": "Result", "executionId": self.id, "exitCode": exit.code(), "run": run }));
            return exit;
        }
        let status = run["status"].as_str().unwrap_or_default();
        let message = run["message"].as_str().unwrap_or_default();
        let duration = super::output::span(&run["duration"]);
        self.line(&format!(
            "{} {} {} in {duration}{}",
            self.out.bold("run"),
            self.id,
            self.out.status(status),
            if message.is_empty() { String::new() } else { format!(": {message}") }
        ));
        if exit == Exit::AwaitingApproval {
            self.line(&format!(
                "waiting for approval: an Admin runs `hotswap approve {}`; follow it with `hotswap status {} --watch`",
                self.id, self.id
            ));
        }
        exit
    }

    fn interrupted(&mut self) {
        self.clear_bars();
        let text =
            format!("stopped watching; the run goes on (follow it again with `hotswap status {} --watch`)", self.id);
        if self.out.json() {
            say!("{}", json!({ "type": "Interrupted", "executionId": self.id }));
        } else {
            self.line(&text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_times_read_naturally() {
        assert_eq!(human(chrono::Duration::milliseconds(400)), "0.4s");
        assert_eq!(human(chrono::Duration::seconds(42)), "42s");
        assert_eq!(human(chrono::Duration::seconds(7800)), "2h 10m");
        assert_eq!(human(chrono::Duration::seconds(-3)), "0.0s");
    }

    #[test]
    fn a_deadline_on_another_day_has_its_date() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T00:42:50Z").unwrap().with_timezone(&Utc);
        assert_eq!(deadline(now + chrono::Duration::seconds(90), now), "00:44:20 UTC");
        assert_eq!(deadline(now + chrono::Duration::hours(24), now), "2026-12-08 00:42:50 UTC");
    }

    #[test]
    fn bars() {
        assert_eq!(static_bar(1, 2, 4), "[██░░]");
        assert_eq!(static_bar(0, 0, 2), "[██]");
    }
}
