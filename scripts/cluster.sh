#!/usr/bin/env bash
# docker-compose.yml's topology as plain processes on loopback, for a local trial and for
# the failover tests: two `hotswap serve` instances on one PostgreSQL database and the
# local Redis, nginx in front of them (deploy/nginx.conf with loopback
# upstreams), and three agents (enrolled with HOTSWAP_AGENT_TOKEN, or with tokens the demo
# admin creates). Needs nginx (apt-get install nginx-light), psql, curl and python3.
#
#   scripts/cluster.sh up        # builds target/debug/hotswap, starts everything, prints the addresses
#   scripts/cluster.sh status    # which processes run
#   scripts/cluster.sh down      # stops what `up` started (by the pids it wrote) and drops the database
#
# Ports: nginx CLUSTER_PORT (18100), instances +1 and +2. Logs and pids: target/cluster/.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${CLUSTER_PORT:-18100}"
STATE="target/cluster"
DATABASE="${CLUSTER_DATABASE:-hotswap_cluster}"
PG_ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_URL="${PG_ADMIN_URL%/*}/${DATABASE}"
BINARY="target/debug/hotswap"

started() { [ -f "$STATE/$1.pid" ] && kill -0 "$(cat "$STATE/$1.pid")" 2>/dev/null; }

# Starts a command in the background, its output in $STATE/NAME.log and its pid in NAME.pid.
start() {
  local name="$1"
  shift
  "$@" >"$STATE/$name.log" 2>&1 &
  echo $! >"$STATE/$name.pid"
}

wait_for_health() {
  local url="$1" name="$2"
  for _ in $(seq 1 300); do
    curl -fsS -o /dev/null "$url/health" 2>/dev/null && return 0
    started "$name" || { echo "$name stopped; see $STATE/$name.log" >&2; tail -5 "$STATE/$name.log" >&2; return 1; }
    sleep 0.1
  done
  echo "$name did not answer $url/health; see $STATE/$name.log" >&2
  return 1
}

# An enrolment token for the Development cluster, made by the demo admin through the balancer at $1.
enrolment_token() {
  local base="$1" login
  login="$(curl -fsS -X POST "$base/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}')" || return 1
  curl -fsS -X POST "$base/api/v1/agents/tokens" -H 'content-type: application/json' \
    -H "Authorization: Bearer $(json_field token <<<"$login")" -d '{"environment":"Development"}' |
    json_field token
}

# The string field $1 of the JSON object on stdin.
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

up() {
  mkdir -p "$STATE/artifacts"
  cargo build --quiet --bin hotswap
  command -v nginx >/dev/null || { echo "nginx is not installed (apt-get install nginx-light)" >&2; exit 1; }
  # (Without the notice that a first start has no database to drop.)
  PGOPTIONS='--client-min-messages=warning' psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE" >/dev/null
  psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DATABASE" >/dev/null

  # The same settings as the compose file, on loopback; development keeps the demo users and
  # simulated clusters, so that there is something to log in as and deploy to.
  export HOTSWAP_ENV="${HOTSWAP_ENV:-development}"
  export HOTSWAP__STORE__BACKEND=postgres HOTSWAP__STORE__URL="$PG_URL"
  export HOTSWAP__REGISTRY__ARTIFACT_BACKEND=postgres
  # The message bus in the database too: with the memory back-end each instance has its own topics.
  export HOTSWAP__MESSAGING__BACKEND=postgres
  # Both instances share the JWT signing key and its rotations, sealed in the database.
  export HOTSWAP__SECRETS__BACKEND=postgres
  export HOTSWAP__SECRETS__ENCRYPTION_KEY="${HOTSWAP__SECRETS__ENCRYPTION_KEY:-$(head -c 32 /dev/urandom | base64)}"
  export HOTSWAP__RATE_LIMIT__TRUSTED_PROXIES=127.0.0.1
  export HOTSWAP__REDIS__URL="${HOTSWAP__REDIS__URL:-redis://127.0.0.1:6379}"
  for i in 1 2; do
    HOTSWAP__SERVER__BIND="127.0.0.1:$((PORT + i))" HOTSWAP__CLUSTER__INSTANCE_ID="hotswap-$i" \
      start "hotswap-$i" "$BINARY" serve
    # The first instance migrates the schema before the second starts.
    wait_for_health "http://127.0.0.1:$((PORT + i))" "hotswap-$i"
  done

  # deploy/nginx.conf with loopback upstreams, a loopback listener, and files under $STATE.
  sed -e "s|server hotswap-1:8080|server 127.0.0.1:$((PORT + 1))|" \
    -e "s|server hotswap-2:8080|server 127.0.0.1:$((PORT + 2))|" \
    -e "s|listen 8080;|listen 127.0.0.1:${PORT};|" \
    -e "s|access_log /dev/stdout|access_log $PWD/$STATE/nginx-access.log|" \
    -e "s|^worker_processes auto;|worker_processes 1;\npid $PWD/$STATE/nginx.pid;\nerror_log $PWD/$STATE/nginx-error.log;\ndaemon off;|" \
    deploy/nginx.conf >"$STATE/nginx.conf"
  mkdir -p "$STATE/nginx-temp"
  start nginx nginx -p "$PWD/$STATE/nginx-temp" -c "$PWD/$STATE/nginx.conf"
  wait_for_health "http://127.0.0.1:${PORT}" nginx

  # Three agents on loopback "hosts" of the Development cluster, each enrolled with a token of its
  # own: HOTSWAP_AGENT_TOKEN when given, else one the demo admin creates through the balancer.
  for i in 1 2 3; do
    local token="${HOTSWAP_AGENT_TOKEN:-}"
    if [ -z "$token" ]; then
      token="$(enrolment_token "http://127.0.0.1:${PORT}")" || {
        echo "agents not started: no enrolment token (set HOTSWAP_AGENT_TOKEN, or keep the demo users)" >&2
        break
      }
    fi
    mkdir -p "$STATE/agent-$i"
    start "agent-$i" "$BINARY" agent --server "http://127.0.0.1:${PORT}" --hostname "agent-$i" \
      --data-dir "$STATE/agent-$i" --token "$token"
  done
  echo "cluster up: http://127.0.0.1:${PORT} (nginx) -> 127.0.0.1:$((PORT + 1)), 127.0.0.1:$((PORT + 2)); logs in $STATE/"
}

status() {
  for name in hotswap-1 hotswap-2 nginx agent-1 agent-2 agent-3; do
    if started "$name"; then echo "$name: running (pid $(cat "$STATE/$name.pid"))"; else echo "$name: not running"; fi
  done
}

down() {
  for name in agent-3 agent-2 agent-1 nginx hotswap-2 hotswap-1; do
    if started "$name"; then
      local pid
      pid="$(cat "$STATE/$name.pid")"
      kill "$pid"
      # A clean shutdown hands the instance's runs over; wait for it.
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$STATE/$name.pid"
  done
  psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE" >/dev/null 2>&1 || true
  echo "cluster down"
}

case "${1:-}" in
  up) up ;;
  status) status ;;
  down) down ;;
  *) echo "usage: $0 up|status|down" >&2; exit 2 ;;
esac
