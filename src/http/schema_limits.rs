//! Schema fragments that state limits utoipa's attributes cannot: maps of
//! strings with bounds on their keys, values and size. Used by the request
//! types whose handlers enforce those bounds, so that a request the document
//! allows is one the server takes.

use utoipa::openapi::schema::{AdditionalProperties, Object, ObjectBuilder, SchemaType, Type};

/// A string of `min` to `max` characters with at least one that is not
/// ASCII white space (`blank`).
fn text(min: usize, max: usize) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(min))
        .max_length(Some(max))
        .pattern(Some("[^ \\t\\n\\f\\r]"))
}

/// What `text` refuses: no character, or only ASCII white space.
pub fn blank(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_whitespace())
}

/// Whether `s` has more than `max` characters (the document's lengths count
/// characters, not bytes).
pub fn longer_than(s: &str, max: usize) -> bool {
    s.chars().nth(max).is_some()
}

/// An object of at most `entries` string values, each key 1 to `key_max`
/// characters (not only ASCII white space) and each value at most `value_max`.
pub fn string_map(entries: usize, key_max: usize, value_max: usize, description: &str, nullable: bool) -> Object {
    let value = ObjectBuilder::new().schema_type(Type::String).max_length(Some(value_max));
    let kind =
        if nullable { SchemaType::from_iter([Type::Object, Type::Null]) } else { SchemaType::from(Type::Object) };
    ObjectBuilder::new()
        .schema_type(kind)
        .property_names(Some(text(1, key_max)))
        .additional_properties(Some(AdditionalProperties::from(value)))
        .max_properties(Some(entries))
        .description(Some(description))
        .build()
}

/// A JSON Schema: an object or a boolean (`true` takes anything).
pub fn json_schema_value() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{OneOfBuilder, Schema};
    Schema::OneOf(
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Object))
            .item(ObjectBuilder::new().schema_type(Type::Boolean))
            .description(Some("A JSON Schema (draft 7 or 2020-12): an object, or true or false"))
            .build(),
    )
}

/// An environment's name in any case, as `targetEnvironment` and the CLI
/// take it ("qa", "PRODUCTION").
pub fn environment_any_case<'de, D>(deserializer: D) -> Result<hotswap_actors::domain::Environment, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
}

/// An optional whole number that JSON may also write as `2.0`: the
/// document's `integer` includes such numbers, serde's integers do not.
pub fn whole_number<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<u64>,
{
    use serde::de::Error;
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = match (number.as_u64(), number.as_f64()) {
        (Some(n), _) => Some(n),
        (None, Some(f)) if f.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(&f) => Some(f as u64),
        _ => None,
    };
    whole
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| D::Error::custom(format!("{number} is not a whole number in range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_string_map_states_its_bounds() {
        let json = serde_json::to_value(string_map(3, 10, 20, "d", true)).unwrap();
        assert_eq!(json["maxProperties"], 3);
        assert_eq!(json["propertyNames"]["maxLength"], 10);
        assert_eq!(json["propertyNames"]["minLength"], 1);
        assert_eq!(json["additionalProperties"]["maxLength"], 20);
        assert_eq!(json["type"], serde_json::json!(["object", "null"]));
    }

    #[derive(serde::Deserialize)]
    struct Target {
        #[serde(deserialize_with = "environment_any_case")]
        environment: hotswap_actors::domain::Environment,
    }

    #[test]
    fn environments_are_read_in_any_case() {
        let read = |text: &str| serde_json::from_str::<Target>(text).map(|t| t.environment.as_str());
        assert_eq!(read(r#"{"environment": "development"}"#).unwrap(), "Development");
        assert_eq!(read(r#"{"environment": "QA"}"#).unwrap(), "QA");
        let error = read(r#"{"environment": "Mars"}"#).unwrap_err().to_string();
        assert!(error.contains("unknown environment 'Mars'"), "{error}");
    }

    #[derive(serde::Deserialize)]
    struct Limit {
        #[serde(default, deserialize_with = "whole_number")]
        limit: Option<u32>,
    }

    #[test]
    fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
        let read = |text: &str| serde_json::from_str::<Limit>(text).map(|l| l.limit);
        assert_eq!(read(r#"{"limit": 7}"#).unwrap(), Some(7));
        assert_eq!(read(r#"{"limit": 7.0}"#).unwrap(), Some(7));
        assert_eq!(read(r#"{"limit": null}"#).unwrap(), None);
        assert_eq!(read(r#"{}"#).unwrap(), None);
        assert!(read(r#"{"limit": 7.5}"#).is_err());
        assert!(read(r#"{"limit": -1}"#).is_err());
        assert!(read(r#"{"limit": 4294967296}"#).is_err());
        assert!(read(r#"{"limit": "7"}"#).is_err());
    }
}
