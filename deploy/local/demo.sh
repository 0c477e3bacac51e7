#!/usr/bin/env bash
# The ektp demo on loopback: builds, starts a 3-member etcd, 2 registry and 2
# print replicas and the card-printer simulator; records and authorises
# synthetic residents, prints their cards, SIGKILLs the print leader midway
# and ends with one summary line. `--keep` leaves the cluster running (stop it
# with deploy/local/down.sh). Other flags: see `target/debug/ektp-demo --help`.
set -euo pipefail
cd "$(dirname "$0")/../.."
source deploy/local/prereqs.sh
ektp_install_prereqs

if [ -f .cluster/pids ]; then
  echo "a cluster from an earlier --keep run is still up; stopping it first" >&2
  deploy/local/down.sh
fi
# The demo binds fixed loopback ports; refuse to start over something else
# (e.g. a system etcd on 2379), which the demo would otherwise talk to.
for port in 2379 2380 22379 22380 32379 32380 50051 50052 50061 50062 9091 9092 9093 9094; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port on 127.0.0.1 is in use; stop what listens there (ss -ltnp) and retry" >&2
    exit 1
  fi
done
echo "building (first build takes a few minutes)…" >&2
cargo build --workspace --bins --quiet
exec target/debug/ektp-demo --dir .cluster "$@"
