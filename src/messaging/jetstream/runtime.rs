//! What this process holds for each subscription between a lease and its
//! ack: the acker of every leased JetStream message (an ack must answer the
//! very delivery the server handed out), and on ordered topics the messages
//! fetched while an earlier message of their partition key was in flight.
//! Lost on restart, which is safe: the server redelivers whatever was not
//! acknowledged once its AckWait passes.

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::jetstream::message::Acker;
use chrono::{DateTime, Utc};

use hotswap_actors::messaging::Message;

/// One fetched JetStream message, shared with the deliveries made of it.
pub struct Fetched {
    pub message: Arc<Message>,
    pub acker: Acker,
    pub stream_seq: u64,
    /// The server's delivery count: 1 on the first delivery.
    pub attempts: u32,
}

pub struct InFlight {
    pub fetched: Fetched,
    pub deadline: DateTime<Utc>,
}

#[derive(Default)]
pub struct SubRuntime {
    /// Leased deliveries by message id.
    pub in_flight: HashMap<String, InFlight>,
    /// Ordered topics: fetched but waiting for their key's head, by stream
    /// sequence (the server's order).
    pub held: Vec<Fetched>,
    /// Ordered topics: keys whose head failed and waits for its redelivery
    /// (stream sequence of that head); later messages of the key wait too.
    pub retrying: HashMap<String, u64>,
}

impl SubRuntime {
    /// Leases whose deadline passed, removed.
    pub fn take_expired(&mut self, now: DateTime<Utc>) -> Vec<InFlight> {
        if !self.in_flight.values().any(|l| l.deadline <= now) {
            return Vec::new();
        }
        let ids: Vec<String> =
            self.in_flight.iter().filter(|(_, l)| l.deadline <= now).map(|(id, _)| id.clone()).collect();
        ids.into_iter().filter_map(|id| self.in_flight.remove(&id)).collect()
    }
}
