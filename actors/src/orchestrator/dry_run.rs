//! Dry runs: what a deployment would do, computed without doing any of it.
//!
//! [`plan_deployment`] is a pure function of the request, the settings, the
//! clusters as they are and the registry's answer; it splits the nodes into
//! waves with the very function the coordinator uses ([`plan::waves`]), so a
//! plan and the run that follows it cannot disagree on who goes when.
//! [`Orchestrator::plan_deployment`] gathers those inputs (reading only) and
//! records one audit entry saying a plan was asked for. The checks the
//! registry's answer decides are judged in `scan_checks`.

use std::time::Duration;

use crate::coordinator::{agents_among, plan, unmet_dependencies, unregistered_on_agents};
use crate::domain::{
    deploy_stage_name, AuditActor, AuditCategory, AuditResult, DeploymentRequest, Environment, NewAuditEntry, Strategy,
    TenantId,
};
use crate::error::CoreError;
use crate::registry::{PathAgent, ScanError, VerifiedModule};
use crate::settings::{ApprovalSettings, PipelineSettings};

use super::scan_checks::{dependents_check, registry_checks, worst};
pub use super::scan_checks::{CheckOutcome, ScanCheck, ScanPlan};
use super::Orchestrator;

/// The audit event type of a dry run.
pub const PLAN_EVENT: &str = "DeploymentPlanned";

/// A wait the coordinator arms after a wave, before it looks at the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    HealthCheckDelay,
    CanaryBake,
    /// Blue-green: the standby slots are smoke-tested until healthy, at most this long.
    SmokeTest,
}

impl WaitKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WaitKind::HealthCheckDelay => "HealthCheckDelay",
            WaitKind::CanaryBake => "CanaryBake",
            WaitKind::SmokeTest => "SmokeTest",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedWait {
    pub kind: WaitKind,
    pub duration: Duration,
}

/// Hostnames a planned wave lists; `node_count` counts them all. A Direct
/// wave to 100,000 nodes listed every name in the answer.
pub const WAVE_NODES_LISTED: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub struct WavePlan {
    /// 1-based, as the run's messages count them.
    pub number: usize,
    /// "all nodes", "batch 2 of 3", "step 1 of 4 (10 %)".
    pub label: String,
    /// The first hostnames this wave adds (at most [`WAVE_NODES_LISTED`]),
    /// in the order the coordinator takes them.
    pub nodes: Vec<String>,
    /// How many nodes this wave adds.
    pub node_count: usize,
    /// Nodes on the version once the wave is in (this one and every earlier one).
    pub nodes_after: usize,
    pub wait: Option<PlannedWait>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    pub name: String,
    pub environment: Environment,
    pub strategy: Strategy,
    pub node_count: usize,
    pub waves: Vec<WavePlan>,
    pub estimated_duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalGate {
    /// Why the run would wait: asked for, or an environment that always needs it.
    pub reason: String,
    /// How long the approval stays open before the run fails.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentPlan {
    pub module_name: String,
    pub version: String,
    pub target_environment: Environment,
    pub environments: Vec<Environment>,
    pub security_scan: ScanPlan,
    pub approval: Option<ApprovalGate>,
    pub stages: Vec<StagePlan>,
    /// The sum of the stages' estimates; an approval's wait is not in it.
    pub estimated_duration: Duration,
    /// False when the scan would fail the run before any node is touched.
    pub would_deploy: bool,
}

/// One environment's cluster as the dry run found it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ClusterInput {
    /// Hostnames in the coordinator's order.
    pub hostnames: Vec<String>,
    /// Nodes whose actor is not running now.
    pub unreachable: Vec<String>,
    /// The hosts running an agent.
    pub agents: Vec<PathAgent>,
}

/// Everything [`plan_deployment`] needs; gathered by the orchestrator.
pub struct PlanInput<'a> {
    pub request: &'a DeploymentRequest,
    pub pipeline: &'a PipelineSettings,
    pub approvals: &'a ApprovalSettings,
    /// One entry per environment on the request's path, in path order.
    pub clusters: Vec<(Environment, ClusterInput)>,
    /// The registry's answer; `None` when the earlier checks failed and the
    /// coordinator would not have asked.
    pub registry: Option<Result<VerifiedModule, ScanError>>,
    /// Requirements not met, when the registry's answer allowed checking them.
    pub unmet_dependencies: Option<Vec<String>>,
    /// What the API checks before it admits a run (a downgrade), listed
    /// first: a failed one means the run would not even be created.
    pub admission: Vec<ScanCheck>,
}

/// How long one stage's waits take at least, from the settings: the same
/// figure the 202 of a real run reports as `estimatedDuration`.
pub fn stage_estimate(strategy: Strategy, waves: usize, pipeline: &PipelineSettings) -> Duration {
    let waves = waves as u32;
    match strategy {
        // Loads answer within a node request; a second covers it in the simulation.
        Strategy::Direct => Duration::from_secs(1),
        Strategy::Rolling => pipeline.rolling_health_check_delay * waves,
        Strategy::BlueGreen => pipeline.bluegreen_smoke_test_interval,
        Strategy::Canary => pipeline.canary_bake_time * waves,
    }
}

fn wave_label(strategy: Strategy, number: usize, of: usize, percent: Option<u32>) -> String {
    match (strategy, percent) {
        (Strategy::Rolling, _) => format!("batch {number} of {of}"),
        (Strategy::Canary, Some(p)) => format!("step {number} of {of} ({p} %)"),
        (Strategy::Canary, None) => format!("step {number} of {of}"),
        (Strategy::Direct | Strategy::BlueGreen, _) => "all nodes".to_string(),
    }
}

fn stage_plan(
    request: &DeploymentRequest,
    pipeline: &PipelineSettings,
    env: Environment,
    c: &ClusterInput,
) -> StagePlan {
    let strategy = request.strategy_for(env);
    let steps = request.canary_steps.clone().unwrap_or_else(|| pipeline.canary_steps.clone());
    let n = c.hostnames.len();
    let ranges = plan::waves(strategy, n, pipeline.rolling_batch_size, &steps);
    let count = ranges.len();
    let waves = ranges
        .into_iter()
        .enumerate()
        .map(|(i, range)| {
            let percent = (strategy == Strategy::Canary).then(|| plan::canary_step_percent(n, range.end, &steps));
            let wait = match strategy {
                Strategy::Direct => None,
                Strategy::Rolling => Some(PlannedWait {
                    kind: WaitKind::HealthCheckDelay,
                    duration: pipeline.rolling_health_check_delay,
                }),
                Strategy::Canary => {
                    Some(PlannedWait { kind: WaitKind::CanaryBake, duration: pipeline.canary_bake_time })
                }
                Strategy::BlueGreen => {
                    Some(PlannedWait { kind: WaitKind::SmokeTest, duration: pipeline.bluegreen_smoke_test_timeout })
                }
            };
            WavePlan {
                number: i + 1,
                label: wave_label(strategy, i + 1, count, percent),
                nodes: c.hostnames[range.clone()].iter().take(WAVE_NODES_LISTED).cloned().collect(),
                node_count: range.len(),
                nodes_after: range.end,
                wait,
            }
        })
        .collect();
    StagePlan {
        name: deploy_stage_name(env),
        environment: env,
        strategy,
        node_count: n,
        waves,
        estimated_duration: stage_estimate(strategy, count, pipeline),
    }
}

/// The checks that need neither the registry nor the store: a semantic
/// version and reachable, non-empty clusters on the whole path.
pub fn local_checks(request: &DeploymentRequest, clusters: &[(Environment, ClusterInput)]) -> [ScanCheck; 2] {
    let version = match semver::Version::parse(&request.version) {
        Ok(_) => ScanCheck {
            name: "Version",
            outcome: CheckOutcome::Passed,
            message: format!("{} is a semantic version", request.version),
        },
        Err(_) => ScanCheck {
            name: "Version",
            outcome: CheckOutcome::Failed,
            message: format!("version '{}' is not semantic", request.version),
        },
    };
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for (env, c) in clusters {
        if c.hostnames.is_empty() {
            problems.push(crate::coordinator::empty_cluster(*env));
        } else if !c.unreachable.is_empty() {
            problems.push(crate::coordinator::unreachable_nodes(*env, &c.unreachable, c.hostnames.len()));
        }
        seen.push(format!("{env}: {}", crate::domain::listing::counted(c.hostnames.len(), "node", "nodes")));
    }
    let clusters = if problems.is_empty() {
        ScanCheck { name: "Clusters", outcome: CheckOutcome::Passed, message: seen.join(", ") }
    } else {
        ScanCheck { name: "Clusters", outcome: CheckOutcome::Failed, message: problems.join("; ") }
    };
    [version, clusters]
}

/// What a run of `input.request` would do, step by step.
pub fn plan_deployment(input: PlanInput<'_>) -> DeploymentPlan {
    let request = input.request;
    let mut checks: Vec<ScanCheck> = input.admission;
    checks.extend(local_checks(request, &input.clusters));
    let mut registry = registry_checks(&input.registry);
    if let Some(Ok(verified)) = &input.registry {
        let agents: Vec<PathAgent> = input.clusters.iter().flat_map(|(_, c)| c.agents.iter().cloned()).collect();
        if let Some(why) = unregistered_on_agents(&request.module_name, &request.version, verified, &agents) {
            registry[0] = ScanCheck { name: "Registry", outcome: CheckOutcome::Failed, message: why };
        }
        if let Some(why) = verified.unverified_signature.as_ref().and_then(|s| s.refusal_by_agents(&agents)) {
            registry[1] = ScanCheck { name: "Signature", outcome: CheckOutcome::Failed, message: why };
        }
    }
    checks.extend(registry);
    checks.push(match &input.unmet_dependencies {
        None => ScanCheck {
            name: "Dependencies",
            outcome: CheckOutcome::Skipped,
            message: "not checked: the registry gave no dependencies to check".into(),
        },
        Some(unmet) if unmet.is_empty() => ScanCheck {
            name: "Dependencies",
            outcome: CheckOutcome::Passed,
            message: "every declared dependency is met on the target nodes (or none is declared)".into(),
        },
        Some(unmet) => ScanCheck { name: "Dependencies", outcome: CheckOutcome::Failed, message: unmet.join("; ") },
    });
    checks.push(dependents_check(request, &input.registry));
    let scan = ScanPlan { outcome: worst(&checks), checks };
    let approval = input.approvals.required_for(request).then(|| {
        let forced: Vec<&str> = request
            .target_environment
            .path()
            .into_iter()
            .filter(|e| input.approvals.required_environments.contains(e))
            .map(Environment::as_str)
            .collect();
        let reason = if forced.is_empty() {
            "the request asks for approval".to_string()
        } else {
            format!("approvals.required_environments includes {}", forced.join(", "))
        };
        ApprovalGate { reason, timeout: input.approvals.timeout }
    });
    let stages: Vec<StagePlan> =
        input.clusters.iter().map(|(env, c)| stage_plan(request, input.pipeline, *env, c)).collect();
    let estimated_duration = stages.iter().map(|s| s.estimated_duration).sum();
    DeploymentPlan {
        module_name: request.module_name.clone(),
        version: request.version.clone(),
        target_environment: request.target_environment,
        environments: request.target_environment.path(),
        would_deploy: scan.outcome != CheckOutcome::Failed,
        security_scan: scan,
        approval,
        stages,
        estimated_duration,
    }
}

impl Orchestrator {
    /// A dry run: the plan of a run of `request` in `tenant`, from the
    /// clusters and the registry as they are now. It starts no actor, holds
    /// no module and writes nothing but its audit entry.
    /// `admission` holds what the caller checked before it would create the
    /// run (see [`PlanInput::admission`]).
    pub async fn plan_deployment(
        &self,
        tenant: TenantId,
        request: &DeploymentRequest,
        admission: Vec<ScanCheck>,
        actor: &AuditActor,
    ) -> Result<DeploymentPlan, CoreError> {
        self.check_request(request)?;
        let path = request.target_environment.path();
        let clusters: Vec<(Environment, ClusterInput)> = path
            .iter()
            .map(|&env| {
                let nodes = self.inner.clusters.nodes(tenant, env);
                let input = ClusterInput {
                    hostnames: nodes.iter().map(|n| n.hostname.clone()).collect(),
                    unreachable: nodes.iter().filter(|n| !n.is_up()).map(|n| n.hostname.clone()).collect(),
                    agents: agents_among(&nodes).collect(),
                };
                (env, input)
            })
            .collect();
        // The coordinator asks the registry only once the local checks pass.
        let local_ok = local_checks(request, &clusters).iter().all(|c| c.outcome == CheckOutcome::Passed);
        let registry = if local_ok {
            Some(self.inner.hooks.verifier.verify(tenant, &request.module_name, &request.version).await)
        } else {
            None
        };
        let unmet_dependencies = match &registry {
            Some(Ok(verified)) => Some(
                unmet_dependencies(
                    &self.inner.store,
                    tenant,
                    &path,
                    &request.module_name,
                    &request.version,
                    &verified.dependencies,
                )
                .await
                .map_err(|e| CoreError::Unavailable(e.to_string()))?,
            ),
            _ => None,
        };
        let plan = plan_deployment(PlanInput {
            request,
            pipeline: &self.inner.settings.pipeline,
            approvals: &self.inner.settings.approvals,
            clusters,
            registry,
            unmet_dependencies,
            admission,
        });
        let waves: usize = plan.stages.iter().map(|s| s.waves.len()).sum();
        let entry = NewAuditEntry::new(tenant, actor.clone(), AuditCategory::Deployment, PLAN_EVENT)
            .resource("Module", format!("{}@{}", request.module_name, request.version))
            .result(if plan.would_deploy { AuditResult::Success } else { AuditResult::Failure })
            .message(format!(
                "dry run of {} {} to {}: {} stages, {} waves, scan {}",
                request.module_name,
                request.version,
                request.target_environment,
                plan.stages.len(),
                waves,
                plan.security_scan.outcome.as_str()
            ))
            .details(serde_json::json!({
                "targetEnvironment": request.target_environment.as_str(),
                "strategy": request.strategy.map(Strategy::as_str),
                "approvalRequired": plan.approval.is_some(),
                "estimatedSeconds": plan.estimated_duration.as_secs(),
            }));
        self.inner.store.append_audit(&[entry]).await?;
        Ok(plan)
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    pub(in crate::orchestrator) fn request(target: Environment) -> DeploymentRequest {
        DeploymentRequest {
            module_name: "netfilter-ext".into(),
            version: "1.4.0".into(),
            target_environment: target,
            requester_email: "me@example.com".into(),
            description: None,
            require_approval: false,
            metadata: BTreeMap::new(),
            strategy: None,
            canary_steps: None,
        }
    }

    fn cluster(env: Environment, n: usize) -> (Environment, ClusterInput) {
        let hostnames = (1..=n).map(|i| format!("{}-node-{i:02}", env.slug())).collect();
        (env, ClusterInput { hostnames, ..ClusterInput::default() })
    }

    fn input<'a>(
        req: &'a DeploymentRequest,
        pipeline: &'a PipelineSettings,
        approvals: &'a ApprovalSettings,
        sizes: &[usize],
    ) -> PlanInput<'a> {
        let clusters = req.target_environment.path().into_iter().zip(sizes).map(|(e, n)| cluster(e, *n)).collect();
        PlanInput {
            request: req,
            pipeline,
            approvals,
            clusters,
            registry: Some(Ok(VerifiedModule::default())),
            unmet_dependencies: Some(Vec::new()),
            admission: Vec::new(),
        }
    }

    #[test]
    fn a_large_wave_lists_its_first_nodes_and_counts_them_all() {
        let req = request(Environment::Development);
        let (pipeline, approvals) = (PipelineSettings::default(), ApprovalSettings::default());
        let plan = plan_deployment(input(&req, &pipeline, &approvals, &[250]));
        let wave = &plan.stages[0].waves[0];
        assert_eq!((wave.nodes.len(), wave.node_count, wave.nodes_after), (WAVE_NODES_LISTED, 250, 250));
        assert_eq!(wave.nodes[0], "development-node-01");
    }

    #[test]
    fn production_plan_has_every_stage_with_the_coordinators_waves() {
        let req = request(Environment::Production);
        let pipeline = PipelineSettings::default();
        let approvals = ApprovalSettings::default();
        let plan = plan_deployment(input(&req, &pipeline, &approvals, &[3, 5, 4, 20]));
        let strategies: Vec<_> = plan.stages.iter().map(|s| s.strategy).collect();
        assert_eq!(strategies, vec![Strategy::Direct, Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary]);
        let qa = &plan.stages[1];
        assert_eq!(qa.waves.iter().map(|w| w.nodes.len()).collect::<Vec<_>>(), vec![2, 2, 1]);
        assert_eq!(qa.waves[2].label, "batch 3 of 3");
        assert_eq!(qa.waves[0].nodes, vec!["qa-node-01", "qa-node-02"]);
        let prod = &plan.stages[3];
        assert_eq!(prod.waves.iter().map(|w| w.nodes_after).collect::<Vec<_>>(), vec![2, 6, 10, 20]);
        assert_eq!(prod.waves[1].label, "step 2 of 4 (30 %)");
        // 1 s direct + 3 health-check delays + one smoke interval + 4 bakes.
        let expected = Duration::from_secs(1)
            + pipeline.rolling_health_check_delay * 3
            + pipeline.bluegreen_smoke_test_interval
            + pipeline.canary_bake_time * 4;
        assert_eq!(plan.estimated_duration, expected);
        assert!(plan.approval.is_none());
        assert!(plan.would_deploy);
        assert_eq!(plan.security_scan.outcome, CheckOutcome::Passed);
    }

    #[test]
    fn approval_gates_name_their_reason() {
        let mut req = request(Environment::Staging);
        req.require_approval = true;
        let pipeline = PipelineSettings::default();
        let approvals = ApprovalSettings::default();
        let plan = plan_deployment(input(&req, &pipeline, &approvals, &[1, 1, 1]));
        assert_eq!(plan.approval.unwrap().reason, "the request asks for approval");
        let forced = ApprovalSettings { required_environments: vec![Environment::Qa], ..ApprovalSettings::default() };
        let req = request(Environment::Qa);
        let plan = plan_deployment(input(&req, &pipeline, &forced, &[1, 1]));
        assert!(plan.approval.unwrap().reason.contains("QA"));
    }

    #[test]
    fn a_failed_admission_check_comes_first_and_stops_the_run() {
        let req = request(Environment::Qa);
        let (pipeline, approvals) = (PipelineSettings::default(), ApprovalSettings::default());
        let mut i = input(&req, &pipeline, &approvals, &[2, 2]);
        let refused = "netx 1.0.0 is lower than 2.0.0, which the tenant's nodes run";
        i.admission = vec![ScanCheck { name: "Downgrade", outcome: CheckOutcome::Failed, message: refused.into() }];
        let plan = plan_deployment(i);
        assert!(!plan.would_deploy);
        assert_eq!(plan.security_scan.outcome, CheckOutcome::Failed);
        assert_eq!(plan.security_scan.checks[0].name, "Downgrade");
        // Allowed, it is a warning and the run would go ahead.
        let mut i = input(&req, &pipeline, &approvals, &[2, 2]);
        i.admission = vec![ScanCheck { name: "Downgrade", outcome: CheckOutcome::Warning, message: refused.into() }];
        let plan = plan_deployment(i);
        assert!(plan.would_deploy);
        assert_eq!(plan.security_scan.outcome, CheckOutcome::Warning);
    }

    #[test]
    fn failing_checks_say_the_run_would_stop_at_the_scan() {
        let mut req = request(Environment::Qa);
        req.version = "1.4".into();
        let pipeline = PipelineSettings::default();
        let approvals = ApprovalSettings::default();
        let mut i = input(&req, &pipeline, &approvals, &[2, 0]);
        i.registry = None;
        i.unmet_dependencies = None;
        let plan = plan_deployment(i);
        assert!(!plan.would_deploy);
        let outcome = |name| plan.security_scan.checks.iter().find(|c| c.name == name).unwrap().outcome;
        assert_eq!(outcome("Version"), CheckOutcome::Failed);
        assert_eq!(outcome("Clusters"), CheckOutcome::Failed);
        assert_eq!(outcome("Signature"), CheckOutcome::Skipped);
        assert!(plan.stages[1].waves.is_empty());
    }
}
