//! The authorization matrix: every endpoint without a token, with each role,
//! and with a token of another tenant.

use crate::db::requests::deployment;
use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app, TestApp, DEPLOYER, VIEWER};

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Needs {
    Public,
    Viewer,
    Deployer,
    Admin,
}

struct Endpoint {
    method: Method,
    /// `{run}` and `{user}` are replaced by ids of the default tenant.
    path: &'static str,
    body: Option<Value>,
    needs: Needs,
}

fn endpoints() -> Vec<Endpoint> {
    let e = |method: Method, path, body: Option<Value>, needs| Endpoint { method, path, body, needs };
    let deployment = deployment("kmod-matrix", "9.9.9", "Development");
    vec![
        e(Method::GET, "/health", None, Needs::Public),
        e(Method::GET, "/health/ready", None, Needs::Public),
        e(Method::GET, "/api/v1/authentication/demo-credentials", None, Needs::Public),
        e(
            Method::POST,
            "/api/v1/authentication/login",
            Some(json!({ "username": "viewer", "password": "Viewer123!" })),
            Needs::Public,
        ),
        e(Method::GET, "/api-docs/openapi.json", None, Needs::Public),
        e(Method::GET, "/api/v1/authentication/me", None, Needs::Viewer),
        e(Method::GET, "/api/v1/deployments", None, Needs::Viewer),
        e(Method::GET, "/api/v1/deployments/{run}", None, Needs::Viewer),
        e(Method::GET, "/api/v1/deployments/{run}/events", None, Needs::Viewer),
        e(Method::GET, "/api/v1/clusters", None, Needs::Viewer),
        e(Method::GET, "/api/v1/clusters/QA", None, Needs::Viewer),
        e(Method::GET, "/api/v1/clusters/QA/metrics", None, Needs::Viewer),
        e(Method::POST, "/api/v1/deployments", Some(deployment), Needs::Deployer),
        e(Method::POST, "/api/v1/deployments/{run}/pause", None, Needs::Deployer),
        e(Method::POST, "/api/v1/deployments/{run}/resume", None, Needs::Deployer),
        e(Method::POST, "/api/v1/deployments/{run}/promote", None, Needs::Deployer),
        e(Method::POST, "/api/v1/deployments/{run}/abort", None, Needs::Deployer),
        e(Method::POST, "/api/v1/deployments/{run}/rollback", None, Needs::Deployer),
        e(Method::GET, "/api/v1/users", None, Needs::Admin),
        e(Method::GET, "/api/v1/users/{user}", None, Needs::Admin),
        e(
            Method::POST,
            "/api/v1/users",
            Some(json!({ "username": "x", "email": "x", "password": "x", "roles": [] })),
            Needs::Admin,
        ),
        e(Method::POST, "/api/v1/users/{user}/disable", None, Needs::Admin),
        e(Method::POST, "/api/v1/users/{user}/enable", None, Needs::Admin),
        e(Method::PUT, "/api/v1/users/{user}/roles", Some(json!({ "roles": ["Viewer"] })), Needs::Admin),
        e(
            Method::POST,
            "/api/v1/users/{user}/password",
            Some(json!({ "password": "long-enough-password" })),
            Needs::Admin,
        ),
        e(Method::POST, "/api/v1/authentication/logout", None, Needs::Viewer),
    ]
}

async fn send(app: &TestApp, ep: &Endpoint, run: &str, user: &str) -> crate::support::Reply {
    let path = ep.path.replace("{run}", run).replace("{user}", user);
    app.call(ep.method.clone(), &path, ep.body.clone()).await
}

/// A finished run of the default tenant, and the id of a user the walk may
/// change (not a caller: resetting a password ends its tokens).
async fn fixtures(admin: &TestApp) -> (String, String) {
    let run = admin.deploy("kmod-fixture", "1.0.0", "Development", json!({})).await;
    admin.finished(&run).await;
    let target = admin.new_user("matrix-target", &["Viewer"], None).await;
    let (_, me) = target.get("/api/v1/authentication/me").await;
    (run, me["id"].as_str().unwrap().to_string())
}

#[actix_web::test]
async fn every_endpoint_without_a_token_and_with_each_role() {
    let admin = spawn_app(&[]).await;
    let (run, user) = fixtures(&admin).await;
    let callers = [
        ("anonymous", admin.anonymous(), None),
        ("viewer", admin.as_user(VIEWER).await, Some(Needs::Viewer)),
        ("deployer", admin.as_user(DEPLOYER).await, Some(Needs::Deployer)),
        ("admin", admin.clone(), Some(Needs::Admin)),
    ];
    for (who, caller, holds) in &callers {
        for ep in endpoints() {
            // Logging out would end this caller's token for the rest of the walk.
            if ep.path.ends_with("/logout") && holds.is_some() {
                continue;
            }
            let r = send(caller, &ep, &run, &user).await;
            let what = format!("{who}: {} {}", ep.method, ep.path);
            match (ep.needs, holds) {
                (Needs::Public, _) => assert!(r.status.is_success(), "{what}: {} {}", r.status, r.text),
                (_, None) => {
                    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
                    assert_eq!(r.body["error"], "Unauthorized", "{what}");
                }
                (needs, Some(role)) if needs > *role => {
                    assert_eq!(r.status, StatusCode::FORBIDDEN, "{what}: {}", r.text);
                    assert_eq!(r.body["error"], "Forbidden", "{what}");
                }
                _ => assert!(
                    !matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
                        && !r.status.is_server_error(),
                    "{what}: {} {}",
                    r.status,
                    r.text
                ),
            }
        }
    }
    // Logout, last, for each role.
    for (who, caller, holds) in &callers[1..] {
        let r = caller.call(Method::POST, "/api/v1/authentication/logout", None).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{who} {holds:?}: {}", r.text);
    }
}

#[actix_web::test]
async fn another_tenant_sees_none_of_the_default_tenants_resources() {
    let admin = spawn_app(&[]).await;
    let (run, user) = fixtures(&admin).await;
    let other_tenant = crate::tenants::provision(&admin, "outsider", "Free").await;
    let outsider = admin.new_user("outsider-admin", &["Admin"], Some(other_tenant)).await;
    let (_, me) = outsider.get("/api/v1/authentication/me").await;
    assert_eq!(me["tenantId"], other_tenant.to_string());

    for ep in endpoints() {
        if !(ep.path.contains("{run}") || ep.path.contains("{user}")) {
            continue;
        }
        let r = send(&outsider, &ep, &run, &user).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{} {}: {}", ep.method, ep.path, r.text);
        assert_eq!(r.body["error"], "Not Found");
    }
    // Lists are empty, clusters have no nodes, metrics no points.
    let (status, runs) = outsider.get("/api/v1/deployments").await;
    assert_eq!((status, runs), (StatusCode::OK, json!([])));
    let (_, users) = outsider.get("/api/v1/users").await;
    let names: Vec<_> = users.as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names, [json!("outsider-admin")]);
    // Its clusters are its own (sized by its tier), none of the default tenant's nodes.
    let (_, clusters) = outsider.get("/api/v1/clusters").await;
    assert!(clusters.as_array().unwrap().iter().all(|c| c["totalNodes"] == 2), "{clusters}");
    let node_ids = |cluster: &Value| -> Vec<Value> {
        cluster["nodes"].as_array().unwrap().iter().map(|n| n["nodeId"].clone()).collect()
    };
    let (_, qa) = outsider.get("/api/v1/clusters/QA").await;
    let (_, own_qa) = admin.get("/api/v1/clusters/QA").await;
    assert!(node_ids(&qa).iter().all(|id| !node_ids(&own_qa).contains(id)), "{qa} {own_qa}");
    let (status, metrics) = outsider.get("/api/v1/clusters/QA/metrics").await;
    // Its own samples only (the store keeps series by tenant: see the store conformance suite).
    assert_eq!(status, StatusCode::OK);
    assert!(metrics["dataPoints"].is_array(), "{metrics}");

    // Its own run lives in its own tenant, invisible to the default tenant.
    let own = outsider.deploy("kmod-fixture", "2.0.0", "Development", json!({})).await;
    assert_eq!(admin.get(&format!("/api/v1/deployments/{own}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(outsider.get(&format!("/api/v1/deployments/{own}")).await.0, StatusCode::OK);
    // The default tenant's run is untouched by the outsider's verbs.
    let (_, still) = admin.get(&format!("/api/v1/deployments/{run}")).await;
    assert_eq!(still["status"], "Succeeded");
    assert_eq!(still["rollback"], Value::Null);

    // An Admin of another tenant cannot create users outside it.
    let body = json!({ "username": "sneaky", "email": "s@example.com", "password": "long-enough-password",
        "roles": ["Admin"], "tenantId": hotswap_actors::domain::DEFAULT_TENANT });
    assert_eq!(outsider.post("/api/v1/users", &body).await.0, StatusCode::FORBIDDEN);
}
