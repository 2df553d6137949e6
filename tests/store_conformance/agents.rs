//! Agents: enrolment tokens found by hash from any tenant and revoked once
//! (audited once), agents replaced by node id and found by session hash,
//! desired module state replaced per module and listed in byte order; a
//! removed agent's node record goes with it, and its removal is remembered
//! against the token it joined with until that token is pruned.

use hotswap_actors::domain::{
    AgentRecord, AuditActor, AuditCategory, AuditQuery, DesiredModule, EnrolmentToken, NewAuditEntry,
};

use super::*;

fn audit(t: TenantId, event: &str) -> NewAuditEntry {
    NewAuditEntry::new(t, AuditActor::system(), AuditCategory::Security, event).message(format!("{event} {}", NASTY[0]))
}

fn enrolment(t: TenantId, hash: &str, created: i64) -> EnrolmentToken {
    EnrolmentToken {
        tenant_id: t,
        id: Uuid::new_v4(),
        environment: Environment::Qa,
        labels: [("rack".to_string(), NASTY[5].to_string()), ("quote".to_string(), NASTY[2].to_string())].into(),
        token_hash: hash.to_string(),
        created_at: at(created, 123_456_789),
        expires_at: at(created + 3_600, 987_654_321),
        revoked_at: None,
        created_by: Some(NASTY[1].to_string()),
    }
}

fn agent(t: TenantId, hostname: &str, session_hash: &str) -> AgentRecord {
    AgentRecord {
        tenant_id: t,
        node_id: Uuid::new_v4(),
        hostname: hostname.to_string(),
        environment: Environment::Production,
        labels: [("zone".to_string(), NASTY[6].to_string())].into(),
        agent_version: "0.1.0".into(),
        token_id: Uuid::new_v4(),
        session_hash: session_hash.to_string(),
        address: Some("127.0.0.1".into()),
        enrolled_at: at(0, 1),
        last_seen_at: at(10, 999_999_999),
    }
}

fn desired(t: TenantId, node_id: Uuid, module: &str, active: &str, restore_pending: bool) -> DesiredModule {
    DesiredModule {
        tenant_id: t,
        node_id,
        module: module.to_string(),
        slots: slots(active),
        restore_pending,
        updated_at: at(5, 555_555_555),
    }
}

async fn audited(store: &SharedStore, t: TenantId, event: &str) -> usize {
    let query = AuditQuery { event_type: Some(event.into()), limit: 100, ..AuditQuery::default() };
    store.list_audit(t, &query).await.unwrap().items.len()
}

async fn enrolment_tokens_by_hash_and_revoked_once(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let older = enrolment(t, &"a".repeat(64), 1);
    let newer = enrolment(t, &"b".repeat(64), 2);
    let theirs = enrolment(other, &"c".repeat(64), 3);
    for token in [&older, &newer, &theirs] {
        store.create_enrolment_token(token, &audit(token.tenant_id, "EnrolmentTokenCreated")).await.unwrap();
    }
    assert_eq!(store.list_enrolment_tokens(t).await.unwrap(), vec![newer.clone(), older.clone()]);
    assert_eq!(store.get_enrolment_token(t, older.id).await.unwrap(), Some(older.clone()));
    assert_eq!(store.get_enrolment_token(t, theirs.id).await.unwrap(), None, "another tenant's token");
    // A connecting agent names no tenant: its token's hash finds it.
    assert_eq!(store.find_enrolment_token(&"c".repeat(64)).await.unwrap(), Some(theirs.clone()));
    assert_eq!(store.find_enrolment_token(&"d".repeat(64)).await.unwrap(), None);
    assert_eq!(audited(&store, t, "EnrolmentTokenCreated").await, 2);

    let first = store.revoke_enrolment_token(t, older.id, at(100, 7), &audit(t, "Revoked")).await.unwrap().unwrap();
    assert_eq!(first.revoked_at, Some(at(100, 7)));
    assert!(!first.is_usable(at(101, 0)));
    let again = store.revoke_enrolment_token(t, older.id, at(200, 0), &audit(t, "Revoked")).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(at(100, 7)), "the first revocation stands");
    assert_eq!(audited(&store, t, "Revoked").await, 1, "audited once");
    assert_eq!(store.revoke_enrolment_token(t, theirs.id, at(1, 0), &audit(t, "Revoked")).await.unwrap(), None);
    assert_eq!(store.get_enrolment_token(other, theirs.id).await.unwrap().unwrap().revoked_at, None);
    assert_eq!(store.find_enrolment_token(&"a".repeat(64)).await.unwrap().unwrap().revoked_at, Some(at(100, 7)));
}

async fn agents_replaced_by_node_and_found_by_session(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let web = agent(t, "web-01", &"1".repeat(64));
    let mut db = agent(t, "db-01", &"2".repeat(64));
    let theirs = agent(other, "aaa-first", &"3".repeat(64));
    for a in [&web, &db, &theirs] {
        store.save_agent(a, &audit(a.tenant_id, "AgentEnrolled")).await.unwrap();
    }
    assert_eq!(store.list_agents(t).await.unwrap(), vec![db.clone(), web.clone()]);
    assert_eq!(store.find_agent_by_session(&"3".repeat(64)).await.unwrap(), Some(theirs.clone()));
    assert_eq!(store.find_agent_by_session(&"9".repeat(64)).await.unwrap(), None);

    // A reconnection replaces the record (same node id), a new session hash included.
    db.session_hash = "4".repeat(64);
    db.last_seen_at = at(50, 1);
    db.address = None;
    db.agent_version = NASTY[4].to_string();
    store.save_agent(&db, &audit(t, "AgentConnected")).await.unwrap();
    assert_eq!(store.find_agent_by_session(&"2".repeat(64)).await.unwrap(), None);
    assert_eq!(store.find_agent_by_session(&"4".repeat(64)).await.unwrap(), Some(db.clone()));
    assert_eq!(store.list_agents(t).await.unwrap(), vec![db, web]);
    assert_eq!(store.list_agents(other).await.unwrap(), vec![theirs]);
    assert_eq!(audited(&store, t, "AgentEnrolled").await, 2);
    assert_eq!(audited(&store, t, "AgentConnected").await, 1);
}

async fn desired_modules_per_node_in_byte_order(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let (node_a, node_b) = (Uuid::new_v4(), Uuid::new_v4());
    // Byte order: upper case, '-' and '_' before lower case.
    for module in ["kmod_z", "kmod-b", "Kmod", "kmod-a"] {
        store.set_desired_module(&desired(t, node_a, module, "1.0.0", false)).await.unwrap();
    }
    store.set_desired_module(&desired(t, node_b, "kmod-a", "9.9.9", false)).await.unwrap();
    store.set_desired_module(&desired(other, node_a, "kmod-a", "6.6.6", false)).await.unwrap();
    let names: Vec<String> = store.desired_modules(t, node_a).await.unwrap().into_iter().map(|d| d.module).collect();
    assert_eq!(names, vec!["Kmod", "kmod-a", "kmod-b", "kmod_z"]);

    // A restore decided while the host is away, then confirmed: replaced in place.
    let pending = desired(t, node_a, "kmod-a", "0.9.0", true);
    store.set_desired_module(&pending).await.unwrap();
    let found = store.desired_modules(t, node_a).await.unwrap();
    assert_eq!(found.len(), 4);
    assert_eq!(found[1], pending);
    let confirmed = desired(t, node_a, "kmod-a", "0.9.0", false);
    store.set_desired_module(&confirmed).await.unwrap();
    assert_eq!(store.desired_modules(t, node_a).await.unwrap()[1], confirmed);

    assert_eq!(store.desired_modules(t, node_b).await.unwrap(), vec![desired(t, node_b, "kmod-a", "9.9.9", false)]);
    assert_eq!(store.desired_modules(other, node_a).await.unwrap()[0].slots, slots("6.6.6"));
    assert!(store.desired_modules(other, node_b).await.unwrap().is_empty(), "another tenant's node");
}

async fn a_removed_agent_takes_its_desired_state_and_session_with_it(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    let retired = agent(t, "old-01", &"5".repeat(64));
    let kept = agent(t, "new-01", &"6".repeat(64));
    for a in [&retired, &kept] {
        store.save_agent(a, &audit(t, "AgentEnrolled")).await.unwrap();
        store.set_desired_module(&desired(t, a.node_id, "kmod-a", "1.0.0", false)).await.unwrap();
        let host = NodeRecord { node_id: a.node_id, ..node(t, &a.hostname, a.environment) };
        store.register_node(&host).await.unwrap();
    }
    let simulated = store.register_node(&node(t, "prod-node-01", Environment::Production)).await.unwrap();
    // Another tenant cannot remove it, nor does a simulated node's id remove anything.
    assert!(!store.remove_agent(other, retired.node_id, &audit(other, "AgentRemoved")).await.unwrap());
    assert!(!store.remove_agent(t, simulated.node_id, &audit(t, "AgentRemoved")).await.unwrap());
    assert!(store.get_node(t, retired.node_id).await.unwrap().is_some());
    assert!(!store.was_removed(t, retired.node_id, retired.token_id).await.unwrap());
    assert!(store.remove_agent(t, retired.node_id, &audit(t, "AgentRemoved")).await.unwrap());
    // Remembered as removed with the token it joined with, for its tenant only.
    assert!(store.was_removed(t, retired.node_id, retired.token_id).await.unwrap());
    assert!(!store.was_removed(t, retired.node_id, Uuid::new_v4()).await.unwrap(), "a new token enrols it");
    assert!(!store.was_removed(other, retired.node_id, retired.token_id).await.unwrap());
    assert!(!store.was_removed(t, kept.node_id, kept.token_id).await.unwrap());
    assert_eq!(store.list_agents(t).await.unwrap(), vec![kept.clone()]);
    // Its node goes with the versions it ran; the others' stay.
    assert_eq!(store.get_node(t, retired.node_id).await.unwrap(), None);
    let mut left: Vec<String> =
        store.nodes_in(t, Environment::Production).await.unwrap().into_iter().map(|n| n.hostname).collect();
    left.sort();
    assert_eq!(left, vec!["new-01", "prod-node-01"]);
    let holders = store.module_slots(t, &[kept.node_id, simulated.node_id], "netfilter-x").await.unwrap();
    assert_eq!(holders, vec![slots("2.0.0"), slots("2.0.0")]);
    assert_eq!(store.find_agent_by_session(&"5".repeat(64)).await.unwrap(), None, "its session connects no more");
    assert!(store.desired_modules(t, retired.node_id).await.unwrap().is_empty());
    assert_eq!(store.desired_modules(t, kept.node_id).await.unwrap().len(), 1);
    assert!(!store.remove_agent(t, retired.node_id, &audit(t, "AgentRemoved")).await.unwrap(), "removed once");
    assert_eq!(audited(&store, t, "AgentRemoved").await, 1, "audited once");
    assert_eq!(audited(&store, other, "AgentRemoved").await, 0);
}

/// Tokens dead (revoked or expired) before the cut-off go, of every tenant,
/// unless an agent joined with them; the others stay.
async fn dead_enrolment_tokens_are_pruned_unless_an_agent_joined_with_them(store: SharedStore) {
    let (t, other) = (tenant(), tenant());
    // Created at 1: expires at 3,601, unless revoked sooner.
    let expired = enrolment(t, &"e".repeat(64), 1);
    let revoked = enrolment(t, &"f".repeat(64), 5_000);
    let joined = enrolment(t, &"9".repeat(64), 1);
    let fresh = enrolment(t, &"8".repeat(64), 10_000);
    let theirs = enrolment(other, &"7".repeat(64), 1);
    for token in [&expired, &revoked, &joined, &fresh, &theirs] {
        store.create_enrolment_token(token, &audit(token.tenant_id, "EnrolmentTokenCreated")).await.unwrap();
    }
    store.revoke_enrolment_token(t, revoked.id, at(5_001, 0), &audit(t, "Revoked")).await.unwrap();
    let mut host = agent(t, "joined-host", &"6".repeat(64));
    host.token_id = joined.id;
    store.save_agent(&host, &audit(t, "AgentEnrolled")).await.unwrap();
    // A host that joined with `expired` and was removed: its removal goes with the token.
    let mut retired = agent(t, "retired-host", &"5".repeat(64));
    retired.token_id = expired.id;
    store.save_agent(&retired, &audit(t, "AgentEnrolled")).await.unwrap();
    assert!(store.remove_agent(t, retired.node_id, &audit(t, "AgentRemoved")).await.unwrap());
    assert!(store.was_removed(t, retired.node_id, expired.id).await.unwrap());

    // Dead before 6,000: expired (3,601), revoked (5,001), joined (3,601, but named by an agent), theirs.
    assert_eq!(store.prune_enrolment_tokens(at(6_000, 0)).await.unwrap(), 3);
    let left: Vec<Uuid> = store.list_enrolment_tokens(t).await.unwrap().iter().map(|k| k.id).collect();
    assert_eq!(left, vec![fresh.id, joined.id]);
    assert!(!store.was_removed(t, retired.node_id, expired.id).await.unwrap(), "forgotten with its token");
    assert!(store.list_enrolment_tokens(other).await.unwrap().is_empty());
    assert_eq!(store.find_enrolment_token(&"e".repeat(64)).await.unwrap(), None);
    assert_eq!(store.prune_enrolment_tokens(at(6_000, 0)).await.unwrap(), 0, "nothing twice");
}

async fn forgetting_nodes_keeps_an_agents_node(store: SharedStore) {
    let t = tenant();
    let host = agent(t, "agent-host", &"4".repeat(64));
    store.save_agent(&host, &audit(t, "AgentEnrolled")).await.unwrap();
    let mut its_node = node(t, "agent-host", Environment::Production);
    its_node.node_id = host.node_id;
    store.register_node(&its_node).await.unwrap();
    let simulated = node(t, "production-node-09", Environment::Production);
    store.register_node(&simulated).await.unwrap();
    assert_eq!(store.forget_nodes(t, &[host.node_id, simulated.node_id]).await.unwrap(), 1);
    let left: Vec<Uuid> = store.nodes_in(t, Environment::Production).await.unwrap().iter().map(|n| n.node_id).collect();
    assert_eq!(left, vec![host.node_id]);
}

conformance!(
    forgetting_nodes_keeps_an_agents_node,
    dead_enrolment_tokens_are_pruned_unless_an_agent_joined_with_them,
    enrolment_tokens_by_hash_and_revoked_once,
    agents_replaced_by_node_and_found_by_session,
    desired_modules_per_node_in_byte_order,
    a_removed_agent_takes_its_desired_state_and_session_with_it,
);
