//! Where one command's time went on the host: each phase (download, checks,
//! files, each hook, the link, the state file) is timed and the whole is
//! logged once the command is answered, under the target
//! `hotswap::agent::phases` (`RUST_LOG=hotswap::agent::phases=info` shows
//! them; `scripts/bench-agents.py` sums them over a run with `PHASES=1`).

use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Phases {
    started: Instant,
    last: Instant,
    spent: Vec<(&'static str, Duration)>,
}

impl Default for Phases {
    fn default() -> Self {
        let now = Instant::now();
        Phases { started: now, last: now, spent: Vec::new() }
    }
}

impl Phases {
    /// The phase `name` ends now; it began where the previous one ended.
    pub fn end(&mut self, name: &'static str) {
        let now = Instant::now();
        self.spent.push((name, now - self.last));
        self.last = now;
    }

    /// Logs every phase in milliseconds, and the whole command.
    pub fn log(&self, command: &str, module: &str, outcome: &Result<impl Sized, String>) {
        let phases: Vec<String> =
            self.spent.iter().map(|(name, took)| format!("{name}={:.2}", took.as_secs_f64() * 1000.0)).collect();
        tracing::info!(
            target: "hotswap::agent::phases",
            command,
            module,
            ok = outcome.is_ok(),
            total_ms = format_args!("{:.2}", self.started.elapsed().as_secs_f64() * 1000.0),
            phases = %phases.join(" "),
            "command timed"
        );
    }
}
