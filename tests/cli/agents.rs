//! `hotswap agents`: an Admin makes an enrolment token with the CLI, starts an
//! agent with the command it prints, sees the host listed as connected, then
//! revokes the token and sees the host cut off, and removes the retired host.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{Operator, Server, ADMIN};
use crate::support::poll::eventually_ok;

#[actix_web::test]
async fn an_enrolment_token_from_the_cli_starts_an_agent_that_the_cli_lists() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, ADMIN).await;

    let refused = op.run(&["agents", "token", "--to", "QA", "--label", "no-equals-sign"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("--label 'no-equals-sign' is not KEY=VALUE"), "{refused:?}");

    let made = op.run(&["agents", "token", "--to", "QA", "--label", "rack=r7", "--expires-in", "600"]).await;
    assert_eq!(made.code, 0, "{made:?}");
    assert!(made.stdout.contains("shown this once"), "{made:?}");
    // The printed command line is the one to run on the host.
    let command = made.stdout.lines().find(|l| l.trim_start().starts_with("hotswap agent ")).unwrap_or_default();
    let token = command.split_whitespace().skip_while(|w| *w != "--token").nth(1).unwrap_or_default().to_string();
    assert!(token.starts_with("hse_"), "{made:?}");
    assert!(command.contains(&format!("--server {}", server.base)), "{command}");

    let dir = tempfile::tempdir().unwrap();
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["agent", "--server", &server.base, "--token", &token, "--hostname", "qa-cli-host"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();

    eventually_ok(Duration::from_secs(30), "the CLI lists the agent as connected", async || {
        let listed = op.run(&["agents", "-o", "json"]).await;
        let agents = listed.json();
        let host = agents.as_array().and_then(|a| a.iter().find(|a| a["hostname"] == "qa-cli-host").cloned());
        match host {
            Some(h) if h["connected"] == true && h["environment"] == "QA" && h["labels"]["rack"] == "r7" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let table = op.run(&["agents"]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let line = table.stdout.lines().find(|l| l.starts_with("qa-cli-host")).unwrap_or_default().to_string();
    assert!(line.contains("QA") && line.contains("yes"), "{}", table.stdout);
    // A Viewer may list but not make tokens.
    let viewer = Operator::logged_in(&server, ("viewer", "Viewer123!")).await;
    assert_eq!(viewer.run(&["agents"]).await.code, 0);
    let denied = viewer.run(&["agents", "token", "--to", "QA"]).await;
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(denied.stderr.contains("403") || denied.stderr.to_lowercase().contains("forbidden"), "{denied:?}");

    // The Admin lists the tokens and revokes this one by the start of its id: the host is cut off.
    let tokens = op.run(&["agents", "tokens", "-o", "json"]).await.json();
    let id = tokens[0]["id"].as_str().unwrap_or_else(|| panic!("a token: {tokens}")).to_string();
    let table = op.run(&["agents", "tokens"]).await;
    assert!(table.stdout.lines().any(|l| l.starts_with(&id) && l.contains("rack=r7")), "{table:?}");
    let revoked = op.run(&["agents", "revoke-token", &id[..8]]).await;
    assert_eq!(revoked.code, 0, "{revoked:?}");
    assert!(revoked.stdout.contains(&id), "{revoked:?}");
    // A second revocation changes nothing and says so.
    let again = op.run(&["agents", "revoke-token", &id]).await;
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.contains("was already revoked") && !again.stdout.contains("sessions end"), "{again:?}");
    eventually_ok(Duration::from_secs(30), "the revoked token's host is disconnected", async || {
        let listed = op.run(&["agents", "-o", "json"]).await.json();
        let host = listed.as_array().and_then(|a| a.iter().find(|a| a["hostname"] == "qa-cli-host").cloned());
        match host {
            Some(h) if h["connected"] == false => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let tokens = op.run(&["agents", "tokens", "-o", "json"]).await.json();
    assert!(tokens[0]["revokedAt"].is_string(), "{tokens}");
    // By state: it is revoked, so no longer among the usable ones.
    let revoked = op.run(&["agents", "tokens", "--state", "revoked", "-o", "json"]).await.json();
    assert_eq!(revoked[0]["id"], id.as_str(), "{revoked}");
    let usable = op.run(&["agents", "tokens", "--state", "usable", "-o", "json"]).await.json();
    assert!(usable.as_array().unwrap().iter().all(|t| t["id"] != id.as_str()), "{usable}");
    let wrong = op.run(&["agents", "tokens", "--state", "lost"]).await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    agent.kill().await.unwrap();

    // The host is retired: the Admin removes it, and it is listed no more.
    let unknown = op.run(&["agents", "remove", "no-such-host"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    let removed = op.run(&["agents", "remove", "qa-cli-host"]).await;
    assert_eq!(removed.code, 0, "{removed:?}");
    assert!(removed.stdout.contains("removed qa-cli-host (QA)"), "{removed:?}");
    let listed = op.run(&["agents", "-o", "json"]).await.json();
    assert_eq!(listed, serde_json::json!([]), "{listed}");
}
