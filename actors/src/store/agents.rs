//! The storage contract for real hosts: enrolment tokens (kept hashed), the
//! agents that enrolled, and the desired state of each node's modules.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreResult;
use crate::domain::{AgentRecord, DesiredModule, EnrolmentToken, NewAuditEntry, TenantId};

#[async_trait]
pub trait AgentStore: Send + Sync {
    async fn create_enrolment_token(&self, token: &EnrolmentToken, audit: &NewAuditEntry) -> StoreResult<()>;
    /// Newest first.
    async fn list_enrolment_tokens(&self, tenant: TenantId) -> StoreResult<Vec<EnrolmentToken>>;
    async fn get_enrolment_token(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<EnrolmentToken>>;
    /// Marks the token revoked at `at` (once); answers it, `None` when unknown.
    async fn revoke_enrolment_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<EnrolmentToken>>;
    /// The token with this SHA-256, of whichever tenant: a connecting agent
    /// names no tenant, its token does.
    async fn find_enrolment_token(&self, token_hash: &str) -> StoreResult<Option<EnrolmentToken>>;
    /// Forgets the tokens, of every tenant, that stopped enrolling hosts
    /// (revoked or expired) before `dead_before` and that no agent record
    /// names as the token it joined with; answers how many. The removals
    /// remembered against a token forgotten go with it (see [`Self::was_removed`]).
    async fn prune_enrolment_tokens(&self, dead_before: DateTime<Utc>) -> StoreResult<usize>;

    /// Records an agent's enrolment or reconnection (insert or replace by node id).
    async fn save_agent(&self, agent: &AgentRecord, audit: &NewAuditEntry) -> StoreResult<()>;
    /// The agent whose session credential has this SHA-256, of whichever tenant.
    async fn find_agent_by_session(&self, session_hash: &str) -> StoreResult<Option<AgentRecord>>;
    /// By hostname.
    async fn list_agents(&self, tenant: TenantId) -> StoreResult<Vec<AgentRecord>>;
    /// Forgets a retired host: its agent record (so its session credential
    /// no longer connects and the tenant's clusters no longer hold it), its
    /// desired state and its node record with the versions it ran (so no
    /// check counts what it ran, such as a module's dependencies); audited
    /// with the removal. The host is remembered as removed with the token it
    /// had joined with ([`Self::was_removed`]). False when unknown (and then
    /// nothing is removed).
    async fn remove_agent(&self, tenant: TenantId, node_id: Uuid, audit: &NewAuditEntry) -> StoreResult<bool>;
    /// Whether an Admin removed the host `node_id` after it had joined with
    /// the enrolment token `token_id`: that token enrols it no more (tokens
    /// are multi-use, and its agent falls back to it once its session
    /// credential is refused); a new token does.
    async fn was_removed(&self, tenant: TenantId, node_id: Uuid, token_id: Uuid) -> StoreResult<bool>;

    /// Records what a node should run for one module.
    async fn set_desired_module(&self, desired: &DesiredModule) -> StoreResult<()>;
    async fn desired_modules(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Vec<DesiredModule>>;
}
