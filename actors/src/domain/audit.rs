//! The audit trail's vocabulary: who did what to which resource, and how it
//! went. Entries are append-only; the store offers no way to change one.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::TenantId;

/// What part of the product an entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditCategory {
    Deployment,
    Approval,
    Authentication,
    UserManagement,
    TenantManagement,
    ModuleRegistry,
    /// Signing keys and secrets.
    Security,
    /// Operators acting on the system itself (supervision controls).
    Administration,
}

impl AuditCategory {
    pub const ALL: [AuditCategory; 8] = [
        AuditCategory::Deployment,
        AuditCategory::Approval,
        AuditCategory::Authentication,
        AuditCategory::UserManagement,
        AuditCategory::TenantManagement,
        AuditCategory::ModuleRegistry,
        AuditCategory::Security,
        AuditCategory::Administration,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditCategory::Deployment => "Deployment",
            AuditCategory::Approval => "Approval",
            AuditCategory::Authentication => "Authentication",
            AuditCategory::UserManagement => "UserManagement",
            AuditCategory::TenantManagement => "TenantManagement",
            AuditCategory::ModuleRegistry => "ModuleRegistry",
            AuditCategory::Security => "Security",
            AuditCategory::Administration => "Administration",
        }
    }

    /// Case-insensitive, as a path segment is typed by people.
    pub fn parse(s: &str) -> Option<AuditCategory> {
        Self::ALL.into_iter().find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditResult {
    Success,
    Failure,
    /// Refused for want of permission, a policy or a quota.
    Denied,
}

impl AuditResult {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditResult::Success => "Success",
            AuditResult::Failure => "Failure",
            AuditResult::Denied => "Denied",
        }
    }

    pub fn parse(s: &str) -> Option<AuditResult> {
        [AuditResult::Success, AuditResult::Failure, AuditResult::Denied]
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
    }
}

/// Who caused an entry and from where: a user through the API, or the system
/// itself (a coordinator, a timer, a background actor).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditActor {
    /// The user's id; `None` for the system and for anonymous callers.
    pub id: Option<String>,
    /// The username, "system", or "anonymous".
    pub name: String,
    pub trace_id: Option<String>,
    pub source_address: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl AuditActor {
    pub const SYSTEM: &'static str = "system";

    pub fn system() -> AuditActor {
        AuditActor { name: Self::SYSTEM.into(), ..AuditActor::default() }
    }

    pub fn user(id: impl ToString, name: impl Into<String>) -> AuditActor {
        AuditActor { id: Some(id.to_string()), name: name.into(), ..AuditActor::default() }
    }

    pub fn is_system(&self) -> bool {
        self.id.is_none() && self.name == Self::SYSTEM
    }
}

/// An entry before the store gives it an id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAuditEntry {
    pub tenant_id: TenantId,
    pub at: DateTime<Utc>,
    pub actor: AuditActor,
    pub category: AuditCategory,
    pub event_type: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub result: AuditResult,
    pub message: String,
    pub details: serde_json::Value,
}

impl NewAuditEntry {
    /// A successful event, now, with no resource and no details; the
    /// builder methods below fill in the rest.
    pub fn new(tenant_id: TenantId, actor: AuditActor, category: AuditCategory, event_type: &str) -> NewAuditEntry {
        NewAuditEntry {
            tenant_id,
            at: Utc::now(),
            actor,
            category,
            event_type: event_type.to_string(),
            resource_type: None,
            resource_id: None,
            result: AuditResult::Success,
            message: String::new(),
            details: serde_json::Value::Object(Default::default()),
        }
    }

    pub fn resource(mut self, kind: &str, id: impl ToString) -> Self {
        self.resource_type = Some(kind.to_string());
        self.resource_id = Some(id.to_string());
        self
    }

    pub fn result(mut self, result: AuditResult) -> Self {
        self.result = result;
        self
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// A stored entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Increases with every entry written, across tenants.
    pub id: i64,
    #[serde(flatten)]
    pub entry: NewAuditEntry,
}

/// Which entries to read, newest first. Every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub category: Option<AuditCategory>,
    pub event_type: Option<String>,
    /// Matches the actor's id or, ignoring case, their name.
    pub actor: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub trace_id: Option<String>,
    /// Cursor: only entries with a smaller id.
    pub before_id: Option<i64>,
    /// Entries to skip (offset paging); 0 with a cursor.
    pub offset: u64,
    pub limit: u32,
}

impl AuditQuery {
    /// Whether `e` passes every filter except the paging ones.
    pub fn matches(&self, e: &AuditEntry) -> bool {
        let n = &e.entry;
        self.from.is_none_or(|f| n.at >= f)
            && self.to.is_none_or(|t| n.at <= t)
            && self.category.is_none_or(|c| n.category == c)
            && self.event_type.as_ref().is_none_or(|t| &n.event_type == t)
            && self
                .actor
                .as_ref()
                .is_none_or(|a| n.actor.id.as_deref() == Some(a.as_str()) || n.actor.name.eq_ignore_ascii_case(a))
            && self.resource_type.as_ref().is_none_or(|t| n.resource_type.as_ref() == Some(t))
            && self.resource_id.as_ref().is_none_or(|r| n.resource_id.as_ref() == Some(r))
            && self.trace_id.as_ref().is_none_or(|t| n.actor.trace_id.as_ref() == Some(t))
            && self.before_id.is_none_or(|b| e.id < b)
    }
}
