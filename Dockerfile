# syntax=docker/dockerfile:1
#
# One image for all three ektp binaries; the container's command picks one:
#   registry-service (default), print-service, card-printer-sim.
#
#   docker build -t ghcr.io/ektp/ektp:0.1.0 .
#
# Needs BuildKit (default since Docker 23; podman/buildah support it too) for
# the cache mounts, which keep the cargo registry and target dir between builds.

FROM rust:1-bookworm AS builder
# Debian package versions are not pinned: bookworm only ships security fixes.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends protobuf-compiler \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bins \
 && mkdir -p /out \
 && cp target/release/registry-service target/release/print-service target/release/card-printer-sim /out/

FROM debian:bookworm-slim
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ektp \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin ektp \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/ektp /var/lib/ektp/hotfolder
COPY --from=builder /out/registry-service /out/print-service /out/card-printer-sim /usr/local/bin/
USER 10001:10001
WORKDIR /var/lib/ektp
# registry gRPC / metrics, print gRPC / metrics
EXPOSE 50051 9091 50061 9093
CMD ["registry-service"]
