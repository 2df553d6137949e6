//! Message-bus consumers on the live WebSocket: a client sends
//! `{"type":"subscribe","subscriptionId":ID}` and receives that pull
//! subscription's deliveries as `{"type":"message","subscriptionId",
//! "message":{...the consume shape...}}` frames, and settles each with
//! `{"type":"ack"|"nack","subscriptionId","messageId"[,"reason","requeue"]}`
//! on the same socket (answered `acked` / `nacked`, or an `error` frame).
//!
//! One task per subscription leases with the bus's long-poll while fewer
//! than `prefetch` deliveries are unsettled on this socket, so a slow
//! client holds at most that many leases; whatever it never settles
//! expires and is redelivered by the bus as for any pull consumer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use actix::{Message, Recipient};
use actix_web::web;
use chrono::{DateTime, Utc};
use hotswap_actors::domain::TenantId;
use hotswap_actors::messaging::{consume, Delivery, MessagingError, NackOptions, SubscriptionKind};
use parking_lot::Mutex;
use serde_json::{json, Map, Value};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::messaging::message_dto::DeliveryView;
use crate::messaging::MessageBus;

/// Unsettled deliveries per subscription and socket, by default and at most.
const DEFAULT_PREFETCH: usize = 16;
const MAX_PREFETCH: usize = 100;
/// One long-poll of the bus; the task polls again right after.
const LONG_POLL: Duration = Duration::from_secs(5);
/// Pause after the bus failed (unavailable), before asking again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// What a client asks of the bus over the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRequest {
    Subscribe { subscription: Uuid, prefetch: usize },
    Unsubscribe(Uuid),
    Ack { subscription: Uuid, message_id: String },
    Nack { subscription: Uuid, message_id: String, reason: Option<String>, requeue: Option<bool> },
}

/// The request in a client message, when it is one for the bus: a
/// subscribe or unsubscribe naming `subscriptionId`, an ack or a nack.
pub fn parse(kind: &str, obj: &Map<String, Value>) -> Option<Result<ConsumerRequest, String>> {
    let names_subscription = obj.contains_key("subscriptionId");
    match kind {
        "subscribe" | "unsubscribe" if names_subscription => Some(parse_subscription(kind, obj)),
        "ack" | "nack" => Some(parse_settlement(kind, obj)),
        _ => None,
    }
}

fn subscription_id(obj: &Map<String, Value>) -> Result<Uuid, String> {
    match obj.get("subscriptionId") {
        Some(Value::String(id)) => Uuid::parse_str(id).map_err(|_| format!("subscriptionId '{id}' is not a UUID")),
        _ => Err("\"subscriptionId\" must be a subscription's id (a string)".into()),
    }
}

fn parse_subscription(kind: &str, obj: &Map<String, Value>) -> Result<ConsumerRequest, String> {
    let subscription = subscription_id(obj)?;
    if kind == "unsubscribe" {
        return Ok(ConsumerRequest::Unsubscribe(subscription));
    }
    let prefetch = match obj.get("prefetch") {
        None | Some(Value::Null) => DEFAULT_PREFETCH,
        Some(v) => match v.as_u64() {
            Some(n @ 1..=100) => n as usize,
            _ => return Err(format!("\"prefetch\" must be between 1 and {MAX_PREFETCH}")),
        },
    };
    Ok(ConsumerRequest::Subscribe { subscription, prefetch })
}

fn parse_settlement(kind: &str, obj: &Map<String, Value>) -> Result<ConsumerRequest, String> {
    let subscription = subscription_id(obj)?;
    let message_id = match obj.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => return Err("\"messageId\" must be the delivered message's id".into()),
    };
    if kind == "ack" {
        return Ok(ConsumerRequest::Ack { subscription, message_id });
    }
    let reason = match obj.get("reason") {
        None | Some(Value::Null) => None,
        Some(Value::String(r)) => Some(r.clone()),
        Some(_) => return Err("\"reason\" must be a string".into()),
    };
    let requeue = match obj.get("requeue") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(_) => return Err("\"requeue\" must be true or false".into()),
    };
    Ok(ConsumerRequest::Nack { subscription, message_id, reason, requeue })
}

const NEEDS_DEPLOYER: &str = "consuming needs the Deployer role";

/// What a subscription's task tells its session.
#[derive(Message)]
#[rtype(result = "()")]
pub enum ConsumerEvent {
    Subscribed(Uuid),
    Delivered(Vec<Delivery>),
    /// The subscription cannot be consumed (any more): why.
    Ended(Uuid, String),
}

impl ConsumerEvent {
    /// The frames the client receives.
    pub fn frames(self) -> Vec<String> {
        match self {
            ConsumerEvent::Subscribed(id) => vec![json!({ "type": "subscribed", "subscriptionId": id }).to_string()],
            ConsumerEvent::Delivered(deliveries) => deliveries
                .into_iter()
                .map(|d| {
                    let subscription = d.subscription_id;
                    json!({ "type": "message", "subscriptionId": subscription, "message": DeliveryView::from(d) })
                        .to_string()
                })
                .collect(),
            ConsumerEvent::Ended(id, why) => vec![json!({
                "type": "error", "error": "SubscriptionEnded", "subscriptionId": id, "message": why
            })
            .to_string()],
        }
    }
}

/// Deliveries handed to this socket and not settled yet, by message id,
/// with their lease deadlines; settling or expiry frees a place.
#[derive(Default)]
struct InFlight {
    leases: Mutex<HashMap<String, DateTime<Utc>>>,
    freed: Notify,
}

impl InFlight {
    /// Places free now, after forgetting leases past their deadline, and
    /// the earliest deadline still held.
    fn free(&self, window: usize, now: DateTime<Utc>) -> (usize, Option<DateTime<Utc>>) {
        let mut leases = self.leases.lock();
        leases.retain(|_, deadline| *deadline > now);
        (window.saturating_sub(leases.len()), leases.values().min().copied())
    }

    fn release(&self, message_id: &str) {
        self.leases.lock().remove(message_id);
        self.freed.notify_one();
    }
}

struct Running {
    in_flight: Arc<InFlight>,
    task: tokio::task::JoinHandle<()>,
}

/// The bus subscriptions one socket consumes.
pub struct SocketConsumers {
    bus: web::Data<MessageBus>,
    tenant: TenantId,
    /// Why this socket may not consume (the REST consume's refusals: not a
    /// Deployer, or a suspended tenant); `None`: it may.
    refusal: Option<&'static str>,
    running: HashMap<Uuid, Running>,
    max_subscriptions: usize,
}

impl SocketConsumers {
    pub fn new(
        bus: web::Data<MessageBus>,
        tenant: TenantId,
        refusal: Option<&'static str>,
        max_subscriptions: usize,
    ) -> Self {
        SocketConsumers { bus, tenant, refusal, running: HashMap::new(), max_subscriptions }
    }

    /// Why a socket of this principal may not consume, as the REST consume
    /// would refuse it: `None` when it may.
    pub fn refusal_for(principal: Option<&crate::auth::Principal>) -> Option<&'static str> {
        match principal {
            Some(p) if !p.has_role(hotswap_actors::domain::Role::Deployer) => Some(NEEDS_DEPLOYER),
            // Leasing changes state (attempts, leases it could not settle).
            Some(p) if p.tenant_suspended => Some(crate::auth::require_role::SUSPENDED),
            Some(_) => None,
            None => Some(NEEDS_DEPLOYER),
        }
    }

    /// Starts consuming; the task answers `subscribed` or an error itself.
    /// A refusal here is an error code (`Forbidden` for the role, as a
    /// refused settle is) and its message.
    pub fn subscribe(
        &mut self,
        subscription: Uuid,
        prefetch: usize,
        to: Recipient<ConsumerEvent>,
    ) -> Result<(), (&'static str, String)> {
        if let Some(why) = self.refusal {
            return Err(("Forbidden", why.into()));
        }
        if self.running.contains_key(&subscription) {
            to.do_send(ConsumerEvent::Subscribed(subscription));
            return Ok(());
        }
        if self.running.len() >= self.max_subscriptions {
            return Err(("BadRequest", format!("at most {} subscriptions per session", self.max_subscriptions)));
        }
        let in_flight = Arc::new(InFlight::default());
        let task =
            actix_web::rt::spawn(run(self.bus.clone(), self.tenant, subscription, prefetch, in_flight.clone(), to));
        self.running.insert(subscription, Running { in_flight, task });
        Ok(())
    }

    pub fn unsubscribe(&mut self, subscription: Uuid) -> bool {
        self.running.remove(&subscription).map(|r| r.task.abort()).is_some()
    }

    /// Acks or nacks a delivery; the answer frame, or an error code and message.
    pub fn settle(
        &self,
        request: ConsumerRequest,
    ) -> impl std::future::Future<Output = Result<String, (&'static str, String)>> + 'static {
        let bus = self.bus.clone();
        let tenant = self.tenant;
        let refusal = self.refusal;
        let in_flight = |id: &Uuid| self.running.get(id).map(|r| r.in_flight.clone());
        let held = match &request {
            ConsumerRequest::Ack { subscription, .. } | ConsumerRequest::Nack { subscription, .. } => {
                in_flight(subscription)
            }
            _ => None,
        };
        async move {
            if let Some(why) = refusal {
                return Err(("Forbidden", why.to_string()));
            }
            let now = Utc::now();
            let (subscription, message_id, outcome, kind) = match request {
                ConsumerRequest::Ack { subscription, message_id } => {
                    let outcome = bus.store.ack(tenant, subscription, &message_id, now).await;
                    (subscription, message_id, outcome, "acked")
                }
                ConsumerRequest::Nack { subscription, message_id, reason, requeue } => {
                    let options = NackOptions { reason, requeue };
                    // Refused before the nack: the delivery stays held, to be settled again.
                    options.validate().map_err(|e| (error_code(&e), e.to_string()))?;
                    let outcome = bus.store.nack(tenant, subscription, &message_id, options, now).await;
                    (subscription, message_id, outcome, "nacked")
                }
                _ => return Err(("BadRequest", "not an ack or a nack".to_string())),
            };
            if let Some(held) = held {
                held.release(&message_id);
            }
            match outcome {
                Ok(()) => {
                    Ok(json!({ "type": kind, "subscriptionId": subscription, "messageId": message_id }).to_string())
                }
                Err(e) => Err((error_code(&e), e.to_string())),
            }
        }
    }
}

impl Drop for SocketConsumers {
    fn drop(&mut self) {
        for running in self.running.values() {
            running.task.abort();
        }
    }
}

fn error_code(e: &MessagingError) -> &'static str {
    match e {
        MessagingError::SubscriptionNotFound(_)
        | MessagingError::MessageNotFound(_)
        | MessagingError::TopicNotFound(_) => "NotFound",
        MessagingError::LeaseNotHeld(_) => "LeaseNotHeld",
        MessagingError::Unavailable(_) => "Unavailable",
        _ => "BadRequest",
    }
}

/// Leases for one subscription while the socket has room, until the
/// session ends (the task is aborted) or the subscription goes away.
async fn run(
    bus: web::Data<MessageBus>,
    tenant: TenantId,
    subscription: Uuid,
    window: usize,
    in_flight: Arc<InFlight>,
    to: Recipient<ConsumerEvent>,
) {
    match bus.store.get_subscription(tenant, subscription).await {
        Ok(s) if s.spec.kind == SubscriptionKind::Push => {
            let why = "a Push subscription is delivered to its endpoint; subscribe to a Pull one".to_string();
            return to.do_send(ConsumerEvent::Ended(subscription, why));
        }
        Ok(_) => to.do_send(ConsumerEvent::Subscribed(subscription)),
        Err(e) => {
            return to.do_send(ConsumerEvent::Ended(subscription, ended_because(&bus, tenant, subscription, e).await))
        }
    }
    loop {
        let (free, next_deadline) = in_flight.free(window, Utc::now());
        if free == 0 {
            // Full: wait for a settlement, or for the earliest lease to lapse.
            let lapse = next_deadline.and_then(|d| (d - Utc::now()).to_std().ok()).unwrap_or(Duration::ZERO);
            let _ = tokio::time::timeout(lapse, in_flight.freed.notified()).await;
            continue;
        }
        match consume(bus.store.as_ref(), tenant, subscription, free, LONG_POLL).await {
            Ok(deliveries) if deliveries.is_empty() => {}
            Ok(deliveries) => {
                {
                    let mut leases = in_flight.leases.lock();
                    for d in &deliveries {
                        leases.insert(d.message.message_id.clone(), d.ack_deadline);
                    }
                }
                // Waits while the session's mailbox is full: back-pressure.
                if to.send(ConsumerEvent::Delivered(deliveries)).await.is_err() {
                    return;
                }
            }
            Err(MessagingError::Unavailable(e)) => {
                tracing::warn!(error = %e, %subscription, "the message store is unavailable; socket consumer retries");
                tokio::time::sleep(RETRY_AFTER_FAILURE).await;
            }
            Err(e) => {
                return to
                    .do_send(ConsumerEvent::Ended(subscription, ended_because(&bus, tenant, subscription, e).await))
            }
        }
    }
}

/// The client's words for why a subscription's consumer ended, the same on
/// every back-end: a deleted subscription surfaces as "not found" on memory
/// and PostgreSQL but as a NATS consumer error on JetStream, whose text
/// (and any other back-end's failure) stays in the log.
async fn ended_because(bus: &MessageBus, tenant: TenantId, subscription: Uuid, error: MessagingError) -> String {
    let gone = match &error {
        MessagingError::SubscriptionNotFound(_) => true,
        MessagingError::Backend(_) => {
            matches!(
                bus.store.get_subscription(tenant, subscription).await,
                Err(MessagingError::SubscriptionNotFound(_))
            )
        }
        _ => false,
    };
    if gone {
        return format!("subscription '{subscription}' not found (deleted, or not this tenant's)");
    }
    match error {
        MessagingError::Backend(cause) => {
            tracing::warn!(error = %cause, %subscription, "a socket consumer ended on a message store failure");
            "the message store failed; subscribe again".to_string()
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Option<Result<ConsumerRequest, String>> {
        let value: Value = serde_json::from_str(text).unwrap();
        let obj = value.as_object().unwrap();
        parse(obj["type"].as_str().unwrap(), obj)
    }

    #[test]
    fn consumer_messages_parse_or_say_why_not() {
        let id = Uuid::new_v4();
        assert_eq!(
            parsed(&format!(r#"{{"type":"subscribe","subscriptionId":"{id}","prefetch":2}}"#)),
            Some(Ok(ConsumerRequest::Subscribe { subscription: id, prefetch: 2 }))
        );
        assert_eq!(
            parsed(&format!(r#"{{"type":"nack","subscriptionId":"{id}","messageId":"m","requeue":false}}"#)),
            Some(Ok(ConsumerRequest::Nack {
                subscription: id,
                message_id: "m".into(),
                reason: None,
                requeue: Some(false)
            }))
        );
        assert_eq!(parsed(r#"{"type":"subscribe","all":true}"#), None, "run subscriptions are not the bus's");
        for bad in [
            r#"{"type":"subscribe","subscriptionId":"x"}"#,
            r#"{"type":"subscribe","subscriptionId":"6b0f2a1e-7d51-4c3a-9a53-0d7f7e0f5d11","prefetch":0}"#,
            r#"{"type":"ack","subscriptionId":"6b0f2a1e-7d51-4c3a-9a53-0d7f7e0f5d11"}"#,
            r#"{"type":"nack","subscriptionId":"6b0f2a1e-7d51-4c3a-9a53-0d7f7e0f5d11","messageId":"m","requeue":"no"}"#,
        ] {
            assert!(matches!(parsed(bad), Some(Err(_))), "{bad}");
        }
    }
}
