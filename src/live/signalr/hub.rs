//! One actor per SignalR connection to /hubs/deployment: handshake, the
//! original's four hub methods, its two events, keep-alive pings.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use chrono::Utc;
use hotswap_actors::events::{
    BusEvent, EventBus, Feed, FeedStatus, Subscribe, SubscriberId, Topic, Unsubscribe, Unwatch, Watch,
};
use serde_json::Value;
use uuid::Uuid;

use super::events::{encoded, Audience};
use super::protocol::{self, HubMessage};
use crate::live::identity::SessionIdentity;
use crate::live::settings::WebsocketSettings;
use crate::metrics::Metrics;

const PROTOCOL: &str = "signalr";

pub struct HubSession {
    identity: SessionIdentity,
    bus: Addr<EventBus>,
    settings: Arc<WebsocketSettings>,
    metrics: Arc<Metrics>,
    feed_id: SubscriberId,
    pending: Option<(Subscribe, Feed)>,
    feed: Option<FeedStatus>,
    handshaken: bool,
    buffer: String,
    all: bool,
    runs: HashSet<Uuid>,
    last_heard: Instant,
    invalid: u32,
    sent: prometheus::IntCounter,
    delivery: prometheus::Histogram,
}

impl HubSession {
    pub fn new(
        identity: SessionIdentity,
        bus: Addr<EventBus>,
        subscription: (Subscribe, Feed),
        settings: Arc<WebsocketSettings>,
        metrics: Arc<Metrics>,
    ) -> Self {
        HubSession {
            identity,
            bus,
            settings,
            feed_id: subscription.1.id(),
            pending: Some(subscription),
            feed: None,
            handshaken: false,
            buffer: String::new(),
            all: false,
            runs: HashSet::new(),
            last_heard: Instant::now(),
            invalid: 0,
            sent: metrics.ws_messages.with_label_values(&[PROTOCOL]),
            delivery: metrics.ws_delivery.with_label_values(&[PROTOCOL]),
            metrics,
        }
    }

    /// Sends the hub's close message, then closes the socket.
    fn close(&self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, error: Option<&str>) {
        ctx.text(protocol::close(error));
        ctx.close(Some(CloseReason { code, description: error.map(str::to_string) }));
        ctx.stop();
    }

    fn handle_record(&mut self, record: &str, ctx: &mut ws::WebsocketContext<Self>) {
        if !self.handshaken {
            match protocol::handshake(record) {
                Ok(()) => {
                    self.handshaken = true;
                    ctx.text(protocol::handshake_reply(None));
                }
                Err(e) => {
                    ctx.text(protocol::handshake_reply(Some(&e)));
                    ctx.close(Some(CloseReason { code: CloseCode::Protocol, description: Some(e) }));
                    ctx.stop();
                }
            }
            return;
        }
        match protocol::parse(record) {
            Ok(HubMessage::Invocation { invocation_id, target, arguments }) => {
                let outcome = self.invoke(&target, &arguments);
                if let Err(e) = &outcome {
                    tracing::info!(%target, error = %e, "hub invocation refused");
                }
                // Without an invocation id the client expects no completion.
                if let Some(id) = invocation_id {
                    ctx.text(protocol::completion(&id, outcome.err().as_deref()));
                }
            }
            Ok(HubMessage::StreamInvocation { invocation_id }) => {
                ctx.text(protocol::completion(&invocation_id, Some("This hub has no streaming methods.")));
            }
            Ok(HubMessage::Ping | HubMessage::CancelInvocation | HubMessage::Other(_)) => {}
            Ok(HubMessage::Close) => {
                ctx.close(Some(CloseReason { code: CloseCode::Normal, description: None }));
                ctx.stop();
            }
            Err(e) => {
                self.invalid += 1;
                tracing::info!(error = %e, "malformed hub message");
                if self.invalid >= self.settings.max_invalid_messages {
                    self.close(
                        ctx,
                        CloseCode::Policy,
                        Some("Connection closed with an error: too many invalid messages."),
                    );
                }
            }
        }
    }

    /// The original hub's methods.
    fn invoke(&mut self, target: &str, args: &[Value]) -> Result<(), String> {
        let expect = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "Failed to invoke '{target}' due to an error on the server. InvalidDataException: Invocation provides {} argument(s) but target expects {n}.",
                    args.len()
                ))
            }
        };
        match target {
            "SubscribeToDeployment" | "UnsubscribeFromDeployment" => {
                expect(1)?;
                let id = match &args[0] {
                    Value::String(s) if !s.trim().is_empty() => s.trim(),
                    _ => return Err(format!("An error occurred invoking '{target}': executionId is required.")),
                };
                let id = Uuid::parse_str(id)
                    .map_err(|_| format!("An error occurred invoking '{target}': '{id}' is not a deployment id."))?;
                if target == "SubscribeToDeployment" {
                    if !self.runs.contains(&id) && self.runs.len() >= self.settings.max_subscriptions {
                        return Err(format!(
                            "An error occurred invoking '{target}': at most {} deployments per connection.",
                            self.settings.max_subscriptions
                        ));
                    }
                    self.runs.insert(id);
                    self.bus.do_send(Watch(self.feed_id, Topic::Run(id)));
                } else {
                    self.runs.remove(&id);
                    self.bus.do_send(Unwatch(self.feed_id, Topic::Run(id)));
                }
                Ok(())
            }
            "SubscribeToAllDeployments" => {
                expect(0)?;
                self.all = true;
                self.bus.do_send(Watch(self.feed_id, Topic::All));
                Ok(())
            }
            "UnsubscribeFromAllDeployments" => {
                expect(0)?;
                self.all = false;
                self.bus.do_send(Unwatch(self.feed_id, Topic::All));
                Ok(())
            }
            other => Err(format!(
                "Failed to invoke '{other}' due to an error on the server. HubException: Method does not exist."
            )),
        }
    }
}

impl Actor for HubSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[PROTOCOL]).inc();
        if let Some((subscribe, feed)) = self.pending.take() {
            self.feed = Some(feed.status());
            self.bus.do_send(subscribe);
            ctx.add_stream(feed);
        }
        ctx.run_interval(self.settings.signalr_keep_alive, |act, ctx| {
            if act.last_heard.elapsed() > act.settings.signalr_client_timeout {
                return act.close(
                    ctx,
                    CloseCode::Away,
                    Some("Server timeout elapsed without receiving a message from the client."),
                );
            }
            if act.handshaken {
                ctx.text(protocol::ping());
            }
        });
        if let Some(expires) = self.identity.expires_at {
            let left = (expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            ctx.run_later(left, |act, ctx| act.close(ctx, CloseCode::Policy, Some("The access token expired.")));
        }
        if let Some(check) = self.identity.revalidation.clone() {
            crate::live::revalidation::watch(ctx, check, self.settings.revalidate_interval, |act, ctx, why| {
                act.close(ctx, CloseCode::Policy, Some(why))
            });
        }
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[PROTOCOL]).dec();
        self.bus.do_send(Unsubscribe(self.feed_id));
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for HubSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => {
                if self.buffer.len() + text.len() > self.settings.max_message_bytes * 8 {
                    return self.close(
                        ctx,
                        CloseCode::Size,
                        Some("Connection closed with an error: message too large."),
                    );
                }
                for record in protocol::records(&mut self.buffer, &text) {
                    if ctx.state() != ActorState::Running {
                        break;
                    }
                    self.handle_record(&record, ctx);
                }
            }
            Ok(ws::Message::Binary(_)) => self.close(
                ctx,
                CloseCode::Unsupported,
                Some("Connection closed with an error: only the JSON protocol is supported."),
            ),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Ok(_) => {}
            Err(e) => {
                tracing::info!(error = %e, "hub protocol error");
                ctx.stop();
            }
        }
    }
}

impl StreamHandler<Arc<BusEvent>> for HubSession {
    fn handle(&mut self, event: Arc<BusEvent>, ctx: &mut Self::Context) {
        if ctx.state() != ActorState::Running {
            return;
        }
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            return self.slow_client(ctx);
        }
        self.delivery.observe(event.published_at.elapsed().as_secs_f64());
        let in_group = self.runs.contains(&event.event.execution_id);
        let mut sent = 0;
        for (audience, frame) in encoded(&event) {
            if in_group || (self.all && *audience == Audience::RunAndAll) {
                ctx.text(frame.clone());
                sent += 1;
            }
        }
        self.sent.inc_by(sent);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            self.slow_client(ctx);
        } else {
            self.close(ctx, CloseCode::Restart, Some("The server is shutting down."));
        }
    }
}

impl HubSession {
    fn slow_client(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.metrics.ws_slow_closes.with_label_values(&[PROTOCOL]).inc();
        self.close(ctx, CloseCode::Again, Some("Connection closed with an error: the client fell behind."));
    }
}
