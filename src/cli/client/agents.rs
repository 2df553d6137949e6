//! `hotswap agents`: the hosts that run `hotswap agent`, and enrolment tokens
//! for new ones (`hotswap agents token --to ENV`).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::api::Api;
use super::output::{cell, say, Out};
use super::{Exit, Failure};

/// The tenant's agents, connected or not, with the modules their hosts run.
pub(super) async fn list(api: &Api, out: Out) -> Result<Exit, Failure> {
    let agents = api.get("/api/v1/agents").await?;
    if out.json() {
        out.print_json(&agents);
        return Ok(Exit::Ok);
    }
    let headers = ["HOSTNAME", "ENVIRONMENT", "CONNECTED", "INSTANCE", "LAST HEARTBEAT", "AGENT", "MODULES"];
    let rows: Vec<Vec<String>> = agents.as_array().into_iter().flatten().map(row).collect();
    out.table(&headers, &rows, None);
    Ok(Exit::Ok)
}

fn row(agent: &Value) -> Vec<String> {
    let modules: Vec<String> = agent["modules"]
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(name, slots)| slots["active"]["version"].as_str().map(|v| format!("{name} {v}")))
        .collect();
    let heartbeat = agent["lastHeartbeat"]
        .as_str()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map_or_else(|| "-".to_string(), |t| t.format("%Y-%m-%d %H:%M:%S").to_string());
    vec![
        cell(&agent["hostname"]),
        cell(&agent["environment"]),
        if agent["connected"] == Value::Bool(true) { "yes" } else { "no" }.to_string(),
        cell(&agent["instance"]),
        heartbeat,
        cell(&agent["agentVersion"]),
        if modules.is_empty() { "-".into() } else { modules.join(", ") },
    ]
}

/// Creates an enrolment token for `environment` (Admins) and prints it, once,
/// with the command that starts an agent with it.
pub(super) async fn create_token(
    api: &Api,
    out: Out,
    environment: &str,
    labels: &[String],
    expires_in: Option<u64>,
) -> Result<Exit, Failure> {
    let mut parsed = BTreeMap::new();
    for pair in labels {
        let (k, v) =
            pair.split_once('=').ok_or_else(|| Failure::usage(format!("--label '{pair}' is not KEY=VALUE")))?;
        parsed.insert(k.to_string(), v.to_string());
    }
    let mut body = json!({ "environment": environment, "labels": parsed });
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
