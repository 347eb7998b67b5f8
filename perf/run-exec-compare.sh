#!/usr/bin/env bash
# The dev node's end-to-end ERC-20 throughput with `--exec sequential` and `--exec parallel`,
# one after the other in one run: a release node (2 s blocks, durable commits) on loopback and
# loadgen sending signed ERC-20 transfers over JSON-RPC at RATE tx/s for DURATION seconds.
# Reports, per executor: send and inclusion rates, node CPU, and the median time to build a
# block (execution and state root) over blocks of at least 1,000 transactions.
# Usage: [SENDERS=N] perf/run-exec-compare.sh [RATE] [DURATION]   (defaults 7000 30)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
RATE="${1:-7000}"
DURATION="${2:-30}"
PORT="${PORT:-18745}"
cargo build --release --bin bttc -p bttc --bin loadgen -p bttc-perf 2>&1 | tail -1
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
WORK="$(mktemp -d /tmp/bttc-exec-XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
for EXEC in sequential parallel; do
  DATADIR="$WORK/$EXEC"
  mkdir -p "$DATADIR"
  target/release/bttc node --dev --exec "$EXEC" --datadir "$DATADIR" --http.port "$PORT" \
    --ws.port "$((PORT + 1))" --block-time 2 --db.sync durable > "$DATADIR/node.log" 2>&1 &
  NODE=$!
  for _ in $(seq 100); do
    curl -sf -X POST -H 'content-type: application/json' \
      --data '{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber","params":[]}' "http://127.0.0.1:$PORT" >/dev/null && break
    sleep 0.1
  done
  echo "== --exec $EXEC"
  target/release/loadgen --rpc "http://127.0.0.1:$PORT" --rate "$RATE" --duration "$DURATION" \
    --senders "${SENDERS:-2000}" --node-pid "$NODE" --out "$WORK/$EXEC.json"
  kill "$NODE"; wait "$NODE" 2>/dev/null || true
  sed 's/\x1b\[[0-9;]*m//g' "$DATADIR/node.log" > "$WORK/$EXEC.log"
done
OUT="perf/reports/exec-compare-$STAMP.json"
python3 - "$WORK" "$RATE" "$DURATION" "$OUT" <<'PY'
import json, re, statistics, sys
work, rate, duration, out = sys.argv[1:]
report = {"rate": int(rate), "duration_s": int(duration)}
for mode in ("sequential", "parallel"):
    load = json.load(open(f"{work}/{mode}.json"))
    builds = []
    for line in open(f"{work}/{mode}.log"):
        m = re.search(r"txs=(\d+).*build_ms=([\d.]+)", line)
        if m and int(m.group(1)) >= 1000:
            builds.append((int(m.group(1)), float(m.group(2))))
    report[mode] = {
        "load": load,
        "blocks_of_1000_txs_or_more": len(builds),
        "median_txs_per_block": statistics.median(t for t, _ in builds) if builds else None,
        "median_build_ms": statistics.median(b for _, b in builds) if builds else None,
        "build_us_per_tx": statistics.median(b * 1e3 / t for t, b in builds) if builds else None,
    }
s, p = report["sequential"], report["parallel"]
if s["build_us_per_tx"] and p["build_us_per_tx"]:
    report["build_speedup"] = s["build_us_per_tx"] / p["build_us_per_tx"]
report["inclusion_ratio"] = p["load"]["inclusion_rate_tx_s"] / s["load"]["inclusion_rate_tx_s"]
json.dump(report, open(out, "w"), indent=2)
for mode in ("sequential", "parallel"):
    r = report[mode]
    print(f"{mode:>10}: included {r['load']['included']} at {r['load']['inclusion_rate_tx_s']:.0f} tx/s, "
          f"node CPU {r['load'].get('node_cpu_cores')}, median block {r['median_txs_per_block']} txs built in "
          f"{r['median_build_ms']} ms ({r['build_us_per_tx']:.2f} µs/tx)")
print(f"build time per transaction, sequential / parallel: {report.get('build_speedup', 0):.2f}x; "
      f"inclusion rate parallel / sequential: {report['inclusion_ratio']:.2f}x")
print(f"report: {out}")
PY
