#!/usr/bin/env python3
"""Reads criterion's estimates (target/criterion) and prints the bench figures and the ratios
the issues set targets for, as Markdown. Usage: python3 perf/bench_report.py [criterion dir]"""

import json
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else "target/criterion")


def median_s(group, bench):
    # criterion writes "::" in group names as "__" in its directory names.
    path = root / group.replace("::", "__") / bench / "new" / "estimates.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())["median"]["point_estimate"] / 1e9


def fmt(seconds):
    return "—" if seconds is None else (f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs")


rows = []
for group_dir in sorted(p for p in root.iterdir() if p.is_dir() and "__" in p.name):
    group = group_dir.name.replace("__", "::")
    if group.endswith("::mainnet"):
        continue  # one bench per block: summarised below
    for bench_dir in sorted(p for p in group_dir.iterdir() if p.is_dir() and p.name != "report"):
        rows.append((f"{group}/{bench_dir.name}", median_s(group, bench_dir.name)))

print("| bench | median |\n|---|---|")
for name, m in rows:
    extra = ""
    if "txs=10000" in name and m is not None:
        extra = f" ({m / 10_000 * 1e6:.2f} µs/tx)"
    print(f"| `{name}` | {fmt(m)}{extra} |")

ratios = [
    ("recover: parallel vs libsecp256k1 on one thread", "recover::libsecp256k1_one_thread", "recover::senders", "txs=10000", 1.7),
    ("delivery: 100 vote signatures as a batch vs one by one", "delivery::verify_votes_one_by_one",
     "delivery::verify_votes", "votes=100", 1.5),
    ("state root: incremental update vs full rebuild", "state_root::full_rebuild", "state_root::update",
     "accounts=1000000,changed=10000", 20.0),
]
print("\n| ratio | measured | target |\n|---|---|---|")
for label, slow, fast, bench, target in ratios:
    a, b = median_s(slow, bench), median_s(fast, bench)
    value = "—" if a is None or b is None else f"{a / b:.2f}×"
    print(f"| {label} | {value} | ≥ {target}× |")

# Parallel execution against sequential revm on the same blocks, same run.
targets = {"transfers": 1.7, "erc20": 1.7, "dependent": 0.95}
print("\n| parallel vs sequential | sequential | parallel | ratio | target |\n|---|---|---|---|---|")
for name in ("transfers", "erc20", "amm_swaps", "dependent"):
    group_dir = root / f"exec_parallel__{name}"
    if not group_dir.is_dir():
        continue
    for bench_dir in sorted(p for p in group_dir.iterdir() if p.is_dir() and p.name != "report"):
        seq = median_s(f"exec_sequential::{name}", bench_dir.name)
        par = median_s(f"exec_parallel::{name}", bench_dir.name)
        if seq is None or par is None:
            continue
        target = f"≥ {targets[name]}×" if name in targets else "report"
        print(f"| `exec_parallel::{name}/{bench_dir.name}` | {fmt(seq)} | {fmt(par)} | {seq / par:.2f}× | {target} |")
mainnet = root / "exec_parallel__mainnet"
if mainnet.is_dir():
    import math
    ratios = []
    for bench_dir in sorted(p for p in mainnet.iterdir() if p.is_dir() and p.name != "report"):
        seq = median_s("exec_sequential::mainnet", bench_dir.name)
        par = median_s("exec_parallel::mainnet", bench_dir.name)
        if seq and par:
            ratios.append((int(bench_dir.name), seq / par))
    if ratios:
        geo = math.exp(sum(math.log(r) for _, r in ratios) / len(ratios))
        worst = min(ratios, key=lambda r: r[1])
        best = max(ratios, key=lambda r: r[1])
        print(f"| mainnet blocks ({len(ratios)}), geometric mean | | | {geo:.2f}× | report |")
        print(f"\nmainnet: slowest ratio {worst[1]:.2f}× (block {worst[0]}), fastest {best[1]:.2f}× (block {best[0]})")
