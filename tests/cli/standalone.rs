//! The binary copied alone: run from a directory without `config/` and
//! without HOTSWAP_CONFIG_DIR, it starts from the profiles built into it,
//! and the operator's offline verbs need no server settings at all.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::free_port;
use crate::support::poll::eventually;

/// `hotswap` in an empty directory, with no config directory to find.
fn hotswap_alone(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotswap"));
    command.current_dir(dir).env_remove("HOTSWAP_CONFIG_DIR").stdin(Stdio::null());
    command
}

/// `hotswap serve` alone in `dir` with the test profile and `settings`, its
/// stdout in `dir/server.log`, once it answers `/health/ready`: the process,
/// its base URL and the log's path.
async fn serve_alone(dir: &std::path::Path, settings: &[(&str, &str)]) -> (Child, String, PathBuf) {
    let port = free_port();
    let log_path = dir.join("server.log");
    let server = hotswap_alone(dir)
        .arg("serve")
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .envs(settings.iter().copied())
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    eventually(Duration::from_secs(60), "the server answers /health/ready", async || {
        client.get(format!("{base}/health/ready")).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
    (server, base, log_path)
}

#[actix_web::test]
async fn serve_starts_from_the_built_in_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _, log_path) = serve_alone(dir.path(), &[("HOTSWAP__LOGGING__FORMAT", "pretty")]).await;
    // The test profile's own setting, not only the defaults: its simulated
    // development cluster is the test profile's size.
    let settings = hotswap_alone(dir.path()).arg("config").env("HOTSWAP_ENV", "test").output().unwrap();
    let _ = server.kill();
    let _ = server.wait();
    assert!(settings.status.success(), "{}", String::from_utf8_lossy(&settings.stderr));
    let printed = String::from_utf8_lossy(&settings.stdout);
    assert!(printed.contains("profile: \"test\""), "{printed}");
    let test_profile = hotswap::config::Settings::load_from(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config"),
        "test",
        Vec::new(),
    )
    .unwrap();
    assert_eq!(printed.trim(), format!("{test_profile:#?}").trim());
    // A log written to a file carries no terminal colour codes.
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("insecure_dev_mode"), "the start-up warning is logged: {log}");
    assert!(!log.contains('\u{1b}'), "escape codes in a log file: {log:?}");
}

#[test]
fn an_explicit_config_dir_without_defaults_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = hotswap_alone(dir.path()).arg("config").env("HOTSWAP_CONFIG_DIR", dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("default.toml not found"));
}

/// The process's CPU time so far (user and system), from /proc/PID/stat.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux the project runs on.
    Duration::from_millis(ticks * 10)
}

/// recovery.reconcile_interval = "0s" turns the reconciler off; the batch
/// runner, ticking on the same interval, used to loop without a wait and
/// keep an idle server at about 80 % of a core.
#[actix_web::test]
async fn a_zero_reconcile_interval_leaves_an_idle_server_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, _, log_path) = serve_alone(dir.path(), &[("HOTSWAP__RECOVERY__RECONCILE_INTERVAL", "0s")]).await;
    let before = cpu_time(server.id());
    // A measurement over a wall-clock window, not a wait for something to happen.
    let window = Duration::from_secs(2);
    actix_web::rt::time::sleep(window).await;
    let used = cpu_time(server.id()) - before;
    let _ = server.kill();
    let _ = server.wait();
    assert!(used < window / 4, "an idle server used {used:?} of CPU in {window:?}");
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("reconcile_interval = 0s"), "the start says what is off: {log}");
}

/// `hotswap config | head -2`: the reader goes away before the settings are
/// written. The command used to panic (exit 101); it ends as the client verbs
/// do, with 141 and nothing on stderr.
#[test]
fn config_to_a_closed_pipe_exits_141_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before the command starts, so that its first write always fails.
    drop(reader);
    let output = hotswap_alone(dir.path())
        .arg("config")
        .env("HOTSWAP_ENV", "test")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(output.status.code(), Some(141), "{stderr}");
}

#[test]
fn keygen_needs_no_server_settings() {
    let dir = tempfile::tempdir().unwrap();
    // A profile that would not load (production without its database or
    // secret) does not stop an offline verb.
    let output = hotswap_alone(dir.path())
        .args(["keygen", "--out", "signing.pem"])
        .env("HOTSWAP_ENV", "production")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let public = std::fs::read_to_string(dir.path().join("signing.pem.pub")).unwrap();
    assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"), "{public}");
}

/// A JSON log line names each span once: the list of spans ends with the
/// current one, so the current span is not written a second time.
#[actix_web::test]
async fn json_log_lines_name_each_span_once() {
    let dir = tempfile::tempdir().unwrap();
    // Request spans are info spans: a coarser level leaves them out.
    let settings = [("HOTSWAP__LOGGING__FORMAT", "json"), ("HOTSWAP__LOGGING__LEVEL", "info")];
    let (mut server, base, log_path) = serve_alone(dir.path(), &settings).await;
    let client = awc::Client::default();
    // A refused login is logged as a warning inside the request's span.
    let refused = client
        .post(format!("{base}/api/v1/authentication/login"))
        .send_json(&serde_json::json!({ "username": "nobody-here", "password": "not the password" }))
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 401);
    let line = eventually_line(&log_path, "Invalid username or password").await;
    let _ = server.kill();
    let _ = server.wait();
    let entry: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert!(entry.get("span").is_none(), "the current span is written once, in the list: {line}");
    let spans = entry["spans"].as_array().unwrap_or_else(|| panic!("the line has its spans: {line}"));
    assert_eq!(spans.last().unwrap()["name"], "HTTP request", "{line}");
    assert_eq!(line.matches("\"request_id\"").count(), 1, "{line}");
}

/// The first line of the log at `path` that contains `text`, once written.
async fn eventually_line(path: &std::path::Path, text: &str) -> String {
    let mut found = String::new();
    eventually(Duration::from_secs(10), &format!("a log line with {text}"), async || {
        let log = std::fs::read_to_string(path).unwrap_or_default();
        match log.lines().find(|l| l.contains(text)) {
            Some(line) => {
                found = line.to_string();
                true
            }
            None => false,
        }
    })
    .await;
    found
}

/// The client options (`--server`, `-o`, `--no-color`, `--tenant`, `--ca`) are
/// not shown by the verbs that ignore them, and giving one to such a verb is
/// refused instead of silently ignored.
#[test]
fn server_and_offline_verbs_refuse_the_client_options_they_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let output = hotswap_alone(dir.path()).args(args).output().unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    for verb in [&["keygen", "--help"][..], &["serve", "--help"], &["module", "sign", "--help"]] {
        let text = help(verb);
        assert!(
            !text.contains("--server") && !text.contains("--tenant") && !text.contains("--output"),
            "{verb:?}: {text}"
        );
    }
    // A verb that uses them still shows them.
    assert!(help(&["module", "push", "--help"]).contains("--server <URL>"));
    assert!(help(&["runs", "--help"]).contains("--output"));

    let output = hotswap_alone(dir.path())
        .args(["keygen", "--out", "k.pem", "--tenant", "nosuch", "--server", "http://nowhere.invalid"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("`hotswap keygen` does not use --"), "{stderr}");
    assert!(!dir.path().join("k.pem").exists(), "nothing was done");
}

#[test]
fn the_agent_keeps_its_own_server_and_ca_options() {
    let dir = tempfile::tempdir().unwrap();
    let output = hotswap_alone(dir.path())
        .args(["agent", "--server", "http://127.0.0.1:9", "--ca", "nosuch.pem", "--data-dir", "."])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("is an option of the client verbs"), "{stderr}");
}
