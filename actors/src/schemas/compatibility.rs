//! Whether a new JSON Schema breaks an earlier one, and where.
//!
//! Both directions come from one comparison of a *writer* schema (what
//! producers may send) with a *reader* schema (what consumers accept): every
//! place where the reader refuses something the writer allowed is a
//! narrowing. Backward compatibility compares the earlier version as writer
//! with the new one as reader; forward, the new version as writer with the
//! earlier one as reader. Nested objects (`properties`,
//! `additionalProperties`) and arrays (`items`) are compared recursively.
//!
//! The check is sound rather than complete: whatever it cannot prove harmless
//! is reported (`CannotProveCompatible` with the reason). Local `$ref`s
//! (`#/...`) are followed, recursive ones included; other references cannot
//! be proven. A writer's `allOf`/`anyOf`/`oneOf` are folded into schemas that
//! accept at least as much (each `anyOf`/`oneOf` branch checked on its own);
//! a reader's `allOf` must hold branch by branch, its `anyOf` needs one branch
//! that accepts the writer, and its `oneOf` also needs the other branches to
//! exclude the writer's values (by type, `const`/`enum`, or a required
//! property's `const`/`enum`). A reader keyword the checker does not model
//! (`not`, `if`, `patternProperties`, `multipleOf`, tuple `items`, ...) is
//! harmless only when the writer has the same one.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::compat_support::{
    disjoint, mentions_ref, resolve, type_set, value_set, widen_conjunction, without, ANNOTATIONS, UNDERSTOOD,
};
use super::model::{BreakingChange, Compatibility};

/// Bounds that narrow when raised, and bounds that narrow when lowered.
const LOWER_BOUNDS: [&str; 5] = ["minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties"];
const UPPER_BOUNDS: [&str; 5] = ["maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties"];
/// Keywords whose change (or addition) we cannot compare, so treat as narrowing.
const OPAQUE_CONSTRAINTS: [&str; 2] = ["pattern", "format"];
/// The schema that accepts everything.
static ANYTHING: Value = Value::Bool(true);
/// How deep the comparison goes before it gives up (and says so).
const MAX_DEPTH: usize = 64;

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
    NoBranchAccepts { keyword: &'static str, closest: String },
    Unproven(String),
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
            (Narrowing::NoBranchAccepts { keyword, closest }, Backward) => (
                "NoBranchAccepts",
                format!("no branch of {keyword} accepts what version {against} allowed (closest: {closest})"),
            ),
            (Narrowing::NoBranchAccepts { keyword, closest }, Forward) => (
                "NoBranchAccepts",
                format!("version {against} has no branch of {keyword} that accepts what this one allows (closest: {closest})"),
            ),
            (Narrowing::Unproven(why), _) => (
                "CannotProveCompatible",
                format!("{why}; compatibility with version {against} cannot be proven, so it counts as breaking"),
            ),
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
        let mut check =
            Check { writer_root: writer, reader_root: reader, direction, against, active: Vec::new(), out: Vec::new() };
        check.narrowings(writer, reader, "$", 0);
        changes.extend(check.out.into_iter().map(|(path, n)| {
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

/// One comparison of a writer document with a reader document.
struct Check<'r> {
    writer_root: &'r Value,
    reader_root: &'r Value,
    direction: Direction,
    against: u32,
    /// Pairs of (writer, reader) schemas reached through a `$ref` and being
    /// compared: met again below themselves, they are assumed to hold (a
    /// recursive schema is compatible when no finite unfolding breaks).
    active: Vec<(usize, usize)>,
    out: Vec<(String, Narrowing)>,
}

fn address(v: &Value) -> usize {
    v as *const Value as usize
}

fn object(v: &Value) -> Option<&Map<String, Value>> {
    v.as_object()
}

impl Check<'_> {
    fn push(&mut self, path: &str, narrowing: Narrowing) {
        self.out.push((path.to_string(), narrowing));
    }

    fn unproven(&mut self, path: &str, why: String) {
        self.push(path, Narrowing::Unproven(why));
    }

    /// What `run` would report, without reporting it.
    fn trial(&mut self, run: impl FnOnce(&mut Self)) -> Vec<(String, Narrowing)> {
        let kept = std::mem::take(&mut self.out);
        run(self);
        std::mem::replace(&mut self.out, kept)
    }

    /// Where `reader` refuses what `writer` allowed, at and below `path`.
    fn narrowings(&mut self, writer: &Value, reader: &Value, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return self.unproven(path, format!("the schemas nest deeper than {MAX_DEPTH} levels here"));
        }
        // `false` accepts nothing, so a writer of `false` never produced
        // anything a reader could refuse; `true` refuses nothing.
        if writer == &Value::Bool(false) || reader == &Value::Bool(true) {
            return;
        }
        if writer == reader && !mentions_ref(writer) {
            return;
        }
        let via_ref = writer.get("$ref").is_some() || reader.get("$ref").is_some();
        // The writer's `$ref` target alone: its siblings only narrow the
        // writer, so leaving them out is safe. An unresolvable one leaves
        // the writer unknown: accepting anything.
        let writer = match resolve(self.writer_root, writer) {
            Ok(w) => w,
            Err(_) => &ANYTHING,
        };
        if !via_ref {
            return self.after_refs(writer, reader, path, depth);
        }
        let pair = (address(writer), address(reader));
        if self.active.contains(&pair) {
            return;
        }
        self.active.push(pair);
        self.after_refs(writer, reader, path, depth);
        self.active.pop();
    }

    fn after_refs(&mut self, writer: &Value, reader: &Value, path: &str, depth: usize) {
        if writer == &Value::Bool(false) {
            return;
        }
        if let Some(reference) = reader.get("$ref").and_then(Value::as_str) {
            // The reader's `$ref` holds beside its siblings (2020-12; in
            // draft 7 the siblings are ignored, so checking them is stricter).
            let target = match resolve(self.reader_root, reader) {
                Ok(t) => t,
                Err(why) => return self.unproven(path, format!("reader {why} ({reference})")),
            };
            self.narrowings(writer, target, path, depth + 1);
            let rest = object(reader).map(|r| without(r, &["$ref", "$defs", "definitions"])).unwrap_or_default();
            if rest.keys().any(|k| !ANNOTATIONS.contains(&k.as_str())) {
                self.narrowings(writer, &Value::Object(rest), path, depth + 1);
            }
            return;
        }
        if reader == &Value::Bool(false) {
            let narrowing = Narrowing::TypeNarrowed { writer: "anything".into(), reader: "nothing (false)".into() };
            return self.push(path, narrowing);
        }
        let Some(r) = object(reader) else { return };
        let empty = Map::new();
        let w = object(writer).unwrap_or(&empty);
        self.split_writer(w, r, path, depth);
    }

    /// Folds the writer's `allOf` into one schema and checks each of its
    /// `anyOf`/`oneOf` branches on its own (each widened, never narrowed).
    fn split_writer(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return self.unproven(path, format!("the schemas nest deeper than {MAX_DEPTH} levels here"));
        }
        if let Some(all) = w.get("allOf").and_then(Value::as_array) {
            let mut folded = without(w, &["allOf"]);
            for branch in all {
                match resolve(self.writer_root, branch) {
                    Ok(Value::Object(b)) => folded = widen_conjunction(&folded, &without(b, &["$ref"])),
                    Ok(Value::Bool(false)) => return,
                    // `true`, or a reference that cannot be followed: the
                    // branch is left out, which only widens the writer.
                    _ => {}
                }
            }
            return self.split_writer(&folded, r, path, depth + 1);
        }
        for keyword in ["anyOf", "oneOf"] {
            if let Some(branches) = w.get(keyword).and_then(Value::as_array) {
                let base = without(w, &[keyword]);
                for branch in branches {
                    let widened = match resolve(self.writer_root, branch) {
                        Ok(Value::Object(b)) => widen_conjunction(&base, &without(b, &["$ref"])),
                        Ok(Value::Bool(false)) => continue,
                        _ => base.clone(),
                    };
                    self.split_writer(&widened, r, path, depth + 1);
                }
                return;
            }
        }
        self.reader_combinators(w, r, path, depth);
    }

    /// The reader's `allOf` (every branch), `anyOf` (one branch) and
    /// `oneOf` (one branch, and the writer's values excluded from the rest).
    fn reader_combinators(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str, depth: usize) {
        let writer = Value::Object(w.clone());
        if let Some(all) = r.get("allOf").and_then(Value::as_array) {
            for branch in all {
                self.narrowings(&writer, branch, path, depth + 1);
            }
        }
        for keyword in ["anyOf", "oneOf"] {
            let Some(branches) = r.get(keyword).and_then(Value::as_array) else { continue };
            let mut closest: Option<(usize, Vec<(String, Narrowing)>)> = None;
            let mut accepted = None;
            for (i, branch) in branches.iter().enumerate() {
                let found = self.trial(|c| c.narrowings(&writer, branch, path, depth + 1));
                if found.is_empty() {
                    accepted = Some(i);
                    break;
                }
                if closest.as_ref().is_none_or(|(_, c)| found.len() < c.len()) {
                    closest = Some((i, found));
                }
            }
            let Some(i) = accepted else {
                let closest = match closest {
                    Some((i, found)) => {
                        let (p, n) = &found[0];
                        let (change, detail) = n.describe(self.direction, self.against);
                        format!("branch {i}: {change} at {p}: {detail}")
                    }
                    None => "it has no branches".into(),
                };
                self.push(path, Narrowing::NoBranchAccepts { keyword, closest });
                continue;
            };
            if keyword == "oneOf" {
                for (j, other) in branches.iter().enumerate().filter(|(j, _)| *j != i) {
                    let excluded = match resolve(self.reader_root, other) {
                        Ok(Value::Bool(false)) => true,
                        Ok(Value::Object(o)) => disjoint(w, o),
                        _ => false,
                    };
                    if !excluded {
                        self.unproven(
                            path,
                            format!(
                                "oneOf: values accepted by branch {i} may also match branch {j}, and a value matching two branches is refused"
                            ),
                        );
                    }
                }
            }
        }
        self.keywords(w, r, path, depth);
    }

    /// The keywords of one reader schema against the (plain) writer.
    fn keywords(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str, depth: usize) {
        types(w, r, path, &mut self.out);
        required(w, r, path, &mut self.out);
        enums(w, r, path, &mut self.out);
        bounds(w, r, path, &mut self.out);
        for key in OPAQUE_CONSTRAINTS {
            if let Some(rv) = r.get(key) {
                if w.get(key) != Some(rv) {
                    self.push(path, Narrowing::ConstraintNarrowed(format!("{key} is now {rv}")));
                }
            }
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true)) && w.get("uniqueItems") != Some(&Value::Bool(true)) {
            self.push(path, Narrowing::ConstraintNarrowed("items must be unique now".into()));
        }
        self.properties(w, r, path, depth);
        match (w.get("items"), r.get("items")) {
            (_, Some(Value::Array(_))) => {}
            (Some(wi), Some(ri)) if !wi.is_array() => self.narrowings(wi, ri, &format!("{path}[*]"), depth + 1),
            // No `items`, or a tuple: any item, as far as this check knows.
            (_, Some(ri)) => self.narrowings(&Value::Bool(true), ri, &format!("{path}[*]"), depth + 1),
            _ => {}
        }
        for (key, rv) in r {
            let modelled = UNDERSTOOD.contains(&key.as_str()) && !(key == "items" && rv.is_array());
            if modelled || ANNOTATIONS.contains(&key.as_str()) {
                continue;
            }
            if w.get(key) == Some(rv) && !mentions_ref(rv) {
                continue;
            }
            self.unproven(path, format!("'{key}' is not compared by the checker and differs from the writer's"));
        }
    }

    fn properties(&mut self, w: &Map<String, Value>, r: &Map<String, Value>, path: &str, depth: usize) {
        let empty = Map::new();
        let wp = w.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let rp = r.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        // What the writer allows under other names (anything when its
        // patternProperties decide, which this check does not model).
        let w_extra = match w.get("additionalProperties") {
            Some(v) if !w.contains_key("patternProperties") => v.clone(),
            _ => Value::Bool(true),
        };
        let r_extra = r.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
        match &r_extra {
            Value::Bool(false) if w_extra != Value::Bool(false) => {
                self.push(path, Narrowing::AdditionalPropertiesDisallowed)
            }
            Value::Object(_) => self.narrowings(&w_extra, &r_extra, &format!("{path}.*"), depth + 1),
            _ => {}
        }
        for (name, ws) in wp {
            let at = format!("{path}.{name}");
            match (rp.get(name), &r_extra) {
                (Some(rs), _) => self.narrowings(ws, rs, &at, depth + 1),
                (None, Value::Bool(false)) => self.push(&at, Narrowing::PropertyRemoved(name.clone())),
                (None, Value::Object(_)) => self.narrowings(ws, &r_extra, &at, depth + 1),
                (None, _) => {}
            }
        }
        // A property the reader names and the writer does not: the writer's
        // additionalProperties said what it may hold. When the writer left
        // them open (`true`), adding an optional property counts as
        // compatible, as schema registries usually treat it.
        if w_extra.is_object() {
            for (name, rs) in rp.iter().filter(|(n, _)| !wp.contains_key(*n)) {
                self.narrowings(&w_extra, rs, &format!("{path}.{name}"), depth + 1);
            }
        }
    }
}

fn declared_types(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some(BTreeSet::from([t.clone()])),
        Value::Array(ts) => Some(ts.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
        _ => None,
    }
}

fn types(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let Some(reader) = declared_types(r) else { return };
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

/// `enum` and `const` as sets of allowed values.
fn enums(w: &Map<String, Value>, r: &Map<String, Value>, path: &str, out: &mut Vec<(String, Narrowing)>) {
    let Some(allowed) = value_set(r) else { return };
    match value_set(w) {
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

    fn kinds(old: Value, new: Value, mode: Compatibility) -> Vec<String> {
        changes(old, new, mode).into_iter().map(|(_, c)| c).collect()
    }

    #[test]
    fn local_refs_are_followed() {
        let old = json!({"$defs": {"id": {"type": "string"}}, "type": "object",
            "properties": {"x": {"$ref": "#/$defs/id"}}});
        let same = old.clone();
        assert!(changes(old.clone(), same, Compatibility::Full).is_empty());
        let new = json!({"$defs": {"id": {"type": "integer"}}, "type": "object",
            "properties": {"x": {"$ref": "#/$defs/id"}}});
        assert_eq!(changes(old.clone(), new, Compatibility::Backward), vec![("$.x".into(), "TypeChanged".into())]);
        // draft-7 spelling, and a ref on one side only.
        let inline = json!({"definitions": {"id": {"type": "string", "maxLength": 3}}, "type": "object",
            "properties": {"x": {"$ref": "#/definitions/id"}}});
        assert_eq!(changes(old, inline, Compatibility::Backward), vec![("$.x".into(), "ConstraintNarrowed".into())]);
    }

    #[test]
    fn recursive_refs_terminate_and_still_find_breaks() {
        let tree = |required: Value| {
            json!({"type": "object", "required": required, "properties": {
                "name": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#"}}}})
        };
        assert!(changes(tree(json!([])), tree(json!([])), Compatibility::Full).is_empty());
        let found = changes(tree(json!([])), tree(json!(["name"])), Compatibility::Backward);
        assert!(found.contains(&("$.name".into(), "RequiredFieldAdded".into())), "{found:?}");
        assert!(found.contains(&("$.children[*].name".into(), "RequiredFieldAdded".into())), "{found:?}");
    }

    #[test]
    fn refs_that_cannot_be_followed_cannot_be_proven() {
        let old = json!({"type": "object", "properties": {"x": {"type": "string"}}});
        let remote = json!({"type": "object", "properties": {"x": {"$ref": "https://example.com/x.json"}}});
        assert_eq!(kinds(old.clone(), remote, Compatibility::Backward), vec!["CannotProveCompatible"]);
        let dangling = json!({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}});
        assert_eq!(kinds(old, dangling, Compatibility::Backward), vec!["CannotProveCompatible"]);
    }

    #[test]
    fn all_of_is_folded_for_writers_and_checked_branch_by_branch_for_readers() {
        let old = json!({"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}}, {"required": ["a"]}]});
        let new = json!({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]});
        assert!(changes(old.clone(), new.clone(), Compatibility::Full).is_empty());
        let stricter = json!({"allOf": [new, {"required": ["b"]}]});
        assert_eq!(changes(old, stricter, Compatibility::Backward), vec![("$.b".into(), "RequiredFieldAdded".into())]);
    }

    #[test]
    fn any_of_needs_one_accepting_branch() {
        let old = json!({"type": "string"});
        let new = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
        assert!(changes(old.clone(), new.clone(), Compatibility::Backward).is_empty());
        // Forward: the new writer's integer branch is refused by version 1.
        assert_eq!(kinds(old, new.clone(), Compatibility::Forward), vec!["TypeChanged"]);
        let fewer = json!({"anyOf": [{"type": "string"}]});
        let found = changes(new, fewer, Compatibility::Backward);
        assert_eq!(found, vec![("$".into(), "NoBranchAccepts".into())]);
    }

    #[test]
    fn one_of_needs_the_other_branches_to_exclude_the_writer() {
        let old = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
        let more = json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]});
        assert!(changes(old, more, Compatibility::Backward).is_empty());
        let overlapping = json!({"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 5}]});
        let found = breaking_changes(&json!({"type": "string"}), 1, &overlapping, Compatibility::Backward);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].change, "CannotProveCompatible");
        assert!(found[0].detail.contains("branch 1"), "{}", found[0].detail);
        let kind = |k: &str| json!({"type": "object", "required": ["kind"], "properties": {"kind": {"const": k}}});
        let two = json!({"oneOf": [kind("a"), kind("b")]});
        let three = json!({"oneOf": [kind("a"), kind("b"), kind("c")]});
        assert!(changes(two, three, Compatibility::Backward).is_empty());
    }

    #[test]
    fn additional_properties_schemas_are_compared() {
        let old = json!({"type": "object", "additionalProperties": {"type": "string"}});
        let narrower = json!({"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}});
        assert_eq!(
            changes(old.clone(), narrower, Compatibility::Backward),
            vec![("$.*".into(), "ConstraintNarrowed".into())]
        );
        let named = json!({"type": "object", "additionalProperties": {"type": "string"}, "properties": {"n": {"type": "integer"}}});
        assert_eq!(changes(old, named, Compatibility::Backward), vec![("$.n".into(), "TypeChanged".into())]);
    }

    #[test]
    fn const_is_a_one_value_enum() {
        let old = json!({"enum": ["a"]});
        assert!(changes(old.clone(), json!({"const": "a"}), Compatibility::Full).is_empty());
        assert_eq!(kinds(old, json!({"const": "b"}), Compatibility::Backward), vec!["EnumValueRemoved"]);
    }

    #[test]
    fn keywords_not_modelled_count_unless_unchanged() {
        let base = json!({"type": "integer"});
        for (keyword, value) in [("not", json!({"const": 3})), ("multipleOf", json!(2)), ("if", json!({"minimum": 1}))]
        {
            let mut new = base.clone();
            new[keyword] = value.clone();
            assert_eq!(
                kinds(base.clone(), new.clone(), Compatibility::Backward),
                vec!["CannotProveCompatible"],
                "{keyword}"
            );
            assert!(changes(new.clone(), new, Compatibility::Full).is_empty(), "{keyword} unchanged");
        }
        let open = json!({"type": "object"});
        let patterned = json!({"type": "object", "patternProperties": {"^x": {"type": "string"}}});
        assert_eq!(kinds(open, patterned, Compatibility::Backward), vec!["CannotProveCompatible"]);
        let list = json!({"type": "array"});
        let tuple = json!({"type": "array", "items": [{"type": "string"}]});
        assert_eq!(kinds(list, tuple, Compatibility::Backward), vec!["CannotProveCompatible"]);
        let text = json!({"type": "string"});
        assert_eq!(
            kinds(text.clone(), json!({"type": "string", "pattern": "^a"}), Compatibility::Backward),
            vec!["ConstraintNarrowed"]
        );
    }
}
