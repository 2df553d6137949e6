# syntax=docker/dockerfile:1
# HotSwap's image: compiled in the Rust image, run on a slim Debian as a non-root user.
#
#   docker build -t hotswap .                     # the whole build
#   scripts/container-check.sh                    # the runtime stage around a binary built on the host
#
# BINARY_SOURCE picks where the runtime stage takes the binary from: the `build` stage (the
# default), or `prebuilt`, a context holding only `hotswap` and `config/` (what
# scripts/container-check.sh does, so that CI does not compile twice).
ARG BINARY_SOURCE=build

FROM rust:1.95-bookworm AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src
# Dependencies first, in a layer of their own: with stand-in sources for both crates (and every
# declared bench), only Cargo.toml or Cargo.lock changes rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/Cargo.toml
RUN mkdir -p src actors/src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs actors/src/lib.rs \
    && awk '/^\[\[bench\]\]/ { bench = 1; next } bench && $1 == "name" { gsub(/"/, "", $3); print $3; bench = 0 }' Cargo.toml \
       | while read -r name; do echo 'fn main() {}' > "benches/${name}.rs"; done \
    && cargo build --release --locked --bin hotswap
COPY . .
# The copied sources are older than the stand-ins' build: touch them so that cargo rebuilds both crates.
RUN touch src/main.rs src/lib.rs actors/src/lib.rs \
    && cargo build --release --locked --bin hotswap \
    && cp target/release/hotswap /hotswap

# A binary built elsewhere (scripts/container-check.sh): a context with `hotswap` and `config/`.
FROM scratch AS prebuilt
COPY hotswap /hotswap

FROM ${BINARY_SOURCE} AS binary

FROM debian:bookworm-slim AS runtime
# ca-certificates: webhooks, OTLP and Vault over TLS verify against the system's roots.
# curl: the HEALTHCHECK below.
# Not pinned: bookworm's security updates replace these versions, and a pin would then fail
# the build; the base image's tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 hotswap \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin hotswap \
    && mkdir -p /app/data/artifacts \
    && chown -R 10001:10001 /app/data
WORKDIR /app
COPY --from=binary /hotswap /app/hotswap
COPY config /app/config
# Module artifacts (registry.artifact_dir, relative to /app): mount a volume on /app/data.
VOLUME ["/app/data"]
# Numeric, so that the host (and Kubernetes' runAsNonRoot) can check it without /etc/passwd.
USER 10001:10001
ENV HOTSWAP_ENV=production HOTSWAP__SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
# The port follows HOTSWAP__SERVER__BIND, so that a container started on another port still checks itself.
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS -o /dev/null \"http://127.0.0.1:${HOTSWAP__SERVER__BIND##*:}/health\""]
ENTRYPOINT ["/app/hotswap"]
CMD ["serve"]
