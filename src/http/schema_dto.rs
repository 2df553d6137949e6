//! The JSON shapes of the schema registry. `schemaDefinition` is accepted
//! as JSON text (as the original's clients send it) or as a JSON object,
//! and always answered as an object.

use chrono::{DateTime, Utc};
use hotswap_actors::schemas::{
    BreakingChange, Compatibility, Deprecation, NewSchema, PayloadError, SchemaSubject, SchemaVersion,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

/// A registration. Besides this API's fields it takes the original's
/// MessageSchema as its clients send it: `version` (ignored: the registry
/// numbers versions itself), `compatibility` and `status` as the original's
/// enum positions, `status` only as Draft (approval is a separate step), and
/// the fields the registry sets (`createdAt` ignored; the decision fields
/// only as null).
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
    /// Ignored: the registry numbers a subject's versions 1, 2, 3... and
    /// answers the number it gave. Taken so that the original's clients,
    /// which send "1.0", can register.
    #[allow(dead_code)] // Taken from the original's clients and dropped.
    #[serde(default, deserialize_with = "version_label")]
    #[schema(schema_with = version_label_document)]
    pub version: Option<()>,
    /// None, Backward, Forward, Full, or their Transitive variants (the
    /// server also takes them in any case, with '_' or '-'), or the
    /// original's positions 0-3 (None, Backward, Forward, Full). Left out:
    /// the subject's (Backward for a new subject). Only an Admin changes a
    /// subject's mode: anyone else's version naming another mode is a Draft
    /// for an Admin to approve.
    #[serde(default, deserialize_with = "compatibility_name_or_position")]
    #[schema(schema_with = compatibility_document)]
    pub compatibility: Option<NameOrPosition>,
    /// Only Draft ("Draft" or the original's 0), which changes nothing: the
    /// registry decides the status, and approval is a separate step.
    #[serde(default, deserialize_with = "status_name_or_position")]
    #[schema(schema_with = status_document)]
    pub status: Option<NameOrPosition>,
    /// Ignored: the registry sets it.
    #[allow(dead_code)] // Taken from the original's clients and dropped.
    pub created_at: Option<String>,
    /// The original's decision and deprecation fields: only null (the
    /// registry's approve and deprecate steps set them).
    #[schema(schema_with = registry_set_document)]
    pub approved_by: Option<Value>,
    #[schema(schema_with = registry_set_document)]
    pub approved_at: Option<Value>,
    #[schema(schema_with = registry_set_document)]
    pub deprecated_at: Option<Value>,
    #[schema(schema_with = registry_set_document)]
    pub deprecation_reason: Option<Value>,
    /// Only null: the registry keeps no migration guide.
    #[schema(schema_with = registry_set_document)]
    pub migration_guide: Option<Value>,
}

/// An enum's member as the original's clients write it: by name, or by its
/// position in the original's declaration (System.Text.Json's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameOrPosition {
    Name(String),
    Position(u64),
}

/// The original's SchemaCompatibility, in declaration order.
const ORIGINAL_COMPATIBILITY: [Compatibility; 4] =
    [Compatibility::None, Compatibility::Backward, Compatibility::Forward, Compatibility::Full];
/// The original's SchemaStatus, in declaration order.
const ORIGINAL_SCHEMA_STATUS: [&str; 5] = ["Draft", "PendingApproval", "Approved", "Rejected", "Deprecated"];

/// A name, or a whole number (JSON's `2.0` included); `field` names the
/// refusal of anything else.
fn name_or_position<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
    field: &str,
) -> Result<Option<NameOrPosition>, D::Error> {
    use serde::de::Error;
    match Option::<Value>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Value::String(name)) => Ok(Some(NameOrPosition::Name(name))),
        Some(Value::Number(n)) => {
            let whole = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
            whole
                .map(|p| Some(NameOrPosition::Position(p)))
                .ok_or_else(|| D::Error::custom(format!("{field}: {n} is not a name or a position (0, 1, 2...)")))
        }
        Some(other) => Err(D::Error::custom(format!("{field}: {other} is not a name or a position (0, 1, 2...)"))),
    }
}

fn compatibility_name_or_position<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NameOrPosition>, D::Error> {
    name_or_position(d, "compatibility")
}

fn status_name_or_position<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<NameOrPosition>, D::Error> {
    name_or_position(d, "status")
}

/// Any text or whole number, kept by nobody.
fn version_label<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<()>, D::Error> {
    name_or_position(d, "version").map(|v| v.map(|_| ()))
}

fn version_label_document() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).examples(["1.0"]))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some("Ignored: the registry numbers a subject's versions itself"))
            .build(),
    )
}

fn compatibility_document() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new().schema_type(Type::String).examples(["Backward"]).pattern(Some(
                    "^(None|Backward|BackwardTransitive|Forward|ForwardTransitive|Full|FullTransitive)$",
                )),
            )
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(3)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "A mode's name, or the original's position: 0 None, 1 Backward, 2 Forward, 3 Full; \
                 the subject's mode (Backward for a new subject) when left out",
            ))
            .build(),
    )
}

fn status_document() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["Draft"])))
            .item(ObjectBuilder::new().schema_type(Type::Integer).enum_values(Some([0])))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "Only Draft (the original's 0), which changes nothing: the registry sets the status, \
                 and an Admin approves a version in a separate step",
            ))
            .build(),
    )
}

fn registry_set_document() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(Type::Null)
            .description(Some("Only null: the registry's approve and deprecate steps set it"))
            .build(),
    )
}

impl SchemaBody {
    pub fn into_new_schema(self) -> Result<NewSchema, Vec<String>> {
        let mut problems = Vec::new();
        if let Some(refusal) = self.status.as_ref().and_then(status_refusal) {
            problems.push(refusal);
        }
        for (field, value) in [
            ("approvedBy", &self.approved_by),
            ("approvedAt", &self.approved_at),
            ("deprecatedAt", &self.deprecated_at),
            ("deprecationReason", &self.deprecation_reason),
            ("migrationGuide", &self.migration_guide),
        ] {
            if value.as_ref().is_some_and(|v| !v.is_null()) {
                problems.push(format!(
                    "{field}: only null is taken; the registry records decisions and deprecations through \
                     its approve, reject and deprecate endpoints"
                ));
            }
        }
        // Left out: the subject's mode stays (Backward for a new subject).
        let compatibility = match self.compatibility {
            None => None,
            Some(given) => match compatibility_of(&given) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!("compatibility: {e}"));
                    None
                }
            },
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

fn compatibility_of(given: &NameOrPosition) -> Result<Compatibility, String> {
    match given {
        NameOrPosition::Name(name) => name.parse(),
        NameOrPosition::Position(p) => usize::try_from(*p)
            .ok()
            .and_then(|p| ORIGINAL_COMPATIBILITY.get(p).copied())
            .ok_or_else(|| format!("position {p} is none of 0 None, 1 Backward, 2 Forward, 3 Full")),
    }
}

/// Draft is what every registration starts as, so a client's Draft is
/// taken; any other status would have the client decide its own approval
/// (the original let it), which only an Admin's decision may do.
fn status_refusal(given: &NameOrPosition) -> Option<String> {
    let named = match given {
        NameOrPosition::Name(name) if name == "Draft" => return None,
        NameOrPosition::Position(0) => return None,
        NameOrPosition::Name(name) => format!("{name:?}"),
        NameOrPosition::Position(p) => match usize::try_from(*p).ok().and_then(|p| ORIGINAL_SCHEMA_STATUS.get(p)) {
            Some(name) => format!("{p} ({name})"),
            None => p.to_string(),
        },
    };
    Some(format!(
        "status: only Draft (or 0) is taken, not {named}. The registry sets a new version's status (Draft, or \
         Approved at once when compatible with the approved versions); approval is a separate step, an Admin's \
         POST /api/v1/schemas/{{id}}/versions/{{version}}/approve"
    ))
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
    /// Why the subject was deprecated, when a reason was given.
    pub deprecation_reason: Option<String>,
}

impl SchemaVersionView {
    pub fn new(v: SchemaVersion, deprecated: Option<&Deprecation>) -> Self {
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
            deprecated: deprecated.is_some(),
            deprecation_reason: deprecated.and_then(|d| d.reason.clone()),
        }
    }

    pub fn all(subject: SchemaSubject) -> Vec<Self> {
        let deprecated = subject.deprecated;
        subject.versions.into_iter().map(|v| SchemaVersionView::new(v, deprecated.as_ref())).collect()
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
    /// Why it was deprecated, when a reason was given.
    pub deprecation_reason: Option<String>,
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
            deprecation_reason: s.deprecated.as_ref().and_then(|d| d.reason.clone()),
        })
    }
}

/// An optional reason given with an approval, a rejection or a deprecation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SchemaDecisionBody {
    pub reason: Option<String>,
}

/// The original's form of a deprecation: `?deprecatedBy=&reason=`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeprecateQuery {
    /// Why, as the body's `reason` may say instead (not both).
    pub reason: Option<String>,
    /// Taken from the original's clients and ignored: the deprecation is
    /// recorded as the token's user's.
    #[allow(dead_code)] // Declared so that the original's query is not refused.
    pub deprecated_by: Option<String>,
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
