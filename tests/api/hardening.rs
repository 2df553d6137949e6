//! The findings of the security review (issue 14) that have no older file of
//! their own: each test fails on the code before its fix.

use std::sync::Arc;
use std::time::Duration;

use awc::http::StatusCode;
use serde_json::json;

use hotswap::auth::jwt::TokenError;
use hotswap::auth::password::Password;
use hotswap::auth::AuthState;

use crate::support::spawn_app;

const ME: &str = "/api/v1/authentication/me";

async fn auth_state(vars: &[(&str, &str)]) -> AuthState {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config");
    let vars = vars.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    let settings = hotswap::config::Settings::load_from(&dir, "test", vars).unwrap();
    let store: hotswap_actors::store::SharedStore = Arc::new(hotswap_actors::store::MemoryStore::new());
    let auth = AuthState::new(&settings.auth, store).await.unwrap();
    auth.seed_demo_users().await.unwrap();
    auth
}

/// Finding 9: a password reset refuses every token issued before it.
#[actix_web::test]
async fn a_password_reset_revokes_the_users_tokens() {
    let app = spawn_app(&[]).await;
    let ops = app.new_user("reset-me", &["Deployer"], None).await;
    assert_eq!(ops.get(ME).await.0, StatusCode::OK);
    let id = ops.get(ME).await.1["id"].as_str().unwrap().to_string();
    let (status, reply) =
        app.post(&format!("/api/v1/users/{id}/password"), &json!({ "password": "a-brand-new-password" })).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{reply}");
    let (status, reply) = ops.get(ME).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{reply}");
    // The new password gives a token that works.
    let fresh = app.as_user(("reset-me", "a-brand-new-password")).await;
    assert_eq!(fresh.get(ME).await.0, StatusCode::OK);
}

/// Finding 9: the sweep keeps a revocation while verification would still
/// accept its token (until `exp` plus the leeway).
#[actix_web::test]
async fn the_revocation_sweep_waits_out_the_leeway() {
    let auth = auth_state(&[]).await;
    let now = chrono::Utc::now();
    let (user, issued) = auth.login("viewer", &Password::new("Viewer123!"), now, &Default::default()).await.unwrap();
    // A token that expired 10 s ago: inside the 30 s leeway, so still good.
    let mut claims = issued.claims.clone();
    claims.exp = now.timestamp() - 10;
    let token = auth.tokens.sign(&claims).unwrap();
    let principal = auth.authenticate(&token).await.unwrap();
    assert_eq!(principal.user_id, user.id);
    auth.logout(&principal, &Default::default()).await.unwrap();
    assert_eq!(auth.authenticate(&token).await.unwrap_err(), TokenError::Revoked);
    auth.purge_revocations(chrono::Utc::now()).await.unwrap();
    assert_eq!(auth.authenticate(&token).await.unwrap_err(), TokenError::Revoked, "still revoked after the sweep");
    // Past the leeway the revocation goes, and the token is refused as expired anyway.
    let later = chrono::Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(auth.purge_revocations(later).await.unwrap(), 1);
}

/// Finding 5: a run's events show non-Admins who acted, not from where.
#[actix_web::test]
async fn run_events_show_non_admins_only_the_actors_name() {
    let app = spawn_app(&[]).await;
    let deployer = app.as_user(crate::support::DEPLOYER).await;
    let id = deployer.deploy("kmod-actor", "1.0.0", "Development", json!({})).await;
    deployer.finished(&id).await;
    let (status, reply) = deployer.post(&format!("/api/v1/deployments/{id}/rollback"), &json!({})).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let path = format!("/api/v1/deployments/{id}/events");
    let actors = |events: &serde_json::Value| -> Vec<serde_json::Value> {
        events.as_array().unwrap().iter().filter_map(|e| e["data"].get("actor").cloned()).collect()
    };
    let seen = crate::db::poll::eventually_ok(Duration::from_secs(10), "the rollback's event", async || {
        let (_, events) = app.get(&path).await;
        let found = actors(&events);
        if found.is_empty() {
            Err(events.to_string())
        } else {
            Ok(found)
        }
    })
    .await;
    // The Admin sees the whole actor, as the audit trail holds it.
    assert!(seen.iter().all(|a| a["sourceAddress"].is_string() && a["id"].is_string()), "{seen:?}");
    for who in [crate::support::VIEWER, crate::support::DEPLOYER] {
        let (status, events) = app.as_user(who).await.get(&path).await;
        assert_eq!(status, StatusCode::OK);
        let shown = actors(&events);
        assert!(!shown.is_empty());
        for actor in shown {
            assert_eq!(actor, json!({ "name": "deployer" }), "{who:?}");
        }
    }
}

/// Finding 11: the metrics role guard follows `metrics.path`.
#[actix_web::test]
async fn the_metrics_role_guard_follows_the_configured_path() {
    let app = spawn_app(&[("HOTSWAP__METRICS__PATH", "/internal/metrics"), ("HOTSWAP__METRICS__ROLE", "Admin")]).await;
    let viewer = app.as_user(crate::support::VIEWER).await;
    let r = viewer.call(awc::http::Method::GET, "/internal/metrics", None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
    let r = app.call(awc::http::Method::GET, "/internal/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.text.contains("hotswap_"), "the Admin reads the metrics");
}

/// Finding 11: a stranger's wrong guesses lock the account for the
/// stranger's address, not for its owner elsewhere; the lockout is audited.
#[actix_web::test]
async fn guessing_locks_the_guessers_address_not_the_owner() {
    let app = spawn_app(&[("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1")]).await;
    let login = |from: &'static str, password: &'static str| {
        let app = app.anonymous();
        async move {
            app.call_with_body(
                awc::http::Method::POST,
                "/api/v1/authentication/login",
                &[("x-forwarded-for", from)],
                json!({ "username": "viewer", "password": password }),
            )
            .await
            .status
        }
    };
    for _ in 0..5 {
        assert_eq!(login("203.0.113.66", "a-wrong-guess").await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login("203.0.113.66", "Viewer123!").await, StatusCode::UNAUTHORIZED, "locked for the guesser");
    assert_eq!(login("198.51.100.10", "Viewer123!").await, StatusCode::OK, "the owner still signs in");
    let (_, entries) = app.get("/api/v1/auditlogs?eventType=AccountLocked&limit=100").await;
    let text = entries.to_string();
    assert!(text.contains("203.0.113.66") && text.contains("\"scope\":\"address\""), "{text}");
}

/// A stranger's wrong guesses, from other addresses, do not rate-limit the
/// owner's sign-in: the login window per username is kept per (username,
/// address), as the lockout is.
#[actix_web::test]
async fn strangers_guesses_do_not_rate_limit_the_owners_sign_in() {
    let app = spawn_app(&[
        ("HOTSWAP__RATE_LIMIT__ENABLED", "true"),
        ("HOTSWAP__RATE_LIMIT__LOGIN", "3"),
        ("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let login = |from: &'static str, password: &'static str| {
        let app = app.anonymous();
        async move {
            let r = app
                .call_with_body(
                    awc::http::Method::POST,
                    "/api/v1/authentication/login",
                    &[("x-forwarded-for", from)],
                    json!({ "username": "viewer", "password": password }),
                )
                .await;
            (r.status, r.text)
        }
    };
    // One guess from each of three addresses, then one more from the first.
    for from in ["203.0.113.71", "203.0.113.72", "203.0.113.73"] {
        assert_eq!(login(from, "a-wrong-guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, text) = login("198.51.100.11", "Viewer123!").await;
    assert_eq!(status, StatusCode::OK, "the owner signs in from its own address: {text}");
    // The guessers' own windows still hold: three tries from one address for one name.
    assert_eq!(login("203.0.113.71", "a-wrong-guess").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("203.0.113.71", "a-wrong-guess").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("203.0.113.71", "a-wrong-guess").await.0, StatusCode::TOO_MANY_REQUESTS);
}

/// Finding 10: a signature binds name, version and digest; an old signed
/// artifact cannot come back under a new version number.
#[actix_web::test]
async fn signatures_bind_the_module_name_and_version() {
    use crate::registry_support::{descriptor, trust, unique_artifact, upload, KeyPair, STRICT};
    use hotswap::registry::statement::statement;

    let app = spawn_app(&[STRICT[0], STRICT[1], ("HOTSWAP__SECURITY__ACCEPT_ARTIFACT_SIGNATURES", "false")]).await;
    let key = KeyPair::generate();
    trust(&app, "release", &key).await;
    let artifact = unique_artifact("kmod-bound");
    let digest = hotswap::crypto::sha256_hex(&artifact);
    let signed = key.sign(statement("kmod-bound", "1.0.0", &digest, &Default::default()).as_bytes());
    let (status, reply) = upload(&app, &descriptor("kmod-bound", "1.0.0"), &artifact, Some(&signed)).await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    // The same bytes and signature as a newer version: refused.
    let (status, reply) = upload(&app, &descriptor("kmod-bound", "9.9.9"), &artifact, Some(&signed)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    // A signature of the bytes alone is refused here (accepted only where the setting allows).
    let other = unique_artifact("kmod-bare");
    let (status, reply) = upload(&app, &descriptor("kmod-bare", "1.0.0"), &other, Some(&key.sign(&other))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    // The deployment's Security Scan checks the statement again.
    let run = app.deploy("kmod-bound", "1.0.0", "Development", json!({})).await;
    assert_eq!(app.finished(&run).await["status"], "Succeeded");
}

/// Finding 10: going back to a lower version needs `allowDowngrade`, audited.
#[actix_web::test]
async fn a_downgrade_needs_allow_downgrade_and_is_audited() {
    let app = spawn_app(&[]).await;
    app.deploy_ok("kmod-down", "2.0.0", "Development").await;
    let older = crate::db::requests::deployment("kmod-down", "1.9.9", "Development");
    let (status, reply) = app.post("/api/v1/deployments", &older).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("allowDowngrade"), "{reply}");
    // The dry run says so too, before anything else it checks.
    let (status, plan) = app.post("/api/v1/deployments?dryRun=true", &older).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["wouldDeploy"], false, "{plan}");
    assert_eq!(
        (&plan["securityScan"]["checks"][0]["name"], &plan["securityScan"]["checks"][0]["outcome"]),
        (&json!("Downgrade"), &json!("Failed")),
        "{plan}"
    );
    let mut allowed = older.clone();
    allowed["allowDowngrade"] = json!(true);
    let (_, plan) = app.post("/api/v1/deployments?dryRun=true", &allowed).await;
    assert_eq!(plan["wouldDeploy"], true, "{plan}");
    assert_eq!(plan["securityScan"]["checks"][0]["outcome"], "Warning", "{plan}");
    let (status, reply) = app.post("/api/v1/deployments", &allowed).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    let run = reply["executionId"].as_str().unwrap().to_string();
    assert_eq!(app.finished(&run).await["status"], "Succeeded");
    let (_, page) = app.get("/api/v1/auditlogs?eventType=DowngradeAllowed&limit=10").await;
    assert_eq!(page["items"][0]["resourceId"], "kmod-down@1.9.9", "{page}");
    // Higher versions need nothing.
    app.deploy_ok("kmod-down", "2.1.0", "Development").await;
}
