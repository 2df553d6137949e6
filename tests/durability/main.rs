//! Durability on PostgreSQL with the real binary: a run survives SIGKILL of
//! the process, and a database outage gives 503s, never 500s, and loses no
//! acknowledged deployment. Also what the real process sets up for itself
//! (`huge_pages`: its opt-out of transparent huge pages).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod support;

mod approvals;
mod batches;
mod huge_pages;
mod outage;
mod overload;
mod plans;
mod process;
mod request_log;
mod restart;
mod shutdown;
mod signalr_reconnect;
mod start_up;
mod tenants;
mod verbs;
mod watch_reconnect;
