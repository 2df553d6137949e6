//! Canary analysis from a real Prometheus (Debian's `prometheus` package)
//! scraping a metrics endpoint the test controls: a healthy canary passes,
//! a regressing one rolls back, and a Prometheus that stops answering fails
//! the step after `analysis.timeout` instead of letting it pass.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod db;
mod fixture;

use std::net::TcpListener;
use std::time::Duration;

use fixture::*;
use hotswap_actors::domain::{
    AuditActor, Checkpoint, DeployStep, DeploymentRequest, Environment, RunRecord, RunStatus, StageStatus, Strategy,
    DEFAULT_TENANT,
};
use hotswap_actors::Orchestrator;

use crate::db::poll::{eventually, eventually_ok};

/// The bake after each canary step: above Prometheus's 1 s scrape interval,
/// so that the step's verdict reads values scraped after the new version loaded.
const BAKE: &str = "2500ms";
const STAGE: &str = "Deploy to Development";

struct Setup {
    orchestrator: Orchestrator,
    prometheus: Prometheus,
}

/// Prometheus scraping the endpoint, the server judging by it, and every
/// node's series scraped at least once.
async fn setup(test: &str) -> Option<Setup> {
    let binary = prometheus_binary(test)?;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap().to_string();
    let prometheus = Prometheus::start(&binary, &target);
    let orchestrator = spawn_server(&prometheus.url, BAKE).await;
    serve_metrics(listener, orchestrator.store().clone());
    prometheus.wait_for_series(NODES).await;
    Some(Setup { orchestrator, prometheus })
}

async fn deploy(orchestrator: &Orchestrator, version: &str, strategy: Strategy) -> uuid::Uuid {
    let request = DeploymentRequest {
        module_name: MODULE.into(),
        version: version.into(),
        target_environment: Environment::Development,
        requester_email: "dev@example.com".into(),
        description: None,
        require_approval: false,
        metadata: Default::default(),
        strategy: Some(strategy),
        canary_steps: (strategy == Strategy::Canary).then(|| vec![50, 100]),
    };
    let actor = AuditActor::user(uuid::Uuid::new_v4(), "tester");
    orchestrator.create_deployment(DEFAULT_TENANT, request, &actor).await.unwrap().execution_id
}

async fn finished(orchestrator: &Orchestrator, id: uuid::Uuid) -> RunRecord {
    eventually_ok(Duration::from_secs(60), "the run ends", async || {
        let run = orchestrator.get_run(DEFAULT_TENANT, id).await.map_err(|e| e.to_string())?;
        (!run.status.is_active()).then_some(run.clone()).ok_or(format!("{:?} at {:?}", run.status, run.checkpoint))
    })
    .await
}

async fn active_versions(orchestrator: &Orchestrator) -> Vec<Option<String>> {
    let nodes = orchestrator.store().nodes_in(DEFAULT_TENANT, Environment::Development).await.unwrap();
    nodes.iter().map(|n| n.modules.get(MODULE).and_then(|s| s.active.as_ref()).map(|v| v.version.clone())).collect()
}

fn stage_message(run: &RunRecord) -> (StageStatus, String) {
    let stage = run.stages.iter().find(|s| s.name == STAGE).unwrap();
    (stage.status, stage.message.clone())
}

#[actix_web::test]
async fn a_healthy_canary_passes_on_prometheus_readings() {
    let Some(s) = setup("a_healthy_canary_passes_on_prometheus_readings").await else { return };
    let id = deploy(&s.orchestrator, "1.0.0", Strategy::Canary).await;
    let run = finished(&s.orchestrator, id).await;
    assert_eq!(run.status, RunStatus::Succeeded, "{run:#?}");
    let events = s.orchestrator.run_events(DEFAULT_TENANT, id).await.unwrap();
    assert_eq!(events.iter().filter(|e| e.kind == "WaveCompleted").count(), 1, "the 50% step passed: {events:#?}");
    assert!(active_versions(&s.orchestrator).await.iter().all(|v| v.as_deref() == Some("1.0.0")));
}

#[actix_web::test]
async fn a_regressing_canary_rolls_back_naming_the_node_and_the_query() {
    let Some(s) = setup("a_regressing_canary_rolls_back_naming_the_node_and_the_query").await else { return };
    let first = deploy(&s.orchestrator, "1.0.0", Strategy::Direct).await;
    assert_eq!(finished(&s.orchestrator, first).await.status, RunStatus::Succeeded);

    let id = deploy(&s.orchestrator, BAD_VERSION, Strategy::Canary).await;
    let run = finished(&s.orchestrator, id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let (status, message) = stage_message(&run);
    assert_eq!(status, StageStatus::RolledBack, "{message}");
    assert!(message.contains("canary analysis at 50% failed"), "{message}");
    assert!(message.contains("error ratio rose from 0.20% to 3.00%"), "{message}");
    assert!(active_versions(&s.orchestrator).await.iter().all(|v| v.as_deref() == Some("1.0.0")), "restored");
}

#[actix_web::test]
async fn prometheus_going_down_during_the_bake_fails_the_step_after_the_timeout() {
    let Some(s) = setup("prometheus_going_down_during_the_bake_fails_the_step_after_the_timeout").await else {
        return;
    };
    let first = deploy(&s.orchestrator, "1.0.0", Strategy::Direct).await;
    assert_eq!(finished(&s.orchestrator, first).await.status, RunStatus::Succeeded);

    // A version the endpoint calls healthy: only the outage can fail it.
    let id = deploy(&s.orchestrator, "1.1.0", Strategy::Canary).await;
    eventually(Duration::from_secs(30), "the first canary step is baking", async || {
        let run = s.orchestrator.get_run(DEFAULT_TENANT, id).await.unwrap();
        matches!(run.checkpoint, Checkpoint::Deploy { step: DeployStep::Wait { wave: 0, .. }, .. })
    })
    .await;
    let url = s.prometheus.url.clone();
    drop(s.prometheus);

    let run = finished(&s.orchestrator, id).await;
    assert_eq!(run.status, RunStatus::Failed, "{run:#?}");
    let (status, message) = stage_message(&run);
    assert_eq!(status, StageStatus::RolledBack, "{message}");
    assert!(message.contains(&format!("Prometheus at {url} gave no answer for 3s (analysis.timeout)")), "{message}");
    assert!(active_versions(&s.orchestrator).await.iter().all(|v| v.as_deref() == Some("1.0.0")), "restored");
}
