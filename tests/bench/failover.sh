#!/usr/bin/env bash
# Failover benchmark: builds what it needs, starts its own cluster on
# loopback (TTL 2 s), measures crash failover and graceful handover over 10
# rounds each, stops everything it started, and prints a last line:
#   failover ttl_s=2 crash_p50_s=X crash_max_s=X graceful_p50_ms=X graceful_max_ms=X rounds=N duplicates=0 lost=0
# Extra flags go to the benchmark (--rounds N, --lease-ttl-secs N).
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/prereqs.sh
ektp_install_prereqs
cargo build --workspace --bins --quiet
exec target/debug/ektp-failover-bench "$@"
