//! Compiling a JSON Schema (drafts 7 and 2020-12, through the `jsonschema`
//! crate) and checking payloads against it, with each error located by a
//! JSON pointer into the payload.

use jsonschema::{Draft, Validator};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::error::SchemaError;

/// Payloads up to this size are checked where the caller runs; larger ones
/// are worth moving to a blocking thread (see `SchemaRegistry::validate`).
pub const INLINE_VALIDATION_BYTES: usize = 64 * 1024;
/// Errors reported for one payload; the rest are counted in the last one.
const MAX_REPORTED_ERRORS: usize = 50;

/// One reason a payload does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadError {
    /// A JSON pointer into the payload ("" for the whole payload).
    pub path: String,
    pub message: String,
    /// The JSON Schema keyword that refused it ("required", "type"...), or
    /// "json" when the payload is not JSON at all.
    pub kind: String,
}

/// A schema ready to validate, shared between requests.
#[derive(Debug, Clone)]
pub struct CompiledSchema {
    validator: Validator,
}

impl CompiledSchema {
    /// Compiles `definition`, refusing drafts other than 7 and 2020-12 (by
    /// `$schema`; 2020-12 without one) and anything the draft's
    /// meta-schema refuses, with the reason. Known `format`s are asserted.
    pub fn compile(definition: &Value) -> Result<CompiledSchema, SchemaError> {
        if !definition.is_object() && !definition.is_boolean() {
            return Err(SchemaError::Invalid("schemaDefinition must be a JSON Schema: an object or a boolean".into()));
        }
        let draft = Draft::default().detect(definition);
        if !matches!(draft, Draft::Draft7 | Draft::Draft202012) {
            let named = definition.get("$schema").and_then(Value::as_str).unwrap_or_default();
            return Err(SchemaError::Invalid(format!(
                "schemaDefinition: $schema '{named}' is not supported; use draft 7 or 2020-12"
            )));
        }
        // `format` is asserted on both drafts: 2020-12 makes it an annotation
        // by default, and a topic bound to `"format": "email"` would then take
        // any string. Formats the crate does not know stay annotations.
        let validator = jsonschema::options()
            .with_draft(draft)
            .should_validate_formats(true)
            .build(definition)
            .map_err(|e| SchemaError::Invalid(format!("schemaDefinition is not a valid JSON Schema: {e}")))?;
        Ok(CompiledSchema { validator })
    }

    /// Every way `payload` (JSON text) fails the schema; empty when it is valid.
    pub fn check_text(&self, payload: &str) -> Vec<PayloadError> {
        match serde_json::from_str::<Value>(payload) {
            Ok(value) => self.check(&value),
            Err(e) => vec![PayloadError {
                path: String::new(),
                message: format!("the payload is not JSON: {e}"),
                kind: "json".into(),
            }],
        }
    }

    pub fn check(&self, payload: &Value) -> Vec<PayloadError> {
        let mut errors: Vec<PayloadError> = Vec::new();
        let mut more = 0usize;
        for e in self.validator.iter_errors(payload) {
            if errors.len() == MAX_REPORTED_ERRORS {
                more += 1;
                continue;
            }
            errors.push(PayloadError {
                path: e.instance_path().to_string(),
                message: e.to_string(),
                kind: e.kind().keyword().to_string(),
            });
        }
        if more > 0 {
            errors.push(PayloadError {
                path: String::new(),
                message: format!("{more} more errors"),
                kind: "truncated".into(),
            });
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn errors_carry_json_pointers_and_keywords() {
        let schema = CompiledSchema::compile(&json!({
            "type": "object",
            "required": ["id"],
            "properties": {"lines": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}}}}}
        }))
        .unwrap();
        let errors = schema.check(&json!({"lines": [{"qty": 1}, {"qty": "two"}]}));
        let found: Vec<(&str, &str)> = errors.iter().map(|e| (e.path.as_str(), e.kind.as_str())).collect();
        assert!(found.contains(&("", "required")), "{errors:?}");
        assert!(found.contains(&("/lines/1/qty", "type")), "{errors:?}");
        assert_eq!(found.len(), 2);
        assert!(schema.check(&json!({"id": 1})).is_empty());
        assert_eq!(schema.check_text("{not json")[0].kind, "json");
    }

    /// A registry guarding publishes asserts `format` on every draft it takes,
    /// though 2020-12 makes it an annotation by default.
    #[test]
    fn formats_are_asserted_on_both_drafts() {
        for draft in ["http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2020-12/schema"] {
            let schema = CompiledSchema::compile(&json!({
                "$schema": draft,
                "properties": {"e": {"type": "string", "format": "email"}, "ref": {"format": "order-ref"}}
            }))
            .unwrap();
            let errors = schema.check(&json!({"e": "not-an-email", "ref": "x"}));
            assert_eq!(errors.len(), 1, "{draft}: {errors:?}");
            assert_eq!((errors[0].path.as_str(), errors[0].kind.as_str()), ("/e", "format"), "{draft}");
            assert!(schema.check(&json!({"e": "a@example.com"})).is_empty(), "{draft}");
        }
        let no_schema = CompiledSchema::compile(&json!({"format": "date"})).unwrap();
        assert_eq!(no_schema.check(&json!("yesterday")).len(), 1, "2020-12 is the default draft");
    }

    #[test]
    fn both_drafts_compile_and_others_are_refused() {
        let draft7 = json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"});
        let d2020 =
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "prefixItems": [{"type": "string"}]});
        assert!(CompiledSchema::compile(&draft7).is_ok());
        assert!(CompiledSchema::compile(&d2020).is_ok());
        let draft4 = json!({"$schema": "http://json-schema.org/draft-04/schema#"});
        assert!(
            matches!(CompiledSchema::compile(&draft4), Err(SchemaError::Invalid(m)) if m.contains("not supported"))
        );
        let invalid = CompiledSchema::compile(&json!({"type": "strnig"}));
        assert!(
            matches!(invalid, Err(SchemaError::Invalid(m)) if m.contains("strnig")),
            "{:?}",
            CompiledSchema::compile(&json!({"type": "strnig"}))
        );
        assert!(CompiledSchema::compile(&json!("text")).is_err());
    }
}
