//! The answer of `POST /api/v1/deployments?dryRun=true`: the core's plan of a
//! run, in the API's camelCase, with durations in ISO 8601 and in seconds.

use hotswap_actors::domain::{Environment, Strategy};
use hotswap_actors::orchestrator::dry_run::{DeploymentPlan, ScanCheck, StagePlan, WavePlan};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::deployment_dto::{EnvironmentName, StrategyName};
use super::format::iso8601;

/// Query of `POST /api/v1/deployments`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase")]
pub struct CreateQuery {
    /// `true`: answer what the run would do (200, a DeploymentPlan) without
    /// creating it; nothing changes but an audit entry of the plan.
    pub dry_run: Option<bool>,
}

/// A duration as ISO 8601 (whole seconds), in seconds and in milliseconds.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DurationView {
    #[schema(example = "PT1M30S")]
    pub iso8601: String,
    pub seconds: u64,
    pub milliseconds: u64,
}

impl From<std::time::Duration> for DurationView {
    fn from(d: std::time::Duration) -> Self {
        let milliseconds = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        DurationView { iso8601: iso8601(d), seconds: d.as_secs(), milliseconds }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanCheckView {
    /// Downgrade (only for a version below one the nodes run), Version,
    /// Clusters, Registry, Signature, Dependencies or Dependents.
    pub name: &'static str,
    /// Passed, Warning, Failed, Unknown or Skipped.
    pub outcome: &'static str,
    pub message: String,
}

impl From<&ScanCheck> for ScanCheckView {
    fn from(c: &ScanCheck) -> Self {
        ScanCheckView { name: c.name, outcome: c.outcome.as_str(), message: c.message.clone() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScanPlanView {
    /// The worst outcome of the checks; Failed means the run would end at the scan.
    pub outcome: &'static str,
    pub checks: Vec<ScanCheckView>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedWaitView {
    /// HealthCheckDelay, CanaryBake or SmokeTest (the longest a smoke test may take).
    pub kind: &'static str,
    pub duration: DurationView,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WavePlanView {
    /// 1-based.
    pub number: usize,
    #[schema(example = "batch 1 of 3")]
    pub label: String,
    /// The first hostnames the wave adds (at most 100), in the order they are taken.
    pub nodes: Vec<String>,
    /// How many nodes the wave adds.
    pub node_count: usize,
    /// Nodes on the version once this wave is in.
    pub nodes_after: usize,
    pub wait: Option<PlannedWaitView>,
}

impl From<&WavePlan> for WavePlanView {
    fn from(w: &WavePlan) -> Self {
        WavePlanView {
            number: w.number,
            label: w.label.clone(),
            nodes: w.nodes.clone(),
            node_count: w.node_count,
            nodes_after: w.nodes_after,
            wait: w.wait.as_ref().map(|w| PlannedWaitView { kind: w.kind.as_str(), duration: w.duration.into() }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StagePlanView {
    #[schema(example = "Deploy to QA")]
    pub name: String,
    #[schema(value_type = EnvironmentName)]
    pub environment: Environment,
    #[schema(value_type = StrategyName)]
    pub strategy: Strategy,
    pub node_count: usize,
    pub waves: Vec<WavePlanView>,
    pub estimated_duration: DurationView,
}

impl From<&StagePlan> for StagePlanView {
    fn from(s: &StagePlan) -> Self {
        StagePlanView {
            name: s.name.clone(),
            environment: s.environment,
            strategy: s.strategy,
            node_count: s.node_count,
            waves: s.waves.iter().map(WavePlanView::from).collect(),
            estimated_duration: s.estimated_duration.into(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalGateView {
    pub reason: String,
    /// How long the approval stays open before the run fails.
    pub timeout: DurationView,
}

/// What a run would do, computed without doing it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentPlanView {
    /// Always true: this is a plan, no run was created.
    pub dry_run: bool,
    pub module_name: String,
    pub version: String,
    #[schema(value_type = EnvironmentName)]
    pub target_environment: Environment,
    /// Every environment on the path, in promotion order.
    #[schema(value_type = Vec<EnvironmentName>)]
    pub environments: Vec<Environment>,
    pub security_scan: ScanPlanView,
    /// Present when the run would wait for an Admin's decision after the scan.
    pub approval: Option<ApprovalGateView>,
    pub stages: Vec<StagePlanView>,
    /// The sum of the stages' configured waits; an approval's wait is not in it.
    pub estimated_duration: DurationView,
    /// False when the Security Scan would fail the run before any node changes.
    pub would_deploy: bool,
}

impl From<&DeploymentPlan> for DeploymentPlanView {
    fn from(p: &DeploymentPlan) -> Self {
        DeploymentPlanView {
            dry_run: true,
            module_name: p.module_name.clone(),
            version: p.version.clone(),
            target_environment: p.target_environment,
            environments: p.environments.clone(),
            security_scan: ScanPlanView {
                outcome: p.security_scan.outcome.as_str(),
                checks: p.security_scan.checks.iter().map(ScanCheckView::from).collect(),
            },
            approval: p
                .approval
                .as_ref()
                .map(|a| ApprovalGateView { reason: a.reason.clone(), timeout: a.timeout.into() }),
            stages: p.stages.iter().map(StagePlanView::from).collect(),
            estimated_duration: p.estimated_duration.into(),
            would_deploy: p.would_deploy,
        }
    }
}
