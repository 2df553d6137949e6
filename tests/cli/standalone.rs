//! The binary copied alone: run from a directory without `config/` and
//! without HOTSWAP_CONFIG_DIR, it starts from the profiles built into it,
//! and the operator's offline verbs need no server settings at all.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::free_port;
use crate::support::poll::eventually;

/// `hotswap` in an empty directory, with no config directory to find.
fn hotswap_alone(dir: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hotswap"));
    command.current_dir(dir).env_remove("HOTSWAP_CONFIG_DIR").stdin(Stdio::null());
    command
}

#[actix_web::test]
async fn serve_starts_from_the_built_in_profiles() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let log_path = dir.path().join("server.log");
    let mut server = hotswap_alone(dir.path())
        .arg("serve")
        .env("HOTSWAP_ENV", "test")
        .env("HOTSWAP__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("HOTSWAP__LOGGING__FORMAT", "pretty")
        .stdout(std::fs::File::create(&log_path).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let client = awc::Client::default();
    let ready = format!("http://127.0.0.1:{port}/health/ready");
    eventually(Duration::from_secs(60), "the server answers /health/ready", async || {
        client.get(&ready).send().await.is_ok_and(|r| r.status().is_success())
    })
    .await;
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
