//! Options that take one of a few words (an environment, a status, a topic
//! type): clap checks them in any case before anything is sent, refuses
//! another word listing the accepted ones, and hands the word on as the API
//! spells it.

use clap::builder::{PossibleValuesParser, TypedValueParser};
use hotswap_actors::domain::{AuditCategory, Environment, RunStatus};

/// One of `accepted`, compared without case (the argument needs
/// `ignore_case = true`), as `accepted` spells it.
fn one_of(accepted: Vec<&'static str>) -> impl TypedValueParser<Value = String> {
    PossibleValuesParser::new(accepted.clone()).map(move |typed: String| {
        accepted.iter().find(|word| word.eq_ignore_ascii_case(&typed)).map_or(typed, |word| word.to_string())
    })
}

pub fn environment() -> impl TypedValueParser<Value = String> {
    one_of(Environment::ALL.iter().map(|e| e.as_str()).collect())
}

pub fn run_status() -> impl TypedValueParser<Value = String> {
    one_of(RunStatus::ALL.iter().map(|s| s.as_str()).collect())
}

pub fn audit_category() -> impl TypedValueParser<Value = String> {
    one_of(AuditCategory::ALL.iter().map(|c| c.as_str()).collect())
}

/// The message bus's words, as `hotswap_actors::messaging` names its variants.
const TOPIC_TYPES: [&str; 2] = ["PubSub", "Queue"];
const GUARANTEES: [&str; 3] = ["AtMostOnce", "AtLeastOnce", "ExactlyOnce"];
const ROUTINGS: [&str; 5] = ["Direct", "FanOut", "LoadBalanced", "Priority", "ContentBased"];

pub fn topic_type() -> impl TypedValueParser<Value = String> {
    one_of(TOPIC_TYPES.to_vec())
}

pub fn delivery_guarantee() -> impl TypedValueParser<Value = String> {
    one_of(GUARANTEES.to_vec())
}

pub fn routing_strategy() -> impl TypedValueParser<Value = String> {
    one_of(ROUTINGS.to_vec())
}

/// The deployment strategies a run may be given.
pub fn strategy() -> impl TypedValueParser<Value = String> {
    one_of(vec!["Direct", "Rolling", "BlueGreen", "Canary"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_messaging_words_are_the_models_own() {
        use hotswap_actors::messaging::{DeliveryGuarantee, RoutingStrategy, TopicType};
        let parses = |json: &str| serde_json::from_str::<serde_json::Value>(json).unwrap();
        for word in TOPIC_TYPES {
            serde_json::from_value::<TopicType>(parses(&format!("\"{word}\""))).unwrap();
        }
        for word in GUARANTEES {
            serde_json::from_value::<DeliveryGuarantee>(parses(&format!("\"{word}\""))).unwrap();
        }
        for word in ROUTINGS {
            serde_json::from_value::<RoutingStrategy>(parses(&format!("\"{word}\""))).unwrap();
        }
    }
}
