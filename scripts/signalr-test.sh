#!/usr/bin/env bash
# Installs the official @microsoft/signalr client (npm ci, from the lock file)
# and runs the hub test: tests/api/signalr.rs starts a server and runs
# tests/signalr/hub.test.mjs against it with node.
set -euo pipefail
cd "$(dirname "$0")/.."
# The test installs the client itself when tests/signalr/node_modules is missing.
cargo test --test api signalr -- --nocapture
