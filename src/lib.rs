//! HotSwap's adapters around the orchestration core in `hotswap-actors`:
//! configuration, the HTTP API, the store back-ends and the command line.

pub mod agent;
pub mod agents;
pub mod allocator;
pub mod analysis;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod error_chain;
pub mod http;
pub mod huge_pages;
pub mod live;
pub mod messaging;
pub mod metrics;
pub mod notify;
pub mod redis;
pub mod registry;
pub mod secrets;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod tls_client;
pub mod web;
