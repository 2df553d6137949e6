//! The npm packages the JavaScript-driven tests need (the official SignalR
//! client, playwright-core, axe-core), installed from each folder's lock file.

/// Installs the npm packages `dir`'s lock file pins, unless they are there.
/// Err says why npm could not run (the caller skips, saying so); a failed
/// install fails the test.
pub async fn npm_ci(dir: &std::path::Path, marker: &str) -> Result<(), String> {
    if dir.join("node_modules").join(marker).exists() {
        return Ok(());
    }
    let install = tokio::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(dir)
        .status()
        .await
        .map_err(|e| format!("npm is not available ({e})"))?;
    assert!(install.success(), "npm ci in {} failed", dir.display());
    Ok(())
}
