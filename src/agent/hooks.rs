//! Runs a module's hooks: `/bin/sh -c COMMAND` with a timeout, the step's facts
//! in its environment, and the last lines of its output kept for the stage
//! message when it fails.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde::Deserialize;

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

/// Runs the hook; no command is success. Answers its stdout.
pub async fn run(call: HookCall<'_>, timeout: Duration) -> Result<String, String> {
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
        // A hook past its timeout is killed when its future is dropped.
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{} hook could not start: {e}", call.hook))?;
    let output = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => return Err(format!("{} hook failed: {e}", call.hook)),
        Err(_) => {
            return Err(format!("{} hook of {} {} timed out after {timeout:?}", call.hook, call.module, call.version))
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

/// The figures a health hook printed, if it printed JSON.
pub fn health_output(stdout: &str) -> HealthOutput {
    serde_json::from_str(stdout.trim()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(run(call, Duration::from_secs(30)).await.unwrap(), "/bin/sh");
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
        let error = run(call, Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(error, "activate hook of kmod-test 1.0.0 exited with 3: one | two");
    }
}
