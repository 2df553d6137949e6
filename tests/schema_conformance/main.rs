//! One behavioural suite for the schema registry's stores: the in-memory
//! store is the reference and the PostgreSQL store must answer as it does.
//! Each check takes a `SharedSchemaStore` and drives it through the
//! `SchemaRegistry`, whose rules every back-end shares. PostgreSQL checks get
//! a database each and are skipped (saying so) without HOTSWAP_TEST_DATABASE_URL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;
use hotswap_actors::schemas::{
    Compatibility, NewSchema, Registrant, SchemaDecision, SchemaError, SchemaRegistry, SchemaStatus, SharedSchemaStore,
    COMPATIBILITY_CHANGED,
};
use serde_json::{json, Value};
use uuid::Uuid;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_760_000_000 + secs, 123_456_789).unwrap()
}

fn spec(id: &str, definition: Value, compatibility: Compatibility) -> NewSchema {
    NewSchema { schema_id: id.to_string(), definition, compatibility: Some(compatibility) }
}

fn decision(approve: bool, by: &str) -> SchemaDecision {
    SchemaDecision { approve, by: by.to_string(), at: at(5), reason: Some("reviewed; 'quoted' \"text\"".into()) }
}

fn person(required: &[&str]) -> Value {
    json!({ "type": "object", "required": required, "properties": {
        "name": { "type": "string", "maxLength": 40 },
        "age": { "type": "integer", "minimum": 0 },
        "tags": { "type": "array", "items": { "enum": ["a", "b", "c"] } } } })
}

async fn first_versions_are_drafts_and_compatible_ones_are_approved(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    let v1 = registry
        .register(t, spec("people", person(&["name"]), Compatibility::Backward), Registrant::admin("ann"), at(0))
        .await
        .unwrap();
    assert!(v1.created);
    assert_eq!((v1.version.version, v1.version.status), (1, SchemaStatus::Draft));
    // Nothing approved yet: a second version waits too.
    let v2 = registry
        .register(t, spec("people", person(&[]), Compatibility::Backward), Registrant::admin("ann"), at(1))
        .await
        .unwrap();
    assert_eq!((v2.version.version, v2.version.status), (2, SchemaStatus::Draft));
    let approved = registry.decide(t, "people", 1, decision(true, "root")).await.unwrap();
    assert_eq!(approved.status, SchemaStatus::Approved);
    assert_eq!(approved.decision, Some(decision(true, "root")));
    // Compatible with version 1 (a required field dropped and an optional
    // one added are backward-compatible); version 2, a draft, does not count.
    let mut wider = person(&[]);
    wider["properties"]["email"] = json!({ "type": "string" });
    let v3 = registry
        .register(t, spec("people", wider, Compatibility::Backward), Registrant::admin("bob"), at(2))
        .await
        .unwrap();
    assert_eq!((v3.version.version, v3.version.status), (3, SchemaStatus::Approved));
    let subject = registry.get(t, "people").await.unwrap();
    assert_eq!(subject.versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!(subject.versions[2], v3.version, "stored exactly as registered");
    assert_eq!(subject.versions[0].created_at, at(0), "times keep their nanoseconds");
    assert_eq!(subject.latest_approved().unwrap().version, 3);
}

async fn breaking_versions_wait_and_list_their_changes(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    registry
        .register(t, spec("p", person(&["name"]), Compatibility::Full), Registrant::admin("ann"), at(0))
        .await
        .unwrap();
    registry.decide(t, "p", 1, decision(true, "root")).await.unwrap();
    let mut narrower = person(&["name", "age"]);
    narrower["properties"]["tags"]["items"]["enum"] = json!(["a", "b"]);
    let v2 = registry
        .register(t, spec("p", narrower, Compatibility::Backward), Registrant::admin("ann"), at(1))
        .await
        .unwrap();
    assert_eq!(v2.version.status, SchemaStatus::Draft);
    let changes: Vec<(&str, &str)> =
        v2.version.breaking_changes.iter().map(|c| (c.path.as_str(), c.change.as_str())).collect();
    assert_eq!(changes, vec![("$.age", "RequiredFieldAdded"), ("$.tags[*]", "EnumValueRemoved")]);
    assert!(v2.version.breaking_changes.iter().all(|c| c.against_version == 1));
    let stored = registry.get(t, "p").await.unwrap();
    assert_eq!(stored.versions[1].breaking_changes, v2.version.breaking_changes);
    let rejected = registry.decide(t, "p", 2, decision(false, "root")).await.unwrap();
    assert_eq!(rejected.status, SchemaStatus::Rejected);
    // Decided once only.
    let again = registry.decide(t, "p", 2, decision(true, "root")).await;
    assert!(matches!(again, Err(SchemaError::InvalidState { ref current, .. }) if current == "Rejected"), "{again:?}");
    assert!(matches!(registry.decide(t, "p", 9, decision(true, "x")).await, Err(SchemaError::VersionNotFound { .. })));
}

async fn transitive_checks_every_approved_version(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    let limited = |max: u32| json!({ "type": "string", "maxLength": max });
    registry.register(t, spec("s", limited(10), Compatibility::None), Registrant::admin("a"), at(0)).await.unwrap();
    registry.decide(t, "s", 1, decision(true, "root")).await.unwrap();
    // None: anything goes once something is approved.
    let v2 =
        registry.register(t, spec("s", limited(20), Compatibility::None), Registrant::admin("a"), at(1)).await.unwrap();
    assert_eq!(v2.version.status, SchemaStatus::Approved);
    // 15 narrows version 2 (20) but not version 1 (10): non-transitive Forward
    // compares with version 2 only... and Forward of 20→15 is fine, so use Backward.
    let plain = registry
        .register(t, spec("s", limited(15), Compatibility::Backward), Registrant::admin("a"), at(2))
        .await
        .unwrap();
    assert_eq!(plain.version.status, SchemaStatus::Draft, "15 narrows 20");
    registry.decide(t, "s", 3, decision(false, "root")).await.unwrap();
    let wide = registry
        .register(t, spec("s", limited(30), Compatibility::BackwardTransitive), Registrant::admin("a"), at(3))
        .await
        .unwrap();
    assert_eq!(wide.version.status, SchemaStatus::Approved, "30 widens 10 and 20");
    let forward = registry
        .register(t, spec("s", limited(25), Compatibility::ForwardTransitive), Registrant::admin("a"), at(4))
        .await
        .unwrap();
    // Forward: old readers (10, 20, 30) must accept what 25 allows: 10 and 20 do not.
    assert_eq!(forward.version.status, SchemaStatus::Draft);
    let against: Vec<u32> = forward.version.breaking_changes.iter().map(|c| c.against_version).collect();
    assert_eq!(against, vec![1, 2]);
    assert!(forward.version.breaking_changes.iter().all(|c| c.change == "ConstraintWidened"));
}

async fn the_same_definition_again_is_the_same_version(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    let first = registry
        .register(t, spec("d", person(&[]), Compatibility::Backward), Registrant::admin("a"), at(0))
        .await
        .unwrap();
    let again = registry
        .register(t, spec("d", person(&[]), Compatibility::Backward), Registrant::admin("b"), at(1))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.version, first.version);
    assert_eq!(registry.get(t, "d").await.unwrap().versions.len(), 1);
}

async fn concurrent_registrations_get_distinct_numbers(store: SharedSchemaStore) {
    let registry = Arc::new(SchemaRegistry::new(store));
    let t = Uuid::new_v4();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let registry = registry.clone();
            tokio::spawn(async move {
                let definition = json!({ "type": "object", "title": format!("variant {i}") });
                registry.register(t, spec("race", definition, Compatibility::None), Registrant::admin("a"), at(i)).await
            })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            // Out of retries against a crowd of writers: refused, never duplicated.
            Err(SchemaError::Conflict(_)) => {}
            Err(e) => panic!("{e}"),
        }
    }
    let subject = registry.get(t, "race").await.unwrap();
    let numbers: Vec<u32> = subject.versions.iter().map(|v| v.version).collect();
    assert_eq!(numbers, (1..=ok as u32).collect::<Vec<_>>(), "distinct, gapless numbers");
    assert!(ok >= 1);
}

async fn deprecation_stops_new_versions_and_keeps_the_first_stamp(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    registry
        .register(t, spec("old", person(&[]), Compatibility::Backward), Registrant::admin("a"), at(0))
        .await
        .unwrap();
    let first = registry.deprecate(t, "old", "root", Some("replaced by new".into()), at(1)).await.unwrap();
    let stamp = first.deprecated.as_ref().map(|d| (d.by.as_str(), d.at, d.reason.as_deref()));
    assert_eq!(stamp, Some(("root", at(1), Some("replaced by new"))));
    assert_eq!(registry.get(t, "old").await.unwrap().deprecated, first.deprecated, "the reason is stored");
    let second = registry.deprecate(t, "old", "other", None, at(2)).await.unwrap();
    assert_eq!(second.deprecated, first.deprecated);
    let refused =
        registry.register(t, spec("old", json!({}), Compatibility::None), Registrant::admin("a"), at(3)).await;
    assert!(matches!(refused, Err(SchemaError::Deprecated(_))), "{refused:?}");
    assert!(matches!(registry.deprecate(t, "nope", "root", None, at(1)).await, Err(SchemaError::NotFound(_))));
}

async fn validation_uses_approved_versions(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    registry
        .register(t, spec("v", person(&["name"]), Compatibility::Backward), Registrant::admin("a"), at(0))
        .await
        .unwrap();
    let none = registry.validate(t, "v", None, r#"{"name":"x"}"#.into(), true).await;
    assert!(matches!(none, Err(SchemaError::Invalid(ref m)) if m.contains("no approved version")), "{none:?}");
    // The validate endpoint's mode answers as a publish would without a
    // version, and may try the draft when it names it.
    let none = registry.validate(t, "v", None, "{}".into(), false).await;
    assert!(matches!(none, Err(SchemaError::Invalid(ref m)) if m.contains("no approved version")), "{none:?}");
    let (version, errors) = registry.validate(t, "v", Some(1), "{}".into(), false).await.unwrap();
    assert_eq!((version.version, errors.len()), (1, 1));
    assert_eq!(errors[0].kind, "required");
    registry.decide(t, "v", 1, decision(true, "root")).await.unwrap();
    let (_, errors) = registry.validate(t, "v", None, r#"{"name":"x","age":-1}"#.into(), true).await.unwrap();
    assert_eq!(
        errors.iter().map(|e| (e.path.as_str(), e.kind.as_str())).collect::<Vec<_>>(),
        vec![("/age", "minimum")]
    );
    // A large payload is checked (on a blocking thread) all the same.
    let big = json!({ "name": "x", "tags": vec!["a"; 40_000] }).to_string();
    assert!(big.len() > hotswap_actors::schemas::INLINE_VALIDATION_BYTES);
    assert!(registry.validate(t, "v", Some(1), big, true).await.unwrap().1.is_empty());
    // A publish naming a version the subject lacks is invalid input (400), as a Draft is;
    // the validate endpoint's mode answers that no such version exists (404).
    for n in [0, 4] {
        let missing = registry.validate(t, "v", Some(n), "{}".into(), true).await;
        assert!(
            matches!(missing, Err(SchemaError::Invalid(ref m)) if m.contains(&format!("no version {n}"))),
            "{missing:?}"
        );
    }
    let missing = registry.validate(t, "v", Some(4), "{}".into(), false).await;
    assert!(matches!(missing, Err(SchemaError::VersionNotFound { version: 4, .. })), "{missing:?}");
}

/// Compatibility is the subject's: a Deployer's version naming another mode
/// (or a looser one) is never approved by the check, leaving the mode out
/// keeps the subject's, and only an Admin's registration or approval sets it.
async fn only_an_admin_changes_a_subjects_compatibility(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    let deployer = Registrant::deployer("dee");
    let keep = |id: &str, definition: Value| NewSchema { schema_id: id.into(), definition, compatibility: None };
    registry.register(t, spec("o", person(&["name"]), Compatibility::Backward), deployer, at(0)).await.unwrap();
    registry.decide(t, "o", 1, decision(true, "root")).await.unwrap();

    // A breaking version under None: a Draft listing what breaks under the subject's mode and why it waits.
    let breaking = person(&["name", "age"]);
    let v2 = registry.register(t, spec("o", breaking.clone(), Compatibility::None), deployer, at(1)).await.unwrap();
    assert_eq!((v2.version.status, v2.version.compatibility), (SchemaStatus::Draft, Compatibility::None));
    let changes: Vec<&str> = v2.version.breaking_changes.iter().map(|c| c.change.as_str()).collect();
    assert_eq!(changes, ["RequiredFieldAdded", "CompatibilityChanged"], "{v2:?}");
    assert!(v2.version.breaking_changes[1].detail.contains("is Backward"), "{v2:?}");
    assert_eq!(v2.version.decision, None);
    // A compatible one naming another mode waits too, with only that reason.
    let mut wider = person(&[]);
    wider["properties"]["email"] = json!({ "type": "string" });
    let v3 = registry.register(t, spec("o", wider.clone(), Compatibility::None), deployer, at(2)).await.unwrap();
    assert_eq!(v3.version.status, SchemaStatus::Draft);
    assert_eq!(
        v3.version.breaking_changes.iter().map(|c| c.change.as_str()).collect::<Vec<_>>(),
        [COMPATIBILITY_CHANGED]
    );
    // Drafts do not move the subject's mode; leaving it out keeps Backward.
    assert_eq!(registry.get(t, "o").await.unwrap().compatibility(), Compatibility::Backward);
    let v4 = registry.register(t, keep("o", wider.clone()), deployer, at(3)).await.unwrap();
    assert_eq!((v4.version.status, v4.version.compatibility), (SchemaStatus::Approved, Compatibility::Backward));

    // An Admin's registration sets the mode: Forward from here on.
    let mut narrower = wider.clone();
    narrower["properties"]["name"]["maxLength"] = json!(20);
    let v5 = registry
        .register(t, spec("o", narrower.clone(), Compatibility::Forward), Registrant::admin("root"), at(4))
        .await
        .unwrap();
    assert_eq!((v5.version.status, v5.version.compatibility), (SchemaStatus::Approved, Compatibility::Forward));
    assert_eq!(registry.get(t, "o").await.unwrap().compatibility(), Compatibility::Forward);
    // A Deployer leaving the mode out is checked under Forward, not Backward:
    // widening a constraint again breaks Forward (a Backward check would pass it).
    let v6 = registry.register(t, keep("o", wider.clone()), deployer, at(5)).await.unwrap();
    assert_eq!((v6.version.status, v6.version.compatibility), (SchemaStatus::Draft, Compatibility::Forward), "{v6:?}");
    assert!(v6.version.breaking_changes.iter().all(|c| c.change == "ConstraintWidened"), "{v6:?}");

    // An Admin approving a Draft that names another mode makes it the subject's.
    let v7 = registry.register(t, spec("o", wider, Compatibility::Full), deployer, at(6)).await.unwrap();
    assert_eq!((v7.version.version, v7.version.status), (7, SchemaStatus::Draft));
    assert_eq!(registry.get(t, "o").await.unwrap().compatibility(), Compatibility::Forward);
    registry.decide(t, "o", 7, decision(true, "root")).await.unwrap();
    assert_eq!(registry.get(t, "o").await.unwrap().compatibility(), Compatibility::Full);
}

/// PostgreSQL cannot store NUL; the registry refuses it on every store alike.
async fn nul_in_a_definition_or_a_reason_is_invalid(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    for definition in
        [json!({ "type": "object", "properties": { "a\u{0}b": { "type": "string" } } }), json!({ "const": "\u{0}" })]
    {
        let refused =
            registry.register(t, spec("n", definition, Compatibility::None), Registrant::admin("a"), at(0)).await;
        assert!(matches!(refused, Err(SchemaError::Invalid(ref m)) if m.contains("schemaDefinition")), "{refused:?}");
    }
    registry.register(t, spec("n", person(&[]), Compatibility::None), Registrant::admin("a"), at(0)).await.unwrap();
    let reason = SchemaDecision { reason: Some("ok\u{0}".into()), ..decision(true, "root") };
    let refused = registry.decide(t, "n", 1, reason).await;
    assert!(matches!(refused, Err(SchemaError::Invalid(ref m)) if m.contains("reason")), "{refused:?}");
    assert_eq!(registry.get(t, "n").await.unwrap().versions[0].status, SchemaStatus::Draft);
}

async fn another_tenants_schema_is_not_found(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let (a, b): (TenantId, TenantId) = (Uuid::new_v4(), Uuid::new_v4());
    registry
        .register(a, spec("mine", person(&[]), Compatibility::Backward), Registrant::admin("a"), at(0))
        .await
        .unwrap();
    assert!(matches!(registry.get(b, "mine").await, Err(SchemaError::NotFound(_))));
    assert!(registry.list(b).await.unwrap().is_empty());
    assert!(matches!(
        registry.decide(b, "mine", 1, decision(true, "b")).await,
        Err(SchemaError::NotFound(_) | SchemaError::VersionNotFound { .. })
    ));
    assert!(matches!(registry.deprecate(b, "mine", "b", None, at(1)).await, Err(SchemaError::NotFound(_))));
    assert!(matches!(registry.validate(b, "mine", None, "{}".into(), false).await, Err(SchemaError::NotFound(_))));
    // B's subject of the same name is its own.
    let theirs = registry
        .register(b, spec("mine", json!({}), Compatibility::None), Registrant::admin("b"), at(1))
        .await
        .unwrap();
    assert_eq!(theirs.version.version, 1);
    let listed = registry.list(a).await.unwrap();
    assert_eq!((listed.len(), listed[0].versions.len()), (1, 1));
    assert_eq!(registry.get(a, "mine").await.unwrap().versions[0].status, SchemaStatus::Draft);
}

async fn subjects_list_by_id_with_strange_text(store: SharedSchemaStore) {
    let registry = SchemaRegistry::new(store);
    let t = Uuid::new_v4();
    let nasty = json!({ "type": "object", "title": "'; DROP TABLE schema_versions; -- \u{1F680} \\ $1 \u{200b}" });
    for id in ["zeta", "alpha.one", "m_2-x"] {
        registry
            .register(t, spec(id, nasty.clone(), Compatibility::None), Registrant::admin("o'brien"), at(0))
            .await
            .unwrap();
    }
    let listed = registry.list(t).await.unwrap();
    assert_eq!(listed.iter().map(|s| s.schema_id.as_str()).collect::<Vec<_>>(), vec!["alpha.one", "m_2-x", "zeta"]);
    assert!(listed.iter().all(|s| s.versions[0].definition == nasty && s.versions[0].created_by == "o'brien"));
    let bad = registry.register(t, spec("bad id", json!({}), Compatibility::None), Registrant::admin("a"), at(0)).await;
    assert!(matches!(bad, Err(SchemaError::Invalid(_))));
    let invalid =
        registry.register(t, spec("x", json!({ "type": 5 }), Compatibility::None), Registrant::admin("a"), at(0)).await;
    assert!(matches!(invalid, Err(SchemaError::Invalid(_))), "{invalid:?}");
    assert!(matches!(registry.get(t, "x").await, Err(SchemaError::NotFound(_))), "nothing stored");
}

macro_rules! conformance {
    ($($check:ident),* $(,)?) => {
        mod memory {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let store: SharedSchemaStore = Arc::new(hotswap_actors::schemas::MemorySchemaStore::new());
                    super::$check(store).await;
                }
            )*
        }

        mod postgres {
            use super::*;
            $(
                #[actix::test]
                async fn $check() {
                    let Some(db) = support::TestDb::migrated(concat!("postgres::", stringify!($check))).await else {
                        return;
                    };
                    let store: SharedSchemaStore = Arc::new(db.store().await);
                    super::$check(store).await;
                }
            )*
        }
    };
}

conformance!(
    first_versions_are_drafts_and_compatible_ones_are_approved,
    breaking_versions_wait_and_list_their_changes,
    transitive_checks_every_approved_version,
    the_same_definition_again_is_the_same_version,
    concurrent_registrations_get_distinct_numbers,
    deprecation_stops_new_versions_and_keeps_the_first_stamp,
    validation_uses_approved_versions,
    another_tenants_schema_is_not_found,
    subjects_list_by_id_with_strange_text,
    only_an_admin_changes_a_subjects_compatibility,
    nul_in_a_definition_or_a_reason_is_invalid,
);
