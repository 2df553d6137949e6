//! The core's [`AgentLink`] over an agent's WebSocket session: a command is
//! a frame to the session actor and a wait for the matching reply.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_trait::async_trait;
use hotswap_actors::domain::{
    AgentCommand, ArtifactInfo, HealthLimits, HostReport, ModuleHooks, ModuleSlots, TenantId,
};
use hotswap_actors::node::AgentLink;
use hotswap_actors::store::{SharedStore, StoreError};
use parking_lot::RwLock;

use super::session::{AgentSession, SendCommand};

pub struct WsAgentLink {
    pub(super) tenant: TenantId,
    pub(super) store: SharedStore,
    pub(super) session: Addr<AgentSession>,
    pub(super) command_timeout: Duration,
    pub(super) report: Arc<RwLock<Option<HostReport>>>,
    /// `[agent] host_cpu_limit` and `host_memory_limit`.
    pub(super) limits: HealthLimits,
}

/// What a command that installs or activates a version sends the agent
/// besides the command.
struct VersionInputs {
    artifact: ArtifactInfo,
    hooks: ModuleHooks,
    trusted_keys: Vec<String>,
}

impl WsAgentLink {
    /// What the agent needs to check a version by itself before it installs
    /// it (a load) or makes a copy already on disk serve again (a restore's
    /// or a blue-green switch's): the artifact's digest and signature, the
    /// hooks, and the tenant's signing keys as they are now (a key added or
    /// revoked since the session opened reaches the agent before the
    /// command does). A load needs a registered version; a restore or
    /// switch to a version the registry no longer holds goes without, and
    /// the agent refuses it if it has to activate that version.
    async fn version_inputs(&self, command: &AgentCommand) -> Result<Option<VersionInputs>, String> {
        let (module, version, required) = match command {
            AgentCommand::Load { module, version, .. } => (module, version.as_str(), true),
            AgentCommand::SwitchToStandby { module, version } => (module, version.as_str(), false),
            AgentCommand::Restore { module, slots } => match slots.active_version() {
                Some(version) => (module, version, false),
                None => return Ok(None),
            },
            AgentCommand::Verify { .. } => return Ok(None),
        };
        let stored = self
            .store
            .get_module_version(self.tenant, module, version)
            .await
            .map_err(|e| format!("could not read {module} {version} from the registry: {e}"))?;
        let stored = match stored {
            Some(stored) => stored,
            None if required => {
                return Err(format!(
                    "{module} {version} is not in the registry; an agent installs registered modules only"
                ))
            }
            None => return Ok(None),
        };
        let trusted_keys = trusted_keys(&self.store, self.tenant)
            .await
            .map_err(|e| format!("could not read the signing keys for {module} {version}: {e}"))?;
        let artifact = ArtifactInfo {
            sha256: stored.sha256.clone(),
            signature: stored.signature.clone(),
            algorithm: stored.descriptor.signature_algorithm,
        };
        Ok(Some(VersionInputs { artifact, hooks: stored.descriptor.hooks.clone(), trusted_keys }))
    }
}

/// The public keys (PEM) of the tenant's unrevoked signing keys: what an
/// agent checks signatures against.
pub(super) async fn trusted_keys(store: &SharedStore, tenant: TenantId) -> Result<Vec<String>, StoreError> {
    let keys = store.list_signing_keys(tenant).await?;
    Ok(keys.into_iter().filter(|k| !k.is_revoked()).map(|k| k.public_key_pem).collect())
}

#[async_trait]
impl AgentLink for WsAgentLink {
    async fn command(&self, command: AgentCommand) -> Result<ModuleSlots, String> {
        let send = match self.version_inputs(&command).await? {
            Some(inputs) => SendCommand {
                command,
                artifact: Some(inputs.artifact),
                hooks: inputs.hooks,
                trusted_keys: Some(inputs.trusted_keys),
            },
            None => SendCommand { command, artifact: None, hooks: ModuleHooks::default(), trusted_keys: None },
        };
        let answer = self.session.send(send).await.map_err(|_| "the agent's session closed".to_string())?;
        match tokio::time::timeout(self.command_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err("the agent's session closed before it answered".into()),
            Err(_) => Err(format!("the agent did not answer within {:?}", self.command_timeout)),
        }
    }

    fn last_report(&self) -> Option<HostReport> {
        self.report.read().clone()
    }

    fn health_limits(&self) -> HealthLimits {
        self.limits
    }
}
