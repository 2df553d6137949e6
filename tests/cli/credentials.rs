//! Which saved login a command uses, and what it says when it cannot use it.

use crate::harness::{Operator, Server, DEPLOYER};

fn credentials_file(op: &Operator) -> std::path::PathBuf {
    op.home.path().join("hotswap").join("credentials.json")
}

#[actix_web::test]
async fn a_command_without_a_token_says_why_the_saved_login_was_not_used() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    // The same server spelt in capitals is the same server.
    let mut cmd = op.command(&["runs"]);
    cmd.env("HOTSWAP_SERVER", server.base.replace("http://", "HTTP://"));
    let shouted = op.run_cmd(cmd).await;
    assert_eq!(shouted.code, 0, "{shouted:?}");

    let localhost = server.base.replace("127.0.0.1", "localhost");
    let mut cmd = op.command(&["runs"]);
    cmd.env("HOTSWAP_SERVER", &localhost);
    let other = op.run_cmd(cmd).await;
    assert_eq!(other.code, 2, "{other:?}");
    assert!(other.stderr.contains(&format!("the saved login is for {}, not {localhost}", server.base)), "{other:?}");

    std::fs::write(credentials_file(&op), "{not json").unwrap();
    let corrupt = op.run(&["runs"]).await;
    assert_eq!(corrupt.code, 2, "{corrupt:?}");
    assert!(corrupt.stderr.contains("is not a login hotswap wrote"), "{corrupt:?}");
    assert!(corrupt.stderr.contains("credentials.json"), "{corrupt:?}");
}

#[cfg(unix)]
#[actix_web::test]
async fn a_credentials_file_others_can_read_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let file = credentials_file(&op);
    let quiet = op.run(&["clusters"]).await;
    assert!(!quiet.stderr.contains("chmod"), "{quiet:?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warned = op.run(&["clusters"]).await;
    assert_eq!(warned.code, 0, "{warned:?}");
    assert!(warned.stderr.contains(&format!("chmod 600 {}", file.display())), "{warned:?}");
}

#[actix_web::test]
async fn a_server_url_without_its_scheme_is_an_input_error() {
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    let bare = server.base.trim_start_matches("http://").to_string();
    for url in [bare.as_str(), "ftp://x"] {
        let run = op.run(&["runs", "--server", url]).await;
        assert_eq!(run.code, 2, "{run:?}");
        assert!(run.stderr.contains("must start with http:// or https://"), "{run:?}");
    }
}
