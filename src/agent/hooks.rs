//! Runs a module's hooks: `/bin/sh -c COMMAND` with a timeout, the step's facts
//! in its environment, and the last lines of its output kept for the stage
//! message when it fails.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

use super::running_hook::RunningHook;

/// Lines of a failing hook's output quoted in the error.
const QUOTED_LINES: usize = 5;

/// The shell that runs every hook, named by its full path as `system(3)`
/// does: a directory early in the agent's `PATH` cannot put another `sh`
/// in its place, and no `PATH` search precedes each hook (with a long
/// `PATH`, a dozen failed `execve` calls per hook).
const SHELL: &str = "/bin/sh";

/// What a hook is run for.
pub struct HookCall<'a> {
    /// activate, deactivate, health or prepare_standby.
    pub hook: &'static str,
    pub command: Option<&'a str>,
    pub module: &'a str,
    pub version: &'a str,
    pub node: &'a str,
    pub artifact: &'a Path,
}

/// What a health hook may print on stdout.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthOutput {
    pub error_rate: Option<f64>,
    pub latency_ms: Option<f64>,
}

/// Runs the hook; no command is success. Answers its stdout. The hook is
/// recorded in `running` while it runs, so that an agent started after this
/// one was killed ends it (see [`RunningHook`]).
pub async fn run(call: HookCall<'_>, timeout: Duration, running: &RunningHook) -> Result<String, String> {
    let Some(command) = call.command.filter(|c| !c.trim().is_empty()) else { return Ok(String::new()) };
    let child = tokio::process::Command::new(SHELL)
        .arg("-c")
        .arg(command)
        .env("HOTSWAP_HOOK", call.hook)
        .env("HOTSWAP_MODULE", call.module)
        .env("HOTSWAP_VERSION", call.version)
        .env("HOTSWAP_NODE", call.node)
        .env("HOTSWAP_ARTIFACT", call.artifact)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group: a hook past its timeout is ended with every
        // process it started, not only its shell (a subshell left running
        // would go on activating a version the agent has reported as failed).
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{} hook could not start: {e}", call.hook))?;
    let group = child.id();
    if let Some(group) = group {
        running.started(group);
    }
    let waited = tokio::time::timeout(timeout, child.wait_with_output()).await;
    if waited.is_err() {
        end_process_group(group);
    }
    running.ended();
    let output = match waited {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("{} hook failed: {e}", call.hook)),
        Err(_) => {
            return Err(format!("{} hook of {} {} timed out after {timeout:?}", call.hook, call.module, call.version));
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    let mut text = stdout;
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(QUOTED_LINES)..].join(" | ");
    let code = output.status.code().map(|c| c.to_string()).unwrap_or_else(|| "a signal".into());
    Err(format!("{} hook of {} {} exited with {code}: {tail}", call.hook, call.module, call.version))
}

/// Kills every process of a timed-out hook's group (the shell was killed
/// when its future was dropped; what it started was not).
fn end_process_group(group: Option<u32>) {
    #[cfg(target_os = "linux")]
    if let Some(pid) = group.and_then(|id| rustix::process::Pid::from_raw(id as i32)) {
        // The group may be gone already: nothing to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(not(target_os = "linux"))]
    let _ = group;
}

/// The figures a health hook printed, if it printed JSON.
pub fn health_output(stdout: &str) -> HealthOutput {
    serde_json::from_str(stdout.trim()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record in a directory that does not exist: not written, and not needed.
    fn nowhere() -> RunningHook {
        RunningHook::in_dir(Path::new("/nonexistent/agent-data"))
    }

    /// The hook's shell is the one at `/bin/sh`, started by that path: `$0`
    /// names the shell as it was started, so a shell found through `PATH`
    /// would say `sh`.
    #[actix_web::test]
    async fn hooks_run_in_the_shell_named_by_its_full_path() {
        let call = HookCall {
            hook: "health",
            command: Some(r#"printf '%s' "$0""#),
            module: "kmod-test",
            version: "1.0.0",
            node: "node-1",
            artifact: Path::new("/nonexistent/artifact"),
        };
        assert_eq!(run(call, Duration::from_secs(30), &nowhere()).await.unwrap(), "/bin/sh");
    }

    /// A hook past its timeout is ended with what it started: a background
    /// process of the hook's shell does not outlive the timeout.
    #[actix_web::test]
    async fn a_timed_out_hook_ends_with_every_process_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let call = HookCall {
            hook: "activate",
            command: Some(&command),
            module: "kmod-test",
            version: "2.0.0",
            node: "node-1",
            artifact: Path::new("/nonexistent/artifact"),
        };
        let error = run(call, Duration::from_millis(500), &RunningHook::in_dir(dir.path())).await.unwrap_err();
        assert!(error.contains("timed out after 500ms"), "{error}");
        assert!(!dir.path().join("running-hook.json").exists(), "an ended hook is no longer recorded");
        let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
        // Dead, or a zombie waiting for its new parent to reap it.
        let alive = || {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while alive() && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!alive(), "the hook's background sleep {pid} outlived its timeout");
    }

    /// A failing hook's error names the hook, its exit code and its last lines of output.
    #[actix_web::test]
    async fn a_failing_hook_reports_its_code_and_last_lines() {
        let call = HookCall {
            hook: "activate",
            command: Some("echo one; echo two >&2; exit 3"),
            module: "kmod-test",
            version: "1.0.0",
            node: "node-1",
            artifact: Path::new("/nonexistent/artifact"),
        };
        let error = run(call, Duration::from_secs(30), &nowhere()).await.unwrap_err();
        assert_eq!(error, "activate hook of kmod-test 1.0.0 exited with 3: one | two");
    }
}
