//! A topic's `type` and `deliveryGuarantee` as clients write them: by name in
//! any case (`_` and `-` ignored, as routing strategies and compatibility
//! modes are read), or by the original's position (its raw models carried
//! numeric enums, System.Text.Json's default). A refusal names the field and
//! what it takes.

use hotswap_actors::messaging::{DeliveryGuarantee, TopicType};
use serde_json::Value;

/// The original's TopicType, in declaration order (Queue first).
const TOPIC_TYPES: [(TopicType, &str); 2] = [(TopicType::Queue, "Queue"), (TopicType::PubSub, "PubSub")];

/// The original's DeliveryGuarantee, in declaration order.
const GUARANTEES: [(DeliveryGuarantee, &str); 3] = [
    (DeliveryGuarantee::AtMostOnce, "AtMostOnce"),
    (DeliveryGuarantee::AtLeastOnce, "AtLeastOnce"),
    (DeliveryGuarantee::ExactlyOnce, "ExactlyOnce"),
];

pub fn topic_type(given: &Value) -> Result<TopicType, String> {
    member("type", &TOPIC_TYPES, given)
}

pub fn delivery_guarantee(given: &Value) -> Result<DeliveryGuarantee, String> {
    member("deliveryGuarantee", &GUARANTEES, given)
}

fn member<T: Copy>(field: &str, members: &[(T, &str)], given: &Value) -> Result<T, String> {
    let found = match given {
        Value::String(name) => {
            let wanted = folded(name);
            members.iter().find(|(_, n)| folded(n) == wanted)
        }
        Value::Number(n) => {
            let whole = n.as_u64().or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64));
            whole.and_then(|p| usize::try_from(p).ok()).and_then(|p| members.get(p))
        }
        _ => None,
    };
    found.map(|(member, _)| *member).ok_or_else(|| {
        let names: Vec<&str> = members.iter().map(|(_, n)| *n).collect();
        let positions: Vec<String> = members.iter().enumerate().map(|(i, (_, n))| format!("{i} {n}")).collect();
        format!(
            "{field}: {given} is not one of {} (any case), or the original's position: {}",
            names.join(", "),
            positions.join(", ")
        )
    })
}

fn folded(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '_' | '-')).flat_map(char::to_lowercase).collect()
}

/// The document's `type`: a name or the original's position.
pub fn topic_type_document() -> utoipa::openapi::schema::Schema {
    document(&TOPIC_TYPES, "PubSub (the default) or Queue")
}

/// The document's `deliveryGuarantee`: a name or the original's position.
pub fn guarantee_document() -> utoipa::openapi::schema::Schema {
    document(&GUARANTEES, "AtMostOnce, AtLeastOnce (the default) or ExactlyOnce")
}

fn document<T>(members: &[(T, &str)], what: &str) -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let names: Vec<&str> = members.iter().map(|(_, n)| *n).collect();
    let positions: Vec<String> = members.iter().enumerate().map(|(i, (_, n))| format!("{i} {n}")).collect();
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String).examples([names[0]]))
            .item(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).maximum(Some(members.len() - 1)))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(format!(
                "{what}: a name in any case, or the original's position ({}); on PUT, left out keeps the topic's",
                positions.join(", ")
            )))
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn names_in_any_case_and_the_originals_positions_are_taken() {
        assert_eq!(topic_type(&json!("queue")), Ok(TopicType::Queue));
        assert_eq!(topic_type(&json!("PUB_SUB")), Ok(TopicType::PubSub));
        assert_eq!(topic_type(&json!(0)), Ok(TopicType::Queue));
        assert_eq!(topic_type(&json!(1.0)), Ok(TopicType::PubSub));
        assert_eq!(delivery_guarantee(&json!("exactly-once")), Ok(DeliveryGuarantee::ExactlyOnce));
        assert_eq!(delivery_guarantee(&json!(0)), Ok(DeliveryGuarantee::AtMostOnce));
    }

    #[test]
    fn a_refusal_names_the_field_and_what_it_takes() {
        let why = topic_type(&json!(2)).unwrap_err();
        assert_eq!(
            why,
            "type: 2 is not one of Queue, PubSub (any case), or the original's position: 0 Queue, 1 PubSub"
        );
        let why = delivery_guarantee(&json!("twice")).unwrap_err();
        assert!(why.starts_with("deliveryGuarantee: \"twice\" is not one of AtMostOnce"), "{why}");
    }
}
