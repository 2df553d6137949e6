//! The Admin's verbs on agents: `hotswap agents token --to ENV` makes an
//! enrolment token for new hosts, `agents tokens` lists them, `agents
//! revoke-token ID` revokes one, and `agents remove HOST` retires a host (by
//! hostname or node id)
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
    say!("Enrolment token for {environment} (shown this once; it can be used until {}):", when(&created["expiresAt"]));
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
    every_item(api, "/api/v1/agents/tokens").await
}

/// Every item of the paged listing at `path`, a page of 1,000 at a time.
async fn every_item(api: &Api, path: &str) -> Result<Value, Failure> {
    const PER_REQUEST: usize = 1000;
    let all = api
        .every_page(PER_REQUEST, |read| format!("{path}?page={}&pageSize={PER_REQUEST}", read / PER_REQUEST + 1))
        .await?;
    Ok(Value::Array(all))
}

/// Revokes the one token `which` names (its id, or at least 4 characters of
/// its start). One already revoked is left as it is, and said so: the server
/// answers a second revocation as the first, which read as if sessions ended
/// now.
pub(super) async fn revoke(api: &Api, out: Out, which: &str) -> Result<Exit, Failure> {
    let all = all_tokens(api).await?;
    let id = match uuid::Uuid::parse_str(which) {
        Ok(id) => id.to_string(),
        Err(_) => one_by_id(&all, "id", which, "enrolment token", "hotswap agents tokens")?,
    };
    let known = all.as_array().and_then(|tokens| tokens.iter().find(|t| t["id"].as_str() == Some(id.as_str())));
    if let Some(token) = known.filter(|t| !t["revokedAt"].is_null()) {
        let line = format!("enrolment token {id} was already revoked ({}); nothing changed", when(&token["revokedAt"]));
        return done(out, token.clone(), &line);
    }
    let revoked = api.post(&format!("/api/v1/agents/tokens/{}/revoke", segment(&id)), &json!({})).await?.body;
    let line = format!(
        "revoked enrolment token {id} ({}): it enrols no more hosts, and its agents' sessions end",
        cell(&revoked["environment"])
    );
    done(out, revoked, &line)
}

/// Retires the one host `which` names: its hostname, or its node id (whole or
/// at least 4 characters of its start). A hostname several hosts share (left
/// by enrolments older than the server's refusal of a taken name) is refused,
/// naming their node ids: removing "one of them" would be a guess.
pub(super) async fn remove(api: &Api, out: Out, which: &str) -> Result<Exit, Failure> {
    let named = api.get(&format!("/api/v1/agents?hostname={}&pageSize=1000", segment(which))).await?;
    let by_name = named.as_array().is_some_and(|a| a.iter().any(|h| h["hostname"] == which));
    let host = if by_name { one_host(&named, which)? } else { one_host(&all_agents(api).await?, which)? };
    let node_id = cell(&host["nodeId"]);
    api.call(Method::DELETE, &format!("/api/v1/agents/{}", segment(&node_id)), None).await?;
    let line = format!(
        "removed {} ({}): its node {node_id} left the cluster; enrolling it again needs a new token",
        cell(&host["hostname"]),
        cell(&host["environment"])
    );
    done(out, json!({ "removed": host }), &line)
}

/// Every agent host of the tenant, a page of 1,000 at a time.
async fn all_agents(api: &Api) -> Result<Value, Failure> {
    every_item(api, "/api/v1/agents").await
}

/// The one host of `hosts` (`GET /api/v1/agents` items) that `which` names:
/// by node id, by hostname when only one host has it, or by the start of a
/// node id (at least 4 characters) that only one has.
fn one_host(hosts: &Value, which: &str) -> Result<Value, Failure> {
    let hosts: Vec<&Value> = hosts.as_array().into_iter().flatten().collect();
    let node_id = |h: &&Value| h["nodeId"].as_str().unwrap_or_default().to_ascii_lowercase();
    let wanted = which.to_ascii_lowercase();
    if let Some(exact) = hosts.iter().find(|h| node_id(h) == wanted) {
        return Ok((*exact).clone());
    }
    let described = |several: &[&&Value]| -> String {
        let each: Vec<String> = several
            .iter()
            .map(|h| format!("{} {} ({})", cell(&h["hostname"]), cell(&h["nodeId"]), cell(&h["environment"])))
            .collect();
        each.join("; ")
    };
    let named: Vec<&&Value> = hosts.iter().filter(|h| h["hostname"] == which).collect();
    match named.as_slice() {
        [one] => return Ok((**one).clone()),
        [] => {}
        several => {
            return Err(Failure::usage(format!(
                "'{which}' names {} hosts ({}): give the node id of the one to remove",
                several.len(),
                described(several)
            )))
        }
    }
    let started: Vec<&&Value> = hosts.iter().filter(|h| wanted.len() >= 4 && node_id(h).starts_with(&wanted)).collect();
    match started.as_slice() {
        [one] => Ok((**one).clone()),
        [] => Err(Failure::usage(format!(
            "no agent host is named '{which}' or has a node id starting so (at least 4 characters): see `hotswap agents -o json`"
        ))),
        several => Err(Failure::usage(format!(
            "'{which}' starts {} node ids ({}): give more of it",
            several.len(),
            described(several)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts() -> Value {
        json!([
            { "hostname": "dev-a2", "nodeId": "8c1d2e3f-0000-4000-8000-000000000001", "environment": "Development" },
            { "hostname": "dev-a2", "nodeId": "8c1d9999-0000-4000-8000-000000000002", "environment": "Development" },
            { "hostname": "web-01", "nodeId": "ab12cd34-0000-4000-8000-000000000003", "environment": "Production" },
        ])
    }

    fn picked(which: &str) -> Result<String, String> {
        one_host(&hosts(), which).map(|h| cell(&h["nodeId"])).map_err(|f| f.message)
    }

    #[test]
    fn a_host_is_named_by_a_hostname_only_one_has_or_by_its_node_id() {
        assert_eq!(picked("web-01").unwrap(), "ab12cd34-0000-4000-8000-000000000003");
        assert_eq!(picked("8C1D2E3F-0000-4000-8000-000000000001").unwrap(), "8c1d2e3f-0000-4000-8000-000000000001");
        assert_eq!(picked("8c1d99").unwrap(), "8c1d9999-0000-4000-8000-000000000002");
    }

    #[test]
    fn a_hostname_several_hosts_share_or_an_unclear_id_is_refused() {
        let shared = picked("dev-a2").unwrap_err();
        assert!(shared.contains("'dev-a2' names 2 hosts"), "{shared}");
        assert!(
            shared.contains("8c1d2e3f-0000-4000-8000-000000000001") && shared.contains("give the node id"),
            "{shared}"
        );
        assert!(picked("8c1d").unwrap_err().contains("starts 2 node ids"));
        let unknown = picked("no-such-host").unwrap_err();
        assert!(unknown.contains("no agent host is named 'no-such-host'"), "{unknown}");
        assert!(picked("8c1").unwrap_err().contains("no agent host"), "too short a start");
    }
}
