//! Exit codes that hold however the command ends: a missing input file, a
//! closed standard error, a watch the server refuses.

use crate::harness::{Operator, Server, DEPLOYER};

#[actix_web::test]
async fn a_missing_input_file_is_an_input_error_for_every_verb() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let key = path("team.pem");
    assert_eq!(op.run(&["keygen", "--out", &key]).await.code, 0);
    std::fs::write(path("netx.ko"), b"module").unwrap();
    std::fs::write(path("netx.json"), br#"{"name":"netx","version":"1.0.0"}"#).unwrap();
    let cases: [&[&str]; 5] = [
        &["module", "sign", "--key", &path("nosuch.pem"), "--descriptor", &path("netx.json"), &path("netx.ko")],
        &["module", "sign", "--key", &key, "--descriptor", &path("netx.json"), &path("nosuch.ko")],
        &["module", "push", "--descriptor", &path("netx.json"), &path("nosuch.ko")],
        &["module", "push", "--descriptor", &path("nosuch.json"), &path("netx.ko")],
        &["keygen", "--out", &path("no-dir/k.pem")],
    ];
    for args in cases {
        let run = op.run(args).await;
        assert_eq!(run.code, 2, "{args:?}: {run:?}");
        assert!(run.stderr.contains("nosuch") || run.stderr.contains("no-dir"), "{run:?}");
    }
}

/// A bearer token is never an argument (it would show in `ps` and the shell's
/// history): `module push` takes it from HOTSWAP_TOKEN or the saved login only.
#[test]
fn module_push_takes_no_token_argument() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["module", "push", "--descriptor", "d.json", "m.ko", "--token", "secret"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unexpected argument '--token'"));
}

/// `hotswap … 2>&1 | head -1`: the reader of standard error goes away. The
/// client used to panic writing its error (exit 101).
#[test]
fn an_error_written_to_a_closed_stderr_keeps_its_exit_code() {
    let home = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before the command starts, so that its first write always fails.
    drop(reader);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["status", "nosuch", "--server", "http://127.0.0.1:9"])
        .env("XDG_CONFIG_HOME", home.path())
        .env_remove("HOTSWAP_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(writer)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "not logged in: an input error, not a panic");
}

#[actix_web::test]
async fn a_watch_the_server_refuses_ends_at_once_with_its_reason() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let unknown = op.run(&["status", "nosuch", "--watch"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("'nosuch' is not a deployment id"), "{unknown:?}");
    assert!(!unknown.stderr.contains("trace id"), "{unknown:?}");

    // A token the server no longer accepts (revoked by a logout, as an expired one is refused).
    let started = op.run(&["deploy", "kmod-cli", "1.0.0", "--to", "Development"]).await;
    assert_eq!(started.code, 0, "{started:?}");
    let id = op.run(&["runs", "-o", "json"]).await.json()[0]["executionId"].as_str().unwrap().to_string();
    let file = op.home.path().join("hotswap").join("credentials.json");
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let token = saved["token"].as_str().unwrap().to_string();
    assert_eq!(op.run(&["logout"]).await.code, 0);
    let mut cmd = op.command(&["status", &id, "--watch"]);
    cmd.env("HOTSWAP_TOKEN", &token);
    let refused = op.run_cmd(cmd).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("refused the live connection") && refused.stderr.contains("401"), "{refused:?}");
    assert!(refused.stderr.contains("revoked"), "the server's reason: {refused:?}");
}
