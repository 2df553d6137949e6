#!/usr/bin/env bash
# Times the admin API's supervision reads against a server with NODES simulated
# Development nodes (100,000 by default): the tree's first page, one actor and
# the summary, median of 15 requests each (docs/BENCHMARKS.md, session 26).
#   scripts/bench-admin-tree.sh <hotswap binary>
set -euo pipefail
BIN=$1; PORT=${PORT:-18095}; NODES=${NODES:-100000}
HOTSWAP__SERVER__BIND=127.0.0.1:$PORT HOTSWAP__SIMULATION__NODES__DEVELOPMENT=$NODES HOTSWAP__LOGGING__LEVEL=warn "$BIN" serve > "${TMPDIR:-/tmp}/bench-admin-tree-server.log" 2>&1 &
PID=$!
for _ in $(seq 1 120); do curl -sf http://127.0.0.1:$PORT/health/ready >/dev/null && break; sleep 0.5; done
B=http://127.0.0.1:$PORT
T=$(curl -s -X POST $B/api/v1/authentication/login -H 'content-type: application/json' -d '{"username":"admin","password":"Admin123!"}' | python3 -c 'import sys,json;print(json.load(sys.stdin)["token"])')
# Starting 100,000 node actors leaves their first heartbeats queued: let them pass.
sleep 3
med() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]*1000 " ms"}'; }
echo "$(basename $BIN) tree:    $(for _ in $(seq 1 15); do curl -s -o /dev/null -w '%{time_total}\n' $B/api/v1/admin/actors -H "Authorization: Bearer $T"; done | med)"
echo "$(basename $BIN) one:     $(for _ in $(seq 1 15); do curl -s -o /dev/null -w '%{time_total}\n' $B/api/v1/admin/actors/node:development-node-77 -H "Authorization: Bearer $T"; done | med)"
echo "$(basename $BIN) summary: $(for _ in $(seq 1 15); do curl -s -o /dev/null -w '%{time_total}\n' $B/api/v1/admin/supervision -H "Authorization: Bearer $T"; done | med)"
kill $PID; wait $PID 2>/dev/null || true
