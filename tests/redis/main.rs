//! Two `hotswap serve` processes on one PostgreSQL database and one Redis:
//! live updates cross from one instance's runs to the other's clients, rate
//! limits count across both, and a Redis that stops and starts again during
//! a run loses the run nothing.
//!
//! Until runs have owners (leases), each run is driven by the instance it was
//! created on, and the reconciler, which would adopt the other instance's
//! runs, is off on both.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

#[path = "../durability/process.rs"]
#[allow(dead_code)] // Shared with tests/durability, which uses all of it.
mod process;

mod cluster;
mod limits;
mod live;
mod outage;
mod redis_server;
