use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::Environment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Strategy {
    Direct,
    Rolling,
    BlueGreen,
    Canary,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Direct => "Direct",
            Strategy::Rolling => "Rolling",
            Strategy::BlueGreen => "BlueGreen",
            Strategy::Canary => "Canary",
        }
    }

    pub fn parse(s: &str) -> Option<Strategy> {
        [Strategy::Direct, Strategy::Rolling, Strategy::BlueGreen, Strategy::Canary].into_iter().find(|k| {
            k.as_str().eq_ignore_ascii_case(s) || (s.eq_ignore_ascii_case("blue-green") && *k == Strategy::BlueGreen)
        })
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated request to roll one module version out up to a target environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRequest {
    pub module_name: String,
    pub version: String,
    pub target_environment: Environment,
    pub requester_email: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub require_approval: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Overrides the strategy of the target environment only; the environments
    /// before it keep their own.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// Canary step percentages for this run, replacing `pipeline.canary_steps`.
    #[serde(default)]
    pub canary_steps: Option<Vec<u32>>,
}

impl DeploymentRequest {
    pub fn strategy_for(&self, env: Environment) -> Strategy {
        match self.strategy {
            Some(s) if env == self.target_environment => s,
            _ => env.default_strategy(),
        }
    }

    /// Whether some stage of the run deploys as a canary, the one strategy
    /// `canary_steps` shapes.
    pub fn has_canary_stage(&self) -> bool {
        self.target_environment.path().into_iter().any(|env| self.strategy_for(env) == Strategy::Canary)
    }
}
