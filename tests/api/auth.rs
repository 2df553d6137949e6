//! Login, tokens and their attacks, lockout, logout, demo users and the users API.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::support::{spawn_anonymous, spawn_app, TestApp, DEPLOYER, VIEWER};

const LOGIN: &str = "/api/v1/authentication/login";
const ME: &str = "/api/v1/authentication/me";

async fn login_reply(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.anonymous().post(LOGIN, &body).await
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn sign(claims: &Value, alg: Algorithm, secret: &str) -> String {
    jsonwebtoken::encode(&Header::new(alg), claims, &EncodingKey::from_secret(secret.as_bytes()).unwrap()).unwrap()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[actix_web::test]
async fn login_answers_a_token_and_the_user_and_me_reads_it_back() {
    let app = spawn_anonymous(&[]).await;
    let (status, reply) = login_reply(&app, json!({ "username": "DEPLOYER", "password": "Deploy123!" })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let token = reply["token"].as_str().unwrap();
    assert!(reply["expiresAt"].as_str().unwrap().ends_with('Z'));
    let user = &reply["user"];
    assert_eq!(user["username"], "deployer");
    assert_eq!(user["email"], "deployer@example.com");
    assert_eq!(user["fullName"], "Deployment Engineer");
    assert_eq!(user["roles"], json!(["Deployer", "Viewer"]));
    assert_eq!(user["tenantId"], hotswap_actors::domain::DEFAULT_TENANT.to_string());
    assert!(user.get("passwordHash").is_none() && !reply.to_string().contains("$2b$"));

    let claims = claims_of(token);
    for claim in ["sub", "username", "email", "roles", "tenant_id", "jti", "iat", "nbf", "exp", "iss", "aud"] {
        assert!(!claims[claim].is_null(), "claim {claim} in {claims}");
    }
    assert_eq!(claims["iss"], "HotSwap");
    assert_eq!(claims["aud"], "HotSwapApi");
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(), 3600);

    let (status, me) = app.with_token(token).get(ME).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["id"], user["id"]);
    assert!(!me["lastLoginAt"].is_null());
}

#[actix_web::test]
async fn blank_missing_unknown_and_mistyped_login_fields_are_400() {
    let app = spawn_anonymous(&[]).await;
    for body in [
        json!({ "username": "", "password": "x" }),
        json!({ "username": "admin", "password": "" }),
        json!({ "username": "   ", "password": "x" }),
        json!({ "password": "x" }),
        json!({}),
    ] {
        let (status, reply) = login_reply(&app, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["message"], "Username and password are required");
    }
    for body in [
        json!({ "username": "admin", "password": "Admin123!", "rememberMe": true }),
        json!({ "username": 7, "password": "Admin123!" }),
        json!({ "username": "admin", "password": ["Admin123!"] }),
        json!(["admin"]),
    ] {
        let (status, reply) = login_reply(&app, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {reply}");
        assert_eq!(reply["error"], "Bad Request");
        assert!(reply["traceId"].is_string());
    }
}

#[actix_web::test]
async fn wrong_credentials_get_one_answer_and_take_as_long_for_unknown_users() {
    // A cost where one check takes some milliseconds, so timing is measurable.
    let app =
        spawn_anonymous(&[("HOTSWAP__AUTH__BCRYPT_COST", "8"), ("HOTSWAP__AUTH__MAX_FAILED_LOGINS", "100")]).await;
    let (s1, wrong_password) = login_reply(&app, json!({ "username": "viewer", "password": "nope" })).await;
    let (s2, unknown_user) = login_reply(&app, json!({ "username": "nobody", "password": "nope" })).await;
    assert_eq!((s1, s2), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(wrong_password["message"], "Invalid username or password");
    assert_eq!(wrong_password["message"], unknown_user["message"]);
    assert_eq!(wrong_password["error"], unknown_user["error"]);

    // The fastest of seven: the intrinsic cost of the check, with the noise of a
    // busy machine (other tests, other builds) filtered out.
    async fn fastest(app: &TestApp, username: &str) -> Duration {
        let mut times = Vec::new();
        for _ in 0..7 {
            let started = Instant::now();
            login_reply(app, json!({ "username": username, "password": "wrong-password" })).await;
            times.push(started.elapsed());
        }
        times.into_iter().min().unwrap_or_default()
    }
    let known = fastest(&app, "viewer").await;
    let unknown = fastest(&app, "no-such-user").await;
    assert!(unknown * 2 >= known, "unknown user answered in {unknown:?}, known in {known:?}");
}

#[actix_web::test]
async fn five_bad_passwords_lock_the_account_until_the_lockout_ends() {
    let app = spawn_anonymous(&[("HOTSWAP__AUTH__LOCKOUT_DURATION", "1500ms")]).await;
    let bad = json!({ "username": "viewer", "password": "not-it" });
    let good = json!({ "username": "viewer", "password": "Viewer123!" });
    // Success resets the count: four bad, one good, four bad is not a lockout.
    for _ in 0..4 {
        assert_eq!(login_reply(&app, bad.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_reply(&app, good.clone()).await.0, StatusCode::OK);
    for _ in 0..4 {
        assert_eq!(login_reply(&app, bad.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_reply(&app, good.clone()).await.0, StatusCode::OK);
    for _ in 0..5 {
        assert_eq!(login_reply(&app, bad.clone()).await.0, StatusCode::UNAUTHORIZED);
    }
    // Locked: the right password gets the same 401 as any failure.
    let (status, reply) = login_reply(&app, good.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply["message"], "Invalid username or password");
    // Other users are not affected.
    assert_eq!(login_reply(&app, json!({ "username": "deployer", "password": "Deploy123!" })).await.0, StatusCode::OK);
    actix_web::rt::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(login_reply(&app, good).await.0, StatusCode::OK, "the lockout has expired");
}

#[actix_web::test]
async fn logout_revokes_only_that_token() {
    let app = spawn_anonymous(&[]).await;
    let first = app.as_user(VIEWER).await;
    let second = app.as_user(VIEWER).await;
    let r = first.call(Method::POST, "/api/v1/authentication/logout", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let (status, reply) = first.get(ME).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(reply["message"].as_str().unwrap().contains("revoked"), "{reply}");
    assert_eq!(first.get("/api/v1/deployments").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(second.get(ME).await.0, StatusCode::OK);
}

#[actix_web::test]
async fn revocation_survives_a_restart_on_postgres() {
    let Some(db) = crate::db::TestDb::create("api::revocation_survives_a_restart_on_postgres").await else {
        return;
    };
    let overrides = [("HOTSWAP__STORE__BACKEND", "postgres"), ("HOTSWAP__STORE__URL", db.url.as_str())];
    let before = spawn_app(&overrides).await;
    let kept = before.login(DEPLOYER).await;
    let r = before.call(Method::POST, "/api/v1/authentication/logout", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let revoked = before.token.clone().unwrap();
    // A second process on the same database, with the same secret.
    let after = spawn_anonymous(&overrides).await;
    assert_eq!(after.with_token(&revoked).get(ME).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(after.with_token(&kept).get(ME).await.0, StatusCode::OK);

    // A process without demo users disables the ones the database still holds.
    let no_demo = [overrides[0], overrides[1], ("HOTSWAP__AUTH__DEMO_USERS", "false")];
    let later = spawn_anonymous(&no_demo).await;
    assert_eq!(
        login_reply(&later, json!({ "username": "admin", "password": "Admin123!" })).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(later.with_token(&kept).get(ME).await.0, StatusCode::UNAUTHORIZED);
}

#[actix_web::test]
async fn every_forged_or_stale_token_is_401() {
    let app = spawn_app(&[]).await;
    let token = app.token.clone().unwrap();
    let secret = app.settings.auth.jwt_secret.expose().to_string();
    let good = claims_of(&token);
    let with = |key: &str, value: Value| {
        let mut c = good.clone();
        c[key] = value;
        c
    };
    let header_none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(good.to_string());
    let mut parts: Vec<&str> = token.split('.').collect();
    let promoted = URL_SAFE_NO_PAD.encode(with("username", json!("root")).to_string());
    parts[1] = &promoted;
    let tampered = parts.join(".");

    let attacks = [
        ("alg none", format!("{header_none}.{body}.")),
        ("alg none with a signature", format!("{header_none}.{body}.{}", token.split('.').nth(2).unwrap())),
        ("HS384 with the right secret", sign(&good, Algorithm::HS384, &secret)),
        ("HS512 with the right secret", sign(&good, Algorithm::HS512, &secret)),
        ("a tampered payload", tampered),
        ("another secret", sign(&good, Algorithm::HS256, "some-other-secret-that-is-long-enough")),
        ("expired past the leeway", sign(&with("exp", json!(now() - 60)), Algorithm::HS256, &secret)),
        ("not valid yet", sign(&with("nbf", json!(now() + 120)), Algorithm::HS256, &secret)),
        ("another issuer", sign(&with("iss", json!("evil")), Algorithm::HS256, &secret)),
        ("another audience", sign(&with("aud", json!("other-api")), Algorithm::HS256, &secret)),
        ("no exp", {
            let mut c = good.clone();
            c.as_object_mut().unwrap().remove("exp");
            sign(&c, Algorithm::HS256, &secret)
        }),
        ("garbage", "not-a-jwt".to_string()),
        ("empty segments", "..".to_string()),
    ];
    for (what, forged) in &attacks {
        let r = app.with_token(forged).call(Method::GET, "/api/v1/deployments", None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {}", r.text);
        assert_eq!(r.body["error"], "Unauthorized", "{what}");
        assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    }
    // Within the 30 s leeway an expired token still works; a re-signed good one too.
    let lenient = sign(&with("exp", json!(now() - 10)), Algorithm::HS256, &secret);
    assert_eq!(app.with_token(&lenient).get(ME).await.0, StatusCode::OK);

    // A revoked token.
    let r = app.call(Method::POST, "/api/v1/authentication/logout", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get(ME).await.0, StatusCode::UNAUTHORIZED);
    // Not a bearer scheme, or no header at all.
    for anonymous in [app.anonymous(), app.with_token("")] {
        let (status, reply) = anonymous.get("/api/v1/deployments").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    }
}

#[actix_web::test]
async fn demo_credentials_only_where_demo_users_are_enabled() {
    let app = spawn_anonymous(&[]).await;
    let (status, reply) = app.get("/api/v1/authentication/demo-credentials").await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<_> = reply["users"].as_array().unwrap().iter().map(|u| u["username"].clone()).collect();
    assert_eq!(names, [json!("admin"), json!("deployer"), json!("viewer")]);
    assert_eq!(reply["users"][0]["password"], "Admin123!");

    let without = spawn_anonymous(&[("HOTSWAP__AUTH__DEMO_USERS", "false")]).await;
    let (status, reply) = without.get("/api/v1/authentication/demo-credentials").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{reply}");
    let (status, _) = login_reply(&without, json!({ "username": "admin", "password": "Admin123!" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no demo users exist");
}

#[actix_web::test]
async fn admins_manage_users_and_changes_apply_at_once() {
    let app = spawn_app(&[]).await;
    let body = json!({ "username": "jdoe", "email": "jdoe@example.com", "fullName": "J. Doe",
        "password": "twelve-chars-at-least", "roles": ["viewer"] });
    let r = app.call(Method::POST, "/api/v1/users", Some(body.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.header("location"), Some(format!("/api/v1/users/{id}").as_str()));
    assert_eq!(r.body["roles"], json!(["Viewer"]));
    assert!(!r.text.contains("twelve-chars") && !r.text.contains("$2b$"));

    // Duplicates, a short password, unknown roles, unknown or mistyped fields.
    assert_eq!(app.post("/api/v1/users", &body).await.0, StatusCode::CONFLICT);
    let mut bad = body.clone();
    bad["username"] = json!("x");
    bad["email"] = json!("not-an-email");
    bad["password"] = json!("short");
    bad["roles"] = json!(["Root"]);
    let (status, reply) = app.post("/api/v1/users", &bad).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(reply["details"].as_array().unwrap().len(), 4, "{reply:#}");
    let mut extra = body.clone();
    extra["isAdmin"] = json!(true);
    assert_eq!(app.post("/api/v1/users", &extra).await.0, StatusCode::BAD_REQUEST);
    let mut mistyped = body.clone();
    mistyped["roles"] = json!("Viewer");
    assert_eq!(app.post("/api/v1/users", &mistyped).await.0, StatusCode::BAD_REQUEST);

    let (_, listed) = app.get("/api/v1/users").await;
    let names: Vec<_> =
        listed.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["admin", "deployer", "jdoe", "viewer"]);
    assert_eq!(app.get(&format!("/api/v1/users/{id}")).await.1["email"], "jdoe@example.com");

    let jdoe = app.as_user(("jdoe", "twelve-chars-at-least")).await;
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::OK);
    assert_eq!(jdoe.post("/api/v1/deployments", &json!({})).await.0, StatusCode::FORBIDDEN);
    // New roles apply to the existing token.
    let (status, reply) = app.put(&format!("/api/v1/users/{id}/roles"), &json!({ "roles": ["Deployer"] })).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(jdoe.post("/api/v1/deployments", &json!({})).await.0, StatusCode::BAD_REQUEST);
    // A reset password works at once; the old one no longer does.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/password"),
            Some(json!({ "password": "a-brand-new-password" })),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_eq!(
        login_reply(&app, json!({ "username": "jdoe", "password": "twelve-chars-at-least" })).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_reply(&app, json!({ "username": "jdoe", "password": "a-brand-new-password" })).await.0,
        StatusCode::OK
    );
    // The token from before the reset no longer works; a new sign-in's does.
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::UNAUTHORIZED);
    let jdoe = app.as_user(("jdoe", "a-brand-new-password")).await;
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::OK);
    // Disabling stops logins and the existing token.
    assert_eq!(app.post(&format!("/api/v1/users/{id}/disable"), &json!(null)).await.0, StatusCode::OK);
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        login_reply(&app, json!({ "username": "jdoe", "password": "a-brand-new-password" })).await.0,
        StatusCode::UNAUTHORIZED
    );
    // Enabling again lets the user sign in, but does not revive the tokens
    // it had when it was disabled.
    assert_eq!(app.post(&format!("/api/v1/users/{id}/enable"), &json!(null)).await.0, StatusCode::OK);
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::UNAUTHORIZED);
    let jdoe = app.as_user(("jdoe", "a-brand-new-password")).await;
    assert_eq!(jdoe.get("/api/v1/deployments").await.0, StatusCode::OK);

    // Admins cannot lock themselves out.
    let (_, me) = app.get(ME).await;
    let own = me["id"].as_str().unwrap();
    assert_eq!(app.post(&format!("/api/v1/users/{own}/disable"), &json!(null)).await.0, StatusCode::CONFLICT);
    assert_eq!(
        app.put(&format!("/api/v1/users/{own}/roles"), &json!({ "roles": ["Viewer"] })).await.0,
        StatusCode::CONFLICT
    );
    // Unknown and malformed ids are 404.
    assert_eq!(app.get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4())).await.0, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/v1/users/not-a-uuid").await.0, StatusCode::NOT_FOUND);
    // Only admins manage users.
    let deployer = app.as_user(DEPLOYER).await;
    assert_eq!(deployer.get("/api/v1/users").await.0, StatusCode::FORBIDDEN);
}

/// The users list comes a page at a time, by username, with its total; a
/// username finds its user in any case; paging outside its bounds is a 400.
/// Walkthrough w2 #11: a user changes the password an Admin chose for it,
/// giving the current one; its other tokens end as after a reset, the
/// answer's token works, and wrong current passwords count as failed logins.
#[actix_web::test]
async fn users_change_their_own_password_with_the_current_one() {
    const CHANGE: &str = "/api/v1/authentication/password";
    let app = spawn_app(&[]).await;
    let user = app.new_user("self-service", &["Viewer"], None).await;
    let other_session = app.as_user(("self-service", "a-long-enough-password")).await;

    let refused = |reply: &Value, field: &str| {
        assert_eq!(reply["code"], "validation_failed", "{reply}");
        assert!(reply["details"].to_string().contains(field), "{reply}");
    };
    let wrong = json!({ "currentPassword": "not-the-password", "newPassword": "my-very-own-password" });
    let (status, reply) = user.post(CHANGE, &wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    refused(&reply, "currentPassword");
    let short = json!({ "currentPassword": "a-long-enough-password", "newPassword": "short" });
    let (status, reply) = user.post(CHANGE, &short).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    refused(&reply, "newPassword must be at least 12 characters");
    let same = json!({ "currentPassword": "a-long-enough-password", "newPassword": "a-long-enough-password" });
    assert_eq!(user.post(CHANGE, &same).await.0, StatusCode::BAD_REQUEST);
    let unknown = json!({ "currentPassword": "a-long-enough-password", "password": "my-very-own-password" });
    assert_eq!(user.post(CHANGE, &unknown).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(app.anonymous().post(CHANGE, &wrong).await.0, StatusCode::UNAUTHORIZED);

    let body = json!({ "currentPassword": "a-long-enough-password", "newPassword": "my-very-own-password" });
    let (status, reply) = user.post(CHANGE, &body).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["user"]["username"], "self-service", "{reply}");
    let renewed = app.with_token(reply["token"].as_str().unwrap());
    assert_eq!(renewed.get(ME).await.0, StatusCode::OK, "the answer's token works");
    assert_eq!(user.get(ME).await.0, StatusCode::UNAUTHORIZED, "the token used ends, as after a reset");
    assert_eq!(other_session.get(ME).await.0, StatusCode::UNAUTHORIZED, "and every other one");
    let (status, _) =
        login_reply(&app, json!({ "username": "self-service", "password": "a-long-enough-password" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
    app.as_user(("self-service", "my-very-own-password")).await;
    let (_, entries) = app.get("/api/v1/auditlogs?eventType=UserPasswordChanged&limit=10").await;
    assert!(entries.to_string().contains("self-service"), "{entries}");

    // Wrong current passwords lock the account for the guesser's address, as at login.
    for _ in 0..5 {
        let (status, _) =
            renewed.post(CHANGE, &json!({ "currentPassword": "a-guess", "newPassword": "yet-another-password" })).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    let right = json!({ "currentPassword": "my-very-own-password", "newPassword": "yet-another-password" });
    assert_eq!(renewed.post(CHANGE, &right).await.0, StatusCode::BAD_REQUEST, "locked for this address");
    let (status, _) =
        login_reply(&app, json!({ "username": "self-service", "password": "my-very-own-password" })).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "and so is signing in from it");
}

#[actix_web::test]
async fn users_are_listed_a_page_at_a_time_and_found_by_name() {
    let app = spawn_app(&[]).await;
    for name in ["op-c", "op-a", "op-b"] {
        let body = json!({ "username": name, "email": format!("{name}@example.com"), "password": "long enough pass 1", "roles": ["Viewer"] });
        assert_eq!(app.post("/api/v1/users", &body).await.0, StatusCode::CREATED);
    }
    // admin, deployer, op-a, op-b, op-c, viewer.
    let names = |reply: &crate::support::Reply| -> Vec<String> {
        reply.body.as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect()
    };
    let first = app.call(Method::GET, "/api/v1/users?page=1&pageSize=4", None).await;
    assert_eq!(names(&first), ["admin", "deployer", "op-a", "op-b"]);
    assert_eq!((first.header("x-total-count"), first.header("x-page-size")), (Some("6"), Some("4")));
    let second = app.call(Method::GET, "/api/v1/users?page=2&pageSize=4", None).await;
    assert_eq!(names(&second), ["op-c", "viewer"]);
    let past = app.call(Method::GET, "/api/v1/users?page=3&pageSize=4", None).await;
    assert_eq!((past.status, names(&past).len(), past.header("x-total-count")), (StatusCode::OK, 0, Some("6")));

    let found = app.call(Method::GET, "/api/v1/users?username=OP-B", None).await;
    assert_eq!((names(&found), found.header("x-total-count")), (vec!["op-b".to_string()], Some("1")));
    let none = app.call(Method::GET, "/api/v1/users?username=nobody", None).await;
    assert_eq!((names(&none).len(), none.header("x-total-count")), (0, Some("0")));

    // An empty username (walkthrough w2 #13) is refused rather than matching nobody.
    for bad in ["page=0", "pageSize=0", "pageSize=1001", "page=x", "sort=name", "username="] {
        let (status, reply) = app.get(&format!("/api/v1/users?{bad}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {reply}");
        assert!(reply["traceId"].is_string(), "{bad}: {reply}");
    }
}

#[actix_web::test]
async fn the_command_line_bootstraps_a_user_who_can_log_in() {
    let Some(db) = crate::db::TestDb::create("api::the_command_line_bootstraps_a_user_who_can_log_in").await else {
        return;
    };
    let url = db.url.clone();
    let run_with = move |password: &'static str, username: &'static str, extra: &'static [&'static str]| {
        let url = url.clone();
        actix_web::web::block(move || {
            use std::io::Write;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hotswap"))
                .args(["user", "create", "--username", username, "--email", &format!("{username}@example.com")])
                .args(["--role", "Admin,Viewer", "--full-name", "Ops Person"])
                .args(extra)
                .env("HOTSWAP_ENV", "test")
                .env("HOTSWAP_CONFIG_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
                .env("HOTSWAP__STORE__BACKEND", "postgres")
                .env("HOTSWAP__STORE__URL", &url)
                // The user's creation is logged at info: that line belongs on stderr.
                .env("HOTSWAP__LOGGING__LEVEL", "info")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("hotswap runs");
            child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
            child.wait_with_output().unwrap()
        })
    };
    let run = |password: &'static str, username: &'static str| run_with(password, username, &[]);
    // Input the server refuses is a usage or input error (docs/CLI.md): exit code 2.
    let short = run("too-short", "ops-person").await.unwrap();
    assert_eq!(short.status.code(), Some(2), "{short:?}");
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"), "{short:?}");
    let root = run_with("a-bootstrap-password", "ops-root", &["--role", "Root"]).await.unwrap();
    assert_eq!(root.status.code(), Some(2), "{root:?}");
    let made = run("a-bootstrap-password", "ops-person").await.unwrap();
    assert!(made.status.success(), "{made:?}");
    // Standard output holds the result alone: log lines go to stderr.
    let printed = String::from_utf8_lossy(&made.stdout);
    assert_eq!(printed.lines().count(), 1, "{made:?}");
    assert!(printed.starts_with("created user ops-person"), "{made:?}");
    let taken = run("a-bootstrap-password", "ops-person").await.unwrap();
    assert_eq!(taken.status.code(), Some(2), "a taken username is a conflict (409): {taken:?}");
    // The password never shows in what the command prints.
    assert!(!String::from_utf8_lossy(&made.stdout).contains("a-bootstrap-password"));
    // The tenant is the global --tenant, by id or subdomain.
    let system = &["--tenant", "00000000-0000-0000-0000-000000000001"];
    let by_id = run_with("a-bootstrap-password", "ops-by-id", system).await.unwrap();
    assert!(by_id.status.success(), "{by_id:?}");
    assert!(String::from_utf8_lossy(&by_id.stdout).contains("in tenant 00000000-0000-0000-0000-000000000001"));
    let unknown = run_with("a-bootstrap-password", "ops-nowhere", &["--tenant", "no-such-co"]).await.unwrap();
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no tenant has the id or subdomain 'no-such-co'"));

    let overrides = [
        ("HOTSWAP__STORE__BACKEND", "postgres"),
        ("HOTSWAP__STORE__URL", db.url.as_str()),
        ("HOTSWAP__AUTH__DEMO_USERS", "false"),
    ];
    let app = spawn_anonymous(&overrides).await;
    let ops = app.as_user(("ops-person", "a-bootstrap-password")).await;
    let (_, me) = ops.get(ME).await;
    assert_eq!(me["roles"], json!(["Admin", "Viewer"]));
    assert_eq!(me["fullName"], "Ops Person");
    assert_eq!(ops.get("/api/v1/users").await.0, StatusCode::OK);
}
