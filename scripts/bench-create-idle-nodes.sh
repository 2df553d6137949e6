#!/usr/bin/env bash
# Creates beside a large idle cluster: on the memory store (the default), `wrk -t2 -c16` creates of
# runs to Development (3 nodes) while IDLE_NODES more nodes sit in QA, which no run touches. A create
# whose cost grows with the cluster (its downgrade check read every node) slows down as IDLE_NODES
# grows; one that reads only what it needs does not. Run it with IDLE_NODES=0 and with a large count,
# each binary in turn. BIN=path to the binary (required); DURATION in seconds (default 4).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:?BIN=path/to/hotswap}"
IDLE_NODES="${IDLE_NODES:-20000}"
DURATION="${DURATION:-4}"
PORT="${PORT:-18311}"
HOTSWAP_ENV=development HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND="127.0.0.1:$PORT" \
  HOTSWAP__LOGGING__LEVEL=error HOTSWAP__PIPELINE__MAX_ACTIVE_RUNS=100000 \
  HOTSWAP__SIMULATION__NODES__QA="$IDLE_NODES" "$BIN" serve > /tmp/hotswap-bench-idle-nodes.log 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
echo "idle nodes in QA: $IDLE_NODES"
HOTSWAP_TOKEN=$TOKEN HOTSWAP_BENCH_PREFIX=idle wrk -t2 -c16 -d"${DURATION}s" -s scripts/create.lua \
  "http://127.0.0.1:$PORT" | tail -n1
