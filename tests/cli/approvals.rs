//! The approval gate from the command line: a watch that stops there exits 5,
//! an Admin approves, and a second watch follows the run to its end.

use crate::harness::{Operator, Server, ADMIN, DEPLOYER};

#[actix_web::test]
async fn a_run_waiting_for_approval_exits_5_then_an_admin_approves_it() {
    let server = Server::start().await;
    let deployer = Operator::logged_in(&server, DEPLOYER).await;
    let admin = Operator::logged_in(&server, ADMIN).await;
    let gated = deployer
        .run(&["deploy", "kmod-gate", "1.0.0", "--to", "Staging", "--require-approval", "--watch", "--until-approval"])
        .await;
    assert_eq!(gated.code, 5, "{gated:?}");
    assert!(gated.stdout.contains("waiting: approval"), "the countdown's start is shown:\n{}", gated.stdout);
    let id = deployer.run(&["runs", "-o", "json"]).await.json()[0]["executionId"].as_str().unwrap().to_string();
    let status = deployer.run(&["status", &id]).await;
    assert_eq!(status.code, 5, "{status:?}");

    let pending = admin.run(&["approvals"]).await;
    assert!(pending.stdout.contains(&id), "{pending:?}");
    let refused = deployer.run(&["approve", &id]).await;
    assert_eq!(refused.code, 2, "only Admins decide: {refused:?}");
    assert!(refused.stderr.contains("403"), "{refused:?}");
    let approved = admin.run(&["approve", &id, "--reason", "change 42"]).await;
    assert_eq!(approved.code, 0, "{approved:?}");

    let watched = deployer.run(&["status", &id, "--watch"]).await;
    assert_eq!(watched.code, 0, "{watched:?}");
    assert!(watched.stdout.contains("Deploy to Staging: Succeeded"), "{}", watched.stdout);
}

#[actix_web::test]
async fn steering_verbs_and_abort_exit_4_when_watched() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let started =
        op.run(&["deploy", "kmod-steer", "1.0.0", "--to", "Staging", "--require-approval", "-o", "json"]).await;
    assert_eq!(started.code, 0, "{started:?}");
    let id = started.json()["executionId"].as_str().unwrap().to_string();
    let aborted = op.run(&["abort", &id]).await;
    assert_eq!(aborted.code, 0, "{aborted:?}");
    let watched = op.run(&["status", &id, "--watch"]).await;
    assert_eq!(watched.code, 4, "{watched:?}");
    let again = op.run(&["resume", &id]).await;
    assert_eq!(again.code, 2, "a verb that does not apply is refused: {again:?}");
    assert!(again.stderr.contains("invalid_state"), "{again:?}");
}

#[actix_web::test]
async fn ctrl_c_stops_the_watch_and_not_the_run() {
    use std::sync::{Arc, Mutex};
    use tokio::io::AsyncReadExt;

    // SIGINT is sent with kill(1): the workspace forbids the unsafe code a libc call would need.
    if !std::process::Command::new("kill").arg("-l").output().is_ok_and(|o| o.status.success()) {
        eprintln!("skipped: no kill(1) command to send SIGINT with");
        return;
    }
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let started = op.run(&["deploy", "kmod-sig", "1.0.0", "--to", "Staging", "--require-approval", "-o", "json"]).await;
    let id = started.json()["executionId"].as_str().unwrap().to_string();
    let mut cmd = op.command(&["status", &id, "--watch"]);
    cmd.stdout(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let mut stdout = child.stdout.take().unwrap();
    let sink = seen.clone();
    actix_web::rt::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    crate::support::poll::eventually(
        std::time::Duration::from_secs(30),
        "the watch shows the approval wait",
        async || seen.lock().unwrap().contains("waiting: approval"),
    )
    .await;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), child.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(130), "{}", seen.lock().unwrap());
    crate::support::poll::eventually(
        std::time::Duration::from_secs(10),
        "the watch says the run goes on",
        async || seen.lock().unwrap().contains("stopped watching; the run goes on"),
    )
    .await;
    let after = op.run(&["status", &id, "-o", "json"]).await;
    assert_eq!(after.json()["status"], "PendingApproval", "the run did not stop: {after:?}");
    assert_eq!(after.code, 5);
}
