#!/usr/bin/env bash
# Builds HotSwap's image and runs it for real with podman (no Docker engine runs on the
# development machines; see docs/DEPLOYMENT.md for the recipe and why each flag is here):
#
#   1. the runtime stage of the Dockerfile around a binary built on the host
#      (HOTSWAP_BINARY, default target/debug/hotswap: CI does not compile twice);
#   2. that image under the production profile against the host's PostgreSQL and Redis
#      (--network host): /health answers, the process runs as uid 10001, and the image's
#      HEALTHCHECK passes;
#   3. the compose topology with podman-compose, when every image it names exists or can
#      be pulled (none can be pulled on the development machines: that part then says so).
#
# Exits 0 after printing "skipped: <reason>" when podman cannot run a container here.
#
#   scripts/container-check.sh            # from the repository root or anywhere
set -euo pipefail
cd "$(dirname "$0")/.."

BINARY="${HOTSWAP_BINARY:-target/debug/hotswap}"
IMAGE="localhost/hotswap:check"
BASE="debian:bookworm-slim"
PORT="${CONTAINER_CHECK_PORT:-18095}"
DATABASE="hotswap_container_check"
PG_ADMIN_URL="${HOTSWAP_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_URL="${PG_ADMIN_URL%/*}/${DATABASE}"
NAME="hotswap-check-$$"

skip() {
  echo "skipped: $*"
  exit 0
}

# 1. podman, runc and debootstrap.
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing podman, runc and debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null 2>&1 ||
      { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } ||
      true
  fi
fi
command -v podman >/dev/null || skip "podman is not installed and could not be installed"
[ -x "$BINARY" ] || { echo "no binary at $BINARY: cargo build --bin hotswap first" >&2; exit 1; }

# crun (podman's default runtime) refuses hybrid cgroups; runc runs here. podman's default
# ulimits cannot be set in these containers: a containers.conf without them.
WORK="$(mktemp -d)"
cleanup() {
  podman rm -f "$NAME" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
RUNTIME=()
if [ -x /usr/sbin/runc ]; then RUNTIME=(--runtime /usr/sbin/runc); fi
if [ -z "${CONTAINERS_CONF:-}" ]; then
  printf '[containers]\ndefault_ulimits = []\n' > "$WORK/containers.conf"
  export CONTAINERS_CONF="$WORK/containers.conf"
fi

# The base image: podman's own store keeps it between runs (the cache); else pull it;
# else make it with debootstrap (about 25 s) and import it under the name the Dockerfile uses.
if ! podman image exists "$BASE"; then
  if ! timeout 120 podman pull -q "docker.io/library/$BASE" >/dev/null 2>&1; then
    command -v debootstrap >/dev/null || skip "no $BASE image, no registry and no debootstrap to make one"
    echo "making $BASE with debootstrap (no registry reachable)"
    debootstrap --variant=minbase bookworm "$WORK/rootfs" http://deb.debian.org/debian >"$WORK/debootstrap.log" 2>&1 ||
      { tail -5 "$WORK/debootstrap.log"; skip "debootstrap could not make $BASE"; }
    tar -C "$WORK/rootfs" -c . | podman import -q - "localhost/$BASE" >/dev/null
    podman tag "localhost/$BASE" "docker.io/library/$BASE"
    rm -rf "$WORK/rootfs"
  fi
fi
if ! why=$(podman run --rm "${RUNTIME[@]}" "$BASE" true 2>&1); then
  skip "podman cannot run a container here: ${why##*$'\n'}"
fi

# 2. The runtime stage around the host's binary. --format docker keeps the HEALTHCHECK.
echo "building the runtime stage around $BINARY"
mkdir -p "$WORK/context"
cp "$BINARY" "$WORK/context/hotswap"
cp -r config "$WORK/context/config"
podman build -q "${RUNTIME[@]}" --network host --format docker -f Dockerfile \
  --build-arg BINARY_SOURCE=prebuilt --target runtime -t "$IMAGE" "$WORK/context" >/dev/null

# 3. Under the production profile, on the host's PostgreSQL (a database of its own) and Redis.
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE" >/dev/null
psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $DATABASE" >/dev/null
ENVS=(-e HOTSWAP_ENV=production -e "HOTSWAP__SERVER__BIND=127.0.0.1:${PORT}" -e "HOTSWAP__STORE__URL=${PG_URL}"
  -e "HOTSWAP__AUTH__JWT_SECRET=$(head -c 48 /dev/urandom | base64 | tr -d '/+=')"
  -e "HOTSWAP__SECRETS__ENCRYPTION_KEY=$(head -c 32 /dev/urandom | base64)")
# [redis] exists once the cluster work lands; the configuration refuses unknown sections.
if grep -q '^\[redis\]' config/default.toml; then ENVS+=(-e HOTSWAP__REDIS__URL=redis://127.0.0.1:6379); fi
# stderr kept aside: without systemd podman cannot arm its periodic health-check timer and
# says so; `podman healthcheck run` below still runs the check.
podman run -d --name "$NAME" "${RUNTIME[@]}" --network host "${ENVS[@]}" "$IMAGE" >/dev/null 2>"$WORK/run.err" ||
  { cat "$WORK/run.err" >&2; exit 1; }

fail() {
  echo "FAIL: $*" >&2
  podman logs --tail 30 "$NAME" >&2 || true
  exit 1
}
for _ in $(seq 1 300); do
  curl -fsS -o /dev/null "http://127.0.0.1:${PORT}/health" 2>/dev/null && break
  [ "$(podman inspect -f '{{.State.Running}}' "$NAME")" = true ] || fail "the container stopped"
  sleep 0.1
done
curl -fsS "http://127.0.0.1:${PORT}/health" >/dev/null || fail "/health does not answer"
echo "ok: /health answers under the production profile"

uid=$(podman exec "$NAME" id -u)
[ "$uid" = 10001 ] || fail "the server runs as uid $uid, not 10001"
[ "$(podman inspect -f '{{.Config.User}}' "$IMAGE")" = "10001:10001" ] || fail "the image's USER is not 10001:10001"
echo "ok: runs as uid 10001 (non-root)"

[ "$(podman inspect -f '{{.HealthCheck}}' "$IMAGE")" != "<nil>" ] || fail "the image has no HEALTHCHECK"
podman healthcheck run "$NAME" || fail "the image's HEALTHCHECK fails"
echo "ok: the HEALTHCHECK passes"

podman rm -f "$NAME" >/dev/null
psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $DATABASE" >/dev/null

# 4. The compose topology, where its images exist.
command -v podman-compose >/dev/null || pip install --quiet podman-compose >/dev/null 2>&1 || true
command -v podman-compose >/dev/null || skip "compose: podman-compose is not installed"
export HOTSWAP_JWT_SECRET="${HOTSWAP_JWT_SECRET:-$(head -c 48 /dev/urandom | base64 | tr -d "/+=")}"
export HOTSWAP_SECRETS_KEY="${HOTSWAP_SECRETS_KEY:-$(head -c 32 /dev/urandom | base64)}"
podman-compose -f docker-compose.yml config >/dev/null || fail "podman-compose cannot read docker-compose.yml"
missing=()
# The services built here (localhost/hotswap:compose) need the Dockerfile's builder image instead.
builder=$(sed -n 's/^FROM \([^ ]*\) AS build$/\1/p' Dockerfile)
for image in $builder $(sed -n 's/^ *image: *//p' docker-compose.yml | grep -v '^localhost/' | sort -u); do
  podman image exists "$image" || timeout 60 podman pull -q "$image" >/dev/null 2>&1 || missing+=("$image")
done
if [ "${#missing[@]}" -gt 0 ]; then
  skip "compose topology: these images can neither be found nor pulled here: ${missing[*]}"
fi
podman-compose -f docker-compose.yml -p hotswap-check up -d --build
trap 'podman-compose -f docker-compose.yml -p hotswap-check down -v >/dev/null 2>&1 || true; cleanup' EXIT
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null http://127.0.0.1:8080/health 2>/dev/null && break
  sleep 0.2
done
curl -fsS http://127.0.0.1:8080/health >/dev/null || { podman-compose -p hotswap-check logs | tail -50; exit 1; }
echo "ok: the compose topology answers /health through nginx"
