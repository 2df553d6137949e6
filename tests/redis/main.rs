//! Two `hotswap serve` processes on one PostgreSQL database and one Redis:
//! live updates cross from one instance's runs to the other's clients, rate
//! limits count across both, and a Redis that stops and starts again during
//! a run loses the run nothing.
//!
//! Each run is driven by the instance it was created on: the leases are long
//! enough that neither takes the other's runs over, and the reconciler is off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

#[path = "../durability/process.rs"]
#[allow(dead_code)] // Shared with tests/durability, which uses all of it.
mod process;

mod auth_cache;
mod cluster;
mod graph;
mod installations;
mod limits;
mod live;
mod outage;
mod redis_server;
