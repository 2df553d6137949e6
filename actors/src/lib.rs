//! The orchestration core of HotSwap.
//!
//! Everything here is free of HTTP and SQL: the domain types, the node and
//! coordinator actors, the deployment strategies, our own supervision, and the
//! store traits that the adapters in the root crate implement.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod approval;
pub mod audit;
pub mod batch;
pub mod cluster;
pub mod coordinator;
pub mod domain;
pub mod error;
pub mod events;
pub mod graph;
pub mod hooks;
pub mod messaging;
pub mod node;
pub mod orchestrator;
pub mod registry;
pub mod schemas;
pub mod settings;
pub mod simulation;
pub mod store;
pub mod supervision;
pub mod tenant;

pub use error::CoreError;
pub use orchestrator::Orchestrator;
