//! The read-only listings: runs, approvals, clusters, nodes, agents, actors, events.
//! Each prints the API's own JSON with `--output json`, or a table.

use awc::http::Method;
use serde_json::Value;

use super::api::Api;
use super::output::{cell, human, say, span, when, Out};
use super::{segment, Exit, Failure};

/// Prints `whole` as JSON, or `items` as a table with one row per element.
pub(super) fn show(
    out: Out,
    whole: &Value,
    items: &Value,
    headers: &[&str],
    status_col: Option<usize>,
    row: impl Fn(&Value) -> Vec<String>,
) -> Exit {
    if out.json() {
        out.print_json(whole);
    } else {
        let rows: Vec<Vec<String>> = items.as_array().into_iter().flatten().map(row).collect();
        out.table(headers, &rows, status_col);
    }
    Exit::Ok
}

/// What a verb that changed something prints: the server's answer `json`
/// with `--output json`, else the sentence `line`.
pub(super) fn done(out: Out, json: Value, line: &str) -> Result<Exit, Failure> {
    if out.json() {
        out.print_json(&json);
    } else {
        say!("{line}");
    }
    Ok(Exit::Ok)
}

fn health(healthy: &Value) -> String {
    if *healthy == Value::Bool(true) { "Healthy" } else { "Unhealthy" }.to_string()
}

/// Which runs `hotswap runs` asks for.
pub(super) struct RunFilter {
    pub status: Option<String>,
    pub module: Option<String>,
    pub env: Option<String>,
}

pub(super) async fn runs(api: &Api, out: Out, filter: RunFilter, limit: u32, page: u32) -> Result<Exit, Failure> {
    let size = limit.clamp(1, 100);
    let mut query = vec![format!("pageSize={size}"), format!("page={}", page.max(1))];
    for (key, value) in [("status", filter.status), ("moduleName", filter.module), ("environment", filter.env)] {
        if let Some(v) = value {
            query.push(format!("{key}={}", segment(&v)));
        }
    }
    let answer = api.call(Method::GET, &format!("/api/v1/deployments?{}", query.join("&")), None).await?;
    let list = answer.body;
    let headers = ["ID", "MODULE", "VERSION", "TARGET", "STATUS", "STARTED", "DURATION"];
    let exit = show(out, &list, &list, &headers, Some(4), |r| {
        vec![
            cell(&r["executionId"]),
            cell(&r["moduleName"]),
            cell(&r["version"]),
            cell(&r["targetEnvironment"]),
            cell(&r["status"]),
            when(&r["startTime"]),
            span(&r["duration"]),
        ]
    });
    page_footer(out, "runs", page, size, count(&list), answer.total);
    Ok(exit)
}

/// How many items a listing's JSON array holds.
fn count(items: &Value) -> usize {
    items.as_array().map_or(0, Vec::len)
}

/// Under a table that is one page of more, which items it shows and how to
/// see the next ones: "runs 21–40 of 312; --page 3 for the next".
pub(super) fn page_footer(out: Out, what: &str, page: u32, size: u32, shown: usize, total: Option<u64>) {
    let Some(total) = total else { return };
    if out.json() || (page <= 1 && shown as u64 >= total) {
        return;
    }
    if shown == 0 {
        if total > 0 {
            // "runs" → "1 run in all"; every `what` here makes its singular by dropping the s.
            let noun = if total == 1 { what.strip_suffix('s').unwrap_or(what) } else { what };
            say!("{}", out.dim(&format!("page {page} is past the last: {total} {noun} in all")));
        }
        return;
    }
    let first = u64::from(page.max(1) - 1) * u64::from(size) + 1;
    let last = first + shown as u64 - 1;
    let next = if last < total { format!("; --page {} for the next", page.max(1) + 1) } else { String::new() };
    say!("{}", out.dim(&format!("{what} {first}–{last} of {total}{next}")));
}

pub(super) async fn approvals(api: &Api, out: Out) -> Result<Exit, Failure> {
    let list = api.get("/api/v1/approvals/pending").await?;
    let headers = ["RUN", "MODULE", "TARGET", "REQUESTER", "REQUESTED", "EXPIRES IN"];
    Ok(show(out, &list, &list, &headers, None, |a| {
        vec![
            cell(&a["deploymentExecutionId"]),
            format!("{} {}", cell(&a["moduleName"]), cell(&a["version"])),
            cell(&a["targetEnvironment"]),
            cell(&a["requesterEmail"]),
            when(&a["requestedAt"]),
            expires_in(a),
        ]
    }))
}

/// The EXPIRES IN cell of a pending approval: `secondsRemaining` in the
/// one duration form tables use (the API's `timeRemaining`, the original's
/// "3h 0m", reads the last minute as "0m"); a server older than that field,
/// or an approval past its time, shows `timeRemaining` as it is.
fn expires_in(approval: &Value) -> String {
    match approval["secondsRemaining"].as_i64() {
        Some(seconds) if seconds > 0 => human(chrono::Duration::seconds(seconds)),
        _ => cell(&approval["timeRemaining"]),
    }
}

pub(super) async fn clusters(api: &Api, out: Out) -> Result<Exit, Failure> {
    let list = api.get("/api/v1/clusters").await?;
    Ok(show(out, &list, &list, &["ENVIRONMENT", "NODES", "HEALTHY", "HEALTH"], Some(3), |c| {
        vec![cell(&c["environment"]), cell(&c["totalNodes"]), cell(&c["healthyNodes"]), health(&c["isHealthy"])]
    }))
}

/// Which nodes `hotswap nodes` asks for (the API's own filters).
pub(super) struct NodeFilter {
    pub module: Option<String>,
    pub version: Option<String>,
    pub unhealthy: bool,
}

pub(super) async fn nodes(
    api: &Api,
    out: Out,
    env: &str,
    filter: &NodeFilter,
    page: u32,
    size: u32,
) -> Result<Exit, Failure> {
    let mut query = vec![format!("page={}", page.max(1)), format!("pageSize={size}")];
    for (key, value) in [("module", &filter.module), ("version", &filter.version)] {
        if let Some(v) = value {
            query.push(format!("{key}={}", segment(v)));
        }
    }
    if filter.unhealthy {
        query.push("healthy=false".into());
    }
    let path = format!("/api/v1/clusters/{}?{}", segment(env), query.join("&"));
    let answer = api.call(Method::GET, &path, None).await?;
    let cluster = answer.body;
    let headers = ["HOSTNAME", "STATUS", "HEALTH", "CPU %", "ERRORS %", "MODULES"];
    let exit = show(out, &cluster, &cluster["nodes"], &headers, Some(2), |n| {
        let modules: Vec<String> = n["modules"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, version)| format!("{name} {}", cell(version)))
            .collect();
        vec![
            cell(&n["hostname"]),
            cell(&n["status"]),
            health(&n["isHealthy"]),
            format!("{:.1}", n["metrics"]["cpuUsage"].as_f64().unwrap_or_default()),
            format!("{:.2}", n["metrics"]["errorRate"].as_f64().unwrap_or_default()),
            if modules.is_empty() { "-".into() } else { modules.join(", ") },
        ]
    });
    page_footer(out, "nodes", page, size, count(&cluster["nodes"]), answer.total);
    Ok(exit)
}

/// Which agents `hotswap agents` asks for (the API's own filters).
pub(super) struct AgentFilter {
    pub environment: Option<String>,
    pub disconnected: bool,
}

/// The tenant's agents, connected or not, with the modules their hosts run,
/// a page at a time.
pub(super) async fn agents(api: &Api, out: Out, filter: &AgentFilter, page: u32, size: u32) -> Result<Exit, Failure> {
    let mut query = vec![format!("page={}", page.max(1)), format!("pageSize={size}")];
    if let Some(env) = &filter.environment {
        query.push(format!("environment={}", segment(env)));
    }
    if filter.disconnected {
        query.push("connected=false".into());
    }
    let answer = api.call(Method::GET, &format!("/api/v1/agents?{}", query.join("&")), None).await?;
    let agents = answer.body;
    let headers = ["HOSTNAME", "ENVIRONMENT", "CONNECTED", "INSTANCE", "LAST HEARTBEAT", "AGENT", "MODULES"];
    let exit = show(out, &agents, &agents, &headers, None, |a| {
        let modules: Vec<String> = a["modules"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(name, slots)| slots["active"]["version"].as_str().map(|v| format!("{name} {v}")))
            .collect();
        vec![
            cell(&a["hostname"]),
            cell(&a["environment"]),
            if a["connected"] == Value::Bool(true) { "yes" } else { "no" }.to_string(),
            cell(&a["instance"]),
            when(&a["lastHeartbeat"]),
            cell(&a["agentVersion"]),
            if modules.is_empty() { "-".into() } else { modules.join(", ") },
        ]
    });
    page_footer(out, "agents", page, size, count(&agents), answer.total);
    Ok(exit)
}

pub(super) async fn actors(api: &Api, out: Out, tree: bool) -> Result<Exit, Failure> {
    let snapshot = api.get("/api/v1/admin/actors").await?;
    if out.json() {
        out.print_json(&snapshot);
        return Ok(Exit::Ok);
    }
    let supervisors: Vec<&Value> = snapshot["supervisors"].as_array().into_iter().flatten().collect();
    if tree {
        print_tree(out, &supervisors);
        return Ok(Exit::Ok);
    }
    let rows: Vec<Vec<String>> = supervisors
        .iter()
        .flat_map(|sup| sup["children"].as_array().into_iter().flatten().map(move |c| (sup, c)))
        .map(|(sup, c)| {
            vec![
                cell(&c["id"]),
                cell(&c["kind"]),
                cell(&sup["name"]),
                cell(&c["state"]),
                cell(&c["restarts"]),
                cell(&c["lastFailure"]),
            ]
        })
        .collect();
    out.table(&["ACTOR", "KIND", "SUPERVISOR", "STATE", "RESTARTS", "LAST FAILURE"], &rows, Some(3));
    Ok(Exit::Ok)
}

/// The supervision tree drawn with box characters.
fn print_tree(out: Out, supervisors: &[&Value]) {
    say!("{}", out.bold("Orchestrator"));
    for (i, sup) in supervisors.iter().enumerate() {
        let last_sup = i + 1 == supervisors.len();
        let children: Vec<&Value> = sup["children"].as_array().into_iter().flatten().collect();
        // The server lists a page of each supervisor's children and counts them all.
        let count = sup["childCount"].as_u64().unwrap_or(children.len() as u64);
        let unlisted = count.saturating_sub(children.len() as u64);
        say!("{} supervisor \"{}\" ({count} children)", if last_sup { "└──" } else { "├──" }, cell(&sup["name"]),);
        let trunk = if last_sup { "    " } else { "│   " };
        for (j, child) in children.iter().enumerate() {
            let branch = if j + 1 == children.len() && unlisted == 0 { "└──" } else { "├──" };
            say!(
                "{trunk}{branch} {} {} · restarts {} · incarnation {}",
                cell(&child["id"]),
                out.status(child["state"].as_str().unwrap_or("?")),
                cell(&child["restarts"]),
                cell(&child["incarnation"])
            );
        }
        if unlisted > 0 {
            say!("{trunk}└── … and {unlisted} more (restarted or stopped actors are listed first)");
        }
    }
}

/// Events asked for per request while listing a run's events.
const EVENTS_PER_REQUEST: usize = 1000;

/// Every event of a run, oldest first, read a page at a time.
pub(super) async fn events(api: &Api, out: Out, id: &str) -> Result<Exit, Failure> {
    let all = api
        .every_page(EVENTS_PER_REQUEST, |read| {
            format!("/api/v1/deployments/{}/events?offset={read}&limit={EVENTS_PER_REQUEST}", segment(id))
        })
        .await?;
    let list = Value::Array(all);
    Ok(show(out, &list, &list, &["AT", "EVENT", "MESSAGE"], None, |e| {
        vec![when(&e["at"]), cell(&e["kind"]), cell(&e["message"])]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_last_minute_of_an_approval_shows_its_seconds() {
        let pending =
            |seconds: i64, remaining: &str| json!({ "secondsRemaining": seconds, "timeRemaining": remaining });
        assert_eq!(expires_in(&pending(59, "0m")), "59s");
        assert_eq!(expires_in(&pending(1, "0m")), "1.0s");
        assert_eq!(expires_in(&pending(60, "1m")), "1m 00s");
        assert_eq!(expires_in(&pending(3 * 3600, "3h 0m")), "3h 00m");
        assert_eq!(expires_in(&pending(0, "Expired")), "Expired");
        assert_eq!(expires_in(&json!({ "timeRemaining": "0m" })), "0m", "a server without secondsRemaining");
    }
}
