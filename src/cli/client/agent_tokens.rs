//! `hotswap agents token --to ENV`: an enrolment token for new agent hosts
//! (`hotswap agents`, the listing, is with the other listings).

use serde_json::json;

use super::api::Api;
use super::output::{cell, say, Out};
use super::{Exit, Failure};

/// Creates an enrolment token for `environment` (Admins) and prints it, once,
/// with the command that starts an agent with it.
pub(super) async fn create(
    api: &Api,
    out: Out,
    environment: &str,
    labels: &[String],
    expires_in: Option<u64>,
) -> Result<Exit, Failure> {
    let labels = super::key_values("--label", labels)?;
    let mut body = json!({ "environment": environment, "labels": labels });
    if let Some(seconds) = expires_in {
        body["expiresIn"] = json!(seconds);
    }
    let created = api.post("/api/v1/agents/tokens", &body).await?.body;
    if out.json() {
        out.print_json(&created);
        return Ok(Exit::Ok);
    }
    let token = cell(&created["token"]);
    say!("Enrolment token for {environment} (shown this once; it can be used until {}):", cell(&created["expiresAt"]));
    say!("  {token}");
    let ca = api.ca.as_ref().map(|ca| format!(" --ca {}", ca.display())).unwrap_or_default();
    say!("On each host:");
    say!("  hotswap agent --server {}{ca} --token {token} --data-dir /var/lib/hotswap-agent", api.server);
    Ok(Exit::Ok)
}
