//! End-to-end tests of the HTTP API against a server started on port 0 with
//! the test profile (every wait at or under one second).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Test and benchmark code: a panic is a failure with its message.

#[path = "../support/mod.rs"]
mod db;
mod support;
mod ws_support;

mod auth;
mod authz_matrix;
mod security;

mod admin;
mod agents;
mod approvals;
mod audit;
mod clusters;
mod dashboard;
mod deployment_batches;
mod deployment_topic;
mod deployments;
mod dry_run;
mod graph;
mod isolation;
mod live;
mod live_revalidation;
mod logged_client_address;
mod messaging_api;
mod messaging_push;
mod messaging_rules;
mod messaging_ws;
mod metrics;
mod signalr;
mod strategies;
mod supervision;
mod tenant_live_sessions;
mod tenants;
mod verbs;

mod hardening;
mod registry;
mod registry_cli;
mod registry_core;
mod registry_gc;
mod registry_limits;
mod registry_scan;
mod registry_signatures;
mod registry_support;
mod schemas;
mod secrets;
mod upload_fuzz;
mod vault_fixture;
