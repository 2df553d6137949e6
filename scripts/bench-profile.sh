#!/usr/bin/env bash
# Where a create's time goes on PostgreSQL (issue 16): one instance on a fresh database.
#  1. One create and its run to the end with `log_statement = all` on the bench database: the
#     statements (round trips) and transactions of the create up to its 202, and of the run after.
#  2. wrk creates (as scripts/bench-cluster.sh) while the bench database's sessions are sampled
#     every 50 ms in pg_stat_activity: on average how many sessions are running a statement,
#     waiting for a lock (advisory = the admission lock), waiting on the WAL flush (commit), or
#     idle in a transaction waiting for the application.
# Needs wrk, psql and a local PostgreSQL whose log (stderr, `log_line_prefix` with %d) is readable
# at $PG_LOG. PROFILE=release for the release binary (default: the debug binary the tests build).
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_LOG="${PG_LOG:-/var/log/postgresql/postgresql-15-main.log}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
PROFILE="${PROFILE:-debug}"
PORT="${PORT:-18095}"
# HOTSWAP_BIN=path uses that binary as it is (no build): for instance the one `cargo test` built,
# since `cargo build --bin hotswap` alone unifies features differently and rebuilds dependencies.
if [ -n "${HOTSWAP_BIN:-}" ]; then
  BIN="$HOTSWAP_BIN"
else
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin hotswap; else cargo build --quiet --bin hotswap; fi
  BIN="./target/$PROFILE/hotswap"
fi
DB="hotswap_bench_profile_$$"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
SERVER=
trap 'kill $SERVER 2>/dev/null || true; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
DB_URL="${ADMIN_URL%/*}/$DB"

start() {
  HOTSWAP_ENV=development HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$DB_URL" \
    HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND="127.0.0.1:$PORT" \
    HOTSWAP__LOGGING__LEVEL=error "$BIN" serve > "/tmp/hotswap-bench-profile.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do curl -fs "127.0.0.1:$PORT/health/ready" >/dev/null && return; sleep 0.2; done
  echo "the instance never became ready" >&2; exit 1
}
stop() { kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=; }
token() {
  curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/'
}
xacts() { psql "$ADMIN_URL" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }
# Statements the bench database's sessions sent (simple and extended protocol), from the log.
statements() { grep -c -E "@$DB LOG:  (statement|execute)" "$PG_LOG" || true; }
# Commits in the log: explicit transactions (BEGIN ... COMMIT).
commits() { grep -c -E "@$DB LOG:  (statement|execute [^:]*): COMMIT" "$PG_LOG" || true; }

echo "== 1. one create and its run, statement by statement (log_statement = all)"
start
stop # migrations and the first start-up's work are done; what follows is the steady state
psql "$ADMIN_URL" -qc "ALTER DATABASE $DB SET log_statement = 'all'"
start
TOKEN=$(token)
sleep 1.5
s0=$(statements); c0=$(commits); x0=$(xacts)
reply=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/deployments" -H "authorization: Bearer $TOKEN" \
  -H 'content-type: application/json' \
  -d '{"moduleName":"profile-1","version":"1.0.0","targetEnvironment":"Development","requesterEmail":"bench@example.com"}')
id=$(echo "$reply" | sed -E 's/.*"executionId":"([^"]+)".*/\1/')
s1=$(statements); c1=$(commits)
# Polled straight from the database, in sessions that log nothing, so that the count is the run's.
quiet() { PGOPTIONS='-c log_statement=none' psql "$DB_URL" -Atc "$1"; }
for _ in $(seq 1 600); do
  status=$(quiet "SELECT status FROM runs WHERE execution_id = '$id'")
  case "$status" in Succeeded | Failed | RolledBack | Cancelled) break ;; esac
  sleep 0.1
done
sleep 1.5
s2=$(statements); c2=$(commits); x2=$(xacts)
echo "create up to its 202: $((s1 - s0)) statements, $((c1 - c0)) explicit transactions"
echo "run $id to $status, with background work meanwhile: $((s2 - s1)) statements, $((c2 - c1)) explicit transactions"
echo "transactions in pg_stat_database, create + run + background (and this script's polls): $((x2 - x0))"
echo "statements of the whole window by kind (first words):"
grep -E "@$DB LOG:  (statement|execute)" "$PG_LOG" | tail -n "$((s2 - s0))" \
  | sed -E 's/.*LOG:  (statement|execute [^:]*): //' | cut -c1-60 | sort | uniq -c | sort -rn | head -25
stop
psql "$ADMIN_URL" -qc "ALTER DATABASE $DB RESET log_statement"

echo "== 2. wrk -t2 -c$CONNECTIONS -d$DURATION creates, sessions sampled every 50 ms"
start
export HOTSWAP_TOKEN
HOTSWAP_TOKEN=$(token)
seconds="${DURATION%s}"
samples=$((seconds * 20 - 20))
{
  for _ in $(seq 1 "$samples"); do
    echo "SELECT coalesce(state, '-') || ' ' || coalesce(wait_event_type, '-') || ':' || coalesce(wait_event, '-')
          FROM pg_stat_activity WHERE datname = '$DB' AND pid <> pg_backend_pid();"
    echo "SELECT 'advisory-waiting ' || count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database
          WHERE d.datname = '$DB' AND l.locktype = 'advisory' AND NOT l.granted;"
    echo "SELECT pg_sleep(0.05);"
  done
} > /tmp/hotswap-profile-sample.sql
wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s scripts/create.lua "http://127.0.0.1:$PORT" | tail -n1 &
wrk_pid=$!
sleep 0.5
psql "$ADMIN_URL" -At -f /tmp/hotswap-profile-sample.sql > /tmp/hotswap-profile-samples.txt
wait "$wrk_pid"
echo "average sessions per state over $samples samples (state wait_event_type:wait_event):"
grep -v '^$' /tmp/hotswap-profile-samples.txt | grep -v '^advisory-waiting' | sort | uniq -c \
  | awk -v n="$samples" '{c=$1; $1=""; printf "%6.2f %s\n", c / n, $0}' | sort -rn
awk -v n="$samples" '/^advisory-waiting/ {s += $2} END {printf "%6.2f sessions waiting for an advisory (admission) lock\n", s / n}' \
  /tmp/hotswap-profile-samples.txt
