#!/usr/bin/env bash
# Scrapes HotSwap's /metrics with a real Prometheus (Debian's package) and
# reads a domain counter back through Prometheus's HTTP API.
#   scripts/prometheus-check.sh        (installs prometheus with apt-get when missing)
# Env: HOTSWAP_PORT (default 18080), PROMETHEUS_PORT (default 19090).
set -euo pipefail
cd "$(dirname "$0")/.."

HOTSWAP_PORT="${HOTSWAP_PORT:-18080}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-19090}"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

if ! command -v prometheus >/dev/null; then
  echo "installing prometheus (apt-get)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
prometheus --version 2>&1 | head -n1

cargo build --quiet --bin hotswap
HOTSWAP_ENV=development HOTSWAP__SERVER__BIND="127.0.0.1:${HOTSWAP_PORT}" HOTSWAP__LOGGING__LEVEL=warn \
  HOTSWAP__PIPELINE__ROLLING_HEALTH_CHECK_DELAY=100ms target/debug/hotswap >"$work/hotswap.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:${HOTSWAP_PORT}"
for _ in $(seq 1 100); do curl -fsS "$base/health" >/dev/null 2>&1 && break; sleep 0.1; done

# Something for the domain counters to count: one deployment to QA.
id="$(curl -fsS -X POST "$base/api/v1/deployments" -H 'content-type: application/json' \
  -d '{"moduleName":"prom-check","version":"1.0.0","targetEnvironment":"QA","requesterEmail":"ops@example.com"}' |
  sed -E 's/.*"executionId":"([^"]+)".*/\1/')"
echo "deployment $id started"
for _ in $(seq 1 200); do
  curl -fsS "$base/api/v1/deployments/$id" | grep -q '"status":"Succeeded"' && break
  sleep 0.1
done
curl -fsS "$base/api/v1/deployments/$id" | grep -q '"status":"Succeeded"' || { echo "FAIL: the deployment did not succeed"; exit 1; }

cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: hotswap
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:${HOTSWAP_PORT}"]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address="127.0.0.1:${PROMETHEUS_PORT}" >"$work/prometheus.log" 2>&1 &
pids+=($!)

query='hotswap_deployments_succeeded_total{environment="QA",strategy="Rolling"}'
api="http://127.0.0.1:${PROMETHEUS_PORT}/api/v1/query"
for _ in $(seq 1 60); do
  answer="$(curl -fsS --get "$api" --data-urlencode "query=$query" 2>/dev/null || true)"
  if echo "$answer" | grep -q '"value":\[[0-9.]*,"1"\]'; then
    echo "Prometheus answered $query = 1"
    echo "$answer"
    up="$(curl -fsS --get "$api" --data-urlencode 'query=up{job="hotswap"}')"
    echo "up: $up"
    routes="$(curl -fsS --get "$api" --data-urlencode 'query=count by (endpoint) (hotswap_http_requests_total)')"
    echo "HTTP series by route pattern: $routes"
    echo "PASS"
    exit 0
  fi
  sleep 1
done
echo "FAIL: Prometheus never reported $query = 1; last answer: ${answer:-none}"
tail -n 20 "$work/prometheus.log"
exit 1
