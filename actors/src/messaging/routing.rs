//! Which subscriptions a published message goes to.

use serde_json::Value;
use serde_json_path::JsonPath;
use uuid::Uuid;

use super::error::MessagingError;
use super::model::{Message, RoutingStrategy, SubscriptionFilter};

/// A parsed `payloadQuery`: a JSONPath, and the value it must select when
/// written `<JSONPath> == <JSON literal>`.
pub(crate) struct PayloadQuery {
    path: JsonPath,
    equals: Option<Value>,
}

pub(crate) fn parse_query(text: &str) -> Result<PayloadQuery, MessagingError> {
    let (path_text, equals) = match text.split_once("==") {
        Some((path, literal)) => {
            let value = serde_json::from_str(literal.trim()).map_err(|e| {
                MessagingError::Invalid(format!("payloadQuery value after '==' is not a JSON literal: {e}"))
            })?;
            (path.trim(), Some(value))
        }
        None => (text.trim(), None),
    };
    let path = JsonPath::parse(path_text)
        .map_err(|e| MessagingError::Invalid(format!("payloadQuery is not a JSONPath: {e}")))?;
    Ok(PayloadQuery { path, equals })
}

/// Whether a message passes a subscription's filter: every header equal,
/// and the payload query selecting something (a payload that is not JSON
/// never matches a query).
pub fn filter_matches(filter: &SubscriptionFilter, message: &Message) -> bool {
    let headers_match = filter.header_matches.iter().all(|(k, v)| message.headers.get(k) == Some(v));
    if !headers_match {
        return false;
    }
    let Some(query) = filter.payload_query.as_deref() else {
        return true;
    };
    let Ok(query) = parse_query(query) else {
        return false;
    };
    let Ok(payload) = serde_json::from_str::<Value>(&message.payload) else {
        return false;
    };
    let selected = query.path.query(&payload).all();
    match &query.equals {
        None => !selected.is_empty(),
        Some(expected) => selected.contains(&expected),
    }
}

/// A subscription as routing sees it, for any back-end.
pub struct RouteCandidate<'a> {
    pub id: Uuid,
    pub paused: bool,
    pub filter: Option<&'a SubscriptionFilter>,
    /// The round-robin position of its last load-balanced assignment; a new
    /// subscription starts at the topic's current position.
    pub last_assigned: u64,
}

/// Whether `strategy` sends every message to every subscription of its
/// topic, paused or not (a paused one keeps its messages for when it
/// resumes): the caller may skip weighing candidates.
pub(crate) fn takes_every_subscription(strategy: RoutingStrategy) -> bool {
    matches!(strategy, RoutingStrategy::FanOut | RoutingStrategy::Priority)
}

/// The subscriptions a new message goes to by `strategy`, given the topic's
/// subscriptions in creation order. For LoadBalanced the one chosen is the
/// caller's to mark with the topic's next round-robin position.
pub fn route(strategy: RoutingStrategy, subs: &[RouteCandidate<'_>], message: &Message) -> Vec<Uuid> {
    if takes_every_subscription(strategy) {
        return subs.iter().map(|s| s.id).collect();
    }
    let active: Vec<&RouteCandidate<'_>> = subs.iter().filter(|s| !s.paused).collect();
    // Single-receiver strategies prefer a running consumer; when all are
    // paused the message still waits in one of them rather than vanish.
    let candidates: Vec<&RouteCandidate<'_>> = if active.is_empty() { subs.iter().collect() } else { active };
    match strategy {
        // Answered above; named here so that the match stays exhaustive.
        RoutingStrategy::FanOut | RoutingStrategy::Priority => subs.iter().map(|s| s.id).collect(),
        RoutingStrategy::Direct => candidates.first().map(|s| s.id).into_iter().collect(),
        RoutingStrategy::ContentBased => {
            subs.iter().filter(|s| s.filter.is_none_or(|f| filter_matches(f, message))).map(|s| s.id).collect()
        }
        // The least recently assigned; ties go to the oldest subscription
        // (`min_by_key` keeps the first of equals, and `subs` is in creation order).
        RoutingStrategy::LoadBalanced => {
            candidates.iter().min_by_key(|s| s.last_assigned).map(|s| s.id).into_iter().collect()
        }
    }
}
