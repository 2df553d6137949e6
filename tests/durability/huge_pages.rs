//! `hotswap serve` opts its process out of transparent huge pages, unless
//! `[server] transparent_huge_pages` keeps the kernel's setting.

use crate::process::{free_port, Server};

/// The process's "THP_enabled" line: `Some(false)` once it opted out;
/// `None` where the kernel does not report it.
fn huge_pages_enabled(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix("THP_enabled:")).map(|value| value.trim() == "1")
}

#[actix_web::test]
async fn the_server_opts_out_of_transparent_huge_pages_unless_its_settings_keep_them() {
    let Some(ours) = huge_pages_enabled(std::process::id()) else {
        eprintln!("skipped: this kernel's /proc/PID/status has no THP_enabled line");
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(free_port(), &[], dir.path().join("default.log")).await;
    assert_eq!(huge_pages_enabled(server.pid()), Some(false), "the default opts the server out");
    drop(server);

    // The flag is inherited: only a test process without it can see a
    // server keep the kernel's setting.
    if !ours {
        eprintln!("skipped the second half: this test process was itself started without huge pages");
        return;
    }
    let vars = [("HOTSWAP__SERVER__TRANSPARENT_HUGE_PAGES", "true".to_string())];
    let server = Server::start(free_port(), &vars, dir.path().join("kept.log")).await;
    assert_eq!(huge_pages_enabled(server.pid()), Some(true), "the setting keeps the kernel's choice");
}
