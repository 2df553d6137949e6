//! The JSON shapes of the schema registry. `schemaDefinition` is accepted
//! as JSON text (as the original's clients send it) or as a JSON object,
//! and always answered as an object.

use chrono::{DateTime, Utc};
use hotswap_actors::schemas::{BreakingChange, Compatibility, NewSchema, PayloadError, SchemaSubject, SchemaVersion};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaBody {
    /// The subject: letters, digits, '.', '_' and '-'.
    #[schema(example = "orders.created", pattern = "^[A-Za-z0-9._-]{1,200}$")]
    pub schema_id: String,
    /// A JSON Schema (draft 7 or 2020-12): an object or a boolean (JSON
    /// text holding one is taken too).
    #[schema(schema_with = super::schema_limits::json_schema_value)]
    pub schema_definition: Value,
    /// None, Backward, Forward, Full, or their Transitive variants (the
    /// server also takes them in any case, with '_' or '-'). Left out: the
    /// subject's (Backward for a new subject). Only an Admin changes a
    /// subject's mode: anyone else's version naming another mode is a Draft
    /// for an Admin to approve.
    #[schema(
        example = "Backward",
        pattern = "^(None|Backward|BackwardTransitive|Forward|ForwardTransitive|Full|FullTransitive)$"
    )]
    pub compatibility: Option<String>,
    /// Refused: the registry decides the status.
    #[schema(value_type = Option<String>, read_only)]
    pub status: Option<Value>,
}

impl SchemaBody {
    pub fn into_new_schema(self) -> Result<NewSchema, Vec<String>> {
        let mut problems = Vec::new();
        if self.status.is_some() {
            problems.push("status: set by the registry (Draft, or Approved when compatible), not by the client".into());
        }
        // Left out: the subject's mode stays (Backward for a new subject).
        let compatibility = match self.compatibility.as_deref().map(str::parse::<Compatibility>) {
            None => None,
            Some(Ok(c)) => Some(c),
            Some(Err(e)) => {
                problems.push(format!("compatibility: {e}"));
                None
            }
        };
        let definition = match self.schema_definition {
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(v) => v,
                Err(e) => {
                    problems.push(format!("schemaDefinition: the text is not JSON: {e}"));
                    Value::Null
                }
            },
            other => other,
        };
        if problems.is_empty() {
            Ok(NewSchema { schema_id: self.schema_id, definition, compatibility })
        } else {
            Err(problems)
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BreakingChangeView {
    #[schema(example = "$.order.lines[*].qty")]
    pub path: String,
    #[schema(example = "TypeChanged")]
    pub change: String,
    pub detail: String,
    pub against_version: u32,
}

impl From<BreakingChange> for BreakingChangeView {
    fn from(c: BreakingChange) -> Self {
        BreakingChangeView { path: c.path, change: c.change, detail: c.detail, against_version: c.against_version }
    }
}

/// One version of a subject.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaVersionView {
    pub schema_id: String,
    pub version: u32,
    #[schema(schema_with = super::schema_limits::json_schema_value)]
    pub schema_definition: Value,
    #[schema(example = "Backward")]
    pub compatibility: String,
    /// Draft, Approved or Rejected.
    #[schema(example = "Approved")]
    pub status: String,
    pub breaking_changes: Vec<BreakingChangeView>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub decision_reason: Option<String>,
    /// The subject is deprecated.
    pub deprecated: bool,
}

impl SchemaVersionView {
    pub fn new(v: SchemaVersion, deprecated: bool) -> Self {
        let decision = v.decision;
        SchemaVersionView {
            schema_id: v.schema_id,
            version: v.version,
            schema_definition: v.definition,
            compatibility: v.compatibility.as_str().to_string(),
            status: v.status.as_str().to_string(),
            breaking_changes: v.breaking_changes.into_iter().map(Into::into).collect(),
            created_by: v.created_by,
            created_at: v.created_at,
            decided_by: decision.as_ref().map(|d| d.by.clone()),
            decided_at: decision.as_ref().map(|d| d.at),
            decision_reason: decision.and_then(|d| d.reason),
            deprecated,
        }
    }

    pub fn all(subject: SchemaSubject) -> Vec<Self> {
        let deprecated = subject.deprecated.is_some();
        subject.versions.into_iter().map(|v| SchemaVersionView::new(v, deprecated)).collect()
    }
}

/// A subject in the list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSummaryView {
    pub schema_id: String,
    pub latest_version: u32,
    /// The version publishes validate against by default.
    pub latest_approved_version: Option<u32>,
    /// The latest version's status.
    pub status: String,
    /// The subject's: its latest approved version's (a Draft naming another
    /// mode does not change it until approved).
    pub compatibility: String,
    pub version_count: usize,
    pub deprecated: bool,
    pub deprecated_at: Option<DateTime<Utc>>,
}

impl SchemaSummaryView {
    pub fn new(s: &SchemaSubject) -> Option<Self> {
        let latest = s.latest()?;
        Some(SchemaSummaryView {
            schema_id: s.schema_id.clone(),
            latest_version: latest.version,
            latest_approved_version: s.latest_approved().map(|v| v.version),
            status: latest.status.as_str().to_string(),
            compatibility: s.compatibility().as_str().to_string(),
            version_count: s.versions.len(),
            deprecated: s.deprecated.is_some(),
            deprecated_at: s.deprecated.as_ref().map(|d| d.at),
        })
    }
}

/// An optional reason given with an approval or rejection.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaDecisionBody {
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PayloadErrorView {
    /// A JSON pointer into the payload ("" is the whole payload).
    #[schema(example = "/lines/1/qty")]
    pub path: String,
    pub message: String,
    /// The JSON Schema keyword that refused it.
    #[schema(example = "type")]
    pub kind: String,
}

impl From<PayloadError> for PayloadErrorView {
    fn from(e: PayloadError) -> Self {
        PayloadErrorView { path: e.path, message: e.message, kind: e.kind }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ValidationView {
    pub is_valid: bool,
    pub errors: Vec<PayloadErrorView>,
    pub schema_id: String,
    /// The version checked against.
    pub version: u32,
}
