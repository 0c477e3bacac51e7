#!/usr/bin/env bash
# Installs what building and running ektp needs and a fresh Debian machine
# with Rust lacks: protoc (protobuf-compiler) and etcd (etcd-server).
# Sourced by deploy/local/demo.sh and tests/run.sh.
set -euo pipefail

ektp_install_prereqs() {
  local missing=()
  command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
  command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]} from Debian's packages" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to install ${missing[*]}" >&2; return 1; }
    sudo="sudo"
  fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian's package may start a system etcd on the default ports; ektp runs its own.
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
    $sudo systemctl disable --now etcd >/dev/null 2>&1 || true
  fi
}
