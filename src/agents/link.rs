//! The core's [`AgentLink`] over an agent's WebSocket session: a command is
//! a frame to the session actor and a wait for the matching reply.

use std::sync::Arc;
use std::time::Duration;

use actix::Addr;
use async_trait::async_trait;
use hotswap_actors::domain::{AgentCommand, ArtifactInfo, HostReport, ModuleHooks, ModuleSlots, TenantId};
use hotswap_actors::node::AgentLink;
use hotswap_actors::store::SharedStore;
use parking_lot::RwLock;

use super::session::{AgentSession, SendCommand};

pub struct WsAgentLink {
    pub(super) tenant: TenantId,
    pub(super) store: SharedStore,
    pub(super) session: Addr<AgentSession>,
    pub(super) command_timeout: Duration,
    pub(super) report: Arc<RwLock<Option<HostReport>>>,
}

impl WsAgentLink {
    /// What the agent needs to check and install a version by itself.
    async fn artifact_for(&self, command: &AgentCommand) -> Result<(Option<ArtifactInfo>, ModuleHooks), String> {
        let AgentCommand::Load { module, version, .. } = command else {
            return Ok((None, ModuleHooks::default()));
        };
        let stored = self
            .store
            .get_module_version(self.tenant, module, version)
            .await
            .map_err(|e| format!("could not read {module} {version} from the registry: {e}"))?
            .ok_or_else(|| {
                format!("{module} {version} is not in the registry; an agent installs registered modules only")
            })?;
        let info = ArtifactInfo {
            sha256: stored.sha256.clone(),
            signature: stored.signature.clone(),
            algorithm: stored.descriptor.signature_algorithm,
        };
        Ok((Some(info), stored.descriptor.hooks.clone()))
    }
}

#[async_trait]
impl AgentLink for WsAgentLink {
    async fn command(&self, command: AgentCommand) -> Result<ModuleSlots, String> {
        let (artifact, hooks) = self.artifact_for(&command).await?;
        let answer = self
            .session
            .send(SendCommand { command, artifact, hooks })
            .await
            .map_err(|_| "the agent's session closed".to_string())?;
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
