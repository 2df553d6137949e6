#!/usr/bin/env bash
# The auth cache: authenticated reads on PostgreSQL without Redis (each request
# asks the store whether its token is revoked and who its user is) against the
# same with Redis (both answers cached, invalidated over pub/sub), in one run.
# Needs wrk, a local PostgreSQL (HOTSWAP_TEST_DATABASE_URL or the default
# below) and Redis (REDIS_URL, default the local one).
# PROFILE=release (default) or debug picks the binary; the figures in
# docs/BENCHMARKS.md say which. PATH_READ picks the request (default the
# cluster list, which the actors answer without the store).
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
REDIS_URL="${REDIS_URL:-redis://127.0.0.1:6379}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
PROFILE="${PROFILE:-release}"
PATH_READ="${PATH_READ:-/api/v1/clusters}"
PORT=18091
# BUILD=0 uses the binary as it is (e.g. the debug one `cargo test` just built:
# a plain `cargo build` would rebuild it with other features). HOTSWAP_BIN=path
# uses that binary (no build), for instance one built in its own target directory.
BIN="${HOTSWAP_BIN:-./target/$PROFILE/hotswap}"
if [ -z "${HOTSWAP_BIN:-}" ] && [ "${BUILD:-1}" = 1 ]; then
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin hotswap; else cargo build --quiet --bin hotswap; fi
fi
DB="hotswap_bench_auth_$$"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
SERVER=
trap '[ -n "$SERVER" ] && kill $SERVER 2>/dev/null; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
DB_URL="${ADMIN_URL%/*}/$DB"

run() { # label redis-url
  HOTSWAP_ENV=development HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$DB_URL" \
    HOTSWAP__REDIS__URL="$2" HOTSWAP__REDIS__KEY_PREFIX="bench$$" \
    HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND=127.0.0.1:$PORT HOTSWAP__LOGGING__LEVEL=error \
    "$BIN" serve > "/tmp/hotswap-bench-auth-$1.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 150); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null && break; sleep 0.2; done
  TOKEN=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
  printf '%-12s ' "$1"
  wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$PATH_READ" \
    | awk '/Requests\/sec/ {rps=$2} /99%/ {p99=$2} /Non-2xx/ {bad=$NF} END {printf "req/s %s  p99 %s  non-2xx %s\n", rps, p99, bad+0}'
  kill $SERVER; wait $SERVER 2>/dev/null || true
  SERVER=
}

echo "wrk -t2 -c$CONNECTIONS -d$DURATION GET $PATH_READ as the admin ($BIN, PostgreSQL store)"
run no-redis ""
run redis "$REDIS_URL"
run no-redis ""
run redis "$REDIS_URL"
