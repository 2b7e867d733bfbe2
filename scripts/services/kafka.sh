#!/usr/bin/env bash
# The Kafka-protocol broker of the tests: tansu (crates.io `tansu`, Apache-2.0), built once with
# `cargo install tansu --locked --features dynostore` into ~/.cache/weir-tools/tansu and reused
# (the build takes about 25 minutes on 2 cores; a cached binary is never rebuilt). Tests start
# their own broker on a free port with in-memory storage:
#   tansu broker --listener-url tcp://127.0.0.1:PORT --advertised-listener-url tcp://127.0.0.1:PORT \
#     --storage-engine memory://tansu/
# Prints `export WEIR_TEST_TANSU=...`; progress goes to stderr.
set -euo pipefail

TANSU_VERSION=0.6.0
TOOLS="$HOME/.cache/weir-tools"
ROOT="$TOOLS/tansu"
BIN="$ROOT/bin/tansu"
mkdir -p "$TOOLS"

if [ ! -x "$BIN" ]; then
  (
    flock 9
    if [ ! -x "$BIN" ]; then
      echo "kafka: building tansu $TANSU_VERSION into $ROOT (about 25 minutes)" >&2
      cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore \
        --root "$ROOT" >&2
    fi
  ) 9>"$TOOLS/tansu.lock"
fi

echo "export WEIR_TEST_TANSU=$BIN"
