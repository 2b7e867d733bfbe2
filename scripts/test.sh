#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine: installs the wasm target, installs and
# prepares the real services the tests talk to (scripts/services/*.sh), builds the guest modules
# the end-to-end tests run, then the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1 >/dev/null
for service in scripts/services/*.sh; do
  [ -e "$service" ] || continue
  echo "== preparing $(basename "$service" .sh)" >&2
  exports=$(bash "$service")
  eval "$exports"
done
cargo build --release --target wasm32-wasip1 -p weir-test-tasks -p weir-examples
# cargo-nextest runs each test in its own process, in parallel (what the tests are checked
# with); plain `cargo test` when it is not installed. Doc tests run with cargo either way.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast "$@"
  cargo test --workspace --doc
else
  cargo test --workspace "$@"
fi
