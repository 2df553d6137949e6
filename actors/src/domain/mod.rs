//! Plain data: what a run, a stage, a node, a tenant and a user are.

mod actor_kind;
mod agent;
mod analysis;
mod approval;
mod audit;
pub mod audit_entries;
mod batch;
mod checkpoint;
mod email;
mod environment;
mod graph;
pub mod listing;
mod module_registry;
mod node;
mod request;
mod run;
mod run_event;
mod tenant;
mod text;
mod user;

pub use actor_kind::ActorKind;
pub use agent::{
    AgentCommand, AgentFrame, AgentRecord, ArtifactInfo, DesiredModule, DriftPolicy, EnrolmentToken, HostReport,
    ServerFrame,
};
pub use analysis::{MetricQuery, ModuleAnalysis};
pub use approval::{ApprovalDecision, ApprovalRecord, ApprovalStatus, DecisionOutcome};
pub use audit::{AuditActor, AuditCategory, AuditEntry, AuditQuery, AuditResult, NewAuditEntry};
pub use batch::{BatchCursor, BatchRecord, BatchStatus, BatchStep, BatchStepStatus};
pub use checkpoint::{Checkpoint, DeployStep};
pub use email::{is_email, is_host_name, EMAIL_PATTERN};
pub use environment::{Environment, UnknownEnvironment};
pub use graph::{
    EntityTypeDefinition, GraphChange, GraphEntity, GraphRelationship, GraphSchema, GraphSnapshot, PropertyDefinition,
    PropertyKind, RelationshipTypeDefinition, GRAPH_SYSTEM_AUTHOR,
};
pub use module_registry::{
    stored_bytes, ModuleDescriptor, ModuleHooks, ModuleVersion, ResourceRequirements, SignatureAlgorithm, SigningKey,
    BYTES_PER_GB,
};
pub use node::{HealthLimits, ModuleSlots, NodeHealth, NodeMetrics, NodeRecord, VersionFaults, VersionSlot};
pub use request::{DeploymentRequest, Strategy};
pub use run::{
    deploy_stage_name, NodeChange, RollbackState, RunIntent, RunOwner, RunRecord, RunStatus, RunSummary, Stage,
    StageStatus, APPROVAL_STAGE, SECURITY_SCAN_STAGE, VALIDATION_STAGE,
};
pub use run_event::RunEvent;
pub use tenant::{
    check_subdomain, Quota, QuotaExceeded, QuotaKind, TenantId, TenantRecord, TenantStatus, Tier, DEFAULT_TENANT,
    RESERVED_SUBDOMAINS, SYSTEM_SUBDOMAIN,
};
pub use text::{holds_nul, json_holds_nul, nul_refusal, refuse_nul};
pub use user::{LockoutPolicy, Role, UnknownRole, UserRecord};
