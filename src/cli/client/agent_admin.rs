//! The Admin's verbs on agents: `hotswap agents token --to ENV` makes an
//! enrolment token for new hosts, `agents tokens` lists them, `agents
//! revoke-token ID` revokes one, and `agents remove HOSTNAME` retires a host
//! (`hotswap agents`, the listing of hosts, is with the other listings).

use awc::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::by_id::one_by_id;
use super::listings::{done, page_footer, show};
use super::output::{cell, say, when, Out};
use super::{segment, Exit, Failure};

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

/// The tenant's enrolment tokens, newest first, without their secrets, a
/// page at a time (of one state when asked).
pub(super) async fn list(api: &Api, out: Out, state: Option<&str>, page: u32, size: u32) -> Result<Exit, Failure> {
    let mut path = format!("/api/v1/agents/tokens?page={}&pageSize={size}", page.max(1));
    if let Some(state) = state {
        path.push_str(&format!("&state={state}"));
    }
    let answer = api.call(Method::GET, &path, None).await?;
    let tokens = answer.body;
    let headers = ["ID", "ENVIRONMENT", "LABELS", "CREATED", "EXPIRES", "REVOKED"];
    let exit = show(out, &tokens, &tokens, &headers, None, |t| {
        let labels: Vec<String> =
            t["labels"].as_object().into_iter().flatten().map(|(k, v)| format!("{k}={}", cell(v))).collect();
        vec![
            cell(&t["id"]),
            cell(&t["environment"]),
            if labels.is_empty() { "-".into() } else { labels.join(", ") },
            when(&t["createdAt"]),
            when(&t["expiresAt"]),
            if t["revokedAt"].is_null() { "-".into() } else { when(&t["revokedAt"]) },
        ]
    });
    page_footer(out, "tokens", page, size, tokens.as_array().map_or(0, Vec::len), answer.total);
    Ok(exit)
}

/// Every enrolment token of the tenant, read a page of 1,000 at a time, to
/// find one by the start of its id (a revoked or expired one included: its
/// agents may still be connected).
async fn all_tokens(api: &Api) -> Result<Value, Failure> {
    const PER_REQUEST: usize = 1000;
    let all = api
        .every_page(PER_REQUEST, |read| {
            format!("/api/v1/agents/tokens?page={}&pageSize={PER_REQUEST}", read / PER_REQUEST + 1)
        })
        .await?;
    Ok(Value::Array(all))
}

/// Revokes the one token `which` names (its id, or at least 4 characters of its start).
pub(super) async fn revoke(api: &Api, out: Out, which: &str) -> Result<Exit, Failure> {
    let id = match uuid::Uuid::parse_str(which) {
        Ok(id) => id.to_string(),
        Err(_) => one_by_id(&all_tokens(api).await?, "id", which, "enrolment token", "hotswap agents tokens")?,
    };
    let revoked = api.post(&format!("/api/v1/agents/tokens/{}/revoke", segment(&id)), &json!({})).await?.body;
    let line = format!(
        "revoked enrolment token {id} ({}): it enrols no more hosts, and its agents' sessions end",
        cell(&revoked["environment"])
    );
    done(out, revoked, &line)
}

/// Retires the host named `hostname`: its node leaves the cluster for good.
pub(super) async fn remove(api: &Api, out: Out, hostname: &str) -> Result<Exit, Failure> {
    let agents = api.get(&format!("/api/v1/agents?hostname={}", segment(hostname))).await?;
    let host = agents.as_array().into_iter().flatten().find(|a| a["hostname"] == hostname).cloned();
    let host =
        host.ok_or_else(|| Failure::usage(format!("no agent host is named '{hostname}': see `hotswap agents`")))?;
    let node_id = cell(&host["nodeId"]);
    api.call(Method::DELETE, &format!("/api/v1/agents/{}", segment(&node_id)), None).await?;
    let line = format!(
        "removed {hostname} ({}): its node left the cluster; enrolling it again needs a new token",
        cell(&host["environment"])
    );
    done(out, json!({ "removed": host }), &line)
}
