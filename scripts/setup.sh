#!/usr/bin/env bash
# Installs what building and testing bttc needs, when it is missing. Sourced by dev.sh and test.sh.
set -euo pipefail

need_apt=()
# mdbx-sys generates its bindings with bindgen, which needs libclang (libclang.so, not only
# libclang-cpp, which some images carry).
if ! compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null && ! dpkg -s libclang-dev >/dev/null 2>&1; then
  need_apt+=(libclang-dev)
fi
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null 2>&1 || { echo "setup: cargo not found: install the Rust toolchain (rustup)" >&2; exit 1; }
