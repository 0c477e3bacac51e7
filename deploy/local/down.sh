#!/usr/bin/env bash
# Stops everything deploy/local/demo.sh --keep left running: the services
# first (they drain and resign, which needs etcd), then the printer, then etcd.
set -euo pipefail
cd "$(dirname "$0")/../.."
pids_file=.cluster/pids
if [ ! -f "$pids_file" ]; then
  echo "nothing to stop (no $pids_file)"
  exit 0
fi

stop() { # stop NAME-PATTERN: SIGTERM matching processes, wait up to 10 s, then SIGKILL
  local pattern=$1 pids=()
  while read -r pid name; do
    [[ $name == $pattern ]] || continue
    kill -0 "$pid" 2>/dev/null || continue
    kill -TERM "$pid" 2>/dev/null && echo "stopping $name (pid $pid)" && pids+=("$pid")
  done < "$pids_file"
  for _ in $(seq 1 100); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null && echo "killed pid $pid"; done
  return 0
}

stop 'print-*'
stop 'registry-*'
stop 'card-printer-sim'
stop 'etcd-*'
rm -f "$pids_file"
echo "stopped"
