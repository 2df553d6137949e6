//! The hub over plain HTTP, for clients behind proxies that refuse
//! WebSockets: Server-Sent Events (one long GET carries the server's frames,
//! the client POSTs its own) and Long Polling (the client GETs repeatedly for
//! what waited, POSTs its own, and DELETEs to leave). Each such connection is
//! one actor, found by the connection token negotiate handed out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use bytestring::ByteString;
use chrono::Utc;
use hotswap_actors::domain::TenantId;
use hotswap_actors::events::{BusEvent, EventBus, Feed, FeedStatus, Subscribe, SubscriberId, Unsubscribe};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::connection::{HubConnection, Reply};
use super::protocol;
use crate::live::identity::SessionIdentity;
use crate::live::settings::WebsocketSettings;
use crate::live::shutdown::{self, ShutdownNotice, SHUTTING_DOWN};
use crate::metrics::Metrics;

/// How long a Long Polling request waits for frames before it answers empty.
pub const POLL_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    ServerSentEvents,
    LongPolling,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::ServerSentEvents => "signalr-sse",
            Transport::LongPolling => "signalr-longpolling",
        }
    }
}

/// What a poll gets: the frames that waited (possibly none), or word that
/// the connection is over (answered 204, which tells the client to stop).
#[derive(Debug)]
pub enum PollAnswer {
    Frames(Vec<ByteString>),
    Closed,
}

/// Whose a connection is: its tenant and user.
type Owner = (TenantId, String);

/// The HTTP-carried connections of this process, by connection token.
#[derive(Default)]
pub struct PolledConnections {
    live: Mutex<HashMap<String, (Owner, Addr<PolledConnection>)>>,
}

impl PolledConnections {
    /// The connection `token` names, if it lives and belongs to the caller
    /// (the user who opened it: the tenant it carries was settled then).
    pub fn find(&self, token: &str, caller: &SessionIdentity) -> Option<Addr<PolledConnection>> {
        let live = self.live.lock();
        let ((home, user), addr) = live.get(token)?;
        (*home == caller.home_tenant_id && *user == caller.user && addr.connected()).then(|| addr.clone())
    }

    fn insert(&self, token: &str, identity: &SessionIdentity, addr: Addr<PolledConnection>) {
        self.live.lock().insert(token.to_string(), ((identity.home_tenant_id, identity.user.clone()), addr));
    }

    fn remove(&self, token: &str) {
        self.live.lock().remove(token);
    }
}

pub struct PolledConnection {
    token: String,
    transport: Transport,
    identity: SessionIdentity,
    registry: Arc<PolledConnections>,
    bus: Addr<EventBus>,
    settings: Arc<WebsocketSettings>,
    metrics: Arc<Metrics>,
    feed_id: SubscriberId,
    pending: Option<(Subscribe, Feed)>,
    feed: Option<FeedStatus>,
    connection: HubConnection,
    /// Long Polling: frames waiting for the next poll, at most `send_buffer`.
    queue: VecDeque<ByteString>,
    /// Long Polling: the poll waiting for frames.
    waiting: Option<oneshot::Sender<PollAnswer>>,
    /// Server-Sent Events: the open event stream.
    stream: Option<mpsc::Sender<ByteString>>,
    last_heard: Instant,
    shutdown: ShutdownNotice,
}

/// What starting a connection needs.
pub struct NewConnection {
    pub token: String,
    pub transport: Transport,
    pub identity: SessionIdentity,
    pub registry: Arc<PolledConnections>,
    pub bus: Addr<EventBus>,
    pub subscription: (Subscribe, Feed),
    pub settings: Arc<WebsocketSettings>,
    pub metrics: Arc<Metrics>,
    pub shutdown: ShutdownNotice,
}

impl PolledConnection {
    pub fn start(new: NewConnection) -> Addr<PolledConnection> {
        let feed_id = new.subscription.1.id();
        let token = new.token.clone();
        let identity = new.identity.clone();
        let registry = new.registry.clone();
        let addr = PolledConnection {
            token: new.token,
            transport: new.transport,
            identity: new.identity,
            registry: new.registry,
            connection: HubConnection::new(new.bus.clone(), feed_id, new.settings.clone()),
            bus: new.bus,
            settings: new.settings,
            metrics: new.metrics,
            feed_id,
            pending: Some(new.subscription),
            feed: None,
            queue: VecDeque::new(),
            waiting: None,
            stream: None,
            last_heard: Instant::now(),
            shutdown: new.shutdown,
        }
        .start();
        registry.insert(&token, &identity, addr.clone());
        addr
    }

    /// Sends `frame` to the client, or queues it for the next poll. False
    /// when the client has fallen behind (or, for SSE, went away).
    fn push(&mut self, frame: ByteString) -> bool {
        match self.transport {
            Transport::ServerSentEvents => match &self.stream {
                Some(stream) => stream.try_send(frame).is_ok(),
                None => {
                    self.queue.push_back(frame);
                    self.queue.len() <= self.settings.send_buffer
                }
            },
            Transport::LongPolling => {
                self.queue.push_back(frame);
                if self.queue.len() > self.settings.send_buffer {
                    return false;
                }
                if let Some(poll) = self.waiting.take() {
                    let _ = poll.send(PollAnswer::Frames(self.queue.drain(..).collect()));
                }
                true
            }
        }
    }

    /// The server stops (or its event bus did): the close message lets the
    /// client reconnect, and answers the waiting poll or ends the event stream.
    fn server_stopping(&mut self, ctx: &mut Context<Self>) {
        self.push(protocol::close_allowing_reconnect(SHUTTING_DOWN));
        if let Some(poll) = self.waiting.take() {
            let _ = poll.send(PollAnswer::Frames(self.queue.drain(..).collect()));
        }
        ctx.stop();
    }

    /// Ends the connection; `error` goes into the hub's close message.
    fn end(&mut self, ctx: &mut Context<Self>, error: Option<&str>) {
        if error.is_some() {
            self.push(protocol::close(error));
            if let Some(poll) = self.waiting.take() {
                let _ = poll.send(PollAnswer::Frames(self.queue.drain(..).collect()));
            }
        }
        ctx.stop();
    }

    fn answer(&mut self, replies: Vec<Reply>, ctx: &mut Context<Self>) {
        for reply in replies {
            match reply {
                Reply::Send(frame) => {
                    if !self.push(frame) {
                        return self.fell_behind(ctx);
                    }
                }
                Reply::Close(ending) => return self.end(ctx, ending.close_error()),
            }
        }
    }

    fn fell_behind(&mut self, ctx: &mut Context<Self>) {
        self.metrics.ws_slow_closes.with_label_values(&[self.transport.label()]).inc();
        self.queue.clear();
        self.end(ctx, Some("Connection closed with an error: the client fell behind."));
    }
}

impl Actor for PolledConnection {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[self.transport.label()]).inc();
        if let Some((subscribe, feed)) = self.pending.take() {
            self.feed = Some(feed.status());
            self.bus.do_send(subscribe);
            ctx.add_stream(feed);
        }
        ctx.run_interval(self.settings.signalr_keep_alive, |act, ctx| {
            // A client that neither polls nor posts is gone. An SSE client's
            // departure shows as its closed stream instead.
            let quiet = act.last_heard.elapsed();
            let gone = match act.transport {
                Transport::LongPolling => act.waiting.is_none() && quiet > act.settings.signalr_client_timeout,
                Transport::ServerSentEvents => {
                    act.stream.as_ref().is_some_and(mpsc::Sender::is_closed)
                        || (act.stream.is_none() && quiet > act.settings.signalr_client_timeout)
                }
            };
            if gone {
                return ctx.stop();
            }
            if act.connection.handshaken() && !act.push(protocol::ping()) {
                act.fell_behind(ctx);
            }
        });
        if let Some(expires) = self.identity.expires_at {
            let left = (expires - Utc::now()).to_std().unwrap_or(Duration::ZERO);
            ctx.run_later(left, |act, ctx| act.end(ctx, Some("The access token expired.")));
        }
        if let Some(check) = self.identity.revalidation.clone() {
            crate::live::revalidation::watch::<Self>(ctx, check, self.settings.revalidate_interval, |act, ctx, why| {
                act.end(ctx, Some(why))
            });
        }
        shutdown::watch::<Self>(ctx, &self.shutdown, Self::server_stopping);
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        self.metrics.ws_sessions.with_label_values(&[self.transport.label()]).dec();
        self.bus.do_send(Unsubscribe(self.feed_id));
        self.registry.remove(&self.token);
        if let Some(poll) = self.waiting.take() {
            let _ = poll.send(PollAnswer::Closed);
        }
    }
}

impl StreamHandler<Arc<BusEvent>> for PolledConnection {
    fn handle(&mut self, event: Arc<BusEvent>, ctx: &mut Self::Context) {
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            return self.fell_behind(ctx);
        }
        let frames: Vec<ByteString> = self.connection.frames_for(&event).cloned().collect();
        for frame in frames {
            if !self.push(frame) {
                return self.fell_behind(ctx);
            }
        }
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        if self.feed.as_ref().is_some_and(FeedStatus::overflowed) {
            self.fell_behind(ctx);
        } else {
            self.server_stopping(ctx);
        }
    }
}

/// Long Polling: a GET asking for what waited.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Poll(pub oneshot::Sender<PollAnswer>);

impl Handler<Poll> for PolledConnection {
    type Result = ();

    fn handle(&mut self, Poll(answer): Poll, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        // One poll at a time: an earlier one still waiting answers empty.
        if let Some(earlier) = self.waiting.take() {
            let _ = earlier.send(PollAnswer::Frames(Vec::new()));
        }
        if !self.queue.is_empty() {
            let _ = answer.send(PollAnswer::Frames(self.queue.drain(..).collect()));
            return;
        }
        self.waiting = Some(answer);
        ctx.run_later(POLL_WAIT, |act, _| {
            if let Some(poll) = act.waiting.take() {
                act.last_heard = Instant::now();
                let _ = poll.send(PollAnswer::Frames(Vec::new()));
            }
        });
    }
}

/// Server-Sent Events: the stream that carries the server's frames from now on.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Attach(pub mpsc::Sender<ByteString>);

impl Handler<Attach> for PolledConnection {
    type Result = ();

    fn handle(&mut self, Attach(stream): Attach, ctx: &mut Self::Context) {
        for frame in self.queue.drain(..) {
            if stream.try_send(frame).is_err() {
                return ctx.stop();
            }
        }
        self.stream = Some(stream);
    }
}

/// Text the client POSTed.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Posted(pub String);

impl Handler<Posted> for PolledConnection {
    type Result = ();

    fn handle(&mut self, Posted(text): Posted, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        let replies = self.connection.receive(&text);
        self.answer(replies, ctx);
    }
}

/// The client leaves (DELETE).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

impl Handler<Leave> for PolledConnection {
    type Result = ();

    fn handle(&mut self, _: Leave, ctx: &mut Self::Context) {
        ctx.stop();
    }
}
