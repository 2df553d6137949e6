//! Where versions run, and deleting one that none runs.

use hotswap_actors::domain::listing::{counted, listed_with};
use hotswap_actors::domain::{
    AuditActor, AuditCategory, BatchStepStatus, Environment, ModuleSlots, NewAuditEntry, RunStatus, TenantId,
};
use hotswap_actors::store::RunFilter;
use uuid::Uuid;

use super::{Registry, RegistryError};

impl Registry {
    /// Deletes a version that no node runs (active or standby).
    pub async fn delete(
        &self,
        tenant: TenantId,
        actor: AuditActor,
        name: &str,
        version: &str,
    ) -> Result<(), RegistryError> {
        let not_found = || RegistryError::NotFound(format!("Module {name} version {version} not found"));
        if self.store.get_module_version(tenant, name, version).await?.is_none() {
            return Err(not_found());
        }
        let running = self.nodes_running(tenant, name, version, true).await?;
        if !running.is_empty() {
            let hosts: Vec<_> = running.iter().flat_map(|(_, hosts)| hosts.iter().cloned()).collect();
            return Err(RegistryError::Conflict(format!(
                "{name} {version} is loaded on {} ({}); deploy another version first",
                counted(hosts.len(), "node", "nodes"),
                listed_with(&hosts, ", ")
            )));
        }
        if let Some(run) = self.active_run_of(tenant, name, version).await? {
            return Err(RegistryError::Conflict(format!(
                "{name} {version} is being deployed by run {run}; wait for it to end, or abort it, first"
            )));
        }
        if let Some(batch) = self.running_batch_of(tenant, name, version).await? {
            return Err(RegistryError::Conflict(format!(
                "{name} {version} is a step of deployment batch {batch}, which is running; wait for the batch to \
                 end first"
            )));
        }
        let audit = NewAuditEntry::new(tenant, actor, AuditCategory::ModuleRegistry, "ModuleDeleted")
            .resource("Module", format!("{name}@{version}"))
            .message(format!("{name} {version} deleted"));
        if self.store.delete_module_version(tenant, name, version, &audit).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// A run of the tenant that is deploying `version` of `name` right now
    /// (it may have passed its scan and still be loading nodes).
    async fn active_run_of(&self, tenant: TenantId, name: &str, version: &str) -> Result<Option<Uuid>, RegistryError> {
        // A module has at most one active run per tenant, so the first page tells.
        for status in RunStatus::ALL.into_iter().filter(|s| s.is_active()) {
            let filter = RunFilter {
                status: Some(status),
                module_name: Some(name.to_string()),
                environment: None,
                page: 1,
                page_size: 10,
            };
            let page = self.store.list_runs(tenant, &filter).await?;
            if let Some(run) = page.items.iter().find(|r| r.version == version) {
                return Ok(Some(run.execution_id));
            }
        }
        Ok(None)
    }

    /// A running deployment batch of the tenant with a step for `version` of
    /// `name` that has not ended: a step still Pending has no run yet, so
    /// [`Self::active_run_of`] does not see it, and deleting its version
    /// would fail the batch when the step's turn comes.
    async fn running_batch_of(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
    ) -> Result<Option<Uuid>, RegistryError> {
        // Running batches are few (the batch runner reads them on every tick);
        // the store keeps them for every tenant in one list.
        let running = self.store.batches_in_flight().await?;
        let named = running.into_iter().filter(|b| b.tenant_id == tenant).find(|b| {
            b.steps.iter().any(|s| {
                s.module == name
                    && s.version == version
                    && matches!(
                        s.status,
                        BatchStepStatus::Pending | BatchStepStatus::Starting | BatchStepStatus::Running
                    )
            })
        });
        Ok(named.map(|b| b.batch_id))
    }

    /// The hostnames, by environment, whose nodes serve `version` of `name`
    /// (and, with `standby`, hold it in standby).
    pub async fn nodes_running(
        &self,
        tenant: TenantId,
        name: &str,
        version: &str,
        standby: bool,
    ) -> Result<Vec<(Environment, Vec<String>)>, RegistryError> {
        Ok(running(&self.placements(tenant, name).await?, version, standby))
    }

    /// Every node that holds some version of `name`, with its slots.
    pub async fn placements(&self, tenant: TenantId, name: &str) -> Result<Vec<Placement>, RegistryError> {
        let found = self.store.module_placements(tenant, name).await?;
        Ok(found.into_iter().map(|(environment, hostname, slots)| Placement { environment, hostname, slots }).collect())
    }
}

/// One node's slots of one module.
pub struct Placement {
    pub environment: Environment,
    pub hostname: String,
    pub slots: ModuleSlots,
}

/// The hostnames, by environment, of `placements` that serve `version` (or,
/// with `standby`, hold it in standby).
pub fn running(placements: &[Placement], version: &str, standby: bool) -> Vec<(Environment, Vec<String>)> {
    let mut found: Vec<(Environment, Vec<String>)> = Vec::new();
    for p in placements {
        let holds =
            |slot: &Option<hotswap_actors::domain::VersionSlot>| slot.as_ref().is_some_and(|s| s.version == version);
        if !(holds(&p.slots.active) || (standby && holds(&p.slots.standby))) {
            continue;
        }
        match found.iter_mut().find(|(env, _)| *env == p.environment) {
            Some((_, hosts)) => hosts.push(p.hostname.clone()),
            None => found.push((p.environment, vec![p.hostname.clone()])),
        }
    }
    found
}
