//! Transport and abuse: security headers, TLS, body limits, strict bodies,
//! rate limits, CORS and the OpenAPI document.

use crate::db::requests::deployment;
use std::process::Command;

use awc::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_anonymous, spawn_app, Reply, TestApp, DEPLOYER};

fn assert_security_headers(r: &Reply, what: &str) {
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{what}");
    assert_eq!(r.header("x-frame-options"), Some("DENY"), "{what}");
    assert_eq!(r.header("referrer-policy"), Some("no-referrer"), "{what}");
    assert!(r.header("permissions-policy").is_some_and(|p| p.contains("camera=()")), "{what}");
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{what}: {csp}");
    assert!(r.header("server").is_none(), "{what}: no Server header");
    assert!(r.header("x-trace-id").is_some(), "{what}");
}

#[actix_web::test]
async fn every_response_carries_the_security_headers_and_no_hsts_over_plain_http() {
    let app = spawn_app(&[]).await;
    let big = vec![b'x'; 2 << 20];
    let replies = [
        ("health", app.anonymous().call(Method::GET, "/health", None).await),
        ("200", app.call(Method::GET, "/api/v1/clusters", None).await),
        ("401", app.anonymous().call(Method::GET, "/api/v1/clusters", None).await),
        ("403", app.as_user(("viewer", "Viewer123!")).await.call(Method::GET, "/api/v1/users", None).await),
        ("404", app.call(Method::GET, "/api/v1/nowhere", None).await),
        ("413", app.call_raw(Method::POST, "/api/v1/deployments", "application/json", big).await),
        ("login 400", app.anonymous().call(Method::POST, "/api/v1/authentication/login", Some(json!({}))).await),
    ];
    for (what, r) in &replies {
        assert_security_headers(r, what);
        assert!(r.header("strict-transport-security").is_none(), "{what}: no HSTS over plain HTTP");
    }
    // HSTS when a trusted proxy declares TLS, and only then.
    let behind = spawn_app(&[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let r = behind.anonymous().call_with(Method::GET, "/health", &[("x-forwarded-proto", "https")]).await;
    assert!(r.header("strict-transport-security").is_some_and(|h| h.starts_with("max-age=")), "{:?}", r.headers);
    let r = app.anonymous().call_with(Method::GET, "/health", &[("x-forwarded-proto", "https")]).await;
    assert!(r.header("strict-transport-security").is_none(), "an untrusted peer declares nothing");
}

#[actix_web::test]
async fn oversize_and_strict_bodies_get_json_4xx() {
    let app = spawn_app(&[]).await;
    let big = format!("{{\"username\": \"{}\", \"password\": \"x\"}}", "y".repeat(2 << 20));
    let r = app
        .anonymous()
        .call_raw(Method::POST, "/api/v1/authentication/login", "application/json", big.into_bytes())
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);
    assert_eq!(r.body["error"], "Payload Too Large");
    assert!(r.body["traceId"].is_string());
    let big = format!("{{\"roles\": [\"{}\"]}}", "y".repeat(2 << 20));
    let r = app
        .call_raw(
            Method::PUT,
            &format!("/api/v1/users/{}/roles", uuid::Uuid::new_v4()),
            "application/json",
            big.into_bytes(),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text);

    let deploy = deployment("kmod-a", "1.0.0", "QA");
    let strict: [(&str, Value); 4] = [
        ("/api/v1/deployments", {
            let mut d = deploy.clone();
            d["priority"] = json!("high");
            d
        }),
        ("/api/v1/deployments", {
            let mut d = deploy.clone();
            d["requireApproval"] = json!("yes");
            d
        }),
        ("/api/v1/deployments", {
            let mut d = deploy.clone();
            d["canarySteps"] = json!([-5]);
            d
        }),
        ("/api/v1/deployments", {
            let mut d = deploy;
            d["metadata"] = json!({ "k": 5 });
            d
        }),
    ];
    for (path, body) in strict {
        let r = app.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.text);
        assert_eq!(r.body["error"], "Bad Request");
    }
    let r = app
        .call(Method::PUT, &format!("/api/v1/users/{}/roles", uuid::Uuid::new_v4()), Some(json!({ "roles": [1] })))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.call(Method::GET, "/api/v1/deployments?page=abc", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    let r = app.call(Method::GET, "/api/v1/deployments?unknown=1", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
}

#[actix_web::test]
async fn rate_limits_per_group_per_user_with_headers_and_429() {
    let app = spawn_app(&[
        ("HOTSWAP__RATE_LIMIT__ENABLED", "true"),
        ("HOTSWAP__RATE_LIMIT__DEPLOYMENTS", "3"),
        ("HOTSWAP__RATE_LIMIT__CLUSTERS", "5"),
        ("HOTSWAP__RATE_LIMIT__GLOBAL", "100"),
    ])
    .await;
    // The deployments group counts changes: creates here (refused by
    // validation, but asked for all the same).
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = app.call(Method::POST, "/api/v1/deployments", Some(json!({}))).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
        assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
        let reset: u64 = r.header("x-ratelimit-reset").unwrap().parse().unwrap();
        assert!(reset >= chrono::Utc::now().timestamp() as u64, "reset is a unix time");
        remaining.push(r.header("x-ratelimit-remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = app.call(Method::POST, "/api/v1/deployments", Some(json!({}))).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.body["error"], "Rate limit exceeded");
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(r.body["retryAfter"], retry);
    assert!(r.body["traceId"].is_string());
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_security_headers(&r, "429");

    // Reading runs is not a change: it counts in the global window, so a
    // client following a run keeps reading it.
    for _ in 0..5 {
        let r = app.call(Method::GET, "/api/v1/deployments", None).await;
        assert_eq!((r.status, r.header("x-ratelimit-limit")), (StatusCode::OK, Some("100")), "{}", r.text);
    }
    // Other groups have windows of their own; so does every other user.
    let r = app.call(Method::GET, "/api/v1/clusters", None).await;
    assert_eq!((r.status, r.header("x-ratelimit-limit")), (StatusCode::OK, Some("5")));
    let r = app.call(Method::GET, "/api/v1/authentication/me", None).await;
    assert_eq!((r.status, r.header("x-ratelimit-limit")), (StatusCode::OK, Some("100")));
    let deployer = app.as_user(DEPLOYER).await;
    assert_eq!(deployer.post("/api/v1/deployments", &json!({})).await.0, StatusCode::BAD_REQUEST);
    // Health is never limited.
    let r = app.anonymous().call(Method::GET, "/health", None).await;
    assert!(r.header("x-ratelimit-limit").is_none());
}

#[actix_web::test]
async fn login_is_limited_per_address_behind_trusted_proxies_only() {
    let app = spawn_anonymous(&[
        ("HOTSWAP__RATE_LIMIT__ENABLED", "true"),
        ("HOTSWAP__RATE_LIMIT__LOGIN", "2"),
        ("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let attempt = |from: &'static str, username: &'static str| {
        let app = app.clone();
        async move {
            app.call_with_body(
                Method::POST,
                "/api/v1/authentication/login",
                &[("x-forwarded-for", from)],
                json!({ "username": username, "password": "wrong" }),
            )
            .await
            .status
        }
    };
    // Per address: a third attempt from 198.51.100.1 is refused, whatever the name.
    assert_eq!(attempt("198.51.100.1", "alice").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.1", "bob").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.1", "carol").await, StatusCode::TOO_MANY_REQUESTS);
    // Per (username, address): a name tried from other addresses is not refused
    // for it, so that strangers cannot keep its owner out.
    assert_eq!(attempt("198.51.100.2", "alice").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.3", "ALICE").await, StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.4", "dave").await, StatusCode::UNAUTHORIZED);

    // Without trusted proxies X-Forwarded-For is ignored: every "address" is the peer's.
    let plain = spawn_anonymous(&[("HOTSWAP__RATE_LIMIT__ENABLED", "true"), ("HOTSWAP__RATE_LIMIT__LOGIN", "2")]).await;
    let mut statuses = Vec::new();
    for (i, from) in ["203.0.113.1", "203.0.113.2", "203.0.113.3"].into_iter().enumerate() {
        let r = plain
            .call_with_body(
                Method::POST,
                "/api/v1/authentication/login",
                &[("x-forwarded-for", from)],
                json!({ "username": format!("user{i}"), "password": "wrong" }),
            )
            .await;
        statuses.push(r.status);
    }
    assert_eq!(statuses, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
}

#[actix_web::test]
async fn cors_allows_only_configured_origins() {
    let app = spawn_anonymous(&[("HOTSWAP__CORS__ALLOWED_ORIGINS", "https://ops.example.com")]).await;
    let preflight = |origin: &'static str| {
        let app = app.clone();
        async move {
            app.call_with(
                Method::OPTIONS,
                "/api/v1/deployments",
                &[("origin", origin), ("access-control-request-method", "POST")],
            )
            .await
        }
    };
    let ok = preflight("https://ops.example.com").await;
    assert_eq!(ok.header("access-control-allow-origin"), Some("https://ops.example.com"), "{:?}", ok.headers);
    let refused = preflight("https://evil.example.com").await;
    assert!(refused.header("access-control-allow-origin").is_none(), "{:?}", refused.headers);
    // The refusal is an error like any other: JSON with a code and a trace id.
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.text);
    assert_eq!(refused.body["code"], "bad_request", "{}", refused.text);
    assert!(refused.body["message"].as_str().unwrap().contains("Origin is not allowed"), "{}", refused.text);
    assert!(refused.body["traceId"].is_string(), "{}", refused.text);
    // Nothing is allowed by default.
    let default = spawn_anonymous(&[]).await;
    let r = default
        .call_with(
            Method::OPTIONS,
            "/api/v1/deployments",
            &[("origin", "http://localhost:3000"), ("access-control-request-method", "GET")],
        )
        .await;
    assert!(r.header("access-control-allow-origin").is_none(), "{:?}", r.headers);
}

#[actix_web::test]
async fn the_openapi_document_covers_every_route_with_the_bearer_scheme() {
    let app = spawn_anonymous(&[]).await;
    let (status, doc) = app.get("/api-docs/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/health/ready",
        "/api/v1/authentication/login",
        "/api/v1/authentication/me",
        "/api/v1/authentication/logout",
        "/api/v1/authentication/password",
        "/api/v1/authentication/demo-credentials",
        "/api/v1/users",
        "/api/v1/users/{id}",
        "/api/v1/users/{id}/disable",
        "/api/v1/users/{id}/enable",
        "/api/v1/users/{id}/roles",
        "/api/v1/users/{id}/password",
        "/api/v1/deployments",
        "/api/v1/deployments/{id}",
        "/api/v1/deployments/{id}/events",
        "/api/v1/deployments/{id}/{verb}",
        "/api/v1/deployments/{id}/rollback",
        "/api/v1/clusters",
        "/api/v1/clusters/{environment}",
        "/api/v1/clusters/{environment}/metrics",
        "/api/v1/approvals/pending",
        "/api/v1/approvals/deployments/{id}",
        "/api/v1/approvals/deployments/{id}/approve",
        "/api/v1/approvals/deployments/{id}/reject",
        "/api/tenants",
        "/api/tenants/{id}",
        "/api/tenants/{id}/suspend",
        "/api/tenants/{id}/activate",
        "/api/tenants/{id}/subscription",
        "/api/tenants/{id}/usage",
        "/api/v1/analytics/usage",
        "/api/v1/modules",
        "/api/v1/modules/{name}",
        "/api/v1/modules/{name}/{version}",
        "/api/v1/modules/{name}/{version}/artifact",
        "/api/v1/signing-keys",
        "/api/v1/signing-keys/{id}/revoke",
        "/api/v1/agents/{nodeId}",
        "/api/v1/admin/actors",
        "/api/v1/admin/actors/{id}",
        "/api/v1/admin/actors/{id}/restart",
        "/api/v1/admin/actors/{id}/stop",
        "/api/v1/admin/actors/{id}/crash",
        "/api/v1/admin/supervision",
    ] {
        assert!(paths.contains_key(path), "{path} is documented");
    }
    assert_eq!(paths.len(), 102);
    // The four verbs share one operation whose path parameter names them.
    let steer = &doc["paths"]["/api/v1/deployments/{id}/{verb}"]["post"]["parameters"];
    let verb = steer.as_array().unwrap().iter().find(|p| p["name"] == "verb").expect("the verb parameter");
    assert_eq!(verb["schema"]["enum"], json!(["pause", "resume", "promote", "abort"]));
    // Public operations say so; the others need the bearer token and document 401.
    assert_eq!(doc["paths"]["/api/v1/authentication/login"]["post"]["security"], json!([{}]));
    assert_eq!(doc["security"], json!([{ "bearer": [] }]));
    assert!(doc["paths"]["/api/v1/deployments/{id}"]["get"]["responses"]["401"].is_object());
    assert!(doc["paths"]["/api/v1/users"]["post"]["responses"]["403"].is_object());
    // Swagger UI only where configured (development).
    let dev = spawn_anonymous(&[("HOTSWAP__API_DOCS__SWAGGER_UI", "true")]).await;
    let r = dev.call(Method::GET, "/swagger-ui/index.html", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-security-policy").unwrap().contains("script-src 'self'"));
    assert_eq!(app.get("/swagger-ui/index.html").await.0, StatusCode::NOT_FOUND);
    // Without docs it is not served.
    let off = spawn_anonymous(&[("HOTSWAP__API_DOCS__ENABLED", "false")]).await;
    assert_eq!(off.get("/api-docs/openapi.json").await.0, StatusCode::NOT_FOUND);
}

/// TLS from configured files: HTTPS answers, with HSTS.
#[actix_web::test]
async fn tls_serves_https_with_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let app = spawn_anonymous(&[
        ("HOTSWAP__SERVER__TLS__CERT_FILE", cert.to_str().unwrap()),
        ("HOTSWAP__SERVER__TLS__KEY_FILE", key.to_str().unwrap()),
    ])
    .await;
    let url = app.base.replace("http://", "https://") + "/health";
    let addr = app.base.trim_start_matches("http://").to_string();
    let port = addr.rsplit(':').next().unwrap().to_string();
    // curl runs blocking; keep the server's runtime free to answer.
    let out = actix_web::web::block(move || {
        Command::new("curl")
            .args(["-s", "-i", "--cacert"])
            .arg(&cert)
            .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
            .arg(url.replace("127.0.0.1", "localhost"))
            .output()
    })
    .await
    .unwrap()
    .expect("curl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(
        text.starts_with("http/2 200") || text.starts_with("http/1.1 200"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("strict-transport-security: max-age="), "{text}");
    assert!(text.contains("x-content-type-options: nosniff"), "{text}");
    // Broken files stop start-up with a message naming the setting.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut vars = vec![
        ("HOTSWAP__SERVER__TLS__CERT_FILE".to_string(), "/nonexistent/cert.pem".to_string()),
        ("HOTSWAP__SERVER__TLS__KEY_FILE".to_string(), "/nonexistent/key.pem".to_string()),
    ];
    vars.push(("HOTSWAP__SERVER__BIND".into(), "127.0.0.1:0".into()));
    let settings = hotswap::config::Settings::load_from(&dir, "test", vars).unwrap();
    let err = hotswap::startup::Application::build(settings).await.err().expect("refused");
    assert!(err.to_string().contains("server.tls"), "{err}");
}

impl TestApp {
    /// A request with extra headers and no body.
    pub async fn call_with(&self, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.request_with(method, path, headers, None).await
    }

    /// A request with extra headers and a JSON body.
    pub async fn call_with_body(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Value) -> Reply {
        self.request_with(method, path, headers, Some(body)).await
    }
}

/// The guard another layer wraps /metrics with: a token with `metrics.role`.
#[actix_web::test]
async fn the_metrics_guard_needs_a_token_with_the_configured_role() {
    use std::sync::Arc;

    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};
    use hotswap::auth::password::Password;
    use hotswap::auth::{authenticate, metrics_guard, AuthState, RouteAccess};
    use hotswap::web::path_template::PathTemplate;

    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let vars = [("HOTSWAP__METRICS__ROLE".to_string(), "Admin".to_string())];
    let settings = hotswap::config::Settings::load_from(&dir, "test", vars).unwrap();
    let store: hotswap_actors::store::SharedStore = Arc::new(hotswap_actors::store::MemoryStore::new());
    let auth = AuthState::new(&settings.auth, store).await.unwrap();
    auth.seed_demo_users().await.unwrap();
    let now = chrono::Utc::now();
    let viewer = auth.login("viewer", &Password::new("Viewer123!"), now, &Default::default()).await.unwrap().1.token;
    let admin = auth.login("admin", &Password::new("Admin123!"), now, &Default::default()).await.unwrap().1.token;
    let app = test::init_service(
        App::new()
            .app_data(web::Data::new(auth))
            .app_data(web::Data::new(RouteAccess::new(
                vec![(actix_web::http::Method::GET, PathTemplate::new("/health"))],
                vec![],
            )))
            .route("/metrics", web::get().to(|| async { HttpResponse::Ok().body("# metrics") }))
            .route("/health", web::get().to(|| async { HttpResponse::Ok().body("Healthy") }))
            .wrap(metrics_guard(&settings.metrics))
            .wrap(from_fn(authenticate)),
    )
    .await;
    let call = |path: &'static str, token: Option<String>| {
        let mut req = test::TestRequest::get().uri(path);
        if let Some(t) = token {
            req = req.insert_header(("authorization", format!("Bearer {t}")));
        }
        req.to_request()
    };
    assert_eq!(test::call_service(&app, call("/metrics", None)).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(test::call_service(&app, call("/metrics", Some(viewer))).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(test::call_service(&app, call("/metrics", Some(admin))).await.status(), StatusCode::OK);
    // Other paths are not its business.
    assert_eq!(test::call_service(&app, call("/health", None)).await.status(), StatusCode::OK);
}

#[actix_web::test]
async fn hostile_metrics_queries_get_400_and_the_server_keeps_serving() {
    let app = spawn_app(&[]).await;
    for query in [
        // Defaulting `from` to an hour before the first representable instant overflowed.
        "to=-262143-01-01T00:00:00Z",
        // A fractional interval of 2^64 ms truncated to a zero bucket width.
        "interval=18446744073709551.616s",
        "interval=0s",
        "interval=1000h",
        "from=-262143-01-01T00:00:00Z&to=%2B262142-12-31T23:59:59Z&interval=1s",
    ] {
        let r = app.call(Method::GET, &format!("/api/v1/clusters/QA/metrics?{query}"), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.text);
        assert!(r.body["code"].is_string() && r.body["traceId"].is_string(), "{query}: {}", r.text);
    }
    let (status, _) = app.get("/api/v1/clusters/QA/metrics?interval=999h").await;
    assert_eq!(status, StatusCode::OK);
}

/// The document states the server's one email rule (schemathesis found a
/// contact email the document refused and the server stored).
#[actix_web::test]
async fn every_email_field_in_the_document_states_the_servers_rule() {
    let app = spawn_anonymous(&[]).await;
    let (_, doc) = app.get("/api-docs/openapi.json").await;
    let mut found = Vec::new();
    for (schema_name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        let Some(properties) = schema["properties"].as_object() else { continue };
        for (field, property) in properties {
            if field.to_ascii_lowercase().ends_with("email") {
                if let Some(pattern) = property["pattern"].as_str() {
                    assert_eq!(pattern, hotswap_actors::domain::EMAIL_PATTERN, "{schema_name}.{field}");
                    assert_eq!(property["maxLength"], 254, "{schema_name}.{field}");
                    found.push(format!("{schema_name}.{field}"));
                }
            }
        }
    }
    for expected in ["CreateTenantBody.contactEmail", "UpdateTenantBody.contactEmail", "CreateUserBody.email"] {
        assert!(found.iter().any(|f| f == expected), "{expected} not found in {found:?}");
    }
    assert!(found.iter().any(|f| f.ends_with(".requesterEmail")), "{found:?}");
}
