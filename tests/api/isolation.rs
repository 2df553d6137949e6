//! Cross-tenant isolation, endpoint by endpoint: an Admin of tenant B calls
//! every route of the API (every path of the OpenAPI document, and the
//! undocumented admin and live routes) with tenant A's ids, with and without
//! an X-Tenant-Id header naming A. Nothing of A may show in any answer, every
//! request naming one of A's resources is refused, and afterwards A is
//! exactly as it was.

use awc::http::{Method, StatusCode};
use hotswap_actors::domain::AuditQuery;
use serde_json::{json, Value};
use std::collections::BTreeMap;

use crate::registry_support::{descriptor, publish, trust, KeyPair};
use crate::support::{spawn_app, TestApp};
use crate::tenants::provision;
use crate::ws_support::WsClient;

/// Distinctive enough that any appearance in an answer is a leak.
const A_SUBDOMAIN: &str = "alphasecret";
const A_MODULE: &str = "kmod-alphasecret";

struct TenantA {
    id: String,
    active_run: String,
    finished_run: String,
    user_ids: Vec<String>,
    /// A's trusted signing key (its fingerprint).
    key_id: String,
    /// The trace of A's finished run.
    trace_id: String,
    /// A relationship of A's knowledge graph (its finished run DEPLOYED a version).
    graph_relationship: String,
    /// A's message bus: a topic, a pull subscription to it and a message on it.
    topic: String,
    subscription: String,
    message: String,
    /// An enrolment token of A's agents (its id).
    agent_token: String,
    /// A subject of A's schema registry, named to be recognisable.
    schema: String,
    /// Every string of A that B must never see.
    secrets: Vec<String>,
}

async fn set_up_a(system: &TestApp) -> (TenantA, TestApp) {
    let id = provision(system, A_SUBDOMAIN, "Starter").await;
    let admin = system.new_user(&format!("{A_SUBDOMAIN}-admin"), &["Admin"], Some(id)).await;
    system.new_user(&format!("{A_SUBDOMAIN}-viewer"), &["Viewer"], Some(id)).await;
    let finished_run = admin.deploy(A_MODULE, "1.0.0", "Development", json!({})).await;
    admin.finished(&finished_run).await;
    let active_run = admin.deploy(&format!("{A_MODULE}-2"), "2.0.0", "QA", json!({})).await;
    admin.wait_for(&active_run, |r| r["status"] == "Running").await;
    // A registered module and a trusted key, for the registry routes.
    let key = KeyPair::generate();
    let key_id = trust(&admin, "alpha-release", &key).await;
    publish(&admin, &key, &descriptor(A_MODULE, "1.0.0")).await;
    let (_, users) = admin.get("/api/v1/users").await;
    let user_ids: Vec<String> = users.as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap().into()).collect();
    let mut secrets =
        vec![id.to_string(), A_SUBDOMAIN.to_string(), active_run.clone(), finished_run.clone(), key_id.clone()];
    secrets.extend(user_ids.iter().cloned());
    for env in ["Development", "QA", "Staging", "Production"] {
        let (_, cluster) = admin.get(&format!("/api/v1/clusters/{env}")).await;
        secrets.extend(cluster["nodes"].as_array().unwrap().iter().map(|n| n["nodeId"].as_str().unwrap().to_string()));
    }
    let trace_id =
        admin.get(&format!("/api/v1/deployments/{finished_run}")).await.1["traceId"].as_str().unwrap().to_string();
    let (_, rels) = admin.get(&format!("/api/v1/graph/entities/{finished_run}/relationships")).await;
    let graph_relationship = rels[0]["id"].as_str().expect("the run is in A's graph").to_string();
    secrets.push(graph_relationship.clone());
    // Topic names, like module names, are a tenant's own namespace (B may have
    // a topic of the same name): not a secret. The ids below are.
    let topic = "alpha-topic".to_string();
    crate::messaging_api::topic(&admin, json!({ "name": topic })).await;
    let subscription = crate::messaging_api::subscribe(&admin, &topic, json!({})).await;
    let message = crate::messaging_api::publish(&admin, &topic, "alpha payload").await["messageId"]
        .as_str()
        .expect("the message's id")
        .to_string();
    let (_, token) = admin.post("/api/v1/agents/tokens", &json!({ "environment": "QA" })).await;
    let agent_token = token["id"].as_str().expect("the enrolment token's id").to_string();
    secrets.extend([subscription.clone(), message.clone(), agent_token.clone()]);
    let schema = format!("{A_SUBDOMAIN}-schema");
    let (status, v1) =
        admin.post("/api/v1/schemas", &json!({ "schemaId": schema, "schemaDefinition": { "type": "object" } })).await;
    assert_eq!(status, StatusCode::CREATED, "{v1}");
    admin.post(&format!("/api/v1/schemas/{schema}/versions/1/approve"), &json!({})).await;
    let a = TenantA {
        id: id.to_string(),
        active_run,
        finished_run,
        user_ids,
        key_id,
        trace_id,
        graph_relationship,
        topic,
        subscription,
        message,
        agent_token,
        schema,
        secrets,
    };
    (a, admin)
}

/// What A looks like to its own Admin and to the operator; compared before and after.
async fn snapshot(system: &TestApp, a_admin: &TestApp, a: &TenantA) -> Value {
    let (_, users) = a_admin.get("/api/v1/users").await;
    let (_, tenant) = system.get(&format!("/api/tenants/{}", a.id)).await;
    let (_, finished) = a_admin.get(&format!("/api/v1/deployments/{}", a.finished_run)).await;
    let (_, active) = a_admin.get(&format!("/api/v1/deployments/{}", a.active_run)).await;
    let (_, runs) = a_admin.get("/api/v1/deployments").await;
    let (_, schemas) = a_admin.get(&format!("/api/v1/schemas/{}/versions", a.schema)).await;
    json!({
        "schemas": schemas,
        "users": users,
        "tenant": tenant,
        "finished": { "status": finished["status"], "rollback": finished["rollback"] },
        "active": active["status"],
        "runs": runs.as_array().unwrap().len(),
    })
}

/// Every value a path parameter of a documented route takes.
fn candidates(path: &str, param: &str, a: &TenantA) -> Vec<String> {
    match (param, path) {
        ("topic", _) => vec![a.topic.clone()],
        ("id", p) if p.starts_with("/api/v1/schemas/") => vec![a.schema.clone()],
        ("version", p) if p.starts_with("/api/v1/schemas/") => vec!["1".into()],
        ("name", p) if p.starts_with("/api/v1/topics/") => vec![a.topic.clone()],
        ("id", p) if p.starts_with("/api/v1/subscriptions/") => vec![a.subscription.clone()],
        ("id", p) if p.starts_with("/api/v1/messages/") || p.starts_with("/api/messages/") => vec![a.message.clone()],
        ("messageId", _) => vec![a.message.clone()],
        ("id", p) if p.starts_with("/api/v1/agents/tokens/") => vec![a.agent_token.clone()],
        // A has no agent host: one of its simulated nodes, whose id derives from tenant and hostname.
        ("nodeId", _) => {
            let tenant: uuid::Uuid = a.id.parse().expect("A's tenant id");
            vec![uuid::Uuid::new_v5(&tenant, b"qa-node-01").to_string()]
        }
        // A has no batch: B's lookup of A's run ids as batch ids must find nothing.
        ("batchId", _) => vec![a.finished_run.clone()],
        ("id", p)
            if p.starts_with("/api/v1/deployments/")
                || p.starts_with("/api/v1/approvals/deployments/")
                || p.starts_with("/api/v1/auditlogs/") =>
        {
            vec![a.active_run.clone(), a.finished_run.clone()]
        }
        ("id", p) if p.starts_with("/api/v1/users/") => a.user_ids.clone(),
        ("id", p) if p.starts_with("/api/tenants/") => vec![a.id.clone()],
        ("environment", _) => vec!["QA".into(), "Production".into()],
        ("name", _) => vec![A_MODULE.into()],
        // Not a resource: B's lookup of A's trace must simply show nothing of A.
        ("traceId", _) => vec![a.trace_id.clone()],
        ("category", _) => vec!["Deployment".into(), "Authentication".into()],
        ("username", _) => vec![format!("{A_SUBDOMAIN}-admin")],
        ("version", _) => vec!["1.0.0".into()],
        ("id", p) if p.starts_with("/api/v1/signing-keys/") => vec![a.key_id.clone()],
        // Secrets are the system's, not A's: B is refused them all the same.
        ("id", p) if p.starts_with("/api/v1/secrets/") => vec!["jwt-signing-key".into()],
        ("id", p) if p.starts_with("/api/v1/admin/actors/") => vec![format!("run:{}", a.active_run)],
        ("verb", _) => vec!["pause".into(), "abort".into()],
        // Runs and nodes are entities of A's knowledge graph.
        ("id", p) if p.starts_with("/api/v1/graph/entities/") => vec![a.finished_run.clone(), a.active_run.clone()],
        ("id", p) if p.starts_with("/api/v1/graph/relationships/") => vec![a.graph_relationship.clone()],
        _ => panic!("{path}: no candidate values for {{{param}}}; teach the isolation test about this route"),
    }
}

fn body_for(method: &Method, template: &str, a: &TenantA) -> Option<Value> {
    let deployment = crate::db::requests::deployment("kmod-bravo", "1.0.0", "Development");
    match (method.as_str(), template) {
        ("POST", "/api/v1/deployments") => Some(deployment),
        ("POST", "/api/v1/users") => Some(json!({ "username": "bravo-sneak", "email": "sneak@example.com",
            "password": "a-long-enough-password", "roles": ["Admin"], "tenantId": a.id })),
        ("PUT", "/api/v1/users/{id}/roles") => Some(json!({ "roles": ["Viewer"] })),
        ("POST", "/api/v1/users/{id}/password") => Some(json!({ "password": "hijacked-password-123" })),
        ("POST", "/api/tenants") => {
            Some(json!({ "name": "x", "subdomain": "bravo-two", "contactEmail": "x@example.com" }))
        }
        ("PUT", "/api/tenants/{id}") => Some(json!({ "name": "pwned" })),
        ("PUT", "/api/tenants/{id}/subscription") => Some(json!({ "tier": "Custom" })),
        ("POST", p) if p.starts_with("/api/v1/approvals/") => Some(json!({ "reason": "not yours" })),
        ("PUT", "/api/v1/graph/entities/{id}") => Some(json!({ "properties": { "pwned": true } })),
        ("POST", _) | ("PUT", _) => Some(json!({})),
        _ => None,
    }
}

/// Every documented route, expanded with A's ids, plus the undocumented ones.
async fn requests(app: &TestApp, a: &TenantA) -> Vec<(Method, String, String, Option<Value>)> {
    let (_, doc) = app.get("/api-docs/openapi.json").await;
    let mut out = Vec::new();
    for (template, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let method: Method = method.to_uppercase().parse().unwrap();
            // Public, or ends the caller's own session: nothing of A's to reach.
            if template.starts_with("/api/v1/authentication/login") || template.ends_with("/logout") {
                continue;
            }
            let mut paths = vec![template.clone()];
            for segment in template.split('/').filter(|s| s.starts_with('{')) {
                let param = segment.trim_matches(|c| c == '{' || c == '}');
                paths = paths
                    .iter()
                    .flat_map(|p| candidates(template, param, a).into_iter().map(move |v| p.replace(segment, &v)))
                    .collect();
            }
            // Leases are taken and settled for one subscription: name A's.
            let needs_subscription = template.starts_with("/api/v1/messages/consume/")
                || template.ends_with("/ack")
                || template.ends_with("/nack");
            for mut path in paths {
                if needs_subscription {
                    path = format!("{path}?subscriptionId={}", a.subscription);
                }
                out.push((method.clone(), template.clone(), path, body_for(&method, template, a)));
            }
        }
    }
    let admin_routes = ["/api/v1/admin/actors", "/api/v1/admin/supervision"].map(|p| (Method::GET, p.to_string()));
    out.extend(admin_routes.into_iter().map(|(m, p)| (m, p.clone(), p, None)));
    for child in [format!("run:{}", a.active_run), format!("tenant:{}", a.id)] {
        out.push((Method::GET, "/api/v1/admin/actors/{id}".into(), format!("/api/v1/admin/actors/{child}"), None));
        for verb in ["restart", "stop", "crash"] {
            let path = format!("/api/v1/admin/actors/{child}/{verb}");
            out.push((Method::POST, format!("/api/v1/admin/actors/{{id}}/{verb}"), path, Some(json!({}))));
        }
    }
    out
}

#[actix_web::test]
async fn a_token_of_tenant_b_never_sees_or_changes_anything_of_tenant_a() {
    let system = spawn_app(&[
        ("HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY", "30s"),
        // The live check below reads nothing (and answers no ping) while it
        // runs A's deployment to its end: the test profile's 400 ms would
        // close the socket (1001) whenever that took longer, as it once did in CI.
        ("HOTSWAP__WEBSOCKET__CLIENT_TIMEOUT", "30s"),
    ])
    .await;
    let (a, a_admin) = set_up_a(&system).await;
    let b_tenant = provision(&system, "bravo", "Starter").await;
    let b = system.new_user("bravo-admin", &["Admin"], Some(b_tenant)).await;
    let before = snapshot(&system, &a_admin, &a).await;

    let all = requests(&b, &a).await;
    let documented = all.iter().filter(|(_, t, _, _)| !t.starts_with("/api/v1/admin")).count();
    assert!(documented >= 40, "the walk covers the documented API ({documented} requests)");
    let mut seen: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for (method, template, path, body) in &all {
        for header in [None, Some(a.id.as_str())] {
            let headers: Vec<(&str, &str)> = header.map(|h| ("X-Tenant-Id", h)).into_iter().collect();
            let r = b.request_with(method.clone(), path, &headers, body.clone()).await;
            let what = format!("{method} {path} (X-Tenant-Id: {header:?})");
            seen.entry(format!("{method} {template}")).or_default().push(r.status.as_u16());
            assert!(!r.status.is_server_error(), "{what}: {} {}", r.status, r.text);
            // An id the caller sent may come back in its 404; nothing else of A may.
            for secret in a.secrets.iter().filter(|s| !path.contains(s.as_str()) && header != Some(s.as_str())) {
                assert!(!r.text.contains(secret.as_str()), "{what} shows A's {secret}: {}", r.text);
            }
            let names_a = a.secrets.iter().any(|s| path.contains(s.as_str()));
            if names_a || (*method == Method::POST && template == "/api/v1/users") {
                // Names one of A's resources (or tries to create in A): refused.
                // Agents' downloads take an agent's session credential, never a user's token.
                let agent_only = template.starts_with("/api/v1/agents/artifacts/");
                assert!(
                    matches!(r.status, StatusCode::NOT_FOUND | StatusCode::FORBIDDEN)
                        || (agent_only && r.status == StatusCode::UNAUTHORIZED),
                    "{what}: {} {}",
                    r.status,
                    r.text
                );
            }
            let acts_in_a_tenant = [
                "/api/v1/deployments",
                "/api/v1/clusters",
                "/api/v1/analytics",
                "/api/v1/admin",
                "/api/v1/users",
                "/api/v1/approvals",
            ];
            if header.is_some() && acts_in_a_tenant.iter().any(|p| template.starts_with(p)) {
                assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: only system Admins may name a tenant: {}", r.text);
            }
        }
    }
    // Its own tenant answers normally, so the refusals above are about A.
    let (status, own) = b.get("/api/tenants").await;
    assert_eq!((status, own.as_array().unwrap().len()), (StatusCode::OK, 1), "{own}");

    // Live updates: B's subscription to everything carries none of A's events.
    let mut ws = WsClient::connect(&b, "/api/v1/ws").await;
    ws.send(&json!({ "type": "subscribe", "all": true })).await;
    assert_eq!(ws.json().await["type"], "subscribed");
    let run = a_admin.deploy(&format!("{A_MODULE}-3"), "3.0.0", "Development", json!({})).await;
    a_admin.finished(&run).await;
    let mine = b.deploy("kmod-bravo-live", "1.0.0", "Development", json!({})).await;
    // B's own run's completion arrives after anything of A's would have.
    let msgs = ws.until(|m| m["type"] == "DeploymentCompleted" && m["executionId"] == mine.as_str()).await;
    assert!(msgs.iter().all(|m| m["executionId"] == mine.as_str()), "{msgs:#?}");
    ws.close().await;

    let after = snapshot(&system, &a_admin, &a).await;
    let expected_runs = before["runs"].as_u64().unwrap() + 1;
    assert_eq!(after["runs"], expected_runs, "A has its own new run and nothing else");
    let strip = |mut v: Value| {
        v["runs"] = Value::Null;
        v
    };
    assert_eq!(strip(after), strip(before), "A is exactly as it was");
    let by_b = AuditQuery { actor: Some("bravo-admin".into()), limit: 10, ..AuditQuery::default() };
    let a_id = a.id.parse().unwrap();
    assert_eq!(system.orchestrator.store().list_audit(a_id, &by_b).await.unwrap().total, 0, "{seen:?}");
}
