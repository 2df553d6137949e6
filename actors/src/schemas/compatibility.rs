//! Whether a new JSON Schema breaks an earlier one, and where.
//!
//! Both directions come from one comparison of a *writer* schema (what
//! producers may send) with a *reader* schema (what consumers accept): every
//! place where the reader refuses something the writer allowed is a
//! narrowing. Backward compatibility compares the earlier version as writer
//! with the new one as reader; forward, the new version as writer with the
//! earlier one as reader. Nested objects (`properties`) and arrays (`items`)
//! are compared recursively.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::model::{BreakingChange, Compatibility};

/// Bounds that narrow when raised, and bounds that narrow when lowered.
const LOWER_BOUNDS: [&str; 5] = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER_BOUNDS: [&str; 5] = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
/// Keywords whose change (or addition) we cannot compare, so treat as narrowing.
const OPAQUE_CONSTRAINTS: [&str; 3] = ["pattern", "format", "const"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Backward,
    Forward,
}

#[derive(Debug)]
enum Narrowing {
    RequiredAdded(String),
    TypeNarrowed { writer: String, reader: String },
    EnumValueRemoved(Value),
    ConstraintNarrowed(String),
    AdditionalPropertiesDisallowed,
    PropertyRemoved(String),
}

impl Narrowing {
    /// The change's name and a sentence, seen from the new version.
    fn describe(&self, direction: Direction, against: u32) -> (&'static str, String) {
        use Direction::*;
        match (self, direction) {
            (Narrowing::RequiredAdded(f), Backward) => {
                ("RequiredFieldAdded", format!("'{f}' is required now but optional in version {against}"))
            }
            (Narrowing::RequiredAdded(f), Forward) => {
                ("RequiredFieldRemoved", format!("'{f}' is optional now but required by version {against}"))
            }
            (Narrowing::TypeNarrowed { writer, reader }, Backward) => {
                ("TypeChanged", format!("type {reader} does not accept {writer}, which version {against} allowed"))
            }
            (Narrowing::TypeNarrowed { writer, reader }, Forward) => {
                ("TypeChanged", format!("type {writer} allows values that version {against} ({reader}) refuses"))
            }
            (Narrowing::EnumValueRemoved(v), Backward) => {
                ("EnumValueRemoved", format!("enum value {v} of version {against} is no longer allowed"))
            }
            (Narrowing::EnumValueRemoved(v), Forward) => {
                ("EnumValueAdded", format!("enum value {v} is new; version {against} refuses it"))
            }
            (Narrowing::ConstraintNarrowed(what), Backward) => {
                ("ConstraintNarrowed", format!("{what} (compared with version {against})"))
            }
            (Narrowing::ConstraintNarrowed(what), Forward) => {
                ("ConstraintWidened", format!("version {against} is stricter: {what}"))
            }
            (Narrowing::AdditionalPropertiesDisallowed, Backward) => (
                "AdditionalPropertiesDisallowed",
                format!("additional properties are refused now; version {against} allowed them"),
            ),
            (Narrowing::AdditionalPropertiesDisallowed, Forward) => (
                "AdditionalPropertiesAllowed",
                format!("additional properties are allowed now; version {against} refuses them"),
            ),
            (Narrowing::PropertyRemoved(p), Backward) => {
                ("PropertyRemoved", format!("'{p}' of version {against} is gone and extra properties are refused"))
            }
            (Narrowing::PropertyRemoved(p), Forward) => {
                ("PropertyAdded", format!("'{p}' is new; version {against} refuses extra properties"))
            }
        }
    }
}

/// The ways `new` breaks `earlier` (version `against`) under `compatibility`;
/// empty when compatible. None never breaks.
pub fn breaking_changes(
    earlier: &Value,
    against: u32,
    new: &Value,
    compatibility: Compatibility,
) -> Vec<BreakingChange> {
    let mut changes = Vec::new();
    let mut collect = |writer: &Value, reader: &Value, direction: Direction| {
        let mut found = Vec::new();
        narrowings(writer, reader, "$", &mut found);
        changes.extend(found.into_iter().map(|(path, n)| {
            let (change, detail) = n.describe(direction, against);
            BreakingChange { path, change: change.to_string(), detail, against_version: against }
        }));
    };
    if compatibility.checks_backward() {
        collect(earlier, new, Direction::Backward);
    }
    if compatibility.checks_forward() {
        collect(new, earlier, Direction::Forward);
    }
    changes
}

/// Where `reader` refuses what `writer` allowed, at and below `path`.
fn narrowings(writer: &Value, reader: &Value, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let empty = Map::new();
    // `true` and `{}` accept everything; `false` accepts nothing, so a
    // writer of `false` never produced anything a reader could refuse.
    if writer == &Value::Bool(false) {
        return;
    }
    if reader == &Value::Bool(false) && writer != &Value::Bool(false) {
        let narrowing = Narrowing::TypeNarrowed { writer: "anything".into(), reader: "nothing (false)".into() };
        return out.push((path.to_string(), narrowing));
    }
    let (Some(w), Some(r)) = (writer.as_object().or(Some(&empty)), reader.as_object()) else {
        return;
    };
    types(w, r, path, out);
    required(w, r, path, out);
    enums(w, r, path, out);
    bounds(w, r, path, out);
    for key in OPAQUE_CONSTRAINTS {
        if let Some(rv) = r.get(key) {
            if w.get(key) != Some(rv) {
                out.push((path.to_string(), Narrowing::ConstraintNarrowed(format!("{key} is now {rv}"))));
            }
        }
    }
    if r.get("uniqueItems") == Some(&Value::Bool(true)) && w.get("uniqueItems") != Some(&Value::Bool(true)) {
        out.push((path.to_string(), Narrowing::ConstraintNarrowed("items must be unique now".into())));
    }
    properties(w, r, path, out);
    match (w.get("items"), r.get("items")) {
        (Some(wi), Some(ri)) => narrowings(wi, ri, &format!("{path}[*]"), out),
        (None, Some(ri)) => narrowings(&Value::Bool(true), ri, &format!("{path}[*]"), out),
        _ => {}
    }
}

fn type_set(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    }
}

fn types(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let Some(reader) = type_set(r) else { return };
    let accepts = |t: &str| reader.contains(t) || (t == "integer" && reader.contains("number"));
    let shown = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join("|");
    match type_set(w) {
        None => {
            out.push((path.to_string(), Narrowing::TypeNarrowed { writer: "any type".into(), reader: shown(&reader) }))
        }
        Some(writer) => {
            let refused: BTreeSet<String> = writer.iter().filter(|t| !accepts(t)).cloned().collect();
            if !refused.is_empty() {
                let narrowing = Narrowing::TypeNarrowed { writer: shown(&refused), reader: shown(&reader) };
                out.push((path.to_string(), narrowing));
            }
        }
    }
}

fn string_set(schema: &Map<String, Value>, key: &str) -> BTreeSet<String> {
    schema
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

fn required(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let before = string_set(w, "required");
    for field in string_set(r, "required").difference(&before) {
        out.push((format!("{path}.{field}"), Narrowing::RequiredAdded(field.clone())));
    }
}

fn enums(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let Some(allowed) = r.get("enum").and_then(Value::as_array) else { return };
    match w.get("enum").and_then(Value::as_array) {
        Some(before) => {
            for value in before.iter().filter(|v| !allowed.contains(v)) {
                out.push((path.to_string(), Narrowing::EnumValueRemoved(value.clone())));
            }
        }
        None => out.push((path.to_string(), Narrowing::ConstraintNarrowed("values are limited to an enum now".into()))),
    }
}

fn bounds(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let mut check = |key: &str, narrower: fn(f64, f64) -> bool| {
        let Some(now) = r.get(key).and_then(Value::as_f64) else { return };
        match w.get(key).and_then(Value::as_f64) {
            Some(before) if !narrower(now, before) => {}
            Some(before) => {
                out.push((path.to_string(), Narrowing::ConstraintNarrowed(format!("{key} {before} → {now}"))))
            }
            None => out.push((path.to_string(), Narrowing::ConstraintNarrowed(format!("{key} {now} added")))),
        }
    };
    for key in LOWER_BOUNDS {
        check(key, |now, before| now > before);
    }
    for key in UPPER_BOUNDS {
        check(key, |now, before| now < before);
    }
}

fn properties(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let empty = Map::new();
    let wp = w.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let rp = r.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    let closed = r.get("additionalProperties") == Some(&Value::Bool(false));
    if closed && w.get("additionalProperties") != Some(&Value::Bool(false)) {
        out.push((path.to_string(), Narrowing::AdditionalPropertiesDisallowed));
    }
    for (name, ws) in wp {
        match rp.get(name) {
            Some(rs) => narrowings(ws, rs, &format!("{path}.{name}"), out),
            None if closed => out.push((format!("{path}.{name}"), Narrowing::PropertyRemoved(name.clone()))),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn changes(old: Value, new: Value, mode: Compatibility) -> Vec<(String, String)> {
        breaking_changes(&old, 1, &new, mode).into_iter().map(|c| (c.path, c.change)).collect()
    }

    #[test]
    fn optional_field_added_is_backward_compatible() {
        let old = json!({"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]});
        let new = json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}, "required": ["id"]});
        assert!(changes(old.clone(), new.clone(), Compatibility::Full).is_empty());
    }

    #[test]
    fn nested_breaks_are_found_with_their_paths() {
        let old = json!({"type": "object", "properties": {
            "order": {"type": "object", "properties": {
                "lines": {"type": "array", "items": {"type": "object", "properties": {
                    "sku": {"type": "string", "maxLength": 20},
                    "kind": {"enum": ["a", "b"]},
                    "qty": {"type": "integer"}}}}}}}});
        let new = json!({"type": "object", "properties": {
            "order": {"type": "object", "required": ["id"], "properties": {
                "lines": {"type": "array", "items": {"type": "object", "properties": {
                    "sku": {"type": "string", "maxLength": 10},
                    "kind": {"enum": ["a"]},
                    "qty": {"type": "string"}}}}}}}});
        let found = changes(old, new, Compatibility::Backward);
        let expected = [
            ("$.order.id", "RequiredFieldAdded"),
            ("$.order.lines[*].kind", "EnumValueRemoved"),
            ("$.order.lines[*].qty", "TypeChanged"),
            ("$.order.lines[*].sku", "ConstraintNarrowed"),
        ];
        for (path, change) in expected {
            assert!(found.contains(&(path.to_string(), change.to_string())), "{path} {change} missing from {found:?}");
        }
        assert_eq!(found.len(), expected.len(), "{found:?}");
    }

    #[test]
    fn forward_is_the_converse() {
        let old = json!({"type": "object", "required": ["a"], "properties": {"k": {"enum": ["x"]}}});
        let new = json!({"type": "object", "properties": {"k": {"enum": ["x", "y"]}}});
        assert!(changes(old.clone(), new.clone(), Compatibility::Backward).is_empty());
        let forward = changes(old.clone(), new.clone(), Compatibility::Forward);
        assert_eq!(
            forward,
            vec![
                ("$.a".to_string(), "RequiredFieldRemoved".to_string()),
                ("$.k".to_string(), "EnumValueAdded".to_string())
            ]
        );
        assert_eq!(changes(old.clone(), new.clone(), Compatibility::Full).len(), 2);
        assert!(changes(old, new, Compatibility::None).is_empty());
    }

    #[test]
    fn integer_widening_to_number_is_backward_but_not_forward() {
        let old = json!({"type": "integer"});
        let new = json!({"type": "number"});
        assert!(changes(old.clone(), new.clone(), Compatibility::Backward).is_empty());
        assert_eq!(changes(old, new, Compatibility::Forward), vec![("$".into(), "TypeChanged".into())]);
    }

    #[test]
    fn closing_an_object_lists_the_removed_properties() {
        let old = json!({"type": "object", "properties": {"a": {}, "b": {}}});
        let new = json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
        assert_eq!(
            changes(old, new, Compatibility::Backward),
            vec![("$".into(), "AdditionalPropertiesDisallowed".into()), ("$.b".into(), "PropertyRemoved".into())]
        );
    }
}
