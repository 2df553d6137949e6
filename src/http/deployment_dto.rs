//! Request and response bodies of /api/v1/deployments, in the original's camelCase.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use hotswap_actors::domain::{DeploymentRequest, Environment, RunRecord, RunSummary, Stage, Strategy};
use regex::Regex;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;
use validator::{Validate, ValidationError, ValidationErrors};

use super::format::timespan;
use crate::registry::upload::MAX_VERSION_CHARS;
use crate::web::ApiError;

#[allow(clippy::expect_used)] // A constant pattern, checked by the tests.
static MODULE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$").expect("valid regex"));

const MAX_METADATA_ENTRIES: usize = 50;
const MAX_METADATA_KEY: usize = 100;
const MAX_METADATA_VALUE: usize = 500;
/// Metadata problems a 400 names one by one; the rest are counted.
const METADATA_PROBLEMS_NAMED: usize = 5;
/// The characters of a key a metadata problem repeats.
const KEY_CHARS_NAMED: usize = 20;
/// Host names a run's view lists of the nodes it left on its version: a run
/// over 100,000 nodes whose restores failed must not answer (and send to every
/// live client) 100,000 names; `nodesLeftOnNewVersionCount` counts them all.
pub const LEFT_NODES_LISTED: usize = 100;

/// Every field is optional here so that missing ones are reported together
/// with the invalid ones, in one 400.
#[derive(Debug, Deserialize, Validate, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateDeploymentBody {
    #[validate(
        required(message = "moduleName is required"),
        regex(path = *MODULE_NAME, message = "moduleName must be 3-64 lowercase letters, digits or hyphens, starting and ending with a letter or digit")
    )]
    #[schema(required, pattern = "^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$", example = "netfilter-ext")]
    pub module_name: Option<String>,
    /// A semantic version such as 1.2.3 or 1.0.0-beta.1.
    #[validate(required(message = "version is required"), custom(function = "semantic_version"))]
    #[schema(
        required,
        max_length = 128,
        pattern = "^(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})\\.(0|[1-9][0-9]{0,8})$",
        example = "1.4.0"
    )]
    pub version: Option<String>,
    /// Development, QA, Staging or Production, in any case.
    #[validate(required(message = "targetEnvironment is required"), custom(function = "known_environment"))]
    #[schema(required, example = "QA")]
    pub target_environment: Option<String>,
    #[validate(
        required(message = "requesterEmail is required"),
        custom(function = "email_rule", message = "requesterEmail must be a valid email address")
    )]
    #[schema(
        required,
        max_length = 254,
        pattern = "^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\\.)+[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$",
        example = "me@example.com"
    )]
    pub requester_email: Option<String>,
    #[validate(length(max = 1000, message = "description must be at most 1000 characters"))]
    pub description: Option<String>,
    pub require_approval: Option<bool>,
    // Checked by `metadata_problems`, which lists every problem (a validator
    // rule reports one per field).
    pub metadata: Option<BTreeMap<String, String>>,
    #[validate(custom(function = "known_strategy"))]
    pub strategy: Option<String>,
    /// Rising percentages ending at 100, such as [10, 50, 100], for a run
    /// with a Canary stage.
    #[schema(schema_with = canary_steps_schema)]
    pub canary_steps: Option<Vec<u32>>,
    /// Deploy a version lower than the highest one the tenant's nodes run
    /// (refused with 422 otherwise); every use is audited.
    pub allow_downgrade: Option<bool>,
}

/// 1 to 10 percentages, each 1 to 100, or null (the rising order, and that
/// some stage of the run is a canary, are checked by the server).
fn canary_steps_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
    let percent = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(100));
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(percent)
        .min_items(Some(1))
        .max_items(Some(10))
        .description(Some(
            "Rising percentages ending at 100, such as [10, 50, 100]. Only for a run with a Canary stage: a target of Production with no other strategy named, or strategy Canary.",
        ))
        .build()
}

fn invalid(message: String) -> ValidationError {
    ValidationError::new("invalid").with_message(message.into())
}

fn semantic_version(v: &str) -> Result<(), ValidationError> {
    if v.chars().count() > MAX_VERSION_CHARS {
        return Err(invalid(format!("version may hold at most {MAX_VERSION_CHARS} characters")));
    }
    semver::Version::parse(v)
        .map(|_| ())
        .map_err(|_| invalid(format!("version '{v}' is not a semantic version such as 1.2.3 or 1.0.0-beta.1")))
}

fn known_environment(v: &str) -> Result<(), ValidationError> {
    v.parse::<Environment>().map(|_| ()).map_err(|e| invalid(format!("targetEnvironment: {e}")))
}

fn known_strategy(v: &str) -> Result<(), ValidationError> {
    Strategy::parse(v)
        .map(|_| ())
        .ok_or_else(|| invalid(format!("strategy '{v}' is not one of Direct, Rolling, BlueGreen, Canary")))
}

fn email_rule(email: &str) -> Result<(), ValidationError> {
    if hotswap_actors::domain::is_email(email) {
        Ok(())
    } else {
        Err(ValidationError::new("email"))
    }
}

/// Every problem of a request's metadata, so that one 400 lists them all:
/// too many entries, then each blank or too long key and each too long value,
/// the first [`METADATA_PROBLEMS_NAMED`] by name and the rest counted.
fn metadata_problems(m: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    if m.len() > MAX_METADATA_ENTRIES {
        problems.push(format!("metadata may hold at most {MAX_METADATA_ENTRIES} entries"));
    }
    let blank_keys = m.keys().filter(|k| k.trim().is_empty()).count();
    let mut entries = Vec::new();
    if blank_keys > 0 {
        entries.push(match blank_keys {
            1 => "metadata keys must not be blank".to_string(),
            n => format!("metadata keys must not be blank ({n} are)"),
        });
    }
    for (k, v) in m {
        let blank = k.trim().is_empty();
        if !blank && k.chars().count() > MAX_METADATA_KEY {
            entries.push(format!("metadata key {} is longer than {MAX_METADATA_KEY} characters", quoted_key(k)));
        }
        if v.chars().count() > MAX_METADATA_VALUE {
            let of = if blank { "a blank key".to_string() } else { quoted_key(k) };
            entries.push(format!("metadata value of {of} is longer than {MAX_METADATA_VALUE} characters"));
        }
    }
    if entries.len() > METADATA_PROBLEMS_NAMED {
        let rest = entries.len() - METADATA_PROBLEMS_NAMED;
        entries.truncate(METADATA_PROBLEMS_NAMED);
        entries.push(format!("and {rest} more metadata {} like these", if rest == 1 { "problem" } else { "problems" }));
    }
    problems.extend(entries);
    problems
}

/// A key as a message names it: quoted, and cut to its start when long
/// (a 100 KB key must not come back in full).
fn quoted_key(k: &str) -> String {
    let start: String = k.chars().take(KEY_CHARS_NAMED).collect();
    if start.len() < k.len() {
        format!("'{start}…'")
    } else {
        format!("'{start}'")
    }
}

/// Flattens validator's errors into (field, message), in field order.
fn messages(errors: &ValidationErrors) -> Vec<(String, String)> {
    let mut fields: Vec<_> = errors.field_errors().into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .flat_map(|(field, errs)| {
            errs.iter().map(move |e| {
                let message =
                    e.message.as_ref().map(|m| m.to_string()).unwrap_or_else(|| format!("{field} is invalid"));
                (field.to_string(), message)
            })
        })
        .collect()
}

/// The fields of a create that name the module version; a batch gives them
/// per item, every other field once for all its runs.
pub(super) const ITEM_FIELDS: [&str; 2] = ["module_name", "version"];

impl CreateDeploymentBody {
    /// Every problem of the body, each with the field it concerns (the
    /// struct's field name), in the order a 400 lists them. The one check of
    /// a create's fields: `POST /deployments` and each item of a batch both
    /// use it, so the two cannot drift.
    pub(super) fn problems(&self) -> Vec<(String, String)> {
        let mut problems = self.validate().err().map(|e| messages(&e)).unwrap_or_default();
        let metadata = self.metadata.as_ref().map(metadata_problems).unwrap_or_default();
        problems.extend(metadata.into_iter().map(|m| ("metadata".to_string(), m)));
        problems
    }

    pub fn into_request(self) -> Result<DeploymentRequest, ApiError> {
        let problems: Vec<String> = self.problems().into_iter().map(|(_, message)| message).collect();
        if !problems.is_empty() {
            return Err(ApiError::validation(problems));
        }
        // validate() guarantees every required field is present and parses.
        let (Some(module_name), Some(version), Some(env), Some(requester_email)) =
            (self.module_name, self.version, self.target_environment, self.requester_email)
        else {
            return Err(ApiError::BadRequest("required fields are missing".into()));
        };
        Ok(DeploymentRequest {
            module_name,
            version,
            target_environment: env
                .parse()
                .map_err(|e: hotswap_actors::domain::UnknownEnvironment| ApiError::BadRequest(e.to_string()))?,
            requester_email,
            description: self.description,
            require_approval: self.require_approval.unwrap_or(false),
            metadata: self.metadata.unwrap_or_default(),
            strategy: self.strategy.as_deref().and_then(Strategy::parse),
            canary_steps: self.canary_steps,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Links {
    #[serde(rename = "self")]
    pub self_link: String,
    pub trace: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentAccepted {
    pub execution_id: Uuid,
    pub status: &'static str,
    pub start_time: DateTime<Utc>,
    pub estimated_duration: String,
    pub trace_id: String,
    pub links: Links,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageView {
    pub name: String,
    pub status: &'static str,
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    #[schema(value_type = Option<StrategyName>)]
    pub strategy: Option<Strategy>,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration: String,
    pub nodes_deployed: Option<u32>,
    pub nodes_failed: Option<u32>,
    pub message: String,
}

impl From<&Stage> for StageView {
    fn from(s: &Stage) -> Self {
        let duration = match (s.start_time, s.end_time) {
            (Some(start), Some(end)) => end - start,
            (Some(start), None) => Utc::now() - start,
            _ => chrono::Duration::zero(),
        };
        StageView {
            name: s.name.clone(),
            status: s.status.as_str(),
            environment: s.environment,
            strategy: s.strategy,
            start_time: s.start_time,
            end_time: s.end_time,
            duration: timespan(duration),
            nodes_deployed: s.nodes_deployed,
            nodes_failed: s.nodes_failed,
            message: s.message.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackView {
    pub rollback_id: Uuid,
    pub status: String,
    pub nodes_affected: u32,
    pub requested_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    pub execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    #[schema(value_type = EnvironmentName)]
    pub target_environment: Environment,
    pub requester_email: String,
    pub description: Option<String>,
    pub require_approval: bool,
    pub metadata: BTreeMap<String, String>,
    pub status: &'static str,
    pub message: String,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration: String,
    pub stages: Vec<StageView>,
    pub rollback: Option<RollbackView>,
    pub trace_id: String,
    /// Nodes whose restore kept failing: they may still run this version.
    /// The first `LEFT_NODES_LISTED` host names; the count says how many in all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub nodes_left_on_new_version: Vec<String>,
    /// How many nodes were left on this version (absent when none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nodes_left_on_new_version_count: Option<usize>,
    /// The timer the run is waiting on now, if any: live clients count it down.
    pub current_wait: Option<CurrentWaitView>,
    /// The instance that drives the run (`cluster.instance_id`); null before any has claimed it.
    pub owner_instance: Option<String>,
}

/// A wait a run is in: a rolling health-check delay, a canary bake, a
/// blue-green smoke test's deadline or an approval's expiry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentWaitView {
    /// HealthCheckDelay, CanaryBake, SmokeTest or Approval.
    pub kind: &'static str,
    #[schema(value_type = Option<EnvironmentName>)]
    pub environment: Option<Environment>,
    /// The 0-based wave just deployed, for health-check delays and bakes.
    pub wave: Option<usize>,
    pub until: DateTime<Utc>,
}

/// The wait the run is in. A deploy wait whose end has passed is not waited
/// on any more: a run paused in one and restarted kept showing it (its
/// timer, which would have moved the checkpoint on, died with the process).
fn current_wait(r: &RunRecord) -> Option<CurrentWaitView> {
    use hotswap_actors::domain::{Checkpoint, DeployStep};
    let now = Utc::now();
    match &r.checkpoint {
        Checkpoint::AwaitingApproval { timeout_at, .. } => {
            Some(CurrentWaitView { kind: "Approval", environment: None, wave: None, until: *timeout_at })
        }
        Checkpoint::Deploy { environment, step: DeployStep::Wait { wave, until }, .. } if *until > now => {
            Some(CurrentWaitView {
                kind: match r.request.strategy_for(*environment) {
                    Strategy::Canary => "CanaryBake",
                    _ => "HealthCheckDelay",
                },
                environment: Some(*environment),
                wave: Some(*wave),
                until: *until,
            })
        }
        Checkpoint::Deploy { environment, step: DeployStep::SmokeTest { deadline }, .. } if *deadline > now => {
            Some(CurrentWaitView { kind: "SmokeTest", environment: Some(*environment), wave: None, until: *deadline })
        }
        _ => None,
    }
}

impl From<&RunRecord> for DeploymentView {
    fn from(r: &RunRecord) -> Self {
        DeploymentView {
            execution_id: r.execution_id,
            module_name: r.request.module_name.clone(),
            version: r.request.version.clone(),
            target_environment: r.request.target_environment,
            requester_email: r.request.requester_email.clone(),
            description: r.request.description.clone(),
            require_approval: r.request.require_approval,
            metadata: r.request.metadata.clone(),
            status: r.status.as_str(),
            message: r.message.clone(),
            start_time: r.created_at,
            end_time: r.finished_at,
            duration: timespan(r.finished_at.unwrap_or_else(Utc::now) - r.created_at),
            stages: r.stages.iter().map(StageView::from).collect(),
            rollback: r.rollback.as_ref().map(|rb| RollbackView {
                rollback_id: rb.rollback_id,
                status: rb.status.clone(),
                nodes_affected: rb.nodes_affected,
                requested_at: rb.requested_at,
                finished_at: rb.finished_at,
                message: rb.message.clone(),
            }),
            trace_id: r.trace_id.clone(),
            nodes_left_on_new_version: r.nodes_left_on_new_version.iter().take(LEFT_NODES_LISTED).cloned().collect(),
            nodes_left_on_new_version_count: Some(r.nodes_left_on_new_version.len()).filter(|n| *n > 0),
            current_wait: current_wait(r),
            owner_instance: r.owner.as_ref().map(|o| o.instance.clone()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentSummaryView {
    pub execution_id: Uuid,
    pub module_name: String,
    pub version: String,
    #[schema(value_type = EnvironmentName)]
    pub target_environment: Environment,
    pub status: &'static str,
    pub start_time: DateTime<Utc>,
    pub end_time: Option<DateTime<Utc>>,
    pub duration: String,
    /// The instance that drives the run (`cluster.instance_id`); null before any has claimed it.
    pub owner_instance: Option<String>,
}

impl From<&RunSummary> for DeploymentSummaryView {
    fn from(s: &RunSummary) -> Self {
        DeploymentSummaryView {
            execution_id: s.execution_id,
            module_name: s.module_name.clone(),
            version: s.version.clone(),
            target_environment: s.target_environment,
            status: s.status.as_str(),
            start_time: s.created_at,
            end_time: s.finished_at,
            duration: timespan(s.finished_at.unwrap_or_else(Utc::now) - s.created_at),
            owner_instance: s.owner_instance.clone(),
        }
    }
}

/// The highest page number a list takes: the document's integers are 32-bit.
pub const MAX_PAGE: u32 = i32::MAX as u32;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListQuery {
    /// 1-based; default 1.
    #[param(minimum = 1, maximum = 2147483647)]
    pub page: Option<u32>,
    /// At most 100; default 50.
    #[param(minimum = 1, maximum = 100)]
    pub page_size: Option<u32>,
    /// A run status such as Running or Succeeded, in any case.
    #[param(pattern = "^(Running|PendingApproval|Paused|Succeeded|Failed|RolledBack|Cancelled)$")]
    pub status: Option<String>,
    pub module_name: Option<String>,
    /// Development, QA, Staging or Production, in any case.
    #[param(pattern = "^(Development|QA|Staging|Production)$")]
    pub environment: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VerbResponse {
    pub execution_id: Uuid,
    pub status: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackAcceptedView {
    pub rollback_id: Uuid,
    pub status: &'static str,
    pub nodes_affected: u32,
}

/// An environment, in promotion order.
#[derive(ToSchema)]
#[allow(dead_code, clippy::upper_case_acronyms)] // Only describes the strings in the document.
pub enum EnvironmentName {
    Development,
    QA,
    Staging,
    Production,
}

/// A deployment strategy.
#[derive(ToSchema)]
#[allow(dead_code)] // Only describes the strings in the document.
pub enum StrategyName {
    Direct,
    Rolling,
    BlueGreen,
    Canary,
}

/// Something that happened to a run.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)] // Describes the store's RunEvent as the API renders it.
pub struct RunEventView {
    pub tenant_id: Uuid,
    pub execution_id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub message: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run whose restores failed on 10,000 nodes answers the first hundred
    /// host names and the count, not all of them.
    #[test]
    fn a_run_view_lists_a_few_nodes_left_behind_and_counts_them_all() {
        let request = serde_json::from_value(serde_json::json!({
            "moduleName": "netx", "version": "2.0.0", "targetEnvironment": "Development",
            "requesterEmail": "ops@example.com",
        }))
        .unwrap();
        let mut run = RunRecord::admitted(Uuid::new_v4(), Uuid::new_v4(), request);
        let clean = serde_json::to_value(DeploymentView::from(&run)).unwrap();
        assert!(clean.get("nodesLeftOnNewVersion").is_none() && clean.get("nodesLeftOnNewVersionCount").is_none());

        run.nodes_left_on_new_version = (0..10_000).map(|i| format!("development-{i:05}")).collect();
        let view = serde_json::to_value(DeploymentView::from(&run)).unwrap();
        let listed = view["nodesLeftOnNewVersion"].as_array().unwrap();
        assert_eq!(listed.len(), LEFT_NODES_LISTED);
        assert_eq!((listed[0].as_str(), listed[99].as_str()), (Some("development-00000"), Some("development-00099")));
        assert_eq!(view["nodesLeftOnNewVersionCount"], 10_000);
    }
}
