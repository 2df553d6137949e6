//! The Security Scan's checks as a dry run reports them: what each check's
//! outcome can be, and the checks the registry's answer decides (the
//! registry, the signature, the knowledge graph's dependents), judged
//! without running the scan.

use crate::domain::DeploymentRequest;
use crate::registry::{ScanError, VerifiedModule};

/// How one check of the Security Scan would end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckOutcome {
    Passed,
    /// Passes, with something the operator should know (an unsigned module
    /// outside strict mode, an unregistered one where that is allowed).
    Warning,
    Failed,
    /// Could not be told now (the registry did not answer).
    Unknown,
    /// Not reached because an earlier check failed.
    Skipped,
}

impl CheckOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Passed => "Passed",
            CheckOutcome::Warning => "Warning",
            CheckOutcome::Failed => "Failed",
            CheckOutcome::Unknown => "Unknown",
            CheckOutcome::Skipped => "Skipped",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanCheck {
    /// Downgrade (an admission check of the API, made before the scan),
    /// Version, Clusters, Registry, Signature, Dependencies or Dependents.
    pub name: &'static str,
    pub outcome: CheckOutcome,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScanPlan {
    /// The worst outcome of the checks: Failed means the run would end at the scan.
    pub outcome: CheckOutcome,
    pub checks: Vec<ScanCheck>,
}

/// The checks the registry's answer decides: is the version registered with
/// an intact artifact, and does its signature verify.
pub(super) fn registry_checks(answer: &Option<Result<VerifiedModule, ScanError>>) -> [ScanCheck; 2] {
    let about_signature = |s: &str| {
        let s = s.to_ascii_lowercase();
        s.contains("signature") || s.contains("signed")
    };
    let check = |name, outcome, message: String| ScanCheck { name, outcome, message };
    match answer {
        None => [
            check("Registry", CheckOutcome::Skipped, "not asked: an earlier check failed".into()),
            check("Signature", CheckOutcome::Skipped, "not asked: an earlier check failed".into()),
        ],
        Some(Err(ScanError::Unavailable(why))) => [
            check("Registry", CheckOutcome::Unknown, format!("the registry did not answer: {why}")),
            check("Signature", CheckOutcome::Unknown, "the registry did not answer".into()),
        ],
        Some(Err(ScanError::Refused(why))) if about_signature(why) => [
            check("Registry", CheckOutcome::Passed, "the version is registered".into()),
            check("Signature", CheckOutcome::Failed, why.clone()),
        ],
        Some(Err(ScanError::Refused(why))) => [
            check("Registry", CheckOutcome::Failed, why.clone()),
            check("Signature", CheckOutcome::Skipped, "not checked: the registry refused the version".into()),
        ],
        Some(Ok(verified)) => {
            // A note about an unregistered version speaks for both checks.
            let about_registry = |s: &str| s.contains("registry") || !about_signature(s);
            let sig: Vec<&String> = verified.notes.iter().filter(|n| about_signature(n)).collect();
            let reg: Vec<&String> = verified.notes.iter().filter(|n| about_registry(n)).collect();
            let summarise = |notes: Vec<&String>, none: &str| {
                let warned = notes.iter().any(|n| n.starts_with("Warning"));
                let message = if notes.is_empty() {
                    none.to_string()
                } else {
                    notes.iter().map(|n| n.as_str()).collect::<Vec<_>>().join(" ")
                };
                (if warned { CheckOutcome::Warning } else { CheckOutcome::Passed }, message)
            };
            let unregistered = verified.notes.iter().any(|n| n.contains("not in the module registry"));
            let (reg_outcome, reg_message) = summarise(reg, "the registry vouched for the version");
            let (sig_outcome, sig_message) = if unregistered {
                // The registry's row says why; this one says only what it means for the signature.
                (CheckOutcome::Warning, "not checked: the version is not in the module registry".to_string())
            } else {
                summarise(sig, "no signature check is configured")
            };
            [check("Registry", reg_outcome, reg_message), check("Signature", sig_outcome, sig_message)]
        }
    }
}

/// The knowledge graph's check, which the registry's verifier carries: would
/// the version break a module that depends on it where both run?
pub(super) fn dependents_check(
    request: &DeploymentRequest,
    answer: &Option<Result<VerifiedModule, ScanError>>,
) -> ScanCheck {
    let check = |outcome, message: String| ScanCheck { name: "Dependents", outcome, message };
    match answer {
        None => check(CheckOutcome::Skipped, "not asked: an earlier check failed".into()),
        Some(Err(ScanError::Unavailable(_))) => check(CheckOutcome::Unknown, "the registry did not answer".into()),
        Some(Err(ScanError::Refused(_))) => {
            check(CheckOutcome::Skipped, "not checked: the registry refused the version".into())
        }
        Some(Ok(VerifiedModule { dependents: None, .. })) => {
            check(CheckOutcome::Passed, "no module in the knowledge graph depends on this one".into())
        }
        Some(Ok(VerifiedModule { dependents: Some(found), .. })) => {
            match found.refusal(&request.module_name, &request.version, &request.target_environment.path()) {
                Some(why) => check(CheckOutcome::Failed, why),
                None => check(CheckOutcome::Passed, found.summary()),
            }
        }
    }
}

pub(super) fn worst(checks: &[ScanCheck]) -> CheckOutcome {
    let rank = |o: CheckOutcome| match o {
        CheckOutcome::Failed => 4,
        CheckOutcome::Unknown => 3,
        CheckOutcome::Warning => 2,
        CheckOutcome::Passed => 1,
        CheckOutcome::Skipped => 0,
    };
    checks.iter().map(|c| c.outcome).max_by_key(|o| rank(*o)).unwrap_or(CheckOutcome::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Environment;
    use crate::orchestrator::dry_run::tests::request;
    use crate::registry::{BrokenDependent, DependentsChecked};
    #[test]
    fn registry_answers_split_into_registry_and_signature() {
        let warned = Some(Ok(VerifiedModule {
            notes: vec![
                "Artifact SHA-256 ab verified.".into(),
                "Warning: m 1.0.0 is not signed; passed because security.strict_mode is off.".into(),
            ],
            ..VerifiedModule::default()
        }));
        let [reg, sig] = registry_checks(&warned);
        assert_eq!((reg.outcome, sig.outcome), (CheckOutcome::Passed, CheckOutcome::Warning));
        let unregistered = Some(Ok(VerifiedModule {
            notes: vec![
                "Warning: m 1.0.0 is not in the module registry, so neither its digest nor its signature was checked."
                    .into(),
            ],
            ..VerifiedModule::default()
        }));
        let [reg, sig] = registry_checks(&unregistered);
        assert_eq!((reg.outcome, sig.outcome), (CheckOutcome::Warning, CheckOutcome::Warning));
        assert!(reg.message.contains("neither its digest nor its signature"), "{}", reg.message);
        assert_eq!(sig.message, "not checked: the version is not in the module registry");
        let refused = Some(Err(ScanError::Refused("m 1.0.0 is not signed (security.strict_mode is on)".into())));
        let [reg, sig] = registry_checks(&refused);
        assert_eq!((reg.outcome, sig.outcome), (CheckOutcome::Passed, CheckOutcome::Failed));
        let missing = Some(Err(ScanError::Refused("m 1.0.0 is not in the module registry".into())));
        assert_eq!(registry_checks(&missing)[0].outcome, CheckOutcome::Failed);
        let down = Some(Err(ScanError::Unavailable("timeout".into())));
        assert_eq!(registry_checks(&down)[1].outcome, CheckOutcome::Unknown);
    }

    #[test]
    fn broken_dependents_are_their_own_check_not_the_registrys() {
        let req = request(Environment::Development);
        let breaks = Some(Ok(VerifiedModule {
            notes: vec!["Artifact SHA-256 ab verified.".into()],
            dependents: Some(DependentsChecked {
                direct: 1,
                broken: vec![BrokenDependent {
                    dependent: "api 1.0.0".into(),
                    requirement: "^1.0".into(),
                    nodes: [(Environment::Development, vec!["dev-1".to_string()])].into(),
                }],
            }),
            ..VerifiedModule::default()
        }));
        let [reg, sig] = registry_checks(&breaks);
        assert_eq!((reg.outcome, sig.outcome), (CheckOutcome::Passed, CheckOutcome::Passed));
        let dependents = dependents_check(&req, &breaks);
        assert_eq!(dependents.outcome, CheckOutcome::Failed);
        assert!(
            dependents.message.ends_with(
                "would break modules that depend on it: api 1.0.0 requires netfilter-ext ^1.0, which 1.4.0 does not meet, on node dev-1"
            ),
            "{}",
            dependents.message
        );
        let fine = Some(Ok(VerifiedModule {
            dependents: Some(DependentsChecked { direct: 2, broken: Vec::new() }),
            ..VerifiedModule::default()
        }));
        assert_eq!(dependents_check(&req, &fine).outcome, CheckOutcome::Passed);
        assert!(!registry_checks(&fine)[0].message.contains("Dependencies"));
        assert_eq!(dependents_check(&req, &None).outcome, CheckOutcome::Skipped);
    }
}
