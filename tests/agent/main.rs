//! `hotswap agent` as real processes on loopback, against a real server
//! process: enrolment, a signed module promoted through every environment
//! (agents mixed with simulated nodes), and what agents refuse or undo.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

#[path = "../durability/process.rs"]
#[allow(dead_code)] // Shared with the durability tests, which use all of it.
mod process;

mod agents;
mod away;
mod desired;
mod download;
mod enrolment;
mod health;
mod left_over_hooks;
mod partition;
mod pending_restore;
mod promotion;
mod prune;
mod quarantine;
mod removal;
mod restart;
mod routing;
mod signing_keys;
mod staged;
mod start;
mod suspension;
