//! Logging in and out, where the token is kept, and how errors read.

use crate::harness::{Operator, Server, DEPLOYER};

#[actix_web::test]
async fn login_keeps_the_token_for_its_owner_only_and_logout_revokes_it() {
    let server = Server::start().await;
    let op = Operator::new(&server);
    let run = op.login(DEPLOYER).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Logged in to"), "{run:?}");
    let file = op.home.path().join("hotswap").join("credentials.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(saved["server"], server.base.as_str());
    let token = saved["token"].as_str().unwrap().to_string();

    let clusters = op.run(&["clusters", "--output", "json"]).await;
    assert_eq!(clusters.code, 0, "{clusters:?}");
    assert_eq!(clusters.json().as_array().unwrap().len(), 4);

    let out = op.run(&["logout"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!file.exists(), "logout forgets the token");
    let after = op.run(&["clusters"]).await;
    assert_eq!(after.code, 2, "{after:?}");
    assert!(after.stderr.contains("not logged in"), "{after:?}");
    // The revoked token is refused by the server too (HOTSWAP_TOKEN overrides the file).
    let mut cmd = op.command(&["clusters"]);
    cmd.env("HOTSWAP_TOKEN", &token);
    let revoked = op.run_cmd(cmd).await;
    assert_eq!(revoked.code, 2, "{revoked:?}");
    assert!(revoked.stderr.contains("401") && revoked.stderr.contains("trace id:"), "{revoked:?}");
}

#[actix_web::test]
async fn refusals_print_the_servers_message_and_trace_id() {
    let server = Server::start().await;
    let op = Operator::new(&server);
    let wrong = op.login(("deployer", "not-the-password")).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(wrong.stderr.contains("code unauthorized") && wrong.stderr.contains("trace id: "), "{wrong:?}");

    let op = Operator::logged_in(&server, DEPLOYER).await;
    let bad = op.run(&["deploy", "kmod-cli", "1.0", "--to", "QA"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("not a semantic version"), "{bad:?}");
    assert!(bad.stderr.contains("validation_failed"), "{bad:?}");
    assert!(bad.stderr.contains("trace id: "), "{bad:?}");

    let usage = op.run(&["deploy", "kmod-cli"]).await;
    assert_eq!(usage.code, 2, "clap's usage errors exit 2 too: {usage:?}");

    let missing = op.run(&["status", "00000000-0000-0000-0000-00000000beef"]).await;
    assert_eq!(missing.code, 2, "{missing:?}");
    assert!(missing.stderr.contains("not found"), "{missing:?}");
}

#[actix_web::test]
async fn completions_are_generated_for_each_shell() {
    let server = Server::start().await;
    let op = Operator::new(&server);
    for shell in ["bash", "zsh", "fish"] {
        let run = op.run(&["completions", shell]).await;
        assert_eq!(run.code, 0, "{run:?}");
        assert!(
            run.stdout.contains("deploy") && run.stdout.contains("canary-steps"),
            "{shell}: {}",
            &run.stdout[..200.min(run.stdout.len())]
        );
    }
}

#[actix_web::test]
async fn a_reader_that_goes_away_ends_the_command_without_a_panic() {
    let server = Server::start().await;
    let op = Operator::new(&server);
    let mut cmd = op.command(&["completions", "bash"]);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Closing the read end at once: the client's first write meets a broken pipe.
    drop(child.stdout.take());
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(matches!(out.status.code(), Some(0) | Some(141)), "{out:?}");
}
