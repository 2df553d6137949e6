//! The `hotswap` client verbs as an operator runs them: the real binary,
//! against a real `hotswap serve` process started by each test with the test
//! profile (every wait under a second, simulated clusters, in-memory store).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

mod harness;

mod agents;
mod approvals;
mod choices;
mod credentials;
mod deploy;
mod exit_codes;
mod inspect;
mod keys;
mod logout;
mod messaging;
mod pty;
mod release;
mod schemas;
mod session;
mod standalone;
mod tenants;
mod tls;
mod users;
