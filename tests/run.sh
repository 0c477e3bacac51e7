#!/usr/bin/env bash
# Runs every test in the workspace: installs what is missing (protoc, etcd),
# builds the service binaries the cross-service tests start, then runs the
# unit, property, end-to-end and failover tests.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/local/prereqs.sh
ektp_install_prereqs

echo "== build" >&2
cargo build --workspace --bins --locked
echo "== test" >&2
cargo test --workspace --locked --no-fail-fast
