//! The schema registry through its API: registration, compatibility with
//! breaking changes listed, Admin decisions (audited), deprecation, the
//! validate endpoint, topics bound to a schema validating every publish,
//! bad input and tenant isolation.

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::messaging_api::{subscribe, topic};
use crate::support::{spawn_app, TestApp, DEPLOYER, VIEWER};
use crate::tenants::provision;

fn order_schema() -> Value {
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "required": ["orderId"],
        "properties": {
            "orderId": {"type": "integer"},
            "lines": {"type": "array", "items": {"type": "object", "required": ["sku"],
                "properties": {"sku": {"type": "string", "maxLength": 12}, "qty": {"type": "integer"}}}}
        }
    })
}

async fn register(app: &TestApp, id: &str, definition: Value, compatibility: &str) -> (StatusCode, Value) {
    app.post(
        "/api/v1/schemas",
        &json!({ "schemaId": id, "schemaDefinition": definition, "compatibility": compatibility }),
    )
    .await
}

/// Registers version 1 and approves it.
async fn approved(app: &TestApp, id: &str, definition: Value) {
    let (status, v1) = register(app, id, definition, "Backward").await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    let (status, v1) = app.post(&format!("/api/v1/schemas/{id}/versions/1/approve"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
}

#[actix_web::test]
async fn versions_are_drafts_until_approved_and_breaking_ones_list_their_changes() {
    let app = spawn_app(&[]).await;
    let deployer = app.as_user(DEPLOYER).await;
    // The definition as JSON text, as the original's clients send it.
    let (status, v1) = register(&deployer, "orders", Value::String(order_schema().to_string()), "Backward").await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!((v1["version"].as_u64(), v1["status"].as_str()), (Some(1), Some("Draft")));
    assert_eq!(v1["schemaDefinition"]["required"], json!(["orderId"]), "answered as an object: {v1}");
    assert_eq!(v1["createdBy"], "deployer");

    // Only an Admin decides; the decision names the token's user and is audited.
    let (status, _) = deployer.post("/api/v1/schemas/orders/versions/1/approve", &json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v1) = app.post("/api/v1/schemas/orders/versions/1/approve", &json!({ "reason": "reviewed" })).await;
    assert_eq!(status, StatusCode::OK, "{v1}");
    assert_eq!((v1["status"].as_str(), v1["decidedBy"].as_str()), (Some("Approved"), Some("admin")));
    let (status, again) = app.post("/api/v1/schemas/orders/versions/1/reject", &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert_eq!((again["code"].as_str(), again["currentStatus"].as_str()), (Some("invalid_state"), Some("Approved")));
    let (status, page) = app.get("/api/v1/auditlogs?eventType=SchemaVersionApproved&limit=10").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let entries = page["items"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{page}");
    assert_eq!(
        (entries[0]["resourceId"].as_str(), entries[0]["actor"]["name"].as_str()),
        (Some("orders/1"), Some("admin"))
    );

    // An optional field: compatible, approved at once.
    let mut v2_def = order_schema();
    v2_def["properties"]["note"] = json!({"type": "string"});
    let (status, v2) = register(&deployer, "orders", v2_def.clone(), "Backward").await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!((v2["version"].as_u64(), v2["status"].as_str()), (Some(2), Some("Approved")), "{v2}");
    assert_eq!(v2["breakingChanges"], json!([]));
    // The version says who approved it, when, and against what (it said nothing).
    assert_eq!(
        (v2["decidedBy"].as_str(), v2["decisionReason"].as_str()),
        (Some("compatibility check"), Some("compatible (Backward) with approved version 1")),
        "{v2}"
    );
    assert_eq!(v2["decidedAt"], v2["createdAt"], "{v2}");
    // The same definition again answers that version.
    let (status, same) = register(&deployer, "orders", v2_def.clone(), "Backward").await;
    assert_eq!((status, same["version"].as_u64()), (StatusCode::OK, Some(2)), "{same}");

    // A required field added and a nested constraint narrowed: a Draft with both listed.
    let mut v3_def = v2_def.clone();
    v3_def["required"] = json!(["orderId", "customer"]);
    v3_def["properties"]["lines"]["items"]["properties"]["sku"]["maxLength"] = json!(8);
    let (status, v3) = register(&deployer, "orders", v3_def, "Full").await;
    assert_eq!(status, StatusCode::CREATED, "{v3}");
    assert_eq!((v3["version"].as_u64(), v3["status"].as_str()), (Some(3), Some("Draft")), "{v3}");
    let changes: Vec<(String, String)> = v3["breakingChanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_string(), c["change"].as_str().unwrap().to_string()))
        .collect();
    assert!(changes.contains(&("$.customer".into(), "RequiredFieldAdded".into())), "{changes:?}");
    assert!(changes.contains(&("$.lines[*].sku".into(), "ConstraintNarrowed".into())), "{changes:?}");
    assert!(v3["breakingChanges"][0]["detail"].as_str().unwrap().contains("version 2"), "{v3}");

    // Each new version is audited with who registered it and how it stood;
    // the same definition sent again made none.
    let (_, page) = app.get("/api/v1/auditlogs?eventType=SchemaVersionRegistered&limit=10").await;
    let registered: Vec<(&str, &str, &str)> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["resourceId"].as_str().unwrap(), e["actor"]["name"].as_str().unwrap(), e["message"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        registered,
        [
            ("orders/3", "deployer", "schema 'orders' version 3 registered (Draft)"),
            ("orders/2", "deployer", "schema 'orders' version 2 registered (Approved)"),
            ("orders/1", "deployer", "schema 'orders' version 1 registered (Draft)"),
        ],
        "{page}"
    );

    let viewer = app.as_user(VIEWER).await;
    let (status, latest) = viewer.get("/api/v1/schemas/orders").await;
    assert_eq!((status, latest["version"].as_u64()), (StatusCode::OK, Some(3)));
    let (_, versions) = viewer.get("/api/v1/schemas/orders/versions").await;
    let numbers: Vec<u64> = versions.as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(numbers, vec![1, 2, 3]);
    let (status, v2_read) = viewer.get("/api/v1/schemas/orders/versions/2").await;
    assert_eq!((status, v2_read["status"].as_str()), (StatusCode::OK, Some("Approved")));
    assert_eq!(viewer.get("/api/v1/schemas/orders/versions/9").await.0, StatusCode::NOT_FOUND);
    let (_, listed) = viewer.get("/api/v1/schemas").await;
    assert_eq!(listed[0]["latestVersion"], 3, "{listed}");
    assert_eq!(listed[0]["latestApprovedVersion"], 2, "{listed}");
    // Subjects come a page at a time, by id, with their total.
    assert_eq!(register(&app, "audit-trail", json!({ "type": "object" }), "Backward").await.0, StatusCode::CREATED);
    let second = viewer.call(Method::GET, "/api/v1/schemas?page=2&pageSize=1", None).await;
    assert_eq!((second.body[0]["schemaId"].as_str(), second.header("x-total-count")), (Some("orders"), Some("2")));
    assert_eq!(second.body.as_array().unwrap().len(), 1, "{}", second.body);
    for bad in ["page=0", "pageSize=1001", "order=id"] {
        assert_eq!(viewer.get(&format!("/api/v1/schemas?{bad}")).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }

    // Rejected, then the subject deprecated: no more versions.
    let (status, v3) = app.post("/api/v1/schemas/orders/versions/3/reject", &json!({ "reason": "no" })).await;
    assert_eq!((status, v3["status"].as_str()), (StatusCode::OK, Some("Rejected")), "{v3}");
    assert_eq!(deployer.post("/api/v1/schemas/orders/deprecate", &json!({})).await.0, StatusCode::FORBIDDEN);
    let (status, deprecated) = app.post("/api/v1/schemas/orders/deprecate", &json!({})).await;
    assert_eq!((status, deprecated["deprecated"].as_bool()), (StatusCode::OK, Some(true)), "{deprecated}");
    let (status, refused) = register(&deployer, "orders", json!({"type": "object"}), "None").await;
    assert_eq!(status, StatusCode::CONFLICT, "{refused}");
}

/// The tester's case: a Deployer naming `None` (or leaving the mode out on a
/// Forward subject) had a breaking version approved by the check.
#[actix_web::test]
async fn a_deployer_cannot_loosen_a_subjects_compatibility() {
    let app = spawn_app(&[]).await;
    let deployer = app.as_user(DEPLOYER).await;
    approved(&app, "x.order", order_schema()).await;
    let mut breaking = order_schema();
    breaking["required"] = json!(["orderId", "customer"]);
    let (status, v2) = register(&deployer, "x.order", breaking.clone(), "None").await;
    assert_eq!(status, StatusCode::CREATED, "{v2}");
    assert_eq!((v2["status"].as_str(), v2["compatibility"].as_str()), (Some("Draft"), Some("None")), "{v2}");
    assert_eq!(v2["decidedBy"], Value::Null, "{v2}");
    let changes: Vec<&str> =
        v2["breakingChanges"].as_array().unwrap().iter().map(|c| c["change"].as_str().unwrap()).collect();
    assert_eq!(changes, ["RequiredFieldAdded", "CompatibilityChanged"], "{v2}");
    let (_, listed) = deployer.get("/api/v1/schemas").await;
    assert_eq!(listed[0]["compatibility"], "Backward", "the Draft does not change the subject's mode: {listed}");

    // An Admin sets Forward; a Deployer's version without a mode is then checked under Forward.
    let mut narrower = order_schema();
    narrower["properties"]["lines"]["items"]["properties"]["sku"]["maxLength"] = json!(8);
    let (status, v3) = register(&app, "x.order", narrower, "Forward").await;
    assert_eq!((status, v3["status"].as_str()), (StatusCode::CREATED, Some("Approved")), "{v3}");
    let (status, v4) =
        deployer.post("/api/v1/schemas", &json!({ "schemaId": "x.order", "schemaDefinition": order_schema() })).await;
    assert_eq!(status, StatusCode::CREATED, "{v4}");
    assert_eq!((v4["status"].as_str(), v4["compatibility"].as_str()), (Some("Draft"), Some("Forward")), "{v4}");
    assert_eq!(v4["breakingChanges"][0]["change"], "ConstraintWidened", "{v4}");

    // An Admin's own registration naming None is the Admin's decision: approved at once.
    let (status, v5) = register(&app, "x.order", breaking, "None").await;
    assert_eq!((status, v5["status"].as_str()), (StatusCode::CREATED, Some("Approved")), "{v5}");
    assert_eq!(v5["decisionReason"], "compatible (None) with approved version 3", "{v5}");
}

#[actix_web::test]
async fn the_validate_endpoint_answers_json_pointer_errors() {
    let app = spawn_app(&[]).await;
    approved(&app, "orders", order_schema()).await;
    let viewer = app.as_user(VIEWER).await;
    let (status, ok) = viewer.post("/api/v1/schemas/orders/validate", &json!({ "orderId": 7 })).await;
    assert_eq!(status, StatusCode::OK, "{ok}");
    assert_eq!((ok["isValid"].as_bool(), ok["version"].as_u64()), (Some(true), Some(1)));
    let bad = json!({ "lines": [{ "sku": "a" }, { "sku": 5, "qty": "two" }] });
    let (status, report) = viewer.post("/api/v1/schemas/orders/validate", &bad).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["isValid"], false);
    let mut found: Vec<(String, String)> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_string(), e["kind"].as_str().unwrap().to_string()))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("".into(), "required".into()),
            ("/lines/1/qty".into(), "type".into()),
            ("/lines/1/sku".into(), "type".into())
        ],
        "{report}"
    );
    assert_eq!(viewer.post("/api/v1/schemas/nope/validate", &json!({})).await.0, StatusCode::NOT_FOUND);
}

/// The reason of a deprecation, from the body or the original's query, is
/// kept on the subject and in the audit entry; a body of another shape is
/// refused rather than dropped.
#[actix_web::test]
async fn a_deprecation_keeps_its_reason_from_the_body_or_the_original_query() {
    let app = spawn_app(&[]).await;
    approved(&app, "old", order_schema()).await;
    approved(&app, "older", order_schema()).await;
    let (status, err) = app.post("/api/v1/schemas/old/deprecate", &json!({ "bogus": 1 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, err) = app.post("/api/v1/schemas/old/deprecate?reason=a", &json!({ "reason": "b" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let (status, old) = app.post("/api/v1/schemas/old/deprecate", &json!({ "reason": "replaced by new" })).await;
    assert_eq!((status, old["deprecationReason"].as_str()), (StatusCode::OK, Some("replaced by new")), "{old}");
    let (status, older) =
        app.post("/api/v1/schemas/older/deprecate?deprecatedBy=someone&reason=too%20old", &Value::Null).await;
    assert_eq!((status, older["deprecationReason"].as_str()), (StatusCode::OK, Some("too old")), "{older}");
    let (_, latest) = app.get("/api/v1/schemas/old").await;
    assert_eq!(latest["deprecationReason"], "replaced by new", "{latest}");
    let (_, list) = app.get("/api/v1/schemas").await;
    let reasons: Vec<(&str, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["schemaId"].as_str().unwrap(), s["deprecationReason"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(reasons, [("old", "replaced by new"), ("older", "too old")], "{list}");
    let (_, audit) = app.get("/api/v1/auditlogs?eventType=SchemaDeprecated").await;
    let mut audited: Vec<String> = audit["items"]
        .as_array()
        .or(audit.as_array())
        .unwrap()
        .iter()
        .map(|e| e["details"]["reason"].as_str().unwrap_or_default().to_string())
        .collect();
    audited.sort();
    assert_eq!(audited, ["replaced by new", "too old"], "{audit}");
}

/// "Would this publish pass?": with no approved version a publish is
/// refused, so validate says so rather than checking a Draft; a version
/// named explicitly may still be any version.
#[actix_web::test]
async fn validate_without_an_approved_version_answers_as_publish_does() {
    let app = spawn_app(&[]).await;
    let (status, v1) = register(&app, "drafty", order_schema(), "Backward").await;
    assert_eq!((status, v1["status"].as_str()), (StatusCode::CREATED, Some("Draft")), "{v1}");
    let (status, err) = app.post("/api/v1/schemas/drafty/validate", &json!({ "orderId": 7 })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err["message"].as_str().unwrap().contains("no approved version"), "{err}");
    let (status, named) = app.post("/api/v1/schemas/drafty/validate?version=1", &json!({ "orderId": 7 })).await;
    assert_eq!((status, named["isValid"].as_bool(), named["version"].as_u64()), (StatusCode::OK, Some(true), Some(1)));
}

#[actix_web::test]
async fn bad_schemas_are_refused_naming_the_problem() {
    let app = spawn_app(&[]).await;
    for (body, needle) in [
        (json!({ "schemaId": "s", "schemaDefinition": { "type": "strnig" } }), "strnig"),
        (json!({ "schemaId": "s", "schemaDefinition": "{not json" }), "not JSON"),
        (
            json!({ "schemaId": "s", "schemaDefinition": { "$schema": "http://json-schema.org/draft-04/schema#" } }),
            "draft 7 or 2020-12",
        ),
        (json!({ "schemaId": "s", "schemaDefinition": {}, "compatibility": "Sideways" }), "Sideways"),
        (json!({ "schemaId": "s", "schemaDefinition": {}, "status": "Approved" }), "status"),
        (json!({ "schemaId": "bad id!", "schemaDefinition": {} }), "schemaId"),
    ] {
        let (status, err) = app.post("/api/v1/schemas", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {err}");
        assert!(err.to_string().contains(needle), "{body}: {err}");
    }
    // Transitive variants and 2020-12 are accepted.
    let d2020 = json!({ "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "array", "prefixItems": [{ "type": "string" }] });
    let (status, v) = register(&app, "tuples", d2020, "FullTransitive").await;
    assert_eq!((status, v["compatibility"].as_str()), (StatusCode::CREATED, Some("FullTransitive")), "{v}");
}

/// The original's MessageSchema as its clients send it: `version` text,
/// integer enums, a Draft status and the registry's own fields as null.
#[actix_web::test]
async fn the_original_clients_schema_registers_without_approving_itself() {
    let app = spawn_app(&[]).await;
    let original = |id: &str, compatibility: Value, status: Value| {
        json!({
            "schemaId": id, "schemaDefinition": "{\"type\":\"object\"}", "version": "1.0",
            "compatibility": compatibility, "status": status, "approvedBy": null, "approvedAt": null,
            "createdAt": "0001-01-01T00:00:00", "deprecatedAt": null, "deprecationReason": null, "migrationGuide": null,
        })
    };
    let (status, v1) = app.post("/api/v1/schemas", &original("order-v1", json!(0), json!(0))).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    assert_eq!((v1["version"].as_u64(), v1["status"].as_str()), (Some(1), Some("Draft")), "{v1}");
    assert_eq!(v1["compatibility"], "None", "{v1}");
    // The original's positions, in its order; "Draft" by name too.
    for (position, named) in [(1, "Backward"), (2, "Forward"), (3, "Full")] {
        let id = format!("by-position-{position}");
        let (status, v) = app.post("/api/v1/schemas", &original(&id, json!(position), json!("Draft"))).await;
        assert_eq!((status, v["compatibility"].as_str()), (StatusCode::CREATED, Some(named)), "{v}");
    }
    let (status, err) = app.post("/api/v1/schemas", &original("too-far", json!(4), json!(0))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("compatibility"), "{err}");

    // Any other status is refused, saying that approval is a separate step;
    // nothing is registered.
    for claimed in [json!(2), json!("Approved"), json!(1), json!("PendingApproval"), json!(9)] {
        let (status, err) = app.post("/api/v1/schemas", &original("self-approved", json!(0), claimed.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{claimed}: {err}");
        assert!(err.to_string().contains("approval is a separate step"), "{claimed}: {err}");
    }
    assert_eq!(app.get("/api/v1/schemas/self-approved").await.0, StatusCode::NOT_FOUND);
    // The registry's decision fields are its own.
    let mut approved_by = original("decided", json!(0), json!(0));
    approved_by["approvedBy"] = json!("me");
    let (status, err) = app.post("/api/v1/schemas", &approved_by).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("approvedBy"), "{err}");
    // A version of another type than text or a number is refused.
    let mut odd_version = original("odd", json!(0), json!(0));
    odd_version["version"] = json!({ "major": 1 });
    assert_eq!(app.post("/api/v1/schemas", &odd_version).await.0, StatusCode::BAD_REQUEST);
}

#[actix_web::test]
async fn a_bound_topic_validates_every_publish_against_the_named_approved_version() {
    let app = spawn_app(&[]).await;
    // Binding to a schema that does not exist is refused.
    let (status, err) = app.post("/api/v1/topics", &json!({ "name": "orders", "schemaId": "orders" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    approved(&app, "orders", order_schema()).await;
    topic(&app, json!({ "name": "orders", "schemaId": "orders" })).await;
    let sub = subscribe(&app, "orders", json!({})).await;

    let publish = |payload: Value, version: Option<u32>| {
        let mut body = json!({ "topicName": "orders", "payload": payload.to_string() });
        if let Some(v) = version {
            body["schemaVersion"] = json!(v);
        }
        let app = &app;
        async move { app.post("/api/v1/messages", &body).await }
    };
    let (status, stored) = publish(json!({ "orderId": 1 }), None).await;
    assert_eq!(status, StatusCode::CREATED, "{stored}");
    let (status, err) = publish(json!({ "orderId": "one", "lines": [{}] }), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert_eq!(err["code"], "validation_failed");
    let details = err["details"].to_string();
    assert!(details.contains("payload/orderId") && details.contains("payload/lines/0"), "{err}");
    // Not JSON at all.
    let r =
        app.call(Method::POST, "/api/v1/messages", Some(json!({ "topicName": "orders", "payload": "hello" }))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);

    // Version 2 (breaking: sku becomes required at the root) waits as a Draft:
    // naming it is refused until it is approved, then it is used.
    let mut v2 = order_schema();
    v2["required"] = json!(["orderId", "sku"]);
    let (status, draft) = register(&app, "orders", v2, "Backward").await;
    assert_eq!((status, draft["status"].as_str()), (StatusCode::CREATED, Some("Draft")), "{draft}");
    let (status, err) = publish(json!({ "orderId": 2 }), Some(2)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    assert!(err.to_string().contains("Draft"), "{err}");
    // A version the subject does not have is no approved version either: 400, naming it.
    for missing in [0, 99] {
        let (status, err) = publish(json!({ "orderId": 2 }), Some(missing)).await;
        assert_eq!((status, err["code"].as_str()), (StatusCode::BAD_REQUEST, Some("validation_failed")), "{err}");
        assert!(err["message"].as_str().unwrap().contains(&format!("no version {missing}")), "{err}");
    }
    // The default is still the latest approved version (1).
    assert_eq!(publish(json!({ "orderId": 3 }), None).await.0, StatusCode::CREATED);
    assert_eq!(app.post("/api/v1/schemas/orders/versions/2/approve", &json!({})).await.0, StatusCode::OK);
    assert_eq!(publish(json!({ "orderId": 4 }), None).await.0, StatusCode::BAD_REQUEST, "latest now needs sku");
    assert_eq!(publish(json!({ "orderId": 4 }), Some(1)).await.0, StatusCode::CREATED, "version 1 named");
    assert_eq!(publish(json!({ "orderId": 5, "sku": "x" }), None).await.0, StatusCode::CREATED);

    // Only the valid publishes were stored and routed.
    let (status, body) = app.get(&format!("/api/v1/messages/consume/orders?subscriptionId={sub}&max=20")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let payloads: Vec<Value> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| serde_json::from_str(m["payload"].as_str().unwrap()).unwrap())
        .collect();
    let ids: Vec<i64> = payloads.iter().map(|p| p["orderId"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![1, 3, 4, 5]);
    let (_, metrics) = app.get("/api/v1/topics/orders/metrics").await;
    assert_eq!(metrics["published"], 4, "{metrics}");
}

#[actix_web::test]
async fn another_tenants_schema_is_not_found() {
    let app = spawn_app(&[]).await;
    approved(&app, "orders", order_schema()).await;
    let other_tenant = provision(&app, "schema-other", "Starter").await;
    let other = app.new_user("schema-other-admin", &["Admin"], Some(other_tenant)).await;
    for path in ["/api/v1/schemas/orders", "/api/v1/schemas/orders/versions", "/api/v1/schemas/orders/versions/1"] {
        assert_eq!(other.get(path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    for path in [
        "/api/v1/schemas/orders/versions/1/approve",
        "/api/v1/schemas/orders/versions/1/reject",
        "/api/v1/schemas/orders/deprecate",
        "/api/v1/schemas/orders/validate",
    ] {
        assert_eq!(other.post(path, &json!({})).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let (_, listed) = other.get("/api/v1/schemas").await;
    assert_eq!(listed, json!([]));
    // Nor can the other tenant bind a topic to it; its own subject of the same name is its own.
    let (status, _) = other.post("/api/v1/topics", &json!({ "name": "orders", "schemaId": "orders" })).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, mine) = register(&other, "orders", json!({ "type": "object" }), "None").await;
    assert_eq!((status, mine["version"].as_u64()), (StatusCode::CREATED, Some(1)));
    let (_, first) = app.get("/api/v1/schemas/orders/versions").await;
    assert_eq!(first.as_array().unwrap().len(), 1, "{first}");
}

#[actix_web::test]
async fn schemas_live_in_postgres_when_the_store_does() {
    let Some(db) = crate::db::TestDb::create("api::schemas_live_in_postgres_when_the_store_does").await else {
        return;
    };
    let overrides = [("HOTSWAP__STORE__BACKEND", "postgres"), ("HOTSWAP__STORE__URL", db.url.as_str())];
    let first = spawn_app(&overrides).await;
    approved(&first, "orders", order_schema()).await;
    // A second process on the same database sees the approved version and validates with it.
    let second = spawn_app(&overrides).await;
    let (status, latest) = second.get("/api/v1/schemas/orders").await;
    assert_eq!(
        (status, latest["status"].as_str(), latest["decidedBy"].as_str()),
        (StatusCode::OK, Some("Approved"), Some("admin")),
        "{latest}"
    );
    let (_, report) = second.post("/api/v1/schemas/orders/validate", &json!({ "orderId": "x" })).await;
    assert_eq!(
        (report["isValid"].as_bool(), report["errors"][0]["path"].as_str()),
        (Some(false), Some("/orderId")),
        "{report}"
    );
    topic(&second, json!({ "name": "orders", "schemaId": "orders" })).await;
}
