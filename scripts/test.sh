#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs the wasm target, builds the guest
# modules the end-to-end tests run, then `cargo test --workspace`. No service needs starting: the
# tests use the embedded defaults (SQLite + a local object store in temp dirs).
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1 >/dev/null
cargo build --release --target wasm32-wasip1 -p weir-test-tasks -p weir-examples
cargo test --workspace "$@"
