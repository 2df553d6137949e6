//! The event bus actor: one per process, between the coordinators and every
//! live subscriber.

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix::prelude::*;
use tokio::sync::mpsc::{self, error::TrySendError};
use uuid::Uuid;

use super::feed::{FeedShared, SubscriberId};
use crate::domain::{RunRecord, TenantId};
use crate::store::RunEvent;

/// Slots adapters may use to keep one encoding of an event for all their clients.
const MEMO_SLOTS: usize = 4;

/// One event of a run as published: the event and the run as it was saved with it.
pub struct BusEvent {
    pub event: RunEvent,
    pub run: Arc<RunRecord>,
    /// When the bus received it; lets adapters measure delivery latency.
    pub published_at: Instant,
    memo: [OnceLock<Box<dyn Any + Send + Sync>>; MEMO_SLOTS],
}

impl BusEvent {
    pub fn new(event: RunEvent, run: Arc<RunRecord>) -> Self {
        BusEvent { event, run, published_at: Instant::now(), memo: Default::default() }
    }

    /// The value `make` computes for this event, computed once per slot and
    /// shared by every subscriber: an adapter encodes an event once however
    /// many clients receive it. Each adapter keeps to its own slot and type;
    /// a slot out of range or of another type yields None.
    pub fn memo<T: Any + Send + Sync>(&self, slot: usize, make: impl FnOnce(&BusEvent) -> T) -> Option<&T> {
        let cell = self.memo.get(slot)?;
        cell.get_or_init(|| Box::new(make(self))).downcast_ref::<T>()
    }
}

/// Counters the bus keeps; readable without asking the actor.
#[derive(Default, Debug)]
pub struct BusStats {
    pub subscribers: AtomicUsize,
    /// Events handed to feeds and not yet read from them (for a moment
    /// after a publish it may read low, even below zero).
    pub queued: AtomicI64,
    pub published: AtomicU64,
    pub delivered: AtomicU64,
    /// Feeds cut off because their queue was full.
    pub overflows: AtomicU64,
    /// A backplane carries what is published here to other instances, whose
    /// clients may be listening though none listens here.
    pub relayed: AtomicBool,
}

impl BusStats {
    /// Events waiting in feeds.
    pub fn backlog(&self) -> u64 {
        self.queued.load(Ordering::Relaxed).max(0) as u64
    }

    /// Whether anyone listens at all; publishers may skip work that only
    /// live subscribers would see.
    pub fn listening(&self) -> bool {
        self.subscribers.load(Ordering::Relaxed) > 0 || self.relayed.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// Every run of the subscriber's tenant.
    All,
    Run(Uuid),
}

struct Subscriber {
    sender: mpsc::Sender<Arc<BusEvent>>,
    shared: Arc<FeedShared>,
    all: bool,
    runs: HashSet<Uuid>,
}

impl Subscriber {
    fn wants(&self, run: Uuid) -> bool {
        self.all || self.runs.contains(&run)
    }
}

/// Where a bus also hands what is published on it, so that other processes'
/// buses can fan it out to their own subscribers (a backplane). It must not
/// block: it is called on the bus's thread for every publish.
pub trait Relay: Send + Sync {
    fn relay(&self, run: &Arc<RunRecord>, events: &[RunEvent]);
}

pub struct EventBus {
    by_tenant: HashMap<TenantId, HashMap<SubscriberId, Subscriber>>,
    tenant_of: HashMap<SubscriberId, TenantId>,
    stats: Arc<BusStats>,
    relay: Option<Arc<dyn Relay>>,
    /// Relays added beside the backplane's (the message bus's system topic).
    more_relays: Vec<Arc<dyn Relay>>,
}

impl EventBus {
    pub fn new(stats: Arc<BusStats>) -> Self {
        EventBus { by_tenant: HashMap::new(), tenant_of: HashMap::new(), stats, relay: None, more_relays: Vec::new() }
    }

    fn subscriber(&mut self, id: SubscriberId) -> Option<&mut Subscriber> {
        let tenant = self.tenant_of.get(&id)?;
        self.by_tenant.get_mut(tenant)?.get_mut(&id)
    }

    fn remove(&mut self, id: SubscriberId) -> Option<Subscriber> {
        let tenant = self.tenant_of.remove(&id)?;
        let subs = self.by_tenant.get_mut(&tenant)?;
        let removed = subs.remove(&id);
        if subs.is_empty() {
            self.by_tenant.remove(&tenant);
        }
        if removed.is_some() {
            self.stats.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }
}

impl Actor for EventBus {
    type Context = Context<Self>;
}

/// Registers a feed made by [`super::open_feed`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    pub(super) id: SubscriberId,
    pub(super) tenant: TenantId,
    pub(super) sender: mpsc::Sender<Arc<BusEvent>>,
    pub(super) shared: Arc<FeedShared>,
}

impl Handler<Subscribe> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: Subscribe, _ctx: &mut Self::Context) {
        let sub = Subscriber { sender: msg.sender, shared: msg.shared, all: false, runs: HashSet::new() };
        if self.by_tenant.entry(msg.tenant).or_default().insert(msg.id, sub).is_none() {
            self.stats.subscribers.fetch_add(1, Ordering::Relaxed);
        }
        self.tenant_of.insert(msg.id, msg.tenant);
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe(pub SubscriberId);

impl Handler<Unsubscribe> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: Unsubscribe, _ctx: &mut Self::Context) {
        self.remove(msg.0);
    }
}

/// Starts delivering a topic's events to a subscriber.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Watch(pub SubscriberId, pub Topic);

impl Handler<Watch> for EventBus {
    type Result = ();

    fn handle(&mut self, Watch(id, topic): Watch, _ctx: &mut Self::Context) {
        if let Some(sub) = self.subscriber(id) {
            match topic {
                Topic::All => sub.all = true,
                Topic::Run(run) => {
                    sub.runs.insert(run);
                }
            }
        }
    }
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct Unwatch(pub SubscriberId, pub Topic);

impl Handler<Unwatch> for EventBus {
    type Result = ();

    fn handle(&mut self, Unwatch(id, topic): Unwatch, _ctx: &mut Self::Context) {
        if let Some(sub) = self.subscriber(id) {
            match topic {
                Topic::All => sub.all = false,
                Topic::Run(run) => {
                    sub.runs.remove(&run);
                }
            }
        }
    }
}

/// Events of one run, in order, with the run as saved with them.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Publish {
    pub run: Arc<RunRecord>,
    pub events: Vec<RunEvent>,
}

impl Handler<Publish> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: Publish, _ctx: &mut Self::Context) {
        for relay in self.relay.iter().chain(&self.more_relays) {
            relay.relay(&msg.run, &msg.events);
        }
        self.fan_out(msg);
    }
}

/// Sets (or replaces) the bus's [`Relay`].
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetRelay(pub Arc<dyn Relay>);

impl Handler<SetRelay> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: SetRelay, _ctx: &mut Self::Context) {
        self.relay = Some(msg.0);
        self.stats.relayed.store(true, Ordering::Relaxed);
    }
}

/// Adds a [`Relay`] beside the one `SetRelay` sets: each is handed every
/// batch this bus publishes (not those relayed from other processes).
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddRelay(pub Arc<dyn Relay>);

impl Handler<AddRelay> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: AddRelay, _ctx: &mut Self::Context) {
        self.more_relays.push(msg.0);
    }
}

/// Events another process published and relayed here: fanned out to this
/// bus's subscribers and not relayed again.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Relayed(pub Publish);

impl Handler<Relayed> for EventBus {
    type Result = ();

    fn handle(&mut self, msg: Relayed, _ctx: &mut Self::Context) {
        self.fan_out(msg.0);
    }
}

impl EventBus {
    fn fan_out(&mut self, msg: Publish) {
        let tenant = msg.run.tenant_id;
        let execution_id = msg.run.execution_id;
        self.stats.published.fetch_add(msg.events.len() as u64, Ordering::Relaxed);
        let Some(subs) = self.by_tenant.get(&tenant) else { return };
        let events: Vec<Arc<BusEvent>> =
            msg.events.into_iter().map(|event| Arc::new(BusEvent::new(event, msg.run.clone()))).collect();
        let mut dropped = Vec::new();
        // Subscriber by subscriber, so that each gets the whole batch at once
        // (one wake-up and one write for it) and in order.
        let mut sent = 0;
        for (id, sub) in subs.iter().filter(|(_, s)| s.wants(execution_id)) {
            for event in &events {
                match sub.sender.try_send(event.clone()) {
                    Ok(()) => sent += 1,
                    Err(TrySendError::Full(_)) => {
                        if !sub.shared.overflowed.swap(true, Ordering::AcqRel) {
                            self.stats.overflows.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(subscriber = id, "live subscriber fell behind; cutting it off");
                        }
                        dropped.push(*id);
                        break;
                    }
                    Err(TrySendError::Closed(_)) => {
                        dropped.push(*id);
                        break;
                    }
                }
            }
        }
        // Counted once per publish; feeds may already have read some (the
        // gauge is signed for that moment).
        self.stats.queued.fetch_add(sent, Ordering::Relaxed);
        self.stats.delivered.fetch_add(sent as u64, Ordering::Relaxed);
        for id in dropped {
            // Dropping the sender ends the feed once it has read what it holds.
            self.remove(id);
        }
    }
}
