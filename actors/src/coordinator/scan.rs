//! The Security Scan: before any node is touched, the version must be
//! semantic, every target cluster reachable, the registry must vouch for the
//! artifact (registration, digest, signature, as the settings require), and
//! every dependency must be met by what the target nodes run. The registry
//! and the store are asked in a future, so the actor keeps serving verbs.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix::prelude::*;

use super::actor::Coordinator;
use super::stages::{finish_run, finish_stage, start_stage};
use super::Checkpoint;
use crate::domain::listing::{counted, listed_with, thousands};
use crate::domain::{Environment, RunStatus, StageStatus, TenantId, SECURITY_SCAN_STAGE};
use crate::node::{NodeEntry, NodeKind};
use crate::registry::{PathAgent, ScanError, VerifiedModule};
use crate::store::SharedStore;

type Ctx = Context<Coordinator>;

impl Coordinator {
    pub(super) fn security_scan(&mut self, ctx: &mut Ctx) {
        // The start is saved before the registry is asked, so that a slow
        // scan (hashing a large artifact) shows as running; `advance` then
        // comes back here with the stage started.
        if let Some(started) = start_stage(&mut self.run, SECURITY_SCAN_STAGE) {
            return self.save_checkpoint([started], ctx);
        }
        let mut problems = Vec::new();
        let mut checked = Vec::new();
        let mut agents = Vec::new();
        if semver::Version::parse(&self.run.request.version).is_err() {
            problems.push(format!("version '{}' is not semantic", self.run.request.version));
        }
        let path = self.run.request.target_environment.path();
        for &env in &path {
            let nodes = self.env_nodes(env);
            let unreachable: Vec<_> = nodes.iter().filter(|n| !n.reachable()).map(|n| n.hostname.clone()).collect();
            if nodes.is_empty() {
                problems.push(empty_cluster(env));
            } else if !unreachable.is_empty() {
                problems.push(unreachable_nodes(env, &unreachable, nodes.len()));
            }
            checked.push(format!("{env}: {}", counted(nodes.len(), "node", "nodes")));
            agents.extend(agents_among(&nodes));
        }
        if !problems.is_empty() {
            return self.scan_failed(problems, ctx);
        }
        self.busy = true;
        let verifier = self.deps.hooks.verifier.clone();
        let store = self.deps.store.clone();
        let (tenant, module, version) = (self.run.tenant_id, self.module(), self.run.request.version.clone());
        let scan = async move {
            let verified = verifier.verify(tenant, &module, &version).await?;
            let mut problems =
                unmet_dependencies(&store, tenant, &path, &module, &version, &verified.dependencies).await?;
            problems.extend(verified.dependents.as_ref().and_then(|d| d.refusal(&module, &version, &path)));
            problems.extend(unregistered_on_agents(&module, &version, &verified, &agents));
            problems.extend(verified.unverified_signature.as_ref().and_then(|s| s.refusal_by_agents(&agents)));
            Ok::<_, ScanError>((verified, problems))
        };
        ctx.spawn(scan.into_actor(self).map(move |result, act, ctx| {
            act.busy = false;
            match result {
                Ok((verified, problems)) if problems.is_empty() => act.scan_passed(verified, &checked, ctx),
                Ok((_, problems)) => act.scan_failed(problems, ctx),
                Err(ScanError::Refused(why)) => act.scan_failed(vec![why], ctx),
                Err(ScanError::Unavailable(why)) => {
                    tracing::warn!(run = %act.run.execution_id, error = %why, "registry unavailable; the scan is repeated");
                    act.retry_later(ctx);
                }
            }
        }));
    }

    fn scan_passed(&mut self, verified: VerifiedModule, checked: &[String], ctx: &mut Ctx) {
        let mut message =
            format!("Checked the version, the fault plan and every target cluster ({}).", checked.join(", "));
        for note in &verified.notes {
            message.push(' ');
            message.push_str(note);
        }
        if let Some(dependents) = &verified.dependents {
            message.push_str(" Dependents: ");
            message.push_str(&dependents.summary());
        }
        self.run.artifact_digest = verified.digest;
        let done = finish_stage(&mut self.run, SECURITY_SCAN_STAGE, StageStatus::Succeeded, message);
        self.run.checkpoint = if self.run.approval_required {
            Checkpoint::RequestApproval
        } else {
            self.first_step(Environment::Development)
        };
        self.save_checkpoint(done, ctx);
    }

    fn scan_failed(&mut self, problems: Vec<String>, ctx: &mut Ctx) {
        let message = format!("Security scan failed: {}", super::stages::listed(&problems));
        let done = finish_stage(&mut self.run, SECURITY_SCAN_STAGE, StageStatus::Failed, message.clone());
        let end = finish_run(&mut self.run, RunStatus::Failed, message);
        self.run.checkpoint = Checkpoint::Done;
        self.save_checkpoint(done.into_iter().chain([end]), ctx);
    }
}

/// Why a run cannot pass an environment without nodes, and what gives it
/// some: a run deploys to every environment on its path up to its target,
/// so an agents-only environment with no host enrolled yet stops them all.
pub(crate) fn empty_cluster(env: Environment) -> String {
    format!(
        "no nodes available in the {env} cluster, which every run to {env} or beyond deploys to first: enrol a host \
         there (hotswap agents token --to {env}, then hotswap agent on the host) or give it simulated nodes \
         ([simulation.nodes] {})",
        env.as_str().to_lowercase()
    )
}

/// "QA nodes not reachable (2 of 5): qa-node-01, qa-node-04", naming a few.
pub(crate) fn unreachable_nodes(env: Environment, unreachable: &[String], total: usize) -> String {
    format!(
        "{env} nodes not reachable ({} of {}): {}",
        thousands(unreachable.len()),
        thousands(total),
        listed_with(unreachable, ", ")
    )
}

/// Why a version the registry does not hold cannot reach these agent nodes:
/// an agent installs registered modules only (it checks the artifact's
/// digest and signature itself), so the scan refuses the run before any
/// host is asked, instead of each agent refusing it in the middle of a stage.
pub(crate) fn unregistered_on_agents(
    module: &str,
    version: &str,
    verified: &VerifiedModule,
    agents: &[PathAgent],
) -> Option<String> {
    (verified.digest.is_none() && !agents.is_empty()).then(|| {
        let hostnames: Vec<String> = agents.iter().map(|a| a.hostname.clone()).collect();
        format!(
            "{module} {version} is not in the module registry, and agents install registered modules only \
             (agent nodes on the path: {})",
            super::stages::listed(&hostnames)
        )
    })
}

/// The agent hosts among `nodes`, for the scan's checks of what agents accept.
pub(crate) fn agents_among(nodes: &[Arc<NodeEntry>]) -> impl Iterator<Item = PathAgent> + '_ {
    nodes
        .iter()
        .filter(|n| n.kind == NodeKind::Agent)
        .map(|n| PathAgent { hostname: n.hostname.clone(), accepts_unsigned: n.accepts_unsigned() })
}

/// Each requirement of `dependencies` that some target node does not meet,
/// as a sentence. A requirement on the module being deployed is met by the
/// run itself when its version matches. Dry runs ask the same question.
pub(crate) async fn unmet_dependencies(
    store: &SharedStore,
    tenant: TenantId,
    path: &[Environment],
    module: &str,
    version: &str,
    dependencies: &BTreeMap<String, String>,
) -> Result<Vec<String>, ScanError> {
    let mut unmet = Vec::new();
    if dependencies.is_empty() {
        return Ok(unmet);
    }
    let mut nodes = Vec::new();
    for &env in path {
        let in_env = store.nodes_in(tenant, env).await.map_err(|e| ScanError::Unavailable(e.to_string()))?;
        nodes.push((env, in_env));
    }
    for (dep, requirement) in dependencies {
        let Ok(req) = semver::VersionReq::parse(requirement) else {
            unmet.push(format!(
                "dependency {dep} has requirement '{requirement}', which is not a semantic-version requirement"
            ));
            continue;
        };
        let matches = |v: &str| semver::Version::parse(v).is_ok_and(|v| req.matches(&v));
        if dep == module && matches(version) {
            continue;
        }
        for (env, in_env) in &nodes {
            let missing: Vec<_> = in_env
                .iter()
                .filter(|n| !n.modules.get(dep).and_then(|s| s.active.as_ref()).is_some_and(|a| matches(&a.version)))
                .collect();
            if let Some(first) = missing.first() {
                let runs = match first.modules.get(dep).and_then(|s| s.active.as_ref()) {
                    Some(a) => format!("runs {dep} {}", a.version),
                    None => format!("does not run {dep}"),
                };
                unmet.push(format!(
                    "dependency {dep} {requirement} is not met in {env}: {} of {} nodes lack it ({} {runs}); deploy a matching {dep} there first",
                    missing.len(),
                    in_env.len(),
                    first.hostname
                ));
            }
        }
    }
    Ok(unmet)
}

#[cfg(test)]
mod tests {
    use super::unreachable_nodes;
    use crate::domain::Environment;

    #[test]
    fn unreachable_nodes_are_named_a_few_at_a_time() {
        let down: Vec<String> = (1..=2_000).map(|i| format!("qa-{i}")).collect();
        assert_eq!(
            unreachable_nodes(Environment::Qa, &down, 10_000),
            "QA nodes not reachable (2,000 of 10,000): qa-1, qa-2, qa-3, qa-4, qa-5, and 1,995 more"
        );
        assert_eq!(unreachable_nodes(Environment::Qa, &down[..1], 5), "QA nodes not reachable (1 of 5): qa-1");
    }
}
