//! `hotswap logout` signs out of the saved login's own server, and deletes the
//! file only once its token no longer works.

use crate::harness::{Operator, Server, DEPLOYER};

fn saved_token(op: &Operator) -> Option<String> {
    let file = op.home.path().join("hotswap").join("credentials.json");
    let text = std::fs::read_to_string(file).ok()?;
    let saved: serde_json::Value = serde_json::from_str(&text).ok()?;
    saved["token"].as_str().map(str::to_string)
}

#[actix_web::test]
async fn logout_aimed_at_another_server_leaves_the_saved_login_alone() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let token = saved_token(&op).unwrap();
    let other = "http://127.0.0.1:9";

    let aimed = op.run(&["logout", "--server", other]).await;
    assert_eq!(aimed.code, 2, "{aimed:?}");
    assert!(aimed.stderr.contains(&format!("the saved login is for {}", server.base)), "{aimed:?}");
    assert_eq!(saved_token(&op).as_deref(), Some(token.as_str()), "the saved login is kept");
    // The same with the other server in the environment.
    let mut cmd = op.command(&["logout"]);
    cmd.env("HOTSWAP_SERVER", other);
    let from_env = op.run_cmd(cmd).await;
    assert_eq!(from_env.code, 2, "{from_env:?}");
    assert_eq!(saved_token(&op).as_deref(), Some(token.as_str()), "the saved login is kept");

    // Its own server revokes it.
    let out = op.run(&["logout", "--server", &server.base]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("revoked"), "{out:?}");
    assert_eq!(saved_token(&op), None);
    let mut cmd = op.command(&["clusters"]);
    cmd.env("HOTSWAP_TOKEN", &token);
    let revoked = op.run_cmd(cmd).await;
    assert_eq!(revoked.code, 2, "the token was revoked: {revoked:?}");
}

#[actix_web::test]
async fn logout_without_its_server_keeps_the_login_and_says_until_when_it_works() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let token = saved_token(&op).unwrap();
    drop(server);

    let out = op.run(&["logout"]).await;
    assert_eq!(out.code, 1, "the token was not revoked: {out:?}");
    assert!(out.stderr.contains("stays valid until 20") && out.stderr.contains("UTC"), "{out:?}");
    assert!(out.stderr.contains("cannot reach"), "{out:?}");
    assert_eq!(saved_token(&op), Some(token), "kept, so that logout can be tried again");
}
