#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, Rust tests, and the real-client tests
# (web3.py and ethers against a dev node process). Installs what it needs when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh

step() { printf '\n==> %s\n' "$*"; }

for tool in python3 node npm; do
  command -v "$tool" >/dev/null 2>&1 || { echo "test: $tool is required for the client tests but is missing" >&2; exit 1; }
done

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
# The planted-bug switches too (same workspace selection, so no dependency is checked again).
cargo clippy --workspace --all-targets --features bttc-engine/planted-bugs -- -D warnings

step "cargo build (the node binary the client tests start)"
cargo build --bin bttc

step "contracts: solc-js (pinned) recompiles engine/contracts into exactly the committed artifacts"
(cd engine/contracts && npm ci --no-audit --no-fund --loglevel=error && node compile.mjs --check)

step "Rust tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi

step "planted bugs: the simulation finds what each one breaks"
# Built with the workspace's feature resolution: only the engine is compiled again.
cargo test --workspace --features bttc-engine/planted-bugs --test planted_bugs -- --nocapture

step "client test dependencies (PyPI: web3, eth-account, pytest; npm: solc, ethers)"
if [ ! -x target/venv/bin/python ]; then
  python3 -m venv target/venv
fi
target/venv/bin/pip install -q --disable-pip-version-check -r tests/clients/requirements.txt
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error)

export BTTC_BIN="$PWD/target/debug/bttc"
step "web3.py client tests"
target/venv/bin/python -m pytest -q tests/clients

step "ethers client tests"
node --test tests/clients/
