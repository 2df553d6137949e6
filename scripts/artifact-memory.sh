#!/usr/bin/env bash
# Memory of the server over repeated downloads of one large artifact, for each
# artifact back-end (issue 14, finding 7): the filesystem back-end (the
# baseline, which streams from a file) and the PostgreSQL one (chunk rows).
# Prints the server's resident set (VmRSS, MiB) before the first download,
# after each one, and its peak (VmHWM). Streaming keeps the growth over the
# downloads far below the artifact's size; reading it whole would add about
# one artifact per download in flight.
#
#   scripts/artifact-memory.sh [MiB] [downloads]      # defaults: 48 MiB, 20 downloads
#
# Needs PostgreSQL at HOTSWAP_TEST_DATABASE_URL (postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

MIB="${1:-48}"
DOWNLOADS="${2:-20}"
PORT="${ARTIFACT_MEMORY_PORT:-18097}"
BASE="http://127.0.0.1:${PORT}"
ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
DB="hotswap_artifact_memory_$$"
WORK=$(mktemp -d)
SERVER=""

cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  psql "$ADMIN_URL" -qc "DROP DATABASE IF EXISTS ${DB} WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --quiet --bin hotswap
head -c "$((MIB * 1024 * 1024))" /dev/urandom > "$WORK/artifact.bin"
psql "$ADMIN_URL" -qc "CREATE DATABASE ${DB}" >/dev/null

rss_mib() { awk '/^VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }
hwm_mib() { awk '/^VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$SERVER/status"; }

# One back-end: start a server, upload the artifact, download it $DOWNLOADS times.
measure() {
  local backend=$1
  export HOTSWAP_ENV=development
  export HOTSWAP__SERVER__BIND="127.0.0.1:${PORT}"
  export HOTSWAP__RATE_LIMIT__ENABLED=false
  export HOTSWAP__AUTH__BCRYPT_COST=4
  export HOTSWAP__LOGGING__LEVEL=warn
  export HOTSWAP__REGISTRY__ARTIFACT_BACKEND="$backend"
  export HOTSWAP__REGISTRY__ARTIFACT_DIR="$WORK/artifacts"
  if [ "$backend" = postgres ]; then
    export HOTSWAP__STORE__BACKEND=postgres
    export HOTSWAP__STORE__URL="${ADMIN_URL%/*}/${DB}"
  else
    export HOTSWAP__STORE__BACKEND=memory
    unset HOTSWAP__STORE__URL
  fi
  ./target/debug/hotswap serve > "$WORK/server-$backend.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 300); do
    curl -fsS "${BASE}/health" >/dev/null 2>&1 && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/server-$backend.log" >&2; exit 1; }
    sleep 0.1
  done
  local token
  token=$(curl -fsS -X POST "${BASE}/api/v1/authentication/login" -H 'content-type: application/json' \
    -d '{"username":"admin","password":"Admin123!"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -fsS -o /dev/null -H "Authorization: Bearer ${token}" "${BASE}/api/v1/modules/memory-probe/1.0.0/artifact" 2>/dev/null || true
  curl -fsS -o /dev/null -H "Authorization: Bearer ${token}" \
    -F 'descriptor={"name":"memory-probe","version":"1.0.0"};type=application/json' \
    -F "artifact=@$WORK/artifact.bin;type=application/octet-stream" "${BASE}/api/v1/modules"
  local before after sum
  before=$(rss_mib)
  sum=$(sha256sum "$WORK/artifact.bin" | cut -d' ' -f1)
  local samples=""
  for i in $(seq 1 "$DOWNLOADS"); do
    got=$(curl -fsS -H "Authorization: Bearer ${token}" "${BASE}/api/v1/modules/memory-probe/1.0.0/artifact" | sha256sum | cut -d' ' -f1)
    [ "$got" = "$sum" ] || { echo "download $i of the $backend back-end does not match the upload" >&2; exit 1; }
    after=$(rss_mib)
    samples="$samples $after"
  done
  # The upload holds the artifact while it is checked (VmHWM); the downloads
  # are judged from the first one on: how far the resident set moves.
  printf '%-10s artifact %s MiB, %s downloads: RSS after the upload %s MiB, after each download:%s MiB\n' \
    "$backend" "$MIB" "$DOWNLOADS" "$before" "$samples"
  python3 - "$backend" "$MIB" $samples <<'PY'
import sys
backend, mib, samples = sys.argv[1], float(sys.argv[2]), [float(s) for s in sys.argv[3:]]
spread = max(samples) - min(samples)
print(f"{backend:<10} first {samples[0]:.1f} MiB, last {samples[-1]:.1f} MiB, "
      f"last - first {samples[-1] - samples[0]:+.1f} MiB, spread {spread:.1f} MiB = {spread / mib:.2f} of the artifact")
PY
  echo "${backend} VmHWM (the upload's peak included) $(hwm_mib) MiB"
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
measure filesystem
measure postgres
