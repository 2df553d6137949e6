#!/usr/bin/env bash
# proptest inputs for every parser that reads untrusted bytes, with more cases
# than the test suite feeds them (no nightly toolchain here, so no
# coverage-guided cargo fuzz):
#   query redaction, metrics intervals    src/web/redact.rs, src/http/clusters.rs
#   SignalR frames, live client messages  src/live/signalr/protocol.rs, src/live/wire.rs
#   PEM keys, deployment request JSON      src/registry/statement.rs
#   signature statements                   src/registry/statement.rs
#   multipart module uploads (over HTTP)   tests/api/upload_fuzz.rs
#
#   scripts/fuzz.sh                          # 200,000 cases per parser, 3,000 uploads, seed 1
#   FUZZ_CASES=1000000 FUZZ_SEED=7 scripts/fuzz.sh
#   FUZZ_SECONDS=600 scripts/fuzz.sh         # stop a run that takes longer (default 1800 s)
#
# A failure names its parser and its shrunk input. proptest saves it under
# proptest-regressions/ beside the test and replays it first from then on:
# commit that file. The sequence-fed tests and the uploads reproduce with
# HOTSWAP_FUZZ_SEED and HOTSWAP_FUZZ_CASES as printed.
set -euo pipefail
cd "$(dirname "$0")/.."

CASES="${FUZZ_CASES:-200000}"
UPLOADS="${FUZZ_UPLOADS:-3000}"
SEED="${FUZZ_SEED:-1}"
SECONDS_LIMIT="${FUZZ_SECONDS:-1800}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

echo "fuzz: seed ${SEED}, ${CASES} cases per parser, ${UPLOADS} multipart uploads, at most ${SECONDS_LIMIT} s per step"
start=$(date +%s)
HOTSWAP_FUZZ_SEED="$SEED" HOTSWAP_FUZZ_CASES="$CASES" \
  timeout "$SECONDS_LIMIT" cargo test --quiet --lib -- random_ --test-threads 2
parsers=$(date +%s)
echo "fuzz: parsers done in $((parsers - start)) s"

export HOTSWAP_TEST_DATABASE_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
HOTSWAP_FUZZ_SEED="$SEED" HOTSWAP_FUZZ_CASES="$UPLOADS" \
  timeout "$SECONDS_LIMIT" cargo test --quiet --test api -- upload_fuzz::
echo "fuzz: multipart uploads done in $(( $(date +%s) - parsers )) s; no crash"
