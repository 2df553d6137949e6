//! A server that speaks HTTPS with a certificate from a private CA: the
//! client and an agent reach it through that CA, named with `--ca` or found
//! in the host's trust store (here `SSL_CERT_FILE`), and refuse it otherwise.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{Operator, Server, ADMIN};
use crate::support::pki::private_ca;
use crate::support::poll::eventually;

#[actix_web::test]
async fn the_client_reaches_an_https_server_through_its_ca_and_refuses_it_without() {
    let dir = tempfile::tempdir().unwrap();
    let pki = private_ca(dir.path());
    let server = Server::start_tls(&pki.cert, &pki.key, &pki.ca).await;
    let ca = pki.ca.to_str().unwrap();

    // This host does not trust the private CA: the client refuses the server and says why.
    let op = Operator::new(&server);
    let refused = op.login(ADMIN).await;
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("UnknownIssuer") && refused.stderr.contains("--ca FILE"), "{refused:?}");

    // --ca at login is kept for the later verbs, the live watch included.
    let run = op.login_with(ADMIN, &["--ca", ca], &[]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let runs = op.run(&["runs", "-o", "json"]).await;
    assert_eq!(runs.code, 0, "{runs:?}");
    let watched = op.run(&["deploy", "kmod-tls", "1.0.0", "--to", "Development", "--watch"]).await;
    assert_eq!(watched.code, 0, "the run was watched to Succeeded over wss://: {watched:?}");

    // The host's trust store, pointed at the CA, serves as well as --ca.
    let other = Operator::new(&server);
    let run = other.login_with(ADMIN, &[], &[("SSL_CERT_FILE", ca)]).await;
    assert_eq!(run.code, 0, "{run:?}");

    // A CA file that holds no certificate is a usage error before any request.
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "no certificate here\n").unwrap();
    let run = other.run(&["runs", "--ca", bogus.to_str().unwrap()]).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("bogus.pem"), "{run:?}");
}

/// An agent given no `--ca` checks an https:// server against the host's CAs
/// (it used to have no TLS at all without `--ca` and retried for ever).
#[actix_web::test]
async fn an_agent_without_ca_trusts_the_hosts_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let pki = private_ca(dir.path());
    let server = Server::start_tls(&pki.cert, &pki.key, &pki.ca).await;
    let tls = hotswap::tls_client::client_config(Some(&pki.ca)).unwrap();
    let client = awc::Client::builder().connector(awc::Connector::new().rustls_0_23(tls)).finish();
    let token = {
        let mut r = client
            .post(format!("{}/api/v1/authentication/login", server.base))
            .send_json(&json!({ "username": ADMIN.0, "password": ADMIN.1 }))
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
    };
    let mut r = client
        .post(format!("{}/api/v1/agents/tokens", server.base))
        .bearer_auth(&token)
        .send_json(&json!({ "environment": "Development" }))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.body().await);
    let enrolment = r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string();

    let data = dir.path().join("agent");
    let mut agent = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
        .args(["agent", "--server", &server.base, "--token", &enrolment, "--hostname", "tls-agent", "--data-dir"])
        .arg(&data)
        .env("SSL_CERT_FILE", &pki.ca)
        .env_remove("SSL_CERT_DIR")
        .env_remove("HOTSWAP_AGENT__CA")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    eventually(Duration::from_secs(30), "the agent is connected over TLS", async || {
        let Ok(mut r) = client.get(format!("{}/api/v1/agents", server.base)).bearer_auth(&token).send().await else {
            return false;
        };
        let agents: Value = r.json().await.unwrap_or_default();
        agents.as_array().is_some_and(|a| a.iter().any(|a| a["hostname"] == "tls-agent" && a["connected"] == true))
    })
    .await;
    let _ = agent.kill().await;
}
