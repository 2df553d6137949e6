//! Request validation, listing and the JSON error shape of /api/v1/deployments.

use crate::db::requests::{deployment, deployment_with};
use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::spawn_app;

#[actix_web::test]
async fn every_validation_error_is_reported_in_one_400() {
    let app = spawn_app(&[]).await;
    let long = "x".repeat(1001);
    let body = json!({
        "moduleName": "Bad_Name",
        "version": "1.0",
        "targetEnvironment": "moon",
        "requesterEmail": "not-an-email",
        "description": long,
        "metadata": { " ": "x", "simulateDeployFailure": "7" },
        "strategy": "yolo",
        "canarySteps": [50, 10],
    });
    let (status, reply) = app.post("/api/v1/deployments", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"], "Validation Failed");
    let details = reply["details"].as_array().unwrap();
    assert_eq!(details.len(), 7, "{reply:#}");
    assert!(reply["traceId"].is_string());

    let (status, reply) = app.post("/api/v1/deployments", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["details"].as_array().unwrap().len(), 4, "four required fields: {reply}");

    // Knob values are checked too, once the shape is right.
    let knobs = deployment_with(
        "kmod-a",
        "1.0.0",
        "Production",
        json!({
        "metadata": { "simulateDeployFailure": "7", "simulateCpu@Nowhere": "5" }, "canarySteps": [50, 10] }),
    );
    let (status, reply) = app.post("/api/v1/deployments", &knobs).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["details"].as_array().unwrap().len(), 3, "{reply:#}");
}

#[actix_web::test]
async fn every_metadata_problem_is_reported() {
    let app = spawn_app(&[]).await;
    let long_key = "k".repeat(101);
    let metadata = json!({ " ": "x", long_key.clone(): "y", "note": "v".repeat(501) });
    let body = deployment_with("kmod-a", "1.0.0", "QA", json!({ "metadata": metadata }));
    let (status, reply) = app.post("/api/v1/deployments", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(
        reply["details"],
        json!([
            "metadata keys must not be blank",
            format!("metadata key '{}…' is longer than 100 characters", &long_key[..20]),
            "metadata value of 'note' is longer than 500 characters",
        ]),
        "{reply:#}"
    );

    // Many problems: the first few by name, the rest counted.
    let many: serde_json::Map<String, serde_json::Value> =
        (0..8).map(|i| (format!("key-{i}"), json!("v".repeat(501)))).collect();
    let body = deployment_with("kmod-a", "1.0.0", "QA", json!({ "metadata": many }));
    let (status, reply) = app.post("/api/v1/deployments", &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let details = reply["details"].as_array().unwrap();
    assert_eq!(details.len(), 6, "{reply:#}");
    assert_eq!(details[5], "and 3 more metadata problems like these");
}

#[actix_web::test]
async fn a_version_or_environment_as_long_as_a_page_is_refused_without_being_repeated() {
    let app = spawn_app(&[]).await;
    // A version is repeated in every node's modules, run and live update that
    // names it: one longer than 128 characters is refused, not stored.
    let long_version = format!("1.0.0-{}", "a".repeat(100_000));
    let (status, reply) = app.post("/api/v1/deployments", &deployment("kmod-a", &long_version, "QA")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(reply["details"].to_string().contains("version may hold at most 128 characters"), "{reply}");
    assert!(reply.to_string().len() < 2_000, "the error repeats the version back");
    let longest = format!("1.0.0-{}", "a".repeat(122));
    let (status, reply) = app.post("/api/v1/deployments", &deployment("kmod-a", &longest, "Development")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");

    let long_environment = "x".repeat(100_000);
    let (status, reply) = app.post("/api/v1/deployments", &deployment("kmod-b", "1.0.0", &long_environment)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(reply.to_string().len() < 2_000, "the error repeats the value back: {} bytes", reply.to_string().len());
}

#[actix_web::test]
async fn a_value_of_the_wrong_type_is_not_repeated_in_the_error() {
    let app = spawn_app(&[]).await;
    // The message of a body of the wrong shape reaches the log: a password
    // sent as a number must not.
    let body = br#"{"username":"admin","password":918273645}"#.to_vec();
    let (status, reply) = app.post_raw("/api/v1/authentication/login", "application/json", body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(!message.contains("918273645"), "{message}");
    assert!(message.contains("invalid type: integer, expected a string"), "{message}");
    let body = br#"{"username":"admin","password":"x","surprise":"sekrit-value"}"#.to_vec();
    let (_, reply) = app.post_raw("/api/v1/authentication/login", "application/json", body).await;
    assert!(!reply.to_string().contains("sekrit-value"), "{reply}");
}

#[actix_web::test]
async fn pre_release_versions_and_case_insensitive_environments_are_accepted() {
    let app = spawn_app(&[]).await;
    let id = app.deploy("kmod-a", "1.0.0-beta.1", "development", json!({ "description": "first beta" })).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "Succeeded");
    assert_eq!(run["version"], "1.0.0-beta.1");
    assert_eq!(run["targetEnvironment"], "Development");
    assert_eq!(run["description"], "first beta");
}

#[actix_web::test]
async fn accepted_runs_answer_with_location_and_links() {
    let app = spawn_app(&[]).await;
    let body = deployment("kmod-a", "1.0.0", "Staging");
    let (status, reply) = app.post("/api/v1/deployments", &body).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let id = reply["executionId"].as_str().unwrap();
    assert_eq!(reply["status"], "Running");
    assert_eq!(reply["links"]["self"], format!("/api/v1/deployments/{id}"));
    assert!(reply["estimatedDuration"].as_str().unwrap().starts_with("PT"));
    assert_eq!(reply["traceId"].as_str().unwrap().len(), 32);
    let run = app.get(&format!("/api/v1/deployments/{id}")).await.1;
    let names: Vec<_> =
        run["stages"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["Security Scan", "Deploy to Development", "Deploy to QA", "Deploy to Staging", "Validation"]);
}

#[actix_web::test]
async fn malformed_bodies_get_their_4xx_never_a_500() {
    let app = spawn_app(&[]).await;
    let (status, reply) = app.post_raw("/api/v1/deployments", "application/json", b"{\"moduleName\": ".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert_eq!(reply["error"], "Bad Request");
    let (status, reply) = app.post_raw("/api/v1/deployments", "text/plain", b"hello".to_vec()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{reply}");
    let (status, _) = app.post_raw("/api/v1/deployments", "application/json", b"{\"version\": 5}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.post_raw("/api/v1/deployments", "application/json", b"{\"surprise\": true}".to_vec()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown fields are refused");
    let big = format!("{{\"description\": \"{}\"}}", "y".repeat(2 << 20));
    let (status, reply) = app.post_raw("/api/v1/deployments", "application/json", big.into_bytes()).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{reply}");
    let (status, reply) = app.get("/api/v1/nowhere").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(reply["error"], "Not Found");
    let (status, _) = app.get(&format!("/api/v1/deployments/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app.get("/api/v1/deployments/12345").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // NUL, which PostgreSQL cannot compare: no resource is named with it, no filter may hold it.
    let refused = [
        ("/api/v1/deployments?moduleName=a%00b", StatusCode::BAD_REQUEST),
        ("/api/v1/schemas/a%00b", StatusCode::NOT_FOUND),
        ("/api/v1/topics/x%00", StatusCode::NOT_FOUND),
    ];
    for (url, expected) in refused {
        let (status, reply) = app.get(url).await;
        assert_eq!(status, expected, "{url}: {reply}");
        assert!(reply["message"].as_str().unwrap().contains("NUL"), "{url}: {reply}");
        assert!(reply["traceId"].is_string(), "{url}: {reply}");
    }
}

#[actix_web::test]
async fn listing_is_newest_first_with_filters_and_pages() {
    let app = spawn_app(&[]).await;
    let mut ids = Vec::new();
    for (i, module) in ["kmod-a", "kmod-b", "kmod-c"].iter().enumerate() {
        let id = app.deploy(module, &format!("1.0.{i}"), "Development", json!({})).await;
        app.finished(&id).await;
        ids.push(id);
    }
    let failing =
        app.deploy("kmod-d", "1.0.0", "Development", json!({ "metadata": { "simulateUnhealthy": "true" } })).await;
    app.finished(&failing).await;

    let (status, all) = app.get("/api/v1/deployments").await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<_> =
        all.as_array().unwrap().iter().map(|r| r["executionId"].as_str().unwrap().to_string()).collect();
    assert_eq!(listed, [failing.clone(), ids[2].clone(), ids[1].clone(), ids[0].clone()]);

    let (_, page) = app.get("/api/v1/deployments?page=2&pageSize=3").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["executionId"], ids[0].as_str());
    let (_, failed) = app.get("/api/v1/deployments?status=Failed").await;
    assert_eq!(failed.as_array().unwrap().len(), 1);
    assert_eq!(failed[0]["executionId"], failing.as_str());
    let (_, by_module) = app.get("/api/v1/deployments?moduleName=kmod-b&environment=development").await;
    assert_eq!(by_module.as_array().unwrap().len(), 1);
    let (status, reply) = app.get("/api/v1/deployments?pageSize=1000&status=Bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["details"].as_array().unwrap().len(), 2);
}

/// The list names the instance that drives each run, as the run's own view does.
#[actix_web::test]
async fn the_list_shows_the_instance_that_drives_each_run() {
    let app = spawn_app(&[]).await;
    let id = app.deploy("kmod-owned", "1.0.0", "Staging", json!({ "requireApproval": true })).await;
    let owner =
        crate::db::poll::eventually_ok(std::time::Duration::from_secs(20), "an instance drives the run", async || {
            let (_, run) = app.get(&format!("/api/v1/deployments/{id}")).await;
            run["ownerInstance"].as_str().map(str::to_string).ok_or_else(|| format!("{run}"))
        })
        .await;
    let (status, all) = app.get("/api/v1/deployments").await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let listed = all.as_array().unwrap().iter().find(|r| r["executionId"] == id.as_str()).expect("the run is listed");
    assert_eq!(listed["ownerInstance"], owner.as_str(), "{listed}");
}

/// `POST /deployments/{id}/events` reaches the verbs' route (`{verb}` does not
/// parse as `events`), but its path is the events route's: 405 with Allow, not
/// 404. A verb that does not exist still names nothing.
#[actix_web::test]
async fn a_verbs_path_that_is_another_routes_answers_405_with_allow() {
    let app = spawn_app(&[]).await;
    let id = app.deploy("kmod-405", "1.0.0", "Development", json!({})).await;
    let r = app.call(Method::POST, &format!("/api/v1/deployments/{id}/events"), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{}", r.text);
    assert_eq!(r.header("allow"), Some("GET"));
    assert_eq!(r.body["code"], "method_not_allowed");
    let r = app.call(Method::POST, &format!("/api/v1/deployments/{id}/explode"), Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text);
}

/// A run's events come a page at a time, oldest or newest first, with how
/// many there are in all; the pages hold every event once.
#[actix_web::test]
async fn a_run_s_events_are_paged_in_either_order() {
    let app = spawn_app(&[]).await;
    let id = app.deploy("kmod-events", "1.0.0", "QA", json!({})).await;
    app.finished(&id).await;
    let path = format!("/api/v1/deployments/{id}/events");
    let all = app.call(Method::GET, &path, None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.text);
    let kinds = |body: &Value| -> Vec<String> {
        body.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap().to_string()).collect()
    };
    let every = kinds(&all.body);
    let total = every.len();
    assert!(total > 6, "a run to QA has more events than one page here: {every:?}");
    assert_eq!(all.header("X-Total-Count"), Some(total.to_string().as_str()));
    assert_eq!(every.last().map(String::as_str), Some("DeploymentCompleted"), "{every:?}");

    let page = app.call(Method::GET, &format!("{path}?offset=2&limit=3"), None).await;
    assert_eq!(
        (kinds(&page.body), page.header("X-Total-Count")),
        (every[2..5].to_vec(), Some(total.to_string().as_str()))
    );
    let newest = app.call(Method::GET, &format!("{path}?order=desc&limit=2"), None).await;
    let mut expected: Vec<String> = every[total - 2..].to_vec();
    expected.reverse();
    assert_eq!(kinds(&newest.body), expected, "newest first");
    let past = app.call(Method::GET, &format!("{path}?offset={total}"), None).await;
    assert_eq!((past.status, past.body.clone()), (StatusCode::OK, json!([])));

    for bad in ["limit=0", "limit=1001", "offset=-1", "offset=2147483648", "order=sideways", "page=2"] {
        let reply = app.call(Method::GET, &format!("{path}?{bad}"), None).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{bad}: {}", reply.text);
    }
}
