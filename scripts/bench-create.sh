#!/usr/bin/env bash
# Deployment creates through the API: the memory store against PostgreSQL in one
# run, beside pgbench's plain single-row insert rate on the same server.
# Needs wrk and a local PostgreSQL (HOTSWAP_TEST_DATABASE_URL or the default below).
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
PORT=18090
cargo build --release --quiet --bin hotswap
DB="hotswap_bench_$$"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
trap 'kill $SERVER 2>/dev/null || true; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
DB_URL="${ADMIN_URL%/*}/$DB"

run() { # backend
  # Development profile for its demo users; rate limits off so that wrk measures the service.
  HOTSWAP_ENV=development HOTSWAP__STORE__BACKEND="$1" HOTSWAP__STORE__URL="$DB_URL" \
    HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND=127.0.0.1:$PORT HOTSWAP__LOGGING__LEVEL=error \
    ./target/release/hotswap serve > "/tmp/hotswap-bench-$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
  HOTSWAP_TOKEN=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  export HOTSWAP_TOKEN
  printf '%-9s ' "$1"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s scripts/create.lua "http://127.0.0.1:$PORT" | tail -n1
  kill $SERVER; wait $SERVER 2>/dev/null || true
}

echo "wrk -t2 -c$CONNECTIONS -d$DURATION, POST /api/v1/deployments (target Development, 3 simulated nodes)"
run memory
run postgres
psql "$DB_URL" -qc "CREATE TABLE bench_insert (id bigserial primary key, tenant_id uuid, body jsonb, at timestamptz default now())"
echo "INSERT INTO bench_insert (tenant_id, body) VALUES ('00000000-0000-0000-0000-000000000001', '{\"k\": 1}');" > /tmp/hotswap-insert.sql
printf '%-9s ' pgbench
pgbench -n -f /tmp/hotswap-insert.sql -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" "$DB_URL" | awk '/^tps/ {printf "inserts/s %.0f\n", $3}'
