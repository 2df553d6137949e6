#!/usr/bin/env bash
# Run creation on PostgreSQL with one instance and with two (each its own wrk),
# beside pgbench's single-row insert rate on the same server in the same run;
# then the same single-instance measure after 100,000 more runs are stored.
# Needs wrk, pgbench and a local PostgreSQL (HOTSWAP_TEST_DATABASE_URL or the default below).
set -euo pipefail
cd "$(dirname "$0")/.."
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-16}"
SEED_RUNS="${SEED_RUNS:-100000}"
# Runs a process drives at once ([pipeline] max_active_runs, 1,000 by default): runs take seconds
# while the machine is saturated, so at the default a window soon has 1,000 in flight and every
# further create is refused (429) until one ends; the bench measures creation, so it lifts the cap.
MAX_ACTIVE_RUNS="${MAX_ACTIVE_RUNS:-100000}"
# PROFILE=debug measures the binary the tests build (no release build at hand).
PROFILE="${PROFILE:-release}"
# HOTSWAP_BIN=path uses that binary as it is (no build): for instance the one `cargo test` built,
# since `cargo build --bin hotswap` alone unifies features differently and rebuilds dependencies.
if [ -n "${HOTSWAP_BIN:-}" ]; then
  BIN="$HOTSWAP_BIN"
else
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin hotswap; else cargo build --quiet --bin hotswap; fi
  BIN="./target/$PROFILE/hotswap"
fi
DB="hotswap_bench_cluster_$$"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
PIDS=()
trap 'kill "${PIDS[@]}" 2>/dev/null || true; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
DB_URL="${ADMIN_URL%/*}/$DB"

start() { # name port
  HOTSWAP_ENV=development HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$DB_URL" \
    HOTSWAP__CLUSTER__INSTANCE_ID="$1" HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND="127.0.0.1:$2" \
    HOTSWAP__PIPELINE__MAX_ACTIVE_RUNS="$MAX_ACTIVE_RUNS" HOTSWAP__LOGGING__LEVEL=error "$BIN" serve > "/tmp/hotswap-bench-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 150); do curl -fs "127.0.0.1:$2/health/ready" >/dev/null && return; sleep 0.2; done
  echo "instance $1 never became ready" >&2; exit 1
}
token() { # port
  curl -fs -X POST "127.0.0.1:$1/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/'
}
creates() { # port label
  HOTSWAP_TOKEN=$(token "$1") HOTSWAP_BENCH_PREFIX="bench-$1-$RANDOM" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s scripts/create.lua "http://127.0.0.1:$1" \
    | tail -n1 | sed "s/^/$2 /"
}
stored() { psql "$DB_URL" -Atc "SELECT count(*) FROM runs"; }
# Waits (up to two minutes) until no run is in flight, so that a window does not
# share the machine with the previous window's runs; says how many were left.
drain() {
  for _ in $(seq 1 1200); do
    in_flight=$(psql "$DB_URL" -Atc "SELECT count(*) FROM runs WHERE holds_module")
    [ "$in_flight" = 0 ] && break
    sleep 0.1
  done
  echo "runs in flight before the window: $in_flight"
  # What autovacuum does to a table this busy between two bursts: the dead row
  # versions the previous window's run saves left behind are cleared, so that
  # the admission's count of active runs does not wade through them.
  psql "$DB_URL" -qc "VACUUM ANALYZE runs"
}
# Transactions committed or rolled back in the bench database so far (statistics lag up to a second).
xacts() { psql "$ADMIN_URL" -Atc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$DB'"; }

echo "wrk -t2 -c$CONNECTIONS -d$DURATION, POST /api/v1/deployments (target Development, 3 simulated nodes)"
start a 18091
echo "stored runs before: $(stored)"
runs_before=$(stored); xacts_before=$(xacts)
creates 18091 "one instance:            "
echo "runs in flight when the window ended: $(psql "$DB_URL" -Atc "SELECT count(*) FROM runs WHERE holds_module")"
sleep 1.5
runs_after=$(stored); xacts_after=$(xacts)
echo "transactions per run created in that window (the create, the run to Succeeded, background work): $(( (xacts_after - xacts_before) / (runs_after - runs_before > 0 ? runs_after - runs_before : 1) ))"
# b starts, and warms up as a did in the first window (its pool's connections
# opened, its statements prepared, its start-up work done: a window right after
# the start measured those too); then, like the first window, the two-instance
# one starts with no run in flight.
start b 18092
creates 18092 "warm-up of b (not counted):" > /dev/null
drain
creates 18091 "two instances, a:        " > /tmp/hotswap-bench-a.out &
wrk_a=$!
creates 18092 "two instances, b:        "
# By its pid: job %1 is instance a itself, which never ends.
wait "$wrk_a" || true
cat /tmp/hotswap-bench-a.out
echo "stored runs after the first windows: $(stored)"

# 100,000 finished runs more, as the store would hold them: copies of a stored
# run under new ids, counted in the same counters admission reads.
psql "$DB_URL" -q <<SQL
INSERT INTO runs (tenant_id, execution_id, module_name, version, target_environment, status, created_at,
                  created_at_nanos, finished_at, finished_at_nanos, revision, holds_module, record, saved_at)
SELECT r.tenant_id, gen_random_uuid(), 'seeded-' || g, r.version, r.target_environment, 'Succeeded', now(), 0,
       now(), 0, 1, false, r.record, now()
FROM (SELECT * FROM runs LIMIT 1) r, generate_series(1, $SEED_RUNS) g;
INSERT INTO tenant_runs_per_day (tenant_id, day, runs)
SELECT tenant_id, (now() AT TIME ZONE 'UTC')::date, $SEED_RUNS FROM (SELECT tenant_id FROM runs LIMIT 1) t
ON CONFLICT (tenant_id, day) DO UPDATE SET runs = tenant_runs_per_day.runs + EXCLUDED.runs;
SQL
# What a database that gathered these runs over time would have done long
# since: vacuumed and analysed the table and written the pages out. Without
# this the window below pays for the bulk insert's own aftermath (its dirty
# pages written and the table vacuumed while it runs), not for the stored runs.
psql "$DB_URL" -qc "VACUUM ANALYZE runs" -c "CHECKPOINT"
echo "stored runs now: $(stored)"
kill "${PIDS[1]}"; wait "${PIDS[1]}" 2>/dev/null || true
# The first window started with no run in flight; so does this one.
drain
creates 18091 "one instance, >100k runs:"

psql "$DB_URL" -qc "CREATE TABLE bench_insert (id bigserial primary key, tenant_id uuid, body jsonb, at timestamptz default now())"
echo "INSERT INTO bench_insert (tenant_id, body) VALUES ('00000000-0000-0000-0000-000000000001', '{\"k\": 1}');" > /tmp/hotswap-insert.sql
printf 'pgbench single-row inserts: '
pgbench -n -f /tmp/hotswap-insert.sql -c "$CONNECTIONS" -j 2 -T "${DURATION%s}" "$DB_URL" | awk '/^tps/ {printf "inserts/s %.0f\n", $3}'
