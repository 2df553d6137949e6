#!/usr/bin/env bash
# What one run writes to PostgreSQL: transactions, rows and WAL bytes of a
# Rolling run to QA over QA_NODES simulated nodes in batches of BATCH, measured
# from pg_stat_database (this database only) and the WAL position (the whole
# server: other databases' writes count too, so run it on a quiet server).
#
#   scripts/measure-checkpoint-writes.sh [BINARY ...]
#
# Each binary gets a fresh database; give main's and this branch's binaries to
# compare them in the same run. Defaults: target/debug/hotswap, QA_NODES=1000, BATCH=2.
set -euo pipefail

PG=${PG:-postgres://postgres@127.0.0.1:5432}
QA_NODES=${QA_NODES:-1000}
BATCH=${BATCH:-2}
PORT=${PORT:-18911}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- "$ROOT/target/debug/hotswap"

psql_at() { psql "$1" -Atqc "$2"; }

stats() { # xact_commit tup_inserted tup_updated
  psql_at "$PG/postgres" "SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = '$1'"
}

# pg_stat_database lags behind the backends by up to a second: read until two
# reads a moment apart agree.
settled_stats() {
  local before after
  after=$(stats "$1")
  for _ in $(seq 1 30); do
    before=$after
    sleep 0.5
    after=$(stats "$1")
    [ "$before" = "$after" ] && break
  done
  echo "$after"
}

printf '%-55s %8s %8s %9s %9s %12s %12s %10s\n' binary seconds commits inserted updated wal_bytes bytes/node record_bytes
for bin in "$@"; do
  db="hs_measure_$$_$(date +%s%N | tail -c 7)"
  psql_at "$PG/postgres" "CREATE DATABASE $db"
  log=$(mktemp)
  HOTSWAP_ENV=test HOTSWAP_CONFIG_DIR="$ROOT/config" HOTSWAP__SERVER__BIND="127.0.0.1:$PORT" \
    HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$PG/$db" \
    HOTSWAP__SIMULATION__NODES__QA="$QA_NODES" HOTSWAP__PIPELINE__ROLLING_BATCH_SIZE="$BATCH" \
    HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY=0s HOTSWAP__PIPELINE__NODE_REQUEST_TIMEOUT=30s \
    HOTSWAP__SIMULATION__METRICS_SAMPLE_INTERVAL=1h HOTSWAP__SIMULATION__HEARTBEAT_TIMEOUT=60s \
    "$bin" serve >"$log" 2>&1 &
  pid=$!
  base="http://127.0.0.1:$PORT"
  for _ in $(seq 1 600); do curl -sf "$base/health/ready" >/dev/null && break; sleep 0.2; done
  token=$(curl -sf -X POST "$base/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  read -r c0 i0 u0 < <(settled_stats "$db" | tr '|' ' ')
  wal0=$(psql_at "$PG/postgres" "SELECT pg_current_wal_lsn()")
  start=$(date +%s.%N)
  id=$(curl -s -X POST "$base/api/v1/deployments" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
    -d '{"moduleName":"kmod-measure","version":"1.0.0","targetEnvironment":"QA","requesterEmail":"ops@example.com"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["executionId"])') || { echo "create refused; log: $log" >&2; kill "$pid"; exit 1; }
  status=Running
  while [ "$status" = Running ]; do
    sleep 0.2
    status=$(curl -sf "$base/api/v1/deployments/$id" -H "Authorization: Bearer $token" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])' || echo Running)
  done
  end=$(date +%s.%N)
  read -r c1 i1 u1 < <(settled_stats "$db" | tr '|' ' ')
  wal=$(psql_at "$PG/postgres" "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0')::bigint")
  record=$(psql_at "$PG/$db" "SELECT octet_length(record::text) FROM runs WHERE execution_id = '$id'")
  kill "$pid"; wait "$pid" 2>/dev/null || true
  [ "$status" = Succeeded ] || { echo "run ended $status; log: $log" >&2; }
  printf '%-55s %8.1f %8d %9d %9d %12d %12d %10d\n' "$bin ($status)" "$(echo "$end - $start" | bc)" \
    $((c1 - c0)) $((i1 - i0)) $((u1 - u0)) "$wal" $((wal / QA_NODES)) "$record"
  psql_at "$PG/postgres" "DROP DATABASE $db WITH (FORCE)"
  [ "$status" = Succeeded ] && rm -f "$log"
done
