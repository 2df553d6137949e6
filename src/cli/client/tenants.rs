//! `hotswap tenants`: the tenants and their lifecycle, for the system
//! tenant's Admins (the routes under `/api/tenants`). A tenant is named by
//! its id or its subdomain.

use awc::http::Method;
use serde_json::{json, Value};

use super::api::Api;
use super::commands::TenantsCommand;
use super::listings::{done, page_footer, show};
use super::output::{cell, say, when, Out};
use super::{segment, Exit, Failure};

pub(super) async fn tenants(
    api: &Api,
    out: Out,
    status: Option<String>,
    command: Option<TenantsCommand>,
    page: u32,
    size: u32,
) -> Result<Exit, Failure> {
    let Some(command) = command else { return list(api, out, status.as_deref(), page, size).await };
    match command {
        TenantsCommand::Create { name, subdomain, contact_email, tier, custom_domain } => {
            let mut body = json!({ "name": name, "subdomain": subdomain, "contactEmail": contact_email });
            if let Some(tier) = tier {
                body["tier"] = tier.into();
            }
            if let Some(domain) = custom_domain {
                body["customDomain"] = domain.into();
            }
            let made = api.post("/api/tenants", &body).await?.body;
            let line = format!(
                "created tenant {} ({}, {}): id {}",
                cell(&made["subdomain"]),
                cell(&made["tier"]),
                cell(&made["status"]),
                cell(&made["tenantId"])
            );
            done(out, made, &line)
        }
        TenantsCommand::Show { tenant } => show_one(api, out, &tenant).await,
        TenantsCommand::Suspend { tenant, reason } => {
            let body = json!({ "reason": reason });
            lifecycle(api, out, &tenant, Method::POST, "/suspend", Some(body)).await
        }
        TenantsCommand::Activate { tenant } => lifecycle(api, out, &tenant, Method::POST, "/activate", None).await,
        TenantsCommand::Tier { tenant, tier } => {
            let body = json!({ "tier": tier });
            lifecycle(api, out, &tenant, Method::PUT, "/subscription", Some(body)).await
        }
        TenantsCommand::Delete { tenant } => lifecycle(api, out, &tenant, Method::DELETE, "", None).await,
    }
}

async fn list(api: &Api, out: Out, status: Option<&str>, page: u32, size: u32) -> Result<Exit, Failure> {
    let mut path = format!("/api/tenants?page={}&pageSize={size}", page.max(1));
    if let Some(status) = status {
        path.push_str(&format!("&status={}", segment(status)));
    }
    let answer = api.call(Method::GET, &path, None).await?;
    let found = answer.body;
    let headers = ["ID", "SUBDOMAIN", "NAME", "TIER", "STATUS", "CREATED"];
    let exit = show(out, &found, &found, &headers, Some(4), |t| {
        vec![
            cell(&t["tenantId"]),
            cell(&t["subdomain"]),
            cell(&t["name"]),
            cell(&t["tier"]),
            cell(&t["status"]),
            when(&t["createdAt"]),
        ]
    });
    page_footer(out, "tenants", page, size, found.as_array().map_or(0, Vec::len), answer.total);
    Ok(exit)
}

async fn show_one(api: &Api, out: Out, which: &str) -> Result<Exit, Failure> {
    let id = api.tenant_id(which).await?;
    let tenant = api.get(&format!("/api/tenants/{}", segment(&id))).await?;
    let usage = api.get(&format!("/api/tenants/{}/usage", segment(&id))).await?;
    if out.json() {
        out.print_json(&json!({ "tenant": tenant, "usage": usage }));
        return Ok(Exit::Ok);
    }
    say!(
        "{} ({}): {}, tier {}, contact {}",
        cell(&tenant["name"]),
        cell(&tenant["subdomain"]),
        out.status(&cell(&tenant["status"])),
        cell(&tenant["tier"]),
        cell(&tenant["contactEmail"])
    );
    say!("id {}, created {}", cell(&tenant["tenantId"]), when(&tenant["createdAt"]));
    // The reason of the last suspension stays in the metadata after an
    // activation or a deletion: said only while the tenant is suspended.
    match tenant["status"].as_str() {
        Some("Suspended") => {
            let reason = tenant["metadata"]["suspension_reason"].as_str().unwrap_or("no reason given");
            say!("suspended at {}: {reason}", when(&tenant["suspendedAt"]));
        }
        Some("Deleted") => say!("deleted at {}", when(&tenant["deletedAt"])),
        _ => {}
    }
    let rows: Vec<Vec<String>> = usage["quotas"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|q| vec![cell(&q["quota"]), cell(&q["limit"]), used(q)])
        .collect();
    out.table(&["QUOTA", "LIMIT", "USED"], &rows, None);
    Ok(Exit::Ok)
}

/// A quota's use; artifact storage (limited in GB, used by the byte) in the
/// unit that reads best, so that a few kB do not read as a full 1 GB. Units
/// of 1000, as the quota counts a GB.
fn used(quota: &Value) -> String {
    let Some(bytes) = quota["usedBytes"].as_u64() else { return cell(&quota["used"]) };
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One lifecycle call on the tenant `which` names; prints where it is now.
async fn lifecycle(
    api: &Api,
    out: Out,
    which: &str,
    method: Method,
    rest: &str,
    body: Option<Value>,
) -> Result<Exit, Failure> {
    let id = api.tenant_id(which).await?;
    api.require_token()?;
    let path = format!("/api/tenants/{}{rest}", segment(&id));
    let answer = api.call(method, &path, body.as_ref()).await?.body;
    let line = match rest {
        "/suspend" => format!("suspended {which}: its users may read, but start no runs"),
        "/activate" => format!("activated {which}"),
        "/subscription" => format!("{which} is on the {} tier now; its quotas are the tier's", cell(&answer["tier"])),
        _ => format!("deleted {which}: its record and history stay"),
    };
    done(out, answer, &line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_storage_use_is_shown_in_bytes() {
        let q = |v: Value| used(&v);
        assert_eq!(q(serde_json::json!({ "used": 0, "usedBytes": 1100 })), "1.1 kB");
        assert_eq!(q(serde_json::json!({ "used": 0, "usedBytes": 12 })), "12 B");
        assert_eq!(q(serde_json::json!({ "used": 3 })), "3");
    }
}
