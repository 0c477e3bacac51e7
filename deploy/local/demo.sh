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
echo "building (first build takes a few minutes)…" >&2
cargo build --workspace --bins --quiet
exec target/debug/ektp-demo --dir .cluster "$@"
