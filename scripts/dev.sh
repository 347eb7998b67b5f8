#!/usr/bin/env bash
# Builds bttc (release) and starts the dev node: a single-node chain at http://127.0.0.1:8545
# with 10 prefunded accounts. Extra arguments go to `bttc node`, e.g. --block-time 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --bin bttc
exec target/release/bttc node --dev --datadir "${BTTC_DATADIR:-./data/dev}" "$@"
