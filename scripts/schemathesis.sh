#!/usr/bin/env bash
# Property-based API testing: runs schemathesis against the OpenAPI document of
# a server started here, authenticated as the demo admin. Fails on any 5xx and
# on any response the document does not describe (status, content type,
# headers, body).
#
#   pip install schemathesis     # once
#   scripts/schemathesis.sh      # extra arguments go to `st run`, e.g. --max-examples 20
#   SCHEMATHESIS_CHECKS=all scripts/schemathesis.sh   # every check schemathesis has
#
# `.ci/run` runs every check, bounded and seeded:
#   SCHEMATHESIS_CHECKS=all scripts/schemathesis.sh --max-examples 10 --seed 20261204 --workers 1
# positive_data_acceptance expects a 2xx for every request its schema allows;
# the document states every limit of a request's shape. Refusals that depend
# on stored data or on rules across fields (a module version that is not in
# the registry, an id that names nothing, a PEM block that is not an RSA key,
# canary steps that end at 100, a metrics range of at most 10,000 intervals,
# an approver email that must be the caller's) are listed per operation, each
# with its reason, in scripts/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${SCHEMATHESIS_PORT:-18089}"
BASE="http://127.0.0.1:${PORT}"
CHECKS="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"

command -v st >/dev/null || { echo "schemathesis is not installed: pip install schemathesis" >&2; exit 2; }
# SCHEMATHESIS_BIN: a server binary built already (the one in target/debug is built here otherwise).
BIN="${SCHEMATHESIS_BIN:-./target/debug/hotswap}"
[ -n "${SCHEMATHESIS_BIN:-}" ] || cargo build --quiet --bin hotswap

# Development profile (demo users, simulated clusters), rate limits off so the
# fuzzer is not throttled, and cheap password hashes so its logins are fast.
export HOTSWAP_ENV=development
export HOTSWAP__SERVER__BIND="127.0.0.1:${PORT}"
export HOTSWAP__RATE_LIMIT__ENABLED=false
export HOTSWAP__AUTH__BCRYPT_COST=4
export HOTSWAP__LOGGING__LEVEL=warn
"$BIN" serve > target/schemathesis-server.log 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
  curl -fsS "${BASE}/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER" 2>/dev/null || { echo "the server stopped; see target/schemathesis-server.log" >&2; exit 1; }
  sleep 0.1
done

TOKEN=$(curl -fsS -X POST "${BASE}/api/v1/authentication/login" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"Admin123!"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')

# A run that stays active (a canary in Production bakes for 15 minutes in this
# profile), so that the verbs have something to act on, and a user to change.
api() { curl -fsS -H "Authorization: Bearer ${TOKEN}" -H 'content-type: application/json' "$@"; }
json_field() { python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
export HOTSWAP_RUN_ID=$(api -X POST "${BASE}/api/v1/deployments" \
  -d '{"moduleName":"fuzz-target","version":"1.0.0","targetEnvironment":"Production","requesterEmail":"fuzz@example.com"}' \
  | json_field executionId)
export HOTSWAP_USER_ID=$(api -X POST "${BASE}/api/v1/users" \
  -d '{"username":"fuzz-subject","email":"fuzz@example.com","password":"fuzz-subject-password","roles":["Viewer"]}' \
  | json_field id)
# A registered (unsigned: development is not strict) module version for the registry's paths.
api -X POST "${BASE}/api/v1/modules" \
  -d '{"descriptor":{"name":"fuzz-module","version":"1.0.0"},"artifact":"f0VMRg=="}' >/dev/null
echo "run ${HOTSWAP_RUN_ID}, user ${HOTSWAP_USER_ID}"

# Logging out would revoke the token every other request uses, and so would
# rotating the JWT signing key twice (only the previous key stays valid);
# stopping or crashing actors on purpose makes the verbs of the run whose
# coordinator went down answer 503 "restarting, try again" by design. The API
# tests cover all of these.
st --config-file scripts/schemathesis.toml run "${BASE}/api-docs/openapi.json" \
  --header "Authorization: Bearer ${TOKEN}" \
  --checks "$CHECKS" \
  --exclude-path /api/v1/authentication/logout \
  --exclude-path /api/v1/secrets/{id}/rotate \
  --exclude-path /api/v1/admin/actors/{id}/stop \
  --exclude-path /api/v1/admin/actors/{id}/crash \
  --workers 2 \
  "$@"
