//! The interactive rendering, on a pseudo-terminal made by util-linux's
//! `script`: colours and progress bars, and none of the colours under NO_COLOR.

use crate::harness::{Operator, Server, DEPLOYER};

/// `script` runs the client on a pseudo-terminal; `None` when it is missing.
fn script_available() -> bool {
    std::process::Command::new("script").arg("--version").output().is_ok_and(|o| o.status.success())
}

async fn on_a_terminal(op: &Operator, line: &str, no_color: bool) -> crate::harness::Run {
    let mut cmd = tokio::process::Command::new("script");
    // -q: no banner; -e: the child's exit code; -c: the command; /dev/null: no typescript file.
    cmd.args(["-qec", line, "/dev/null"])
        .env("XDG_CONFIG_HOME", op.home.path())
        .env("HOTSWAP_SERVER", &op.base)
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "160")
        .env_remove("HOTSWAP_TOKEN")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if no_color {
        cmd.env("NO_COLOR", "1");
    } else {
        cmd.env_remove("NO_COLOR");
    }
    op.run_cmd(cmd).await
}

/// A server and a logged-in deployer, when `script` can make a terminal;
/// `None`, having said why the test is skipped, when it cannot.
async fn a_deployer_with_a_terminal() -> Option<(Server, Operator)> {
    if !script_available() {
        eprintln!("skipped: the `script` command (util-linux) is not installed, so no pseudo-terminal can be made");
        return None;
    }
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
    Some((server, op))
}

#[actix_web::test]
async fn a_terminal_gets_progress_bars_and_colours() {
    let Some((_server, op)) = a_deployer_with_a_terminal().await else {
        return;
    };
    let bin = env!("CARGO_BIN_EXE_hotswap");
    let run = on_a_terminal(&op, &format!("{bin} deploy kmod-tty 1.0.0 --to QA --watch"), false).await;
    assert_eq!(run.code, 0, "{run:?}");
    let out = &run.stdout;
    assert!(out.contains("\u{1b}[32mSucceeded"), "green outcomes on a terminal:\n{out}");
    assert!(out.contains("\u{1b}[2K"), "bars are redrawn in place:\n{out}");
    assert!(out.contains("Deploy to QA [") && out.contains("/5 nodes"), "the stage's bar:\n{out}");
    assert!(out.contains("QA batch 3 [████"), "each wave's bar:\n{out}");
    // No timestamps: those are for logs, not terminals.
    assert!(!out.lines().any(|l| l.len() > 12 && l.as_bytes()[2] == b':' && l.as_bytes()[8] == b'.'), "{out}");

    let plain = on_a_terminal(&op, &format!("{bin} deploy kmod-tty 1.0.1 --to Development --watch"), true).await;
    assert_eq!(plain.code, 0, "{plain:?}");
    assert!(plain.stdout.contains("Succeeded") && !plain.stdout.contains("\u{1b}[32m"), "NO_COLOR: {plain:?}");
}

/// On a terminal a table's last free-text column (here the stages' MESSAGE)
/// is cut to what the terminal's width leaves, so each row stays one line;
/// piped, the rows keep their whole text.
#[actix_web::test]
async fn a_table_on_a_terminal_fits_its_width() {
    let Some((_server, op)) = a_deployer_with_a_terminal().await else {
        return;
    };
    let run = op.run(&["deploy", "kmod-tty", "1.0.0", "--to", "QA", "--watch"]).await;
    assert_eq!(run.code, 0, "{run:?}");
    let id = op.run(&["runs", "-o", "json"]).await.json()[0]["executionId"].as_str().unwrap().to_string();
    let piped = op.run(&["status", &id]).await;
    assert!(piped.stdout.lines().any(|l| l.chars().count() > 100), "piped lines are whole: {piped:?}");

    let bin = env!("CARGO_BIN_EXE_hotswap");
    let narrow = on_a_terminal(&op, &format!("stty rows 40 cols 100; {bin} status {id}"), false).await;
    assert_eq!(narrow.code, 0, "{narrow:?}");
    let shown = console::strip_ansi_codes(&narrow.stdout).to_string();
    for line in shown.lines() {
        assert!(line.trim_end_matches('\r').chars().count() <= 100, "wider than the terminal: {line:?}\n{shown}");
    }
    assert!(shown.lines().any(|l| l.starts_with("Security Scan") && l.trim_end().ends_with('…')), "{shown}");
}
