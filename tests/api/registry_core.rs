//! The Security Scan inside the core, with a verifier the test controls: a
//! registry that is briefly unavailable is asked again, and a slow one does
//! not stop the coordinator from answering verbs.

use crate::db::poll::eventually;
use hotswap_actors::domain::AuditActor;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hotswap::config::Settings;
use hotswap_actors::coordinator::Verb;
use hotswap_actors::domain::{DeploymentRequest, Environment, RunStatus, StageStatus, TenantId, DEFAULT_TENANT};
use hotswap_actors::hooks::CoreHooks;
use hotswap_actors::orchestrator::CoreSettings;
use hotswap_actors::registry::{ModuleVerifier, ScanError, VerifiedModule};
use hotswap_actors::store::MemoryStore;
use hotswap_actors::Orchestrator;
use tokio::sync::Semaphore;

/// Unavailable on the first call; later calls wait for a permit.
struct GatedVerifier {
    calls: AtomicU32,
    gate: Semaphore,
}

impl Default for GatedVerifier {
    fn default() -> Self {
        GatedVerifier { calls: AtomicU32::new(0), gate: Semaphore::new(0) }
    }
}

#[async_trait]
impl ModuleVerifier for GatedVerifier {
    async fn verify(&self, _t: TenantId, _m: &str, _v: &str) -> Result<VerifiedModule, ScanError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err(ScanError::Unavailable("the registry is restarting".into()));
        }
        self.gate.acquire().await.expect("the gate stays open").forget();
        Ok(VerifiedModule {
            digest: Some("ab".repeat(32)),
            notes: vec!["Checked by the gate.".into()],
            ..Default::default()
        })
    }
}

async fn orchestrator(verifier: Arc<GatedVerifier>) -> Orchestrator {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let s = Settings::load_from(&dir, "test", Vec::new()).unwrap();
    let core = CoreSettings {
        pipeline: s.pipeline,
        simulation: s.simulation,
        supervision: s.supervision,
        recovery: s.recovery,
        approvals: s.approvals,
        tenants: s.tenants,
        cluster: s.cluster,
        sample_metrics: false,
    };
    let hooks = CoreHooks { verifier, ..CoreHooks::default() };
    Orchestrator::start_with(Arc::new(MemoryStore::new()), core, hooks).await.unwrap()
}

fn request(module: &str) -> DeploymentRequest {
    serde_json::from_value(crate::db::requests::deployment(module, "1.0.0", "Development")).unwrap()
}

#[actix_web::test]
async fn an_unavailable_registry_is_asked_again_and_a_slow_one_blocks_nothing() {
    let verifier = Arc::new(GatedVerifier::default());
    let core = orchestrator(verifier.clone()).await;
    let run = core.create_deployment(DEFAULT_TENANT, request("kmod-gated"), &AuditActor::system()).await.unwrap();
    let id = run.execution_id;
    eventually(Duration::from_secs(10), "the scan is retried and waits", async || {
        verifier.calls.load(Ordering::SeqCst) >= 2
    })
    .await;

    // The coordinator answers while its scan waits, and nothing was loaded.
    let now = core.get_run(DEFAULT_TENANT, id).await.unwrap();
    let scan = now.stages.iter().find(|s| s.name == "Security Scan").unwrap();
    assert_eq!(scan.status, StageStatus::Running);
    core.apply_verb(DEFAULT_TENANT, id, Verb::Pause, &AuditActor::system()).await.unwrap();
    core.apply_verb(DEFAULT_TENANT, id, Verb::Resume, &AuditActor::system()).await.unwrap();

    verifier.gate.add_permits(1);
    eventually(Duration::from_secs(10), "the run succeeds", async || {
        core.get_run(DEFAULT_TENANT, id).await.unwrap().status == RunStatus::Succeeded
    })
    .await;
    let done = core.get_run(DEFAULT_TENANT, id).await.unwrap();
    assert_eq!(done.artifact_digest.as_deref(), Some("ab".repeat(32).as_str()), "the digest nodes were given");
    let nodes = core.store().nodes_in(DEFAULT_TENANT, Environment::Development).await.unwrap();
    assert!(nodes.iter().all(|n| n.modules["kmod-gated"].active.as_ref().unwrap().version == "1.0.0"));
}

#[actix_web::test]
async fn an_abort_during_the_scan_changes_no_node() {
    let verifier = Arc::new(GatedVerifier::default());
    let core = orchestrator(verifier.clone()).await;
    let id = core
        .create_deployment(DEFAULT_TENANT, request("kmod-aborted"), &AuditActor::system())
        .await
        .unwrap()
        .execution_id;
    eventually(Duration::from_secs(10), "the scan waits", async || verifier.calls.load(Ordering::SeqCst) >= 2).await;
    core.apply_verb(DEFAULT_TENANT, id, Verb::Abort, &AuditActor::system()).await.unwrap();
    verifier.gate.add_permits(1);
    eventually(Duration::from_secs(10), "the run is cancelled", async || {
        core.get_run(DEFAULT_TENANT, id).await.unwrap().status == RunStatus::Cancelled
    })
    .await;
    let nodes = core.store().nodes_in(DEFAULT_TENANT, Environment::Development).await.unwrap();
    assert!(!nodes.is_empty() && nodes.iter().all(|n| !n.modules.contains_key("kmod-aborted")), "no node touched");
}
