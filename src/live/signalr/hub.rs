//! One actor per SignalR WebSocket connection to /hubs/deployment: it reads
//! frames into its [`HubConnection`], sends what that answers and the events
//! of its groups, and keeps the connection alive with pings.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use chrono::Utc;
use hotswap_actors::events::{BusEvent, EventBus, Feed, FeedStatus, Subscribe, SubscriberId, Unsubscribe};

use super::connection::{Ending, HubConnection, Reply};
use super::protocol;
use crate::live::identity::SessionIdentity;
use crate::live::settings::WebsocketSettings;
use crate::live::shutdown::{self, ShutdownNotice, SHUTTING_DOWN};
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
    connection: HubConnection,
    last_heard: Instant,
    sent: prometheus::IntCounter,
    delivery: prometheus::Histogram,
    shutdown: ShutdownNotice,
}

impl HubSession {
    pub fn new(
        identity: SessionIdentity,
        bus: Addr<EventBus>,
        subscription: (Subscribe, Feed),
        settings: Arc<WebsocketSettings>,
        metrics: Arc<Metrics>,
        shutdown: ShutdownNotice,
    ) -> Self {
        let feed_id = subscription.1.id();
        HubSession {
            identity,
            connection: HubConnection::new(bus.clone(), feed_id, settings.clone()),
            bus,
            settings,
            feed_id,
            pending: Some(subscription),
            feed: None,
            last_heard: Instant::now(),
            sent: metrics.ws_messages.with_label_values(&[PROTOCOL]),
            delivery: metrics.ws_delivery.with_label_values(&[PROTOCOL]),
            metrics,
            shutdown,
        }
    }

    /// The server stops (or its event bus did): the client is told it may
    /// reconnect, then the socket closes with 1001.
    fn server_stopping(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        if ctx.state() != ActorState::Running {
            return;
        }
        ctx.text(protocol::close_allowing_reconnect(SHUTTING_DOWN));
        ctx.close(Some(CloseReason { code: CloseCode::Away, description: Some(SHUTTING_DOWN.into()) }));
        ctx.stop();
    }

    /// Sends the hub's close message, then closes the socket.
    /// A session already closing sends nothing more (one close frame only).
    fn close(&self, ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, error: Option<&str>) {
        if ctx.state() != ActorState::Running {
            return;
        }
        ctx.text(protocol::close(error));
        ctx.close(Some(CloseReason { code, description: error.map(str::to_string) }));
        ctx.stop();
    }

    fn answer(&mut self, replies: Vec<Reply>, ctx: &mut ws::WebsocketContext<Self>) {
        for reply in replies {
            match reply {
                Reply::Send(frame) => ctx.text(frame),
                Reply::Close(Ending::ClientClosed) => {
                    ctx.close(Some(CloseReason { code: CloseCode::Normal, description: None }));
                    ctx.stop();
                }
                Reply::Close(Ending::HandshakeRefused(reason)) => {
                    ctx.close(Some(CloseReason { code: CloseCode::Protocol, description: Some(reason) }));
                    ctx.stop();
                }
                Reply::Close(ending @ Ending::TooLarge) => self.close(ctx, CloseCode::Size, ending.close_error()),
                Reply::Close(ending @ Ending::TooManyInvalid) => {
                    self.close(ctx, CloseCode::Policy, ending.close_error())
                }
            }
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
            if act.connection.handshaken() {
                ctx.text(protocol::ping());
            }
        });
        if let Some(expires) = self.identity.expires_at {
            let left = (expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            ctx.run_later(left, |act, ctx| act.close(ctx, CloseCode::Policy, Some("The access token expired.")));
        }
        if let Some(check) = self.identity.revalidation.clone() {
            crate::live::revalidation::watch::<Self>(ctx, check, self.settings.revalidate_interval, |act, ctx, why| {
                act.close(ctx, CloseCode::Policy, Some(why))
            });
        }
        shutdown::watch::<Self>(ctx, &self.shutdown, Self::server_stopping);
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
                let replies = self.connection.receive(&text);
                self.answer(replies, ctx);
            }
            Ok(ws::Message::Binary(_)) => self.close(
                ctx,
                CloseCode::Unsupported,
                Some("Connection closed with an error: only the JSON protocol is supported."),
            ),
            Ok(ws::Message::Ping(payload)) => ctx.pong(&payload),
            Ok(ws::Message::Close(reason)) => {
                // The client's answer to our own close needs no second frame.
                if ctx.state() == ActorState::Running {
                    ctx.close(reason);
                }
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
        let mut sent = 0;
        for frame in self.connection.frames_for(&event) {
            ctx.text(frame.clone());
            sent += 1;
        }
        self.sent.inc_by(sent);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            self.slow_client(ctx);
        } else {
            self.server_stopping(ctx);
        }
    }
}

impl HubSession {
    fn slow_client(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.metrics.ws_slow_closes.with_label_values(&[PROTOCOL]).inc();
        self.close(ctx, CloseCode::Again, Some("Connection closed with an error: the client fell behind."));
    }
}
