//! The core's [`AgentLink`] over an agent's WebSocket session: a command is
//! a frame to the session actor and a wait for the matching reply.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_trait::async_trait;
use hotswap_actors::domain::{AgentCommand, ArtifactInfo, HostReport, ModuleHooks, ModuleSlots, TenantId};
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
}

/// What a load sends the agent besides the command.
struct LoadInputs {
    artifact: ArtifactInfo,
    hooks: ModuleHooks,
    trusted_keys: Vec<String>,
}

impl WsAgentLink {
    /// What the agent needs to check and install a version by itself: the
    /// artifact's digest and signature, the hooks, and the tenant's signing
    /// keys as they are now (a key added or revoked since the session opened
    /// reaches the agent before this load does).
    async fn load_inputs(&self, command: &AgentCommand) -> Result<Option<LoadInputs>, String> {
        let AgentCommand::Load { module, version, .. } = command else {
            return Ok(None);
        };
        let stored = self
            .store
            .get_module_version(self.tenant, module, version)
            .await
            .map_err(|e| format!("could not read {module} {version} from the registry: {e}"))?
            .ok_or_else(|| {
                format!("{module} {version} is not in the registry; an agent installs registered modules only")
            })?;
        let trusted_keys = trusted_keys(&self.store, self.tenant)
            .await
            .map_err(|e| format!("could not read the signing keys for {module} {version}: {e}"))?;
        let artifact = ArtifactInfo {
            sha256: stored.sha256.clone(),
            signature: stored.signature.clone(),
            algorithm: stored.descriptor.signature_algorithm,
        };
        Ok(Some(LoadInputs { artifact, hooks: stored.descriptor.hooks.clone(), trusted_keys }))
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
        let send = match self.load_inputs(&command).await? {
            Some(load) => SendCommand {
                command,
                artifact: Some(load.artifact),
                hooks: load.hooks,
                trusted_keys: Some(load.trusted_keys),
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
}
