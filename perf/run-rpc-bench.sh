#!/usr/bin/env bash
# JSON-RPC read throughput of bttc against anvil and nginx, all measured in one run with wrk.
# Installs wrk and nginx (Debian packages) and anvil (npm, pinned in perf/anvil) when missing.
# Usage: perf/run-rpc-bench.sh [rpc-bench flags, e.g. --duration 10 --accounts 100000]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
if [ "${#need[@]}" -gt 0 ]; then
  echo "rpc-bench: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
(cd perf/anvil && npm ci --no-audit --no-fund --loglevel=error)
cargo build --release -p bttc --bin bttc -p bttc-perf --bin rpc-bench 2>&1 | tail -1
OUT="perf/reports/rpc-bench-$(date -u +%Y%m%dT%H%M%SZ).json"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
target/release/rpc-bench --nginx "$NGINX" --out "$OUT" "$@"
