//! The NATS JetStream back-end of the message bus (`[messaging] backend =
//! "jetstream"`). Layout (docs/MESSAGING.md, "JetStream"):
//! - a work-queue stream per tenant-topic holding one copy of each message
//!   per subscription it was routed to, on
//!   `<prefix>.<tenant>.<topic digest>.<subscription>.p<priority>.<id digest>`;
//! - a durable pull consumer per subscription (ten, one per priority lane,
//!   on Priority topics); AckWait is the lease, BackOff and Nak delays the
//!   retry policy, MaxDeliver the retry limit;
//! - one dead-letter stream; a key-value bucket for topics, subscriptions,
//!   message records and idempotency keys.
//!
//! Routing, filters and schema checks stay in HotSwap (the core's `route`).

mod dlq;
mod error;
mod lease;
mod messages;
mod meta;
mod metrics;
mod names;
mod owner;
mod publish;
mod records;
mod runtime;
mod settle;
mod setup;
mod store;
mod streams;
mod topics;

pub use names::Names;
pub use setup::{JetStreamConfig, JetStreamMessageStore};
