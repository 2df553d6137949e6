//! A core started on a store of the test's choosing, with the test profile's short waits.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hotswap_actors::domain::{AuditActor, DeploymentRequest, Environment, RunRecord, TenantId, DEFAULT_TENANT};
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::settings::{NodeCounts, PipelineSettings, SimulationSettings};
use hotswap_actors::store::{MemoryStore, SharedStore};
use hotswap_actors::Orchestrator;
use uuid::Uuid;

pub const TENANT: TenantId = DEFAULT_TENANT;

pub fn settings(nodes: usize) -> CoreSettings {
    CoreSettings {
        pipeline: PipelineSettings {
            rolling_health_check_delay: Duration::from_millis(50),
            bluegreen_smoke_test_timeout: Duration::from_secs(2),
            bluegreen_smoke_test_interval: Duration::from_millis(50),
            canary_bake_time: Duration::from_millis(100),
            node_request_timeout: Duration::from_secs(10),
            restore_attempts: 5,
            restore_retry_delay: Duration::from_millis(20),
            ..PipelineSettings::default()
        },
        simulation: SimulationSettings {
            enabled: true,
            nodes: NodeCounts { development: nodes, qa: nodes, staging: nodes, production: nodes },
            heartbeat_interval: Duration::from_millis(200),
            heartbeat_timeout: Duration::from_secs(30),
            metrics_sample_interval: Duration::from_millis(100),
            metrics_retention: 100,
        },
        ..CoreSettings::default()
    }
}

pub async fn start(store: SharedStore, settings: CoreSettings) -> Orchestrator {
    Orchestrator::start(store, settings).await.expect("core starts")
}

pub async fn start_memory(nodes: usize) -> (Orchestrator, SharedStore) {
    let store: SharedStore = Arc::new(MemoryStore::new());
    (start(store.clone(), settings(nodes)).await, store)
}

pub fn request(module: &str, version: &str, target: Environment, metadata: &[(&str, &str)]) -> DeploymentRequest {
    DeploymentRequest {
        module_name: module.into(),
        version: version.into(),
        target_environment: target,
        requester_email: "ops@example.com".into(),
        description: None,
        require_approval: false,
        metadata: metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        strategy: None,
        canary_steps: None,
    }
}

pub fn operator() -> AuditActor {
    AuditActor::user(Uuid::new_v4(), "ops")
}

/// The run as the store has it.
pub async fn stored(store: &SharedStore, id: Uuid) -> RunRecord {
    store.get_run(TENANT, id).await.expect("store answers").expect("run stored")
}

/// Waits until the run has ended and returns it as stored.
pub async fn finished(store: &SharedStore, id: Uuid, within: Duration) -> RunRecord {
    crate::poll::eventually(within, "the run ends", async || !stored(store, id).await.holds_module()).await;
    stored(store, id).await
}

/// The active version of `module` on every node of `env`, as the store has it.
pub async fn versions(core: &Orchestrator, env: Environment, module: &str) -> Vec<Option<String>> {
    let cluster = core.cluster(TENANT, env).await;
    cluster.nodes.iter().map(|n| n.modules.get(module).cloned()).collect()
}
