#!/usr/bin/env bash
# Runs every test: installs what is missing (protoc, etcd, promtool, the
# Python validators), validates the deploy manifests and the observability
# config offline, builds the service binaries the cross-service tests start,
# then runs the unit, property, end-to-end, failover and chaos tests, and
# scans every process log of the run for unmasked NIKs.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/local/prereqs.sh
ektp_install_prereqs

echo "== deploy manifests" >&2
bash tests/deploy.sh
echo "== dashboards and alert rules" >&2
bash tests/observability.sh
echo "== build" >&2
cargo build --workspace --bins --locked
echo "== test" >&2
# One test at a time: each cross-service test runs a whole cluster, and
# several at once on a 2-core machine would starve their leases.
# Every process log is kept under target/test-logs for the scan below.
rm -rf target/test-logs
export EKTP_TEST_LOG_DIR="$PWD/target/test-logs"
test_status=0
cargo test --workspace --locked --no-fail-fast -- --test-threads=1 || test_status=$?
echo "== personal data in logs" >&2
bash tests/scan-logs.sh target/test-logs
exit "$test_status"
