//! Text every back-end can store. PostgreSQL's `text` and `jsonb` cannot
//! hold U+0000 (NUL); the memory and NATS back-ends could. Input holding it
//! is refused as invalid on every back-end alike, naming the field, so that
//! a request means the same whichever store serves it.

/// Whether `text` holds a NUL character.
pub fn holds_nul(text: &str) -> bool {
    text.contains('\0')
}

/// Whether any key or string in `value` holds a NUL character.
pub fn json_holds_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => holds_nul(s),
        serde_json::Value::Array(items) => items.iter().any(json_holds_nul),
        serde_json::Value::Object(map) => map.iter().any(|(k, v)| holds_nul(k) || json_holds_nul(v)),
        _ => false,
    }
}

/// The refusal of `field` holding a NUL character.
pub fn nul_refusal(field: &str) -> String {
    format!("{field} must not contain the NUL character (\\u0000)")
}

/// `Err` naming `field` when `text` holds a NUL character.
pub fn refuse_nul(field: &str, text: &str) -> Result<(), String> {
    if holds_nul(text) {
        Err(nul_refusal(field))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nul_is_found_in_keys_and_strings_at_any_depth() {
        assert!(!json_holds_nul(&json!({ "a": ["b", 1, null, { "c": "d" }] })));
        assert!(json_holds_nul(&json!({ "a": [{ "c\u{0}": 1 }] })));
        assert!(json_holds_nul(&json!({ "a": { "const": "\u{0}" } })));
        assert_eq!(refuse_nul("reason", "ok"), Ok(()));
        assert_eq!(refuse_nul("reason", "a\0b"), Err("reason must not contain the NUL character (\\u0000)".into()));
    }
}
