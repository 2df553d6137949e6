//! The message bus's adapter: its settings, the service the HTTP handlers
//! call (`MessageBus`), the handlers' JSON shapes and the periodic
//! retention sweep. The semantics live in `hotswap_actors::messaging`.

mod bus;
pub mod deployment_events;
pub mod deployment_outbox;
pub mod duration;
pub mod jetstream;
pub mod message_dto;
pub mod push;
pub mod push_policy;
mod retention;
pub mod settings;
pub mod topic_dto;
mod topic_enums;

pub use bus::{BusError, MessageBus, TopicCreation};
pub use retention::RetentionSweep;
pub use settings::{MessagingBackend, MessagingSettings};
