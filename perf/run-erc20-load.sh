#!/usr/bin/env bash
# End-to-end load: a release dev node (2 s blocks, durable commits) on loopback, and loadgen
# sending signed ERC-20 transfers over JSON-RPC for DURATION seconds at RATE tx/s.
# Usage: [SENDERS=N] perf/run-erc20-load.sh [RATE] [DURATION]   (defaults 5000 60, 2000 senders)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
RATE="${1:-5000}"
DURATION="${2:-60}"
PORT="${PORT:-18645}"
cargo build --release --bin bttc -p bttc --bin loadgen -p bttc-perf 2>&1 | tail -1
DATADIR="$(mktemp -d /tmp/bttc-load-XXXXXX)"
target/release/bttc node --dev --datadir "$DATADIR" --http.port "$PORT" --ws.port "$((PORT + 1))" --block-time 2 --db.sync durable \
  > "$DATADIR/node.log" 2>&1 &
NODE=$!
trap 'kill $NODE 2>/dev/null; wait $NODE 2>/dev/null; rm -rf "$DATADIR"' EXIT
for _ in $(seq 100); do
  curl -sf -X POST -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "http://127.0.0.1:$PORT" >/dev/null && break
  sleep 0.1
done
OUT="perf/reports/erc20-load-$(date -u +%Y%m%dT%H%M%SZ).json"
target/release/loadgen --rpc "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" \
  --senders "${SENDERS:-2000}" --node-pid "$NODE" --out "$OUT"
echo "node log: last blocks"
grep "committed block" "$DATADIR/node.log" | tail -5 | sed 's/\x1b\[[0-9;]*m//g'
