#!/usr/bin/env bash
# The run list as history grows (issue 16): `GET /api/v1/deployments?pageSize=20` as the admin with
# `wrk -t2 -c16`, after CREATE_SECONDS of creates (wrk with scripts/create.lua) have finished their
# runs, and on PostgreSQL after SEED more finished runs are stored (copies of a stored run, counted
# in the same per-day counters admission keeps, as scripts/bench-cluster.sh seeds them).
#   STORE=memory|postgres (default postgres)  BIN=path to the binary (required)
#   SEED (default 100000; PostgreSQL only)    LIST_PATH (default the unfiltered first page)
# Prints the creates' rate, the runs stored, the list's requests per second and p99, and on
# PostgreSQL the transactions the database counted per list request.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:?BIN=path/to/hotswap}"
STORE="${STORE:-postgres}"
SEED="${SEED:-100000}"
CREATE_SECONDS="${CREATE_SECONDS:-5}"
DURATION="${DURATION:-6s}"
LIST_PATH="${LIST_PATH:-/api/v1/deployments?pageSize=20}"
PORT="${PORT:-18301}"
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="hotswap_bench_list_$$"
DB_URL="${ADMIN_URL%/*}/$DB"
settings=(HOTSWAP_ENV=development HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND="127.0.0.1:$PORT"
  HOTSWAP__LOGGING__LEVEL=error HOTSWAP__PIPELINE__MAX_ACTIVE_RUNS=100000)
if [ "$STORE" = postgres ]; then
  psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
  settings+=(HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$DB_URL")
fi
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; fi
  if [ "$STORE" = postgres ]; then psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; fi
}
trap cleanup EXIT
env "${settings[@]}" "$BIN" serve > /tmp/hotswap-bench-list.log 2>&1 &
SERVER=$!
for _ in $(seq 1 150); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
TOKEN=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
# X-Total-Count of a list request.
total_of() {
  curl -fs -o /dev/null -D - -H "Authorization: Bearer $TOKEN" "127.0.0.1:$PORT/api/v1/deployments?$1" |
    tr -d '\r' | awk -F': ' 'tolower($1) == "x-total-count" {print $2}'
}
echo "creates for ${CREATE_SECONDS}s: $(HOTSWAP_TOKEN=$TOKEN HOTSWAP_BENCH_PREFIX=list wrk -t2 -c16 -d"${CREATE_SECONDS}s" \
  -s scripts/create.lua "http://127.0.0.1:$PORT" | tail -n1)"
running=
for _ in $(seq 1 120); do
  running=$(total_of "status=Running&pageSize=1")
  [ "${running:-1}" = 0 ] && break
  sleep 1
done
if [ "$STORE" = postgres ] && [ "$SEED" -gt 0 ]; then
  psql "$DB_URL" -q <<SQL
INSERT INTO runs (tenant_id, execution_id, module_name, version, target_environment, status, created_at,
                  created_at_nanos, finished_at, finished_at_nanos, revision, holds_module, record, saved_at)
SELECT r.tenant_id, gen_random_uuid(), 'seeded-' || g, r.version, r.target_environment, 'Succeeded',
       now() - interval '1 day', 0, now(), 0, 1, false, r.record, now()
FROM (SELECT * FROM runs LIMIT 1) r, generate_series(1, $SEED) g;
INSERT INTO tenant_runs_per_day (tenant_id, day, runs)
SELECT tenant_id, ((now() - interval '1 day') AT TIME ZONE 'UTC')::date, $SEED FROM (SELECT tenant_id FROM runs LIMIT 1) t
ON CONFLICT (tenant_id, day) DO UPDATE SET runs = tenant_runs_per_day.runs + EXCLUDED.runs;
VACUUM ANALYZE runs;
SQL
fi
echo "$STORE: runs stored $(total_of "pageSize=1") (still running: ${running:-?})"
transactions() { psql "$ADMIN_URL" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }
[ "$STORE" = postgres ] && before=$(transactions)
wrk -t2 -c16 -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$LIST_PATH" > /tmp/hotswap-bench-list.wrk
awk -v path="$LIST_PATH" '/Requests\/sec/ {rps=$2} /99%/ {p99=$2} /requests in/ {n=$1} /Non-2xx/ {bad=$NF}
  END {printf "GET %s: req/s %s  p99 %s  requests %s  non-2xx %s\n", path, rps, p99, n, bad + 0}' /tmp/hotswap-bench-list.wrk
if [ "$STORE" = postgres ]; then
  requests=$(awk '/requests in/ {print $1}' /tmp/hotswap-bench-list.wrk)
  echo "transactions per list request: $(awk -v d=$(( $(transactions) - before )) -v n="$requests" 'BEGIN {printf "%.2f", d / n}')"
fi
