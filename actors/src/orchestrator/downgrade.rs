//! The downgrade rule every way of creating a run applies (a single create,
//! each item of a batch, each batch step as it starts): a version below the
//! highest one the tenant's nodes run (active or previous) is how a known hole
//! comes back, so it needs the request's explicit permission and is audited.

use crate::domain::{AuditActor, AuditCategory, DeploymentRequest, NewAuditEntry, TenantId};
use crate::store::{Store, StoreResult};

/// Whether `request` is a downgrade, said in a sentence naming both versions;
/// `None` when it is not (or its version is not semantic: the request's own
/// checks refuse that).
pub async fn downgrade_of(
    store: &dyn Store,
    tenant: TenantId,
    request: &DeploymentRequest,
) -> StoreResult<Option<String>> {
    let Ok(requested) = semver::Version::parse(&request.version) else { return Ok(None) };
    let held = store.versions_held(tenant, &request.module_name).await?;
    let highest = held.iter().filter_map(|version| semver::Version::parse(version).ok()).max();
    Ok(highest.filter(|h| requested < *h).map(|highest| {
        format!(
            "{} {requested} is lower than {highest}, which the tenant's nodes run or keep as their previous version",
            request.module_name
        )
    }))
}

/// The audit entry of a downgrade deployed with permission; `how` says what
/// allowed it (`allowDowngrade`, or the batch that carried it).
pub fn downgrade_allowed_entry(
    tenant: TenantId,
    actor: &AuditActor,
    request: &DeploymentRequest,
    what: &str,
    how: &str,
) -> NewAuditEntry {
    NewAuditEntry::new(tenant, actor.clone(), AuditCategory::Deployment, "DowngradeAllowed")
        .resource("Module", format!("{}@{}", request.module_name, request.version))
        .message(format!("{what}; deployed with {how}"))
}
