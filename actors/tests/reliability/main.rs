//! The core's reliability, exercised through the orchestrator with the
//! in-memory store (or a store that fails on purpose): verbs are durable
//! before they are acknowledged, runs are never left without an owner,
//! periodic work stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test code: a panic is a failure with its message.

#[path = "../../../tests/support/poll.rs"]
#[allow(dead_code)]
mod poll;

mod harness;

mod faults;
mod orphans;
mod overload;
mod restore;
mod stuck;
mod verbs;
mod window;
