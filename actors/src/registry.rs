//! What the Security Scan asks of the module registry. The core defines the
//! question; the root crate answers it with its registry, its artifact store
//! and RSA verification. Without a registry, [`NoRegistry`] answers.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::domain::listing::{listed, listed_with, thousands};
use crate::domain::{Environment, TenantId};

/// A version the registry vouched for.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VerifiedModule {
    /// The artifact's SHA-256, as the nodes must receive it; `None` when the
    /// version is not registered and the settings let that pass.
    pub digest: Option<String>,
    /// Module name → semantic-version requirement, from the descriptor.
    pub dependencies: BTreeMap<String, String>,
    /// What was checked, and warnings (an unsigned module outside strict mode).
    pub notes: Vec<String>,
    /// A signature the registry could not verify, which the settings let
    /// through (outside strict mode). Agents check signatures themselves.
    pub unverified_signature: Option<UnverifiedSignature>,
    /// What the knowledge graph found about the modules that depend on this
    /// one; `None` where nothing it knows of depends on the module.
    pub dependents: Option<DependentsChecked>,
}

/// An agent host on a run's path, as the Security Scan sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PathAgent {
    pub hostname: String,
    /// The agent installs unsigned modules (its latest report says so).
    pub accepts_unsigned: bool,
}

/// Why a version's signature was not verified by a trusted key.
#[derive(Debug, Clone, PartialEq)]
pub struct UnverifiedSignature {
    /// It carries a signature (no trusted, unrevoked key verifies it), as
    /// opposed to none at all.
    pub signed: bool,
    /// The registry's sentence, "m 1.0.0 is not signed".
    pub problem: String,
}

impl UnverifiedSignature {
    /// Why agents on a run's path would refuse the version: every agent
    /// refuses a signature its keys (the tenant's unrevoked keys) do not
    /// verify, and those that require signatures refuse an unsigned version.
    /// The message names a few agents and counts the rest.
    pub fn refusal_by_agents(&self, agents: &[PathAgent]) -> Option<String> {
        let refusing: Vec<String> =
            agents.iter().filter(|a| self.signed || !a.accepts_unsigned).map(|a| a.hostname.clone()).collect();
        if refusing.is_empty() {
            return None;
        }
        let why = if self.signed {
            "agents check signatures against the tenant's trusted keys themselves"
        } else {
            "agents that require signatures install signed modules only"
        };
        Some(format!(
            "{}, and {why} (agent nodes on the path: {}); sign it with a trusted key (hotswap module sign) and upload it as a new version",
            self.problem,
            listed_with(&refusing, ", ")
        ))
    }
}

/// The knowledge graph's answer for a version: would it break a module that
/// depends on it, on nodes where both run?
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DependentsChecked {
    /// Dependent module versions one hop away.
    pub direct: usize,
    /// Each requirement the version would break, and the nodes where it would.
    pub broken: Vec<BrokenDependent>,
}

/// A dependent module version whose requirement the checked version does not
/// meet, with the nodes that run both.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BrokenDependent {
    /// The dependent module version, "api 1.0.0".
    pub dependent: String,
    /// Its requirement on the checked module, "^1.0".
    pub requirement: String,
    /// Hostnames of the nodes running both, sorted, by environment.
    pub nodes: BTreeMap<Environment, Vec<String>>,
}

impl DependentsChecked {
    /// Why `version` of `module` must not go to the environments of `path`,
    /// if it breaks a dependent on a node there. Nodes elsewhere are not
    /// changed by the run, so what they run is not its concern. The message
    /// names a few dependents and nodes and counts the rest.
    pub fn refusal(&self, module: &str, version: &str, path: &[Environment]) -> Option<String> {
        let sentences: Vec<String> = self.broken.iter().filter_map(|b| b.sentence(module, version, path)).collect();
        (!sentences.is_empty())
            .then(|| format!("{module} {version} would break modules that depend on it: {}", listed(&sentences)))
    }

    /// What was checked, for a scan that passed.
    pub fn summary(&self) -> String {
        let versions = if self.direct == 1 { "version" } else { "versions" };
        format!(
            "{} dependent module {versions} checked in the knowledge graph, none broken where they run.",
            self.direct
        )
    }
}

impl BrokenDependent {
    /// The sentence for every node that runs both, whatever its environment
    /// (what the impact analysis reports); `None` when no node does.
    pub fn conflict(&self, module: &str, version: &str) -> Option<String> {
        self.sentence(module, version, &Environment::ALL)
    }

    /// "api 1.0.0 requires m ^1.0, which 2.0.0 does not meet, on 3 nodes (a, b, c)",
    /// for the nodes of `path`; `None` when none of them runs both.
    fn sentence(&self, module: &str, version: &str, path: &[Environment]) -> Option<String> {
        let hosts: Vec<String> = path.iter().filter_map(|env| self.nodes.get(env)).flatten().cloned().collect();
        let nodes = match hosts.as_slice() {
            [] => return None,
            [one] => format!("on node {one}"),
            _ => format!("on {} nodes ({})", thousands(hosts.len()), listed_with(&hosts, ", ")),
        };
        Some(format!(
            "{} requires {module} {}, which {version} does not meet, {nodes}",
            self.dependent, self.requirement
        ))
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// The version must not be deployed; the message says why and what to do.
    #[error("{0}")]
    Refused(String),
    /// The registry could not answer now; the scan is repeated later.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait ModuleVerifier: Send + Sync {
    /// Checks that `version` of `module` is registered, that its stored bytes
    /// still have their digest, and that its signature verifies against a
    /// trusted, unrevoked key, as far as the settings require each.
    async fn verify(&self, tenant: TenantId, module: &str, version: &str) -> Result<VerifiedModule, ScanError>;
}

/// No registry configured: nothing is verified, and the scan says so.
pub struct NoRegistry;

#[async_trait]
impl ModuleVerifier for NoRegistry {
    async fn verify(&self, _tenant: TenantId, _module: &str, _version: &str) -> Result<VerifiedModule, ScanError> {
        Ok(VerifiedModule {
            notes: vec!["Module signatures are not verified: no module registry is configured.".into()],
            ..VerifiedModule::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{BrokenDependent, DependentsChecked, PathAgent, UnverifiedSignature};
    use crate::domain::Environment::{self, Development, Production, Qa};

    fn broken(dependent: &str, nodes: &[(Environment, usize)]) -> BrokenDependent {
        BrokenDependent {
            dependent: dependent.into(),
            requirement: "^1.0".into(),
            nodes: nodes
                .iter()
                .map(|&(env, n)| (env, (0..n).map(|i| format!("{}-{i:05}", env.slug())).collect()))
                .collect(),
        }
    }

    #[test]
    fn a_refusal_names_a_few_nodes_of_the_runs_path_and_counts_the_rest() {
        let check = DependentsChecked {
            direct: 2,
            broken: vec![broken("api 1.0.0", &[(Development, 3), (Qa, 10_000)]), broken("web 2.0.0", &[(Qa, 1)])],
        };
        let to_qa = check.refusal("base", "2.0.0", &Qa.path()).unwrap();
        assert_eq!(
            to_qa,
            "base 2.0.0 would break modules that depend on it: \
             api 1.0.0 requires base ^1.0, which 2.0.0 does not meet, on 10,003 nodes \
             (development-00000, development-00001, development-00002, qa-00000, qa-00001, and 9,998 more); \
             web 2.0.0 requires base ^1.0, which 2.0.0 does not meet, on node qa-00000"
        );
        let to_dev = check.refusal("base", "2.0.0", &Development.path()).unwrap();
        assert!(to_dev.ends_with("on 3 nodes (development-00000, development-00001, development-00002)"), "{to_dev}");
        assert!(!to_dev.contains("web"), "{to_dev}");
    }

    #[test]
    fn a_conflict_counts_the_nodes_of_every_environment() {
        let api = broken("api 1.0.0", &[(Development, 2), (Production, 7)]);
        assert_eq!(
            api.conflict("base", "2.0.0").unwrap(),
            "api 1.0.0 requires base ^1.0, which 2.0.0 does not meet, on 9 nodes \
             (development-00000, development-00001, production-00000, production-00001, production-00002, and 4 more)"
        );
        assert_eq!(broken("web 2.0.0", &[]).conflict("base", "2.0.0"), None);
    }

    #[test]
    fn agents_refuse_an_untrusted_signature_always_and_no_signature_when_they_require_one() {
        let agent = |hostname: &str, accepts_unsigned| PathAgent { hostname: hostname.into(), accepts_unsigned };
        let agents = vec![agent("strict-1", false), agent("lenient-1", true)];
        let unsigned = UnverifiedSignature { signed: false, problem: "m 1.0.0 is not signed".into() };
        let why = unsigned.refusal_by_agents(&agents).unwrap();
        assert!(why.starts_with("m 1.0.0 is not signed, and agents that require signatures"), "{why}");
        assert!(why.contains("(agent nodes on the path: strict-1)"), "{why}");
        assert_eq!(unsigned.refusal_by_agents(&agents[1..]), None, "a lenient agent installs it");
        let untrusted =
            UnverifiedSignature { signed: true, problem: "the signature of m 1.0.0 does not verify".into() };
        let why = untrusted.refusal_by_agents(&agents).unwrap();
        assert!(why.contains("(agent nodes on the path: strict-1, lenient-1)"), "{why}");
        assert_eq!(untrusted.refusal_by_agents(&[]), None, "no agent, no refusal");
    }

    #[test]
    fn nodes_off_the_runs_path_do_not_refuse_it() {
        let check = DependentsChecked { direct: 1, broken: vec![broken("api 1.0.0", &[(Production, 4)])] };
        assert_eq!(check.refusal("base", "2.0.0", &Qa.path()), None);
        assert!(check.refusal("base", "2.0.0", &Production.path()).is_some());
    }
}
