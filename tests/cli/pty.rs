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

#[actix_web::test]
async fn a_terminal_gets_progress_bars_and_colours() {
    if !script_available() {
        eprintln!("skipped: the `script` command (util-linux) is not installed, so no pseudo-terminal can be made");
        return;
    }
    let server = Server::start().await;
    let op = Operator::logged_in(&server, DEPLOYER).await;
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
