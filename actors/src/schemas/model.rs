//! The registry's records: a subject is a `schemaId` with its versions, in
//! registration order, and whether it is deprecated.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::SchemaError;
use crate::domain::TenantId;

/// Which earlier versions a new version must stay compatible with.
/// Backward: readers of the new version accept what the old one allowed
/// (no new required field, no narrower type, enum or constraint). Forward:
/// the converse. Full: both. The Transitive variants check every approved
/// version rather than only the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum Compatibility {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    pub const ALL: [Compatibility; 7] = [
        Compatibility::None,
        Compatibility::Backward,
        Compatibility::BackwardTransitive,
        Compatibility::Forward,
        Compatibility::ForwardTransitive,
        Compatibility::Full,
        Compatibility::FullTransitive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Compatibility::None => "None",
            Compatibility::Backward => "Backward",
            Compatibility::BackwardTransitive => "BackwardTransitive",
            Compatibility::Forward => "Forward",
            Compatibility::ForwardTransitive => "ForwardTransitive",
            Compatibility::Full => "Full",
            Compatibility::FullTransitive => "FullTransitive",
        }
    }

    pub fn checks_backward(self) -> bool {
        matches!(
            self,
            Compatibility::Backward
                | Compatibility::BackwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    pub fn checks_forward(self) -> bool {
        matches!(
            self,
            Compatibility::Forward
                | Compatibility::ForwardTransitive
                | Compatibility::Full
                | Compatibility::FullTransitive
        )
    }

    /// Against every approved version, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive
        )
    }
}

impl std::str::FromStr for Compatibility {
    type Err = String;

    /// Case-insensitive; "Backward_Transitive" and "backward-transitive"
    /// are accepted too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let folded: String = s.chars().filter(|c| *c != '_' && *c != '-').collect::<String>().to_ascii_lowercase();
        Compatibility::ALL.into_iter().find(|c| c.as_str().to_ascii_lowercase() == folded).ok_or_else(|| {
            let names: Vec<&str> = Compatibility::ALL.iter().map(|c| c.as_str()).collect();
            format!("unknown compatibility '{s}'; expected one of {}", names.join(", "))
        })
    }
}

/// Where a version stands. Only Approved versions validate publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchemaStatus {
    /// Waiting for an Admin: the first version of a subject, and any
    /// version that breaks compatibility.
    Draft,
    Approved,
    Rejected,
}

impl SchemaStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaStatus::Draft => "Draft",
            SchemaStatus::Approved => "Approved",
            SchemaStatus::Rejected => "Rejected",
        }
    }
}

/// One way a new version breaks an earlier one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BreakingChange {
    /// Where in the data, as `$` for the root, `.name` for a property and
    /// `[*]` for every item of an array (`$.order.lines[*].sku`).
    pub path: String,
    /// A stable name: RequiredFieldAdded, TypeChanged, EnumValueRemoved,
    /// ConstraintNarrowed, AdditionalPropertiesDisallowed, PropertyRemoved
    /// (backward), and their converses (forward).
    pub change: String,
    pub detail: String,
    /// The earlier version it breaks.
    pub against_version: u32,
}

/// An Admin's decision on a Draft version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaDecision {
    pub approve: bool,
    pub by: String,
    pub at: DateTime<Utc>,
    pub reason: Option<String>,
}

/// One registered version of a subject.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaVersion {
    pub tenant_id: TenantId,
    pub schema_id: String,
    /// 1, 2, 3... in registration order.
    pub version: u32,
    pub definition: serde_json::Value,
    pub compatibility: Compatibility,
    pub status: SchemaStatus,
    /// Why it waits for an Admin (empty when it is compatible).
    pub breaking_changes: Vec<BreakingChange>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub decision: Option<SchemaDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Deprecation {
    pub by: String,
    pub at: DateTime<Utc>,
    /// Why, as the Admin gave it (the original's `deprecationReason`).
    /// Absent from deprecations stored before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A subject with its versions, oldest first (never empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaSubject {
    pub tenant_id: TenantId,
    pub schema_id: String,
    pub versions: Vec<SchemaVersion>,
    pub deprecated: Option<Deprecation>,
}

impl SchemaSubject {
    pub fn latest(&self) -> Option<&SchemaVersion> {
        self.versions.last()
    }

    pub fn latest_approved(&self) -> Option<&SchemaVersion> {
        self.versions.iter().rev().find(|v| v.status == SchemaStatus::Approved)
    }

    /// The subject's compatibility: its latest approved version's, so that
    /// only what an Admin approved (or an Admin's own registration) sets it;
    /// while nothing is approved, the latest version's (every version is a
    /// Draft then, whatever the mode).
    pub fn compatibility(&self) -> Compatibility {
        self.latest_approved().or(self.latest()).map(|v| v.compatibility).unwrap_or_default()
    }

    pub fn version(&self, n: u32) -> Result<&SchemaVersion, SchemaError> {
        self.versions
            .iter()
            .find(|v| v.version == n)
            .ok_or_else(|| SchemaError::VersionNotFound { schema_id: self.schema_id.clone(), version: n })
    }
}

/// What a client asks to register.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSchema {
    pub schema_id: String,
    pub definition: serde_json::Value,
    /// `None`: the subject's compatibility (Backward for a new subject).
    pub compatibility: Option<Compatibility>,
}

/// Who registers a version. Only an Admin may set a compatibility other
/// than the subject's: anyone else's version naming another mode waits for
/// an Admin as a Draft (approving it sets the subject's mode), so that a
/// Deployer cannot loosen the check that decides which versions are
/// approved without an Admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registrant<'a> {
    pub name: &'a str,
    pub may_set_compatibility: bool,
}

impl<'a> Registrant<'a> {
    /// An Admin: the mode a registration names applies at once.
    pub fn admin(name: &'a str) -> Self {
        Registrant { name, may_set_compatibility: true }
    }

    /// A Deployer: registers versions under the subject's mode.
    pub fn deployer(name: &'a str) -> Self {
        Registrant { name, may_set_compatibility: false }
    }
}

/// Longest subject name.
pub const MAX_SCHEMA_ID_CHARS: usize = 200;

impl NewSchema {
    /// Subject names are what topics name: letters, digits, `.`, `_`, `-`.
    pub fn validate_id(id: &str) -> Result<(), SchemaError> {
        let ok_chars = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if id.is_empty() || id.chars().count() > MAX_SCHEMA_ID_CHARS || !ok_chars {
            return Err(SchemaError::Invalid(format!(
                "schemaId must be 1-{MAX_SCHEMA_ID_CHARS} letters, digits, '.', '_' or '-'"
            )));
        }
        Ok(())
    }
}
