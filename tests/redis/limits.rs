//! Rate limits and the login lockout count across both instances together.

use std::time::Duration;

use serde_json::json;

use crate::cluster::Cluster;
use crate::process::Server;

#[actix_web::test]
async fn a_rate_limit_of_n_per_minute_holds_across_both_instances_together() {
    const LIMIT: usize = 12;
    let vars =
        [("HOTSWAP__RATE_LIMIT__ENABLED", "true".to_string()), ("HOTSWAP__RATE_LIMIT__DEPLOYMENTS", LIMIT.to_string())];
    let Some(cluster) = Cluster::start("redis_rate_limit", "redis://127.0.0.1:6379", &vars).await else { return };
    let (mut allowed, mut refused) = (0, 0);
    for i in 0..3 * LIMIT {
        let server = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        // A change (a create, refused by validation) counts in the deployments group.
        let (status, body) = server.post("/api/v1/deployments", &json!({})).await.unwrap();
        match status.as_u16() {
            400 => allowed += 1,
            429 => {
                assert_eq!(body["code"], "rate_limited", "{body}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    // One more may pass if a refill (every 60/N s) fell within the loop.
    assert!((LIMIT..=LIMIT + 1).contains(&allowed), "{allowed} allowed, {refused} refused\n{}", cluster.logs());
    assert_eq!(allowed + refused, 3 * LIMIT);
}

async fn login(server: &Server, password: &str) -> u16 {
    login_from(server, "127.0.0.1", password).await
}

/// A login that says it comes from `from` (believed where 127.0.0.1 is a trusted proxy).
async fn login_from(server: &Server, from: &str, password: &str) -> u16 {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let body = json!({ "username": "admin", "password": password });
    let url = format!("{}/api/v1/authentication/login", server.base);
    let res = client.post(url).insert_header(("x-forwarded-for", from)).send_json(&body).await.unwrap();
    res.status().as_u16()
}

#[actix_web::test]
async fn guesses_from_other_addresses_leave_the_owners_sign_in_alone_on_both_instances() {
    let vars = [
        ("HOTSWAP__RATE_LIMIT__ENABLED", "true".to_string()),
        ("HOTSWAP__RATE_LIMIT__LOGIN", "2".to_string()),
        ("HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES", "127.0.0.1".to_string()),
    ];
    let Some(cluster) = Cluster::start("redis_login_window", "redis://127.0.0.1:6379", &vars).await else { return };
    for (i, from) in ["203.0.113.81", "203.0.113.82", "203.0.113.83"].into_iter().enumerate() {
        let server = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        assert_eq!(login_from(server, from, "wrong-password").await, 401);
    }
    assert_eq!(login_from(&cluster.b, "198.51.100.12", "Admin123!").await, 200, "{}", cluster.logs());
    // One guesser's window for the name is shared by both instances.
    assert_eq!(login_from(&cluster.b, "203.0.113.81", "wrong-password").await, 401);
    assert_eq!(login_from(&cluster.a, "203.0.113.81", "wrong-password").await, 429);
}

#[actix_web::test]
async fn failed_logins_spread_over_both_instances_lock_the_account_for_the_address() {
    // Logins are limited per address too; that limit is not what is tested here.
    let vars = [("HOTSWAP__AUTH__MAX_FAILED_LOGINS", "4".to_string())];
    let Some(cluster) = Cluster::start("redis_lockout", "redis://127.0.0.1:6379", &vars).await else { return };
    for i in 0..4 {
        let server = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        assert_eq!(login(server, "wrong-password").await, 401);
    }
    // Two failures on each instance: alone, neither would have locked.
    assert_eq!(login(&cluster.a, "Admin123!").await, 401, "locked on A\n{}", cluster.logs());
    assert_eq!(login(&cluster.b, "Admin123!").await, 401, "locked on B");
}
