//! One actor per /api/v1/ws connection: it reads the client's subscribe,
//! unsubscribe and ping messages, relays the events of the runs it watches
//! from its feed on the event bus, keeps the connection alive and closes it
//! when the client falls behind, goes silent, misbehaves or its token expires.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use bytestring::ByteString;
use chrono::Utc;
use hotswap_actors::events::{
    BusEvent, EventBus, Feed, FeedStatus, Subscribe, SubscriberId, Topic, Unsubscribe, Unwatch, Watch,
};
use serde_json::json;

use super::consumer::{ConsumerEvent, ConsumerRequest, SocketConsumers};
use super::identity::SessionIdentity;
use super::settings::WebsocketSettings;
use super::shutdown::{self, ShutdownNotice, SHUTTING_DOWN};
use super::wire::{encoded, parse_client, ClientMessage, Target};
use crate::metrics::Metrics;

const PROTOCOL: &str = "websocket";

pub struct LiveSession {
    identity: SessionIdentity,
    bus: Addr<EventBus>,
    settings: Arc<WebsocketSettings>,
    metrics: Arc<Metrics>,
    feed_id: SubscriberId,
    /// Until `started` hands them to the bus and the context.
    pending: Option<(Subscribe, Feed)>,
    feed: Option<FeedStatus>,
    all: bool,
    runs: HashSet<uuid::Uuid>,
    last_heard: Instant,
    invalid: u32,
    sent: prometheus::IntCounter,
    delivery: prometheus::Histogram,
    /// Event frames held back until the flush timer fires, so that a burst
    /// of events leaves in one write.
    held: Vec<ByteString>,
    flush_armed: bool,
    /// The message-bus subscriptions this socket consumes, when the server
    /// runs a bus.
    consumers: Option<SocketConsumers>,
    /// Where a subscription's run is looked up, to tell a client that names
    /// a run it cannot read (see `check_run`).
    store: Option<hotswap_actors::store::SharedStore>,
    /// The server's stop, on which the session closes with 1001.
    shutdown: Option<ShutdownNotice>,
}

impl LiveSession {
    pub fn new(
        identity: SessionIdentity,
        bus: Addr<EventBus>,
        subscription: (Subscribe, Feed),
        settings: Arc<WebsocketSettings>,
        metrics: Arc<Metrics>,
    ) -> Self {
        LiveSession {
            identity,
            bus,
            settings,
            feed_id: subscription.1.id(),
            pending: Some(subscription),
            feed: None,
            all: false,
            runs: HashSet::new(),
            last_heard: Instant::now(),
            invalid: 0,
            sent: metrics.ws_messages.with_label_values(&[PROTOCOL]),
            delivery: metrics.ws_delivery.with_label_values(&[PROTOCOL]),
            metrics,
            held: Vec::new(),
            flush_armed: false,
            consumers: None,
            store: None,
            shutdown: None,
        }
    }

    /// The same session, closing with 1001 (going away) when the server
    /// announces its stop, after the events it holds back.
    pub fn closing_on(mut self, notice: ShutdownNotice) -> Self {
        self.shutdown = Some(notice);
        self
    }

    fn server_stopping(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        for frame in self.held.drain(..) {
            ctx.text(frame);
        }
        self.close(ctx, CloseCode::Away, SHUTTING_DOWN);
    }

    /// The same session, telling a client that subscribes to a run it
    /// cannot read that no such run is there.
    pub fn with_run_lookup(mut self, store: hotswap_actors::store::SharedStore) -> Self {
        self.store = Some(store);
        self
    }

    /// A run subscribed to that is not the tenant's (unknown, mistyped, or
    /// another tenant's: one answer for all, so nothing leaks) is unwatched
    /// and the client told, rather than left waiting for events that never
    /// come. A store that cannot answer keeps the subscription.
    fn check_run(&self, id: uuid::Uuid, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(store) = self.store.clone() else { return };
        let tenant = self.identity.tenant_id;
        let lookup = async move { store.get_run(tenant, id).await };
        ctx.spawn(actix::fut::wrap_future::<_, Self>(lookup).map(move |found, act, ctx| {
            if !matches!(found, Ok(None)) || !act.runs.remove(&id) {
                return;
            }
            act.bus.do_send(Unwatch(act.feed_id, topic(Target::Run(id))));
            act.send_json(
                ctx,
                json!({
                    "type": "error",
                    "error": "NotFound",
                    "executionId": id,
                    "message": format!("no deployment {id} here: the subscription to it ends"),
                }),
            );
        }));
    }

    /// The same session, able to consume the message bus's subscriptions.
    pub fn with_consumers(mut self, consumers: SocketConsumers) -> Self {
        self.consumers = Some(consumers);
        self
    }

    fn consumer_request(&mut self, request: ConsumerRequest, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(consumers) = self.consumers.as_mut() else {
            return self.refuse(ctx, "BadRequest", "this server runs no message bus".into());
        };
        match request {
            ConsumerRequest::Subscribe { subscription, prefetch } => {
                if let Err((code, why)) = consumers.subscribe(subscription, prefetch, ctx.address().recipient()) {
                    self.refuse(ctx, code, why);
                }
            }
            ConsumerRequest::Unsubscribe(subscription) => {
                let was = consumers.unsubscribe(subscription);
                self.send_json(ctx, json!({ "type": "unsubscribed", "subscriptionId": subscription, "was": was }));
            }
            settle => {
                let answer = consumers.settle(settle);
                ctx.spawn(actix::fut::wrap_future::<_, Self>(answer).map(|outcome, _act, ctx| match outcome {
                    Ok(frame) => ctx.text(frame),
                    Err((code, message)) => {
                        ctx.text(json!({ "type": "error", "error": code, "message": message }).to_string())
                    }
                }));
            }
        }
    }

    fn send_json(&self, ctx: &mut ws::WebsocketContext<Self>, value: serde_json::Value) {
        ctx.text(value.to_string());
    }

    /// Sends one close frame and stops; a session already closing sends no
    /// second one (browsers fail a socket that hears "close after close").
    fn close(&self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, why: &str) {
        if ctx.state() != ActorState::Running {
            return;
        }
        ctx.close(Some(CloseReason { code, description: Some(why.to_string()) }));
        ctx.stop();
    }

    /// Answers a bad message; too many of them close the socket.
    fn refuse(&mut self, ctx: &mut ws::WebsocketContext<Self>, code: &str, message: String) {
        self.invalid += 1;
        self.send_json(ctx, json!({ "type": "error", "error": code, "message": message }));
        if self.invalid >= self.settings.max_invalid_messages {
            tracing::warn!(user = %self.identity.user, "closing a live session after repeated invalid messages");
            self.close(ctx, CloseCode::Policy, "too many invalid messages");
        }
    }

    fn handle_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if text.len() > self.settings.max_message_bytes {
            let limit = self.settings.max_message_bytes;
            return self.refuse(ctx, "MessageTooLarge", format!("messages may be at most {limit} bytes"));
        }
        let message = match parse_client(text) {
            Ok(m) => m,
            Err(e) => return self.refuse(ctx, "BadRequest", e),
        };
        match message {
            ClientMessage::Ping => self.send_json(ctx, json!({ "type": "pong", "timestamp": Utc::now() })),
            ClientMessage::Consumer(request) => self.consumer_request(request, ctx),
            ClientMessage::Subscribe(target) => {
                if let Target::Run(id) = target {
                    if !self.runs.contains(&id) && self.runs.len() >= self.settings.max_subscriptions {
                        let max = self.settings.max_subscriptions;
                        return self.refuse(ctx, "TooManySubscriptions", format!("at most {max} runs per session"));
                    }
                    self.runs.insert(id);
                } else {
                    self.all = true;
                }
                self.bus.do_send(Watch(self.feed_id, topic(target)));
                self.send_json(ctx, ack("subscribed", target));
                if let Target::Run(id) = target {
                    self.check_run(id, ctx);
                }
            }
            ClientMessage::Unsubscribe(target) => {
                match target {
                    Target::Run(id) => self.runs.remove(&id),
                    Target::All => std::mem::take(&mut self.all),
                };
                self.bus.do_send(Unwatch(self.feed_id, topic(target)));
                self.send_json(ctx, ack("unsubscribed", target));
            }
        }
    }
}

fn topic(target: Target) -> Topic {
    match target {
        Target::All => Topic::All,
        Target::Run(id) => Topic::Run(id),
    }
}

fn ack(kind: &str, target: Target) -> serde_json::Value {
    match target {
        Target::All => json!({ "type": kind, "all": true }),
        Target::Run(id) => json!({ "type": kind, "executionId": id }),
    }
}

impl Actor for LiveSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[PROTOCOL]).inc();
        if let Some((subscribe, feed)) = self.pending.take() {
            self.feed = Some(feed.status());
            self.bus.do_send(subscribe);
            ctx.add_stream(feed);
        }
        ctx.run_interval(self.settings.ping_interval, |act, ctx| {
            if act.last_heard.elapsed() > act.settings.client_timeout {
                tracing::info!(user = %act.identity.user, "dropping a silent live client");
                return act.close(ctx, CloseCode::Away, "no pong within the client timeout");
            }
            ctx.ping(b"");
        });
        if let Some(expires) = self.identity.expires_at {
            let left = (expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            ctx.run_later(left, |act, ctx| act.close(ctx, CloseCode::Policy, "token expired"));
        }
        if let Some(check) = self.identity.revalidation.clone() {
            super::revalidation::watch::<Self>(ctx, check, self.settings.revalidate_interval, |act, ctx, why| {
                act.close(ctx, CloseCode::Policy, why)
            });
        }
        if let Some(notice) = &self.shutdown {
            shutdown::watch::<Self>(ctx, notice, Self::server_stopping);
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[PROTOCOL]).dec();
        self.bus.do_send(Unsubscribe(self.feed_id));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for LiveSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.handle_text(&text, ctx),
            Ok(ws::Message::Binary(_)) => {
                self.refuse(ctx, "BadRequest", "binary messages are not understood; send JSON text".into())
            }
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Pong(_)) => {}
            Ok(ws::Message::Close(reason)) => {
                // The client's answer to our own close needs no second frame.
                if ctx.state() == ActorState::Running {
                    ctx.close(reason);
                }
                ctx.stop();
            }
            Ok(ws::Message::Continuation(_)) => {
                self.refuse(ctx, "BadRequest", "fragmented messages are not supported".into())
            }
            Ok(ws::Message::Nop) => {}
            Err(ws::ProtocolError::Overflow) => self.close(ctx, CloseCode::Size, "message too large"),
            Err(e) => {
                tracing::info!(error = %e, "live session protocol error");
                self.close(ctx, CloseCode::Protocol, "protocol error");
            }
        }
    }
}

impl Handler<ConsumerEvent> for LiveSession {
    type Result = ();

    fn handle(&mut self, event: ConsumerEvent, ctx: &mut Self::Context) {
        for frame in event.frames() {
            ctx.text(frame);
        }
    }
}

impl StreamHandler<Arc<BusEvent>> for LiveSession {
    fn handle(&mut self, event: Arc<BusEvent>, ctx: &mut Self::Context) {
        if ctx.state() != ActorState::Running {
            return;
        }
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            return self.slow_client(ctx);
        }
        self.delivery.observe(event.published_at.elapsed().as_secs_f64());
        let frames = encoded(&event);
        self.sent.inc_by(frames.len() as u64);
        let delay = self.settings.flush_delay;
        if delay.is_zero() {
            for frame in frames {
                ctx.text(frame.clone());
            }
            return;
        }
        self.held.extend(frames.iter().cloned());
        if !self.flush_armed {
            self.flush_armed = true;
            ctx.run_later(delay, |act, ctx| {
                act.flush_armed = false;
                for frame in act.held.drain(..) {
                    ctx.text(frame);
                }
            });
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            self.slow_client(ctx);
        } else {
            self.server_stopping(ctx);
        }
    }
}

impl LiveSession {
    fn slow_client(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        tracing::warn!(user = %self.identity.user, "live client fell behind; closing with 1013");
        self.metrics.ws_slow_closes.with_label_values(&[PROTOCOL]).inc();
        self.close(ctx, CloseCode::Again, "client too slow: its event buffer overflowed");
    }
}
