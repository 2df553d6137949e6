//! Users and revoked tokens: lookups across tenants by name only, the
//! uniqueness rules, failed logins counted atomically, revocations by tenant.

use super::*;

/// Whole seconds of microseconds: what `timestamptz` keeps exactly.
pub(crate) fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap()
}

pub(crate) fn user(tenant: TenantId, username: &str) -> UserRecord {
    UserRecord {
        id: Uuid::new_v4(),
        tenant_id: tenant,
        username: username.into(),
        email: format!("{}@example.com", username.to_lowercase()),
        full_name: format!("{username} Example"),
        password_hash: "$2b$04$abcdefghijklmnopqrstuuJ0Zy9J9Yp3QF8v7dX0bC1e2f3g4h5i6".into(),
        roles: vec![Role::Deployer, Role::Viewer],
        is_active: true,
        failed_login_attempts: 0,
        lockout_end: None,
        created_at: micros(at(0, 0)),
        last_login_at: None,
        token_generation: 0,
    }
}

/// An audit entry for a store call that must write one.
pub(crate) fn noted(tenant: TenantId) -> hotswap_actors::domain::NewAuditEntry {
    use hotswap_actors::domain::{AuditActor, AuditCategory, NewAuditEntry};
    NewAuditEntry::new(tenant, AuditActor::system(), AuditCategory::UserManagement, "Test")
}

/// A username no other test of the same database uses: usernames are unique
/// across tenants.
pub(crate) fn name(prefix: &str) -> String {
    format!("{prefix}-{}", &Uuid::new_v4().simple().to_string()[..8])
}

async fn users_round_trip_and_lookups(store: SharedStore) {
    let t = tenant();
    let mut alice = user(t, &name("Alice"));
    alice.full_name = NASTY[0].into();
    alice.roles = vec![Role::Admin];
    alice.lockout_end = Some(micros(at(5, 0)));
    alice.last_login_at = Some(micros(at(3, 0)));
    alice.token_generation = 3;
    store.create_user(&alice, &noted(alice.tenant_id)).await.unwrap();
    assert_eq!(store.get_user(t, alice.id).await.unwrap(), Some(alice.clone()));
    // By name: any case, and without knowing the tenant.
    assert_eq!(store.find_user_by_username(&alice.username.to_uppercase()).await.unwrap(), Some(alice.clone()));
    assert_eq!(store.find_user_by_username("nobody-at-all").await.unwrap(), None);
    // Another tenant sees nothing of it.
    let other = tenant();
    assert_eq!(store.get_user(other, alice.id).await.unwrap(), None);
    assert!(store.list_users(other).await.unwrap().is_empty());

    let bob = user(t, &name("bob"));
    let carol = user(t, &name("Carol"));
    store.create_user(&carol, &noted(carol.tenant_id)).await.unwrap();
    store.create_user(&bob, &noted(bob.tenant_id)).await.unwrap();
    let listed: Vec<_> = store.list_users(t).await.unwrap().into_iter().map(|u| u.username).collect();
    assert_eq!(listed, [alice.username.clone(), bob.username.clone(), carol.username.clone()]);

    let mut changed = bob.clone();
    changed.roles = vec![Role::Viewer];
    changed.is_active = false;
    changed.token_generation = 1;
    changed.password_hash = "$2b$04$another".into();
    store.update_user(&changed, &noted(changed.tenant_id)).await.unwrap();
    assert_eq!(store.get_user(t, bob.id).await.unwrap(), Some(changed.clone()));
    // An update names its tenant: elsewhere the user does not exist.
    let mut elsewhere = changed.clone();
    elsewhere.tenant_id = other;
    assert!(matches!(store.update_user(&elsewhere, &noted(elsewhere.tenant_id)).await, Err(StoreError::NotFound(_))));
    assert_eq!(store.get_user(t, bob.id).await.unwrap(), Some(changed));
}

async fn usernames_unique_across_tenants_and_emails_per_tenant(store: SharedStore) {
    let (t1, t2) = (tenant(), tenant());
    let first = user(t1, &name("dup"));
    store.create_user(&first, &noted(first.tenant_id)).await.unwrap();
    let mut same_name = user(t2, &first.username.to_uppercase());
    same_name.email = "someone-else@example.com".into();
    assert!(matches!(store.create_user(&same_name, &noted(same_name.tenant_id)).await, Err(StoreError::Conflict(_))));
    // The same email is fine in another tenant, not in the same one.
    let mut same_email = user(t2, &name("other"));
    same_email.email = first.email.to_uppercase();
    store.create_user(&same_email, &noted(same_email.tenant_id)).await.unwrap();
    let mut clash = user(t1, &name("third"));
    clash.email = first.email.clone();
    assert!(matches!(store.create_user(&clash, &noted(clash.tenant_id)).await, Err(StoreError::Conflict(_))));
    // Renaming onto a taken name is refused too, and changes nothing.
    let mut rename = same_email.clone();
    rename.username = first.username.clone();
    assert!(matches!(store.update_user(&rename, &noted(rename.tenant_id)).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.get_user(t2, same_email.id).await.unwrap(), Some(same_email));
}

async fn failed_logins_lock_and_success_resets(store: SharedStore) {
    let t = tenant();
    let u = user(t, &name("locky"));
    store.create_user(&u, &noted(u.tenant_id)).await.unwrap();
    let policy = LockoutPolicy { max_failed_attempts: 3, duration: std::time::Duration::from_secs(900) };
    let now = micros(Utc::now());
    for n in 1..=2 {
        let after = store.record_failed_login(t, u.id, now, &policy, &noted(t)).await.unwrap().unwrap();
        assert_eq!(after.failed_login_attempts, n);
        assert!(!after.is_locked(now));
    }
    let locked = store.record_failed_login(t, u.id, now, &policy, &noted(t)).await.unwrap().unwrap();
    assert!(locked.is_locked(now));
    assert_eq!(locked.lockout_end, Some(now + TimeDelta::seconds(900)));
    assert_eq!(store.get_user(t, u.id).await.unwrap(), Some(locked.clone()));
    // After the lockout the count starts again.
    let later = now + TimeDelta::seconds(901);
    let again = store.record_failed_login(t, u.id, later, &policy, &noted(t)).await.unwrap().unwrap();
    assert_eq!((again.failed_login_attempts, again.lockout_end), (1, None));
    store.record_successful_login(t, u.id, later, &noted(t)).await.unwrap();
    let ok = store.get_user(t, u.id).await.unwrap().unwrap();
    assert_eq!((ok.failed_login_attempts, ok.lockout_end, ok.last_login_at), (0, None, Some(later)));
    // Unknown users, or users of another tenant, are not counted.
    assert_eq!(store.record_failed_login(tenant(), u.id, now, &policy, &noted(tenant())).await.unwrap(), None);
    assert_eq!(store.record_failed_login(t, Uuid::new_v4(), now, &policy, &noted(t)).await.unwrap(), None);
}

async fn concurrent_failed_logins_all_count(store: SharedStore) {
    let t = tenant();
    let u = user(t, &name("racer"));
    store.create_user(&u, &noted(u.tenant_id)).await.unwrap();
    let policy = LockoutPolicy { max_failed_attempts: 100, duration: std::time::Duration::from_secs(60) };
    let now = Utc::now();
    let attempts = (0..10).map(|_| {
        let store = store.clone();
        async move { store.record_failed_login(t, u.id, now, &policy, &noted(t)).await.unwrap() }
    });
    futures::future::join_all(attempts).await;
    assert_eq!(store.get_user(t, u.id).await.unwrap().unwrap().failed_login_attempts, 10);
}

async fn revoked_tokens_by_tenant_until_purged(store: SharedStore) {
    let (t1, t2) = (tenant(), tenant());
    let now = micros(Utc::now());
    let jti = Uuid::new_v4().to_string();
    assert!(!store.is_token_revoked(t1, &jti).await.unwrap());
    store.revoke_token(t1, &jti, now + TimeDelta::seconds(60), &noted(t1)).await.unwrap();
    store.revoke_token(t1, &jti, now + TimeDelta::seconds(30), &noted(t1)).await.unwrap();
    assert!(store.is_token_revoked(t1, &jti).await.unwrap());
    assert!(!store.is_token_revoked(t2, &jti).await.unwrap());
    for hostile in NASTY {
        store.revoke_token(t2, hostile, now - TimeDelta::seconds(1), &noted(t2)).await.unwrap();
        assert!(store.is_token_revoked(t2, hostile).await.unwrap(), "{hostile:?}");
    }
    // Purging forgets what expired before `now` and keeps the rest; the second
    // revocation did not shorten the first.
    let purged = store.purge_expired_tokens(now + TimeDelta::seconds(45)).await.unwrap();
    assert!(purged >= NASTY.len() as u64, "{purged}");
    assert!(store.is_token_revoked(t1, &jti).await.unwrap());
    assert!(!store.is_token_revoked(t2, NASTY[0]).await.unwrap());
    store.purge_expired_tokens(now + TimeDelta::seconds(61)).await.unwrap();
    assert!(!store.is_token_revoked(t1, &jti).await.unwrap());
}

/// What authentication reads per request, in one call: the revocation and
/// the user, each by tenant, whether or not the other is there.
async fn a_token_holder_is_read_with_its_revocation(store: SharedStore) {
    let (t1, t2) = (tenant(), tenant());
    let u = user(t1, &name("holder"));
    store.create_user(&u, &noted(t1)).await.unwrap();
    let jti = Uuid::new_v4().to_string();
    let holder = store.token_holder(t1, u.id, &jti).await.unwrap();
    assert!(!holder.revoked);
    assert_eq!(holder.user.as_ref(), Some(&u));
    store.revoke_token(t1, &jti, micros(Utc::now()) + TimeDelta::seconds(60), &noted(t1)).await.unwrap();
    let holder = store.token_holder(t1, u.id, &jti).await.unwrap();
    assert!(holder.revoked);
    assert_eq!(holder.user.as_ref(), Some(&u));
    // Another tenant has neither the user nor the revocation.
    let elsewhere = store.token_holder(t2, u.id, &jti).await.unwrap();
    assert!(!elsewhere.revoked);
    assert!(elsewhere.user.is_none());
    // A revoked token of a user that is gone still reads as revoked.
    let gone = store.token_holder(t1, Uuid::new_v4(), &jti).await.unwrap();
    assert!(gone.revoked);
    assert!(gone.user.is_none());
    assert_eq!(holder.tenant_status, None, "a tenant that is not stored has no status");

    // The tenant's status comes with the user: a deleted tenant's tokens end.
    use super::tenants::{audit, record, sub};
    use hotswap_actors::domain::TenantStatus;
    let mut t3 = record(&sub("holder"), Utc::now());
    store.create_tenant(&t3, &[audit(&t3, "TenantCreated")]).await.unwrap();
    let member = user(t3.tenant_id, &name("member"));
    store.create_user(&member, &noted(t3.tenant_id)).await.unwrap();
    let read = store.token_holder(t3.tenant_id, member.id, &jti).await.unwrap();
    assert_eq!(read.tenant_status, Some(TenantStatus::Provisioning));
    t3.status = TenantStatus::Deleted;
    t3.revision += 1;
    store.save_tenant(&t3, &[audit(&t3, "TenantDeleted")]).await.unwrap();
    let read = store.token_holder(t3.tenant_id, member.id, &jti).await.unwrap();
    assert_eq!((read.tenant_status, read.user.map(|u| u.id)), (Some(TenantStatus::Deleted), Some(member.id)));
}

conformance!(
    a_token_holder_is_read_with_its_revocation,
    users_round_trip_and_lookups,
    usernames_unique_across_tenants_and_emails_per_tenant,
    failed_logins_lock_and_success_resets,
    concurrent_failed_logins_all_count,
    revoked_tokens_by_tenant_until_purged,
);
