//! What the compatibility check needs beyond comparing two keywords:
//! following local `$ref`s, folding a writer's `allOf`/`anyOf`/`oneOf`
//! into plain schemas that accept at least as much (so that checking them
//! stays sound), and telling when two schemas can never accept one value.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// Keywords the checker compares; a reader keyword outside these (and the
/// annotations) that differs from the writer's cannot be proven harmless.
pub const UNDERSTOOD: [&str; 27] = [
    "type",
    "required",
    "enum",
    "const",
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
    "pattern",
    "format",
    "uniqueItems",
    "properties",
    "additionalProperties",
    "items",
    "$ref",
    "allOf",
    "anyOf",
    "oneOf",
    "$defs",
    "definitions",
    "$schema",
];

/// Keywords that never refuse a value.
pub const ANNOTATIONS: [&str; 10] = [
    "title",
    "description",
    "default",
    "examples",
    "$comment",
    "$id",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$anchor",
];

/// A `$ref` chain followed to its end within `root`; `Err` names a
/// reference that is not a JSON pointer into the same document.
pub fn resolve<'a>(root: &'a Value, mut schema: &'a Value) -> Result<&'a Value, String> {
    for _ in 0..32 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else { return Ok(schema) };
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(format!("$ref '{reference}' points outside the schema"));
        };
        if !pointer.is_empty() && !pointer.starts_with('/') {
            return Err(format!("$ref '{reference}' names an anchor, which is not followed"));
        }
        schema = root.pointer(pointer).ok_or_else(|| format!("$ref '{reference}' does not resolve"))?;
    }
    Err("a chain of $ref does not end".into())
}

/// `schema` without the keywords in `drop`.
pub fn without(schema: &Map<String, Value>, drop: &[&str]) -> Map<String, Value> {
    schema.iter().filter(|(k, _)| !drop.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// One schema accepting at least every value that satisfies both: equal
/// or one-sided keywords are kept, `required` is united, properties are
/// merged the same way one level down, and keywords the two set
/// differently are dropped (which only widens). Used on the writer's side,
/// where accepting more than the writer really sends keeps the check sound.
pub fn widen_conjunction(a: &Map<String, Value>, b: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for key in a.keys().chain(b.keys()).collect::<BTreeSet<_>>() {
        let value = match (a.get(key), b.get(key)) {
            (Some(x), None) | (None, Some(x)) => Some(x.clone()),
            (Some(x), Some(y)) if x == y => Some(x.clone()),
            (Some(Value::Array(x)), Some(Value::Array(y))) if key == "required" => {
                let mut union = x.clone();
                union.extend(y.iter().filter(|v| !x.contains(v)).cloned());
                Some(Value::Array(union))
            }
            (Some(Value::Object(x)), Some(Value::Object(y))) if key == "properties" => {
                let mut props = Map::new();
                for name in x.keys().chain(y.keys()).collect::<BTreeSet<_>>() {
                    let merged = match (x.get(name), y.get(name)) {
                        (Some(p), None) | (None, Some(p)) => p.clone(),
                        (Some(Value::Object(p)), Some(Value::Object(q))) => Value::Object(widen_conjunction(p, q)),
                        (Some(p), Some(q)) if p == q => p.clone(),
                        _ => Value::Bool(true),
                    };
                    props.insert(name.clone(), merged);
                }
                Some(Value::Object(props))
            }
            _ => None,
        };
        if let Some(v) = value {
            out.insert(key.clone(), v);
        }
    }
    out
}

/// The types a schema admits, from `type`, else from the values of
/// `const`/`enum`; `None` when it does not say.
pub fn type_set(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type") {
        Some(Value::String(t)) => return Some(BTreeSet::from([t.clone()])),
        Some(Value::Array(ts)) => return Some(ts.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => {}
    }
    let values = value_set(schema)?;
    Some(values.iter().map(|v| type_of(v).to_owned()).collect())
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The values a schema is limited to by `const` or `enum`.
pub fn value_set(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(c) = schema.get("const") {
        return Some(vec![c.clone()]);
    }
    schema.get("enum").and_then(Value::as_array).cloned()
}

fn accepts_type(set: &BTreeSet<String>, t: &str) -> bool {
    set.contains(t) || (t == "integer" && set.contains("number"))
}

/// True when no value can satisfy both: their types exclude each other,
/// their `const`/`enum` values do, or a property one of them requires is
/// limited to values the other's same property excludes.
pub fn disjoint(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    if let (Some(ta), Some(tb)) = (type_set(a), type_set(b)) {
        if !ta.iter().any(|t| accepts_type(&tb, t)) && !tb.iter().any(|t| accepts_type(&ta, t)) {
            return true;
        }
    }
    if let (Some(va), Some(vb)) = (value_set(a), value_set(b)) {
        if !va.iter().any(|v| vb.contains(v)) {
            return true;
        }
    }
    let required = |s: &Map<String, Value>, name: &str| {
        s.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|x| x.as_str() == Some(name)))
    };
    let (Some(pa), Some(pb)) =
        (a.get("properties").and_then(Value::as_object), b.get("properties").and_then(Value::as_object))
    else {
        return false;
    };
    pa.iter().any(|(name, sa)| {
        let Some(sb) = pb.get(name) else { return false };
        let (Some(sa), Some(sb)) = (sa.as_object(), sb.as_object()) else { return false };
        (required(a, name) || required(b, name)) && disjoint(sa, sb)
    })
}

/// Whether a value contains a `$ref` anywhere (then equal text may still
/// mean different schemas, since the references resolve in two documents).
pub fn mentions_ref(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.contains_key("$ref") || m.values().any(mentions_ref),
        Value::Array(a) => a.iter().any(mentions_ref),
        _ => false,
    }
}
