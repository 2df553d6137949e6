//! Enrolment tokens, agents and desired state in memory.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::MemoryStore;
use crate::domain::{AgentRecord, DesiredModule, EnrolmentToken, NewAuditEntry, TenantId};
use crate::store::{AgentStore, StoreResult};

#[derive(Default)]
pub(super) struct Agents {
    tokens: HashMap<(TenantId, Uuid), EnrolmentToken>,
    agents: HashMap<(TenantId, Uuid), AgentRecord>,
    desired: HashMap<(TenantId, Uuid, String), DesiredModule>,
    /// Hosts an Admin removed: (tenant, node id, the token it had joined with).
    removed: HashSet<(TenantId, Uuid, Uuid)>,
}

impl Agents {
    /// Whether `node_id` is an enrolled agent's node.
    pub(super) fn has_agent(&self, tenant: TenantId, node_id: Uuid) -> bool {
        self.agents.contains_key(&(tenant, node_id))
    }
}

#[async_trait]
impl AgentStore for MemoryStore {
    async fn create_enrolment_token(&self, token: &EnrolmentToken, audit: &NewAuditEntry) -> StoreResult<()> {
        self.agents.write().tokens.insert((token.tenant_id, token.id), token.clone());
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn list_enrolment_tokens(&self, tenant: TenantId) -> StoreResult<Vec<EnrolmentToken>> {
        let mut found: Vec<_> = self.agents.read().tokens.values().filter(|t| t.tenant_id == tenant).cloned().collect();
        found.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        Ok(found)
    }

    async fn get_enrolment_token(&self, tenant: TenantId, id: Uuid) -> StoreResult<Option<EnrolmentToken>> {
        Ok(self.agents.read().tokens.get(&(tenant, id)).cloned())
    }

    async fn revoke_enrolment_token(
        &self,
        tenant: TenantId,
        id: Uuid,
        at: DateTime<Utc>,
        audit: &NewAuditEntry,
    ) -> StoreResult<Option<EnrolmentToken>> {
        let mut agents = self.agents.write();
        let Some(token) = agents.tokens.get_mut(&(tenant, id)) else { return Ok(None) };
        // Only the first revocation is recorded (and audited).
        let first = token.revoked_at.is_none();
        token.revoked_at.get_or_insert(at);
        let token = token.clone();
        drop(agents);
        if first {
            self.push_audit(std::slice::from_ref(audit));
        }
        Ok(Some(token))
    }

    async fn find_enrolment_token(&self, token_hash: &str) -> StoreResult<Option<EnrolmentToken>> {
        Ok(self.agents.read().tokens.values().find(|t| t.token_hash == token_hash).cloned())
    }

    async fn prune_enrolment_tokens(&self, dead_before: DateTime<Utc>) -> StoreResult<usize> {
        let mut agents = self.agents.write();
        let named: HashSet<(TenantId, Uuid)> = agents.agents.values().map(|a| (a.tenant_id, a.token_id)).collect();
        let before = agents.tokens.len();
        agents.tokens.retain(|key, token| token.unusable_from() >= dead_before || named.contains(key));
        let Agents { tokens, removed, .. } = &mut *agents;
        removed.retain(|(tenant, _, token)| tokens.contains_key(&(*tenant, *token)));
        Ok(before - agents.tokens.len())
    }

    async fn save_agent(&self, agent: &AgentRecord, audit: &NewAuditEntry) -> StoreResult<()> {
        self.agents.write().agents.insert((agent.tenant_id, agent.node_id), agent.clone());
        self.push_audit(std::slice::from_ref(audit));
        Ok(())
    }

    async fn find_agent_by_session(&self, session_hash: &str) -> StoreResult<Option<AgentRecord>> {
        Ok(self.agents.read().agents.values().find(|a| a.session_hash == session_hash).cloned())
    }

    async fn list_agents(&self, tenant: TenantId) -> StoreResult<Vec<AgentRecord>> {
        let mut found: Vec<_> = self.agents.read().agents.values().filter(|a| a.tenant_id == tenant).cloned().collect();
        found.sort_by(|a, b| a.hostname.cmp(&b.hostname).then(a.node_id.cmp(&b.node_id)));
        Ok(found)
    }

    async fn remove_agent(&self, tenant: TenantId, node_id: Uuid, audit: &NewAuditEntry) -> StoreResult<bool> {
        let mut agents = self.agents.write();
        let Some(gone) = agents.agents.remove(&(tenant, node_id)) else { return Ok(false) };
        agents.removed.insert((tenant, node_id, gone.token_id));
        agents.desired.retain(|(t, n, _), _| !(*t == tenant && *n == node_id));
        self.nodes.remove(tenant, node_id);
        drop(agents);
        self.push_audit(std::slice::from_ref(audit));
        Ok(true)
    }

    async fn was_removed(&self, tenant: TenantId, node_id: Uuid, token_id: Uuid) -> StoreResult<bool> {
        Ok(self.agents.read().removed.contains(&(tenant, node_id, token_id)))
    }

    async fn set_desired_module(&self, desired: &DesiredModule) -> StoreResult<()> {
        let key = (desired.tenant_id, desired.node_id, desired.module.clone());
        self.agents.write().desired.insert(key, desired.clone());
        Ok(())
    }

    async fn desired_modules(&self, tenant: TenantId, node_id: Uuid) -> StoreResult<Vec<DesiredModule>> {
        let agents = self.agents.read();
        let mut found: Vec<_> =
            agents.desired.values().filter(|d| d.tenant_id == tenant && d.node_id == node_id).cloned().collect();
        found.sort_by(|a, b| a.module.cmp(&b.module));
        Ok(found)
    }
}
