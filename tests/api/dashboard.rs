//! The dashboard in a real browser: tests/dashboard drives Debian's Chromium
//! with playwright-core (installed from the lock file by `npm ci`). A machine
//! without npm or Chromium skips, saying so; `.ci/run` installs both.
//! `HOTSWAP_SCREENSHOTS=docs/screenshots` also refreshes the README's pictures.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use awc::http::{Method, StatusCode};

use crate::db::npm::npm_ci;
use crate::support::{spawn_anonymous, spawn_app};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Skips, or fails where `HOTSWAP_REQUIRE_BROWSER` says the browser must run (CI).
fn skip(reason: &str) {
    assert!(std::env::var_os("HOTSWAP_REQUIRE_BROWSER").is_none(), "the dashboard browser test cannot run: {reason}");
    eprintln!("\n*** SKIPPED the dashboard browser test: {reason} ***\n");
}

#[actix_web::test]
async fn the_dashboard_works_in_a_real_browser() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard");
    if !Path::new(CHROMIUM).exists() {
        return skip(&format!("{CHROMIUM} is missing (apt-get install chromium)"));
    }
    if let Err(reason) = npm_ci(&dir, "playwright-core").await {
        return skip(&reason);
    }
    // Rolling waves that wait a little, so that the browser sees a run move;
    // more Development nodes than a page of a cluster holds (100); nodes given
    // time to answer a slowed load (`simulateNodeDelayMs`), so that a Direct
    // stage lasts long enough to be looked at; live sessions kept while a busy
    // browser is slow to answer pings (the test profile's 400 ms closed the
    // sessions a test held open to fill a tenant's quota).
    let app = spawn_app(&[
        ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "700ms"),
        ("HOTSWAP__SIMULATION__NODES__DEVELOPMENT", "120"),
        ("HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT", "10s"),
        ("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "10s"),
    ])
    .await;
    let mut command = tokio::process::Command::new("node");
    command
        .args(["--test", "dashboard.test.mjs"])
        .current_dir(&dir)
        .env("HOTSWAP_URL", &app.base)
        .env("CHROMIUM", CHROMIUM)
        .env("HOTSWAP_BIN", env!("CARGO_BIN_EXE_hotswap"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Ok(shots) = std::env::var("HOTSWAP_SCREENSHOTS") {
        command.env("SCREENSHOT_DIR", PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(shots));
    }
    let child = command.spawn().expect("node runs");
    let out = tokio::time::timeout(std::time::Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the browser test finished within four minutes")
        .expect("node ran");
    eprintln!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the dashboard browser test failed");
}

#[actix_web::test]
async fn the_page_is_public_with_a_strict_policy_and_its_data_is_not() {
    let app = spawn_anonymous(&[]).await;
    let page = app.call(Method::GET, "/", None).await;
    assert_eq!(page.status, StatusCode::OK);
    let policy = page.header("content-security-policy").expect("a policy");
    assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(page.text.contains("/dashboard/app.js"));
    let script = app.call(Method::GET, "/dashboard/app.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.header("content-type").expect("a type").starts_with("text/javascript"));
    let missing = app.call(Method::GET, "/dashboard/secrets.txt", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["code"], "not_found");
    let data = app.call(Method::GET, "/api/v1/deployments", None).await;
    assert_eq!(data.status, StatusCode::UNAUTHORIZED, "the data still needs a token");
}
