#!/usr/bin/env bash
# Throughput benchmark: builds what it needs (release profile, so the figures
# mean something), starts its own etcd and cluster on loopback, measures raw
# etcd puts beside RecordResident at 1/16/64 in flight, the print pipeline
# with an instant printer and peak RSS; then seeds --residents (1,000,000)
# straight into etcd, restarts the registry replicas so they load their
# verification indexes, streams --verify-claims (1,000,000) VerifyResidents
# over --verify-streams (4) streams, and measures the registry replicas'
# peak RSS. Stops everything it started, and prints a last line:
#   bench record_ratio_64=X record_p99_ms_64=X print_cards_s=X verify_s=X registry_rss_mib=X print_rss_mib=X
# Extra flags go to the benchmark (--requests N, --cards N, --residents N, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/prereqs.sh
ektp_install_prereqs
cargo build --workspace --bins --release --quiet
exec target/release/ektp-throughput-bench --dir target/bench-throughput "$@"
