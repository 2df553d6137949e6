//! The message bus core: topics, subscriptions, routing, leases, retries,
//! dead letters and exactly-once de-duplication, behind a [`MessageStore`]
//! so that back-ends (memory now; PostgreSQL and JetStream later) share the
//! semantics. No HTTP, no SQL: adapters in the root crate expose it.
//!
//! Every operation takes the caller's `now` so that leases, backoff and
//! expiry are decided by one clock the caller controls (tests step it).

mod clock;
mod consume;
mod error;
mod memory;
mod memory_lease;
mod memory_queue;
mod memory_records;
mod memory_state;
mod model;
mod push;
mod routing;
mod store;

pub use clock::later_by;
pub use consume::consume;
pub use error::MessagingError;
pub use memory::MemoryMessageStore;
pub use model::{
    DeadLetter, DeadLetterPage, Delivery, DeliveryGuarantee, LetterRange, Message, MessageStatus, NackOptions,
    NewMessage, NewSubscription, NewTopic, Published, RetryPolicy, RoutingStrategy, StoredMessage, Subscription,
    SubscriptionFilter, SubscriptionKind, Topic, TopicMetrics, TopicType, MAX_PAYLOAD_BYTES, MAX_PRIORITY,
    MAX_RETENTION,
};
pub use push::{run_push_subscription, PushTransport};
pub use routing::{filter_matches, route, RouteCandidate};
pub use store::{MessageStore, SharedMessageStore};
