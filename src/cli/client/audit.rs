//! `hotswap audit`: the audit trail, newest first, filtered as
//! `GET /api/v1/auditlogs` filters it (Admins), a page at a time.

use serde_json::Value;

use super::api::Api;
use super::listings::show;
use super::output::{cell, say, when, Out};
use super::{segment, Exit, Failure};

/// Which entries `hotswap audit` asks for.
pub(super) struct AuditFilter {
    pub category: Option<String>,
    pub event: Option<String>,
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub trace: Option<String>,
    pub since: Option<std::time::Duration>,
    pub limit: u32,
    pub cursor: Option<i64>,
}

pub(super) async fn audit(api: &Api, out: Out, filter: AuditFilter) -> Result<Exit, Failure> {
    let mut query = vec![format!("limit={}", filter.limit.clamp(1, 100))];
    for (key, value) in [
        ("category", &filter.category),
        ("eventType", &filter.event),
        ("actor", &filter.actor),
        ("resourceType", &filter.resource_type),
        ("resourceId", &filter.resource_id),
        ("traceId", &filter.trace),
    ] {
        if let Some(value) = value {
            query.push(format!("{key}={}", segment(value)));
        }
    }
    if let Some(since) = filter.since {
        let since = chrono::Duration::from_std(since).map_err(|_| Failure::usage("--since is too long"))?;
        let from = chrono::Utc::now() - since;
        query.push(format!("from={}", segment(&from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))));
    }
    if let Some(cursor) = filter.cursor {
        query.push(format!("cursor={cursor}"));
    }
    let page = api.get(&format!("/api/v1/auditlogs?{}", query.join("&"))).await?;
    let headers = ["TIME", "ACTOR", "CATEGORY", "EVENT", "RESOURCE", "RESULT", "MESSAGE"];
    let exit = show(out, &page, &page["items"], &headers, None, |e| {
        vec![
            when(&e["at"]),
            cell(&e["actor"]["name"]),
            cell(&e["category"]),
            cell(&e["eventType"]),
            resource(e),
            cell(&e["result"]),
            cell(&e["message"]),
        ]
    });
    if !out.json() {
        if let Some(next) = page["nextCursor"].as_i64() {
            let shown = page["items"].as_array().map_or(0, Vec::len);
            let line = format!("{shown} of {} entries; older ones: --cursor {next}", cell(&page["total"]));
            say!("{}", out.dim(&line));
        }
    }
    Ok(exit)
}

/// "Deployment 8c1d…" — the resource type and id, when the entry has them.
fn resource(entry: &Value) -> String {
    match (entry["resourceType"].as_str(), entry["resourceId"].as_str()) {
        (Some(kind), Some(id)) => format!("{kind} {id}"),
        (Some(kind), None) => kind.to_string(),
        _ => "-".to_string(),
    }
}
