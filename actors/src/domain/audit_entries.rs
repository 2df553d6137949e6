//! Which audit entries a run's history makes. A store calls [`run_entries`]
//! inside the transaction that saves the run's events, so a change and its
//! audit entries are written together or not at all.

use serde_json::{json, Value};
use uuid::Uuid;

use super::{AuditActor, AuditCategory, AuditResult, NewAuditEntry, RunEvent, RunRecord, TenantId, UserRecord};

/// The key of a run event's data that names who caused it; absent means the
/// system did (a coordinator step, a timer).
pub const ACTOR_KEY: &str = "actor";

/// The resource type of the entries about a run (its id is the execution id).
pub const RUN_RESOURCE: &str = "Deployment";

/// The audit entries for `events` of `run`. Progress and per-node events stay
/// out: a stage's completion carries its node counts instead.
pub fn run_entries(run: &RunRecord, events: &[RunEvent]) -> Vec<NewAuditEntry> {
    events.iter().filter_map(|e| run_entry(run, e)).collect()
}

fn run_entry(run: &RunRecord, event: &RunEvent) -> Option<NewAuditEntry> {
    let (category, result) = match event.kind.as_str() {
        "DeploymentProgress" | "NodeUpdated" => return None,
        // The decision's own entry is written with it, by the decider.
        "ApprovalDecided" => return None,
        "DeploymentFailed" | "NodesFailed" | "RollbackFailed" | "CoordinatorEscalated" => {
            (AuditCategory::Deployment, AuditResult::Failure)
        }
        "StageCompleted" if event.data.get("status").and_then(Value::as_str) == Some("Failed") => {
            (AuditCategory::Deployment, AuditResult::Failure)
        }
        "ApprovalRejected" | "ApprovalExpired" => (AuditCategory::Approval, AuditResult::Denied),
        kind if kind.starts_with("Approval") => (AuditCategory::Approval, AuditResult::Success),
        _ => (AuditCategory::Deployment, AuditResult::Success),
    };
    let mut actor = event
        .data
        .get(ACTOR_KEY)
        .and_then(|a| serde_json::from_value::<AuditActor>(a.clone()).ok())
        .unwrap_or_else(AuditActor::system);
    // A user's verb carries the trace of the request that sent it (the
    // `X-Trace-Id` its caller was given); the run's own steps carry the run's
    // trace, which its API responses and live events name too.
    let request_trace = actor.trace_id.take().filter(|t| *t != run.trace_id);
    actor.trace_id = Some(request_trace.clone().unwrap_or_else(|| run.trace_id.clone()));
    let mut details = event.data.clone();
    if let Some(map) = details.as_object_mut() {
        map.remove(ACTOR_KEY);
        if request_trace.is_some() {
            map.insert("runTraceId".into(), json!(run.trace_id));
        }
        map.insert("module".into(), json!(run.request.module_name));
        map.insert("version".into(), json!(run.request.version));
        map.insert("targetEnvironment".into(), json!(run.request.target_environment.as_str()));
    }
    // Every operator's verb is audited under one type: pause and resume are
    // status changes in the run's history (live clients follow them as
    // such), but an auditor filtering VerbAccepted must find them beside
    // promote and abort.
    let event_type = match event.kind.as_str() {
        "DeploymentStatusChanged" if event.data.get("verb").is_some() => "VerbAccepted",
        kind => kind,
    };
    let mut entry = NewAuditEntry::new(run.tenant_id, actor, category, event_type)
        .resource(RUN_RESOURCE, run.execution_id)
        .result(result)
        .message(event.message.clone())
        .details(details);
    entry.at = event.at;
    Some(entry)
}

/// The entry recording what became of a run's pending approval: granted,
/// rejected, expired or closed by an abort. Like the request's own entry (a
/// run event), it is about the run, so that the run's id finds the approval's
/// whole story; the approval's id is in its details, beside `details`.
pub fn approval_outcome_entry(
    tenant: TenantId,
    actor: AuditActor,
    event_type: &str,
    execution_id: Uuid,
    approval_id: Uuid,
    details: Value,
) -> NewAuditEntry {
    let mut details = match details {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    details.insert("executionId".into(), json!(execution_id));
    details.insert("approvalId".into(), json!(approval_id));
    NewAuditEntry::new(tenant, actor, AuditCategory::Approval, event_type)
        .resource(RUN_RESOURCE, execution_id)
        .details(Value::Object(details))
}

/// The entry recording that the failed login `failed` locked `user` out.
pub fn lockout_entry(failed: &NewAuditEntry, user: &UserRecord) -> NewAuditEntry {
    let mut entry = failed.clone();
    entry.event_type = "AccountLocked".into();
    entry.result = AuditResult::Denied;
    entry.message = format!("account '{}' locked after {} failed logins", user.username, user.failed_login_attempts);
    entry.details = json!({ "lockoutEnd": user.lockout_end, "failedLoginAttempts": user.failed_login_attempts });
    entry
}

/// The run event data key/value naming `actor`, for events a user caused.
pub fn actor_data(actor: &AuditActor) -> Value {
    serde_json::to_value(actor).unwrap_or(Value::Null)
}
