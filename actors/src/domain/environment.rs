use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::Strategy;

/// The four environments a run promotes through, in promotion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Environment {
    Development,
    #[serde(rename = "QA")]
    Qa,
    Staging,
    Production,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown environment '{0}' (expected Development, QA, Staging or Production)")]
pub struct UnknownEnvironment(pub String);

impl Environment {
    pub const ALL: [Environment; 4] =
        [Environment::Development, Environment::Qa, Environment::Staging, Environment::Production];

    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "Development",
            Environment::Qa => "QA",
            Environment::Staging => "Staging",
            Environment::Production => "Production",
        }
    }

    /// Lower-case form used in hostnames and configuration keys.
    pub fn slug(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Qa => "qa",
            Environment::Staging => "staging",
            Environment::Production => "production",
        }
    }

    /// Every environment a run targeting `self` passes through, in order.
    pub fn path(self) -> Vec<Environment> {
        Self::ALL.into_iter().filter(|e| *e <= self).collect()
    }

    pub fn default_strategy(self) -> Strategy {
        match self {
            Environment::Development => Strategy::Direct,
            Environment::Qa => Strategy::Rolling,
            Environment::Staging => Strategy::BlueGreen,
            Environment::Production => Strategy::Canary,
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = UnknownEnvironment;

    /// Case-insensitive, as the original accepted "production" or "PRODUCTION".
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownEnvironment(echoed(s)))
    }
}

/// The longest name an error repeats back: an environment names one of four
/// words, so a longer value is shown by its start only (a 100 KB value would
/// otherwise come back twice as large in the error).
const ECHOED_CHARS: usize = 32;

fn echoed(s: &str) -> String {
    if s.chars().count() <= ECHOED_CHARS {
        return s.to_string();
    }
    let start: String = s.chars().take(ECHOED_CHARS).collect();
    format!("{start}…")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_environment_is_repeated_back_by_its_start_only() {
        let long = "x".repeat(100_000);
        let message = long.parse::<Environment>().unwrap_err().to_string();
        assert!(message.len() < 120, "{message}");
        assert!(message.contains(&format!("'{}…'", "x".repeat(32))), "{message}");
        assert!("Mars".parse::<Environment>().unwrap_err().to_string().contains("'Mars'"));
    }

    #[test]
    fn parses_case_insensitively_and_orders_the_path() {
        assert_eq!("qa".parse::<Environment>().unwrap(), Environment::Qa);
        assert_eq!("PRODUCTION".parse::<Environment>().unwrap(), Environment::Production);
        assert!("prod".parse::<Environment>().is_err());
        assert_eq!(Environment::Staging.path(), vec![Environment::Development, Environment::Qa, Environment::Staging]);
    }
}
