# Multi-stage build: compile in the Rust image, run on a slim Debian with a non-root user.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY actors/Cargo.toml actors/Cargo.toml
RUN mkdir -p src actors/src benches \
    && echo 'fn main() {}' > src/main.rs && touch src/lib.rs actors/src/lib.rs \
    && echo 'fn main() {}' > benches/deployment_fanout.rs \
    && cargo build --release --locked --bin hotswap || true
COPY . .
RUN touch src/main.rs src/lib.rs actors/src/lib.rs && cargo build --release --locked --bin hotswap

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --create-home hotswap
WORKDIR /app
COPY --from=build /src/target/release/hotswap /app/hotswap
COPY config /app/config
# Module artifacts (registry.artifact_dir, relative to /app); mount a volume here.
RUN mkdir -p /app/data/artifacts && chown -R hotswap /app/data
USER hotswap
ENV HOTSWAP_ENV=production HOTSWAP__SERVER__BIND=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["/app/hotswap"]
CMD ["serve"]
