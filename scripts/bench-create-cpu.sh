#!/usr/bin/env bash
# Creates on PostgreSQL with one instance, and what each costs in CPU (issue 16): a fresh
# database, `wrk -t2 -c16` creates for DURATION seconds, then creates/s beside the CPU time the
# server and the bench database's backends used per run created (from /proc, so the figure holds
# however busy the rest of the machine is). BIN=path to the binary (required). LOG_ALL=1 also logs
# every statement of the bench database, to count them by kind in the PostgreSQL log.
# INSTANCES=2 starts a second instance on the same database (port PORT+1) and runs a wrk of
# its own against each at once, as scripts/bench-cluster.sh does; the servers' CPU is then
# their sum, and each one's is printed too.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:?BIN=path/to/hotswap}"
DURATION="${DURATION:-4}"
PORT="${PORT:-18191}"
INSTANCES="${INSTANCES:-1}"
# The cap on runs driven at once, lifted as in scripts/bench-cluster.sh (see there).
MAX_ACTIVE_RUNS="${MAX_ACTIVE_RUNS:-100000}"
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="hotswap_bench_cpu_$$"
DB_URL="${ADMIN_URL%/*}/$DB"
psql "$ADMIN_URL" -qc "CREATE DATABASE $DB"
SERVERS=()
trap 'kill "${SERVERS[@]}" 2>/dev/null || true; psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"' EXIT
if [ -n "${LOG_ALL:-}" ]; then psql "$ADMIN_URL" -qc "ALTER DATABASE $DB SET log_statement = 'all'"; fi
PORTS=()
for i in $(seq 0 $((INSTANCES - 1))); do
  port=$((PORT + i))
  HOTSWAP_ENV=development HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$DB_URL" \
    HOTSWAP__CLUSTER__INSTANCE_ID="cpu-$i" HOTSWAP__RATE_LIMIT__ENABLED=false HOTSWAP__SERVER__BIND="127.0.0.1:$port" \
    HOTSWAP__PIPELINE__MAX_ACTIVE_RUNS="$MAX_ACTIVE_RUNS" HOTSWAP__LOGGING__LEVEL=error "$BIN" serve > "/tmp/hotswap-bench-cpu-$i.log" 2>&1 &
  SERVERS+=($!)
  PORTS+=("$port")
  # One after the other: the second finds the demo users seeded.
  for _ in $(seq 1 150); do curl -fs "127.0.0.1:$port/health/ready" >/dev/null && break; sleep 0.2; done
done
HOTSWAP_TOKEN=$(curl -fs -X POST "127.0.0.1:$PORT/api/v1/authentication/login" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"Admin123!"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
export HOTSWAP_TOKEN
backends() { psql "$ADMIN_URL" -Atc "SELECT pid FROM pg_stat_activity WHERE datname = '$DB'"; }
# CPU ticks (1/100 s) the given processes have used; a process gone meanwhile counts nothing.
ticks() { for p in "$@"; do awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || true; done | awk '{s += $1} END {print s + 0}'; }
runs() { psql "$DB_URL" -Atc "SELECT count(*) FROM runs"; }
# Backends of the pool that exist now: their CPU so far is not the window's.
read -r -a before <<< "$(backends | tr '\n' ' ')"
db_before=$(ticks "${before[@]}"); server_before=$(ticks "${SERVERS[@]}"); runs_before=$(runs)
each_before=(); for p in "${SERVERS[@]}"; do each_before+=("$(ticks "$p")"); done
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
WRKS=()
for port in "${PORTS[@]}"; do
  HOTSWAP_BENCH_PREFIX="cpu-$port-$RANDOM" wrk -t2 -c16 -d"${DURATION}s" -s scripts/create.lua "http://127.0.0.1:$port" \
    | tail -n1 | sed "s/^/port $port: /" &
  WRKS+=($!)
done
wait "${WRKS[@]}"
read -r -a after <<< "$(backends | tr '\n' ' ')"
db_after=$(ticks "${after[@]}"); server_after=$(ticks "${SERVERS[@]}"); created=$(( $(runs) - runs_before ))
if [ "$INSTANCES" -gt 1 ]; then
  for i in "${!SERVERS[@]}"; do
    echo "instance $i: $(( ($(ticks "${SERVERS[$i]}") - each_before[i]) * 10 )) ms of CPU in the window"
  done
fi
# How far the runs got, for binaries compared side by side: the events stored (each step of a run
# stores some), and, where the binary counts them, the run saves and the transactions that wrote them.
echo "run events stored per run created: $(psql "$DB_URL" -Atc "SELECT round(count(*)::numeric / greatest($created, 1), 2) FROM run_events")"
curl -fs -H "authorization: Bearer $HOTSWAP_TOKEN" "127.0.0.1:$PORT/metrics" | grep '^hotswap_store_run_saves_total' || true
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
# Runs still going when the window ends, and how long the finished ones took: when the runs in
# flight reach [pipeline] max_active_runs, creates beyond it are refused (429) and the window's
# rate says how fast runs finish rather than how fast they are created.
psql "$DB_URL" -Atc "SELECT 'runs still in flight: ' || count(*) FILTER (WHERE holds_module) || '; finished runs, median duration: ' || coalesce(round(extract(epoch FROM percentile_cont(0.5) WITHIN GROUP (ORDER BY finished_at - created_at)) * 1000) || ' ms', 'none') FROM runs"
awk -v s=$((server_after - server_before)) -v d=$((db_after - db_before)) -v n="$created" \
  'BEGIN {if (n > 0) printf "runs created %d; CPU per run created: server %.2f ms, database backends %.2f ms\n", n, s * 10 / n, d * 10 / n}'
