//! The simulated side of a node: its metric model and the fault knobs a
//! deployment's metadata can carry while simulation is enabled.

use std::collections::{BTreeMap, BTreeSet};

pub use crate::domain::VersionFaults;
use crate::domain::{Environment, NodeMetrics};

/// How one node's attempt to load a version goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadFault {
    None,
    Fail,
    Panic,
    /// The artifact arrives altered, so its digest is not the registry's.
    Tampered,
}

/// The knobs in force for one environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EnvFaults {
    pub deploy_failure: f64,
    pub fail_nodes: BTreeSet<String>,
    pub panic: f64,
    pub version: VersionFaults,
    /// Hosts that receive an altered artifact; `tamper_all` for every host.
    pub tampered_nodes: BTreeSet<String>,
    pub tamper_all: bool,
    /// How long every node takes to load or verify a version: a slow fleet,
    /// which keeps a run inside one step long enough to act on it mid-way.
    pub node_delay: std::time::Duration,
}

impl EnvFaults {
    /// `hostnames` must be sorted; the knobs pick "the first by hostname".
    pub fn load_faults<'a>(&self, hostnames: impl ExactSizeIterator<Item = &'a str>) -> Vec<LoadFault> {
        let n = hostnames.len();
        let share = |fraction: f64| (fraction * n as f64).ceil() as usize;
        let failing = share(self.deploy_failure);
        let panicking = share(self.panic);
        hostnames
            .enumerate()
            .map(|(i, host)| {
                if i < panicking {
                    LoadFault::Panic
                } else if i < failing || self.fail_nodes.contains(host) {
                    LoadFault::Fail
                } else if self.tamper_all || self.tampered_nodes.contains(host) {
                    LoadFault::Tampered
                } else {
                    LoadFault::None
                }
            })
            .collect()
    }
}

const KNOBS: [&str; 9] = [
    "simulateNodeDelayMs",
    "simulateTamperedArtifact",
    "simulateDeployFailure",
    "simulateErrorRate",
    "simulateLatencyMs",
    "simulateCpu",
    "simulateUnhealthy",
    "simulateFailNodes",
    "simulatePanic",
];

/// The fault knobs found in a deployment's metadata, per environment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultPlan {
    /// Knobs without an `@Environment` suffix.
    everywhere: BTreeMap<String, String>,
    scoped: BTreeMap<Environment, BTreeMap<String, String>>,
}

impl FaultPlan {
    /// Reads the knobs out of `metadata`; other keys are ignored. Every bad
    /// value is reported, so that the request can be refused as a whole.
    pub fn parse(metadata: &BTreeMap<String, String>) -> Result<FaultPlan, Vec<String>> {
        let mut plan = FaultPlan::default();
        let mut errors = Vec::new();
        for (key, value) in metadata {
            let (name, env) = match key.split_once('@') {
                Some((name, env)) => (name, Some(env)),
                None => (key.as_str(), None),
            };
            if !KNOBS.contains(&name) {
                continue;
            }
            if let Err(e) = check_knob(name, value) {
                errors.push(format!("metadata '{key}': {e}"));
                continue;
            }
            match env {
                None => {
                    plan.everywhere.insert(name.to_string(), value.clone());
                }
                Some(env) => match env.parse::<Environment>() {
                    Ok(env) => {
                        plan.scoped.entry(env).or_default().insert(name.to_string(), value.clone());
                    }
                    Err(e) => errors.push(format!("metadata '{key}': {e}")),
                },
            }
        }
        if errors.is_empty() {
            Ok(plan)
        } else {
            Err(errors)
        }
    }

    pub fn for_env(&self, env: Environment) -> EnvFaults {
        let mut knobs = self.everywhere.clone();
        if let Some(scoped) = self.scoped.get(&env) {
            knobs.extend(scoped.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let number = |k: &str| knobs.get(k).and_then(|v| v.trim().parse::<f64>().ok());
        EnvFaults {
            deploy_failure: number("simulateDeployFailure").unwrap_or(0.0),
            panic: number("simulatePanic").unwrap_or(0.0),
            fail_nodes: knobs
                .get("simulateFailNodes")
                .map(|v| v.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect())
                .unwrap_or_default(),
            node_delay: number("simulateNodeDelayMs")
                .filter(|ms| *ms > 0.0)
                .map(|ms| std::time::Duration::from_millis(ms.min(3_600_000.0) as u64))
                .unwrap_or_default(),
            tamper_all: knobs.get("simulateTamperedArtifact").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            tampered_nodes: knobs
                .get("simulateTamperedArtifact")
                .filter(|v| !v.trim().eq_ignore_ascii_case("true"))
                .map(|v| v.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect())
                .unwrap_or_default(),
            version: VersionFaults {
                error_rate: number("simulateErrorRate"),
                latency_ms: number("simulateLatencyMs"),
                cpu: number("simulateCpu"),
                unhealthy: knobs.get("simulateUnhealthy").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            },
        }
    }
}

fn check_knob(name: &str, value: &str) -> Result<(), String> {
    let v = value.trim();
    let number = || v.parse::<f64>().ok().filter(|x| x.is_finite());
    match name {
        "simulateDeployFailure" | "simulatePanic" => match number() {
            Some(x) if (0.0..=1.0).contains(&x) => Ok(()),
            _ => Err("must be a fraction between 0 and 1".into()),
        },
        "simulateErrorRate" | "simulateCpu" => match number() {
            Some(x) if (0.0..=100.0).contains(&x) => Ok(()),
            _ => Err("must be a percentage between 0 and 100".into()),
        },
        "simulateLatencyMs" | "simulateNodeDelayMs" => match number() {
            Some(x) if x >= 0.0 => Ok(()),
            _ => Err("must be a non-negative number of milliseconds".into()),
        },
        "simulateUnhealthy" => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err("must be true or false".into()),
        },
        _ => Ok(()),
    }
}

/// A stable per-node baseline derived from the hostname, with a small
/// deterministic wobble over time so that samples are not all identical.
pub fn baseline_metrics(hostname: &str, tick: u64) -> NodeMetrics {
    let h = fnv1a(hostname.as_bytes());
    let unit = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65535.0;
    // ±1 % wobble: far below every canary threshold, so noise never fails a run.
    let wobble = 1.0 + 0.01 * (((tick.wrapping_add(h) % 7) as f64 - 3.0) / 3.0);
    NodeMetrics {
        cpu_usage: (30.0 + 20.0 * unit(0)) * wobble,
        memory_usage: (40.0 + 20.0 * unit(16)) * wobble,
        latency_ms: (80.0 + 60.0 * unit(32)) * wobble,
        error_rate: (0.2 + 0.6 * unit(48)) * wobble,
        requests_per_second: (100.0 + 200.0 * unit(8)) * wobble,
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ *b as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn scoped_knobs_override_global_ones_only_in_their_environment() {
        let plan =
            FaultPlan::parse(&meta(&[("simulateErrorRate", "2"), ("simulateErrorRate@QA", "9"), ("owner", "team-a")]))
                .unwrap();
        assert_eq!(plan.for_env(Environment::Development).version.error_rate, Some(2.0));
        assert_eq!(plan.for_env(Environment::Qa).version.error_rate, Some(9.0));
    }

    #[test]
    fn bad_knob_values_are_all_reported() {
        let errors = FaultPlan::parse(&meta(&[
            ("simulateDeployFailure", "1.5"),
            ("simulateUnhealthy", "maybe"),
            ("simulateCpu@Nowhere", "10"),
        ]))
        .unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
    }

    #[test]
    fn deploy_failure_picks_the_first_hosts_rounded_up() {
        let plan = FaultPlan::parse(&meta(&[("simulateDeployFailure", "0.3")])).unwrap();
        let hosts: Vec<String> = (1..=5).map(|i| format!("qa-node-{i:02}")).collect();
        let faults = plan.for_env(Environment::Qa).load_faults(hosts.iter().map(String::as_str));
        assert_eq!(faults, vec![LoadFault::Fail, LoadFault::Fail, LoadFault::None, LoadFault::None, LoadFault::None]);
    }

    #[test]
    fn tampered_artifacts_by_host_or_everywhere() {
        let hosts: Vec<String> = (1..=3).map(|i| format!("qa-node-{i:02}")).collect();
        let some = FaultPlan::parse(&meta(&[("simulateTamperedArtifact", "qa-node-02")])).unwrap();
        let faults = some.for_env(Environment::Qa).load_faults(hosts.iter().map(String::as_str));
        assert_eq!(faults, vec![LoadFault::None, LoadFault::Tampered, LoadFault::None]);
        let all = FaultPlan::parse(&meta(&[("simulateTamperedArtifact@QA", "true")])).unwrap();
        assert_eq!(
            all.for_env(Environment::Qa).load_faults(hosts.iter().map(String::as_str)),
            vec![LoadFault::Tampered; 3]
        );
        assert_eq!(
            all.for_env(Environment::Development).load_faults(hosts.iter().map(String::as_str)),
            vec![LoadFault::None; 3]
        );
    }

    #[test]
    fn baseline_is_stable_per_host_and_differs_between_hosts() {
        assert_eq!(baseline_metrics("qa-node-01", 5), baseline_metrics("qa-node-01", 5));
        assert_ne!(baseline_metrics("qa-node-01", 5), baseline_metrics("qa-node-02", 5));
        let m = baseline_metrics("production-node-07", 3);
        assert!(m.cpu_usage < 90.0 && m.error_rate < 5.0);
    }
}
