#!/usr/bin/env bash
# Builds Weir and the example tasks, starts Weir on its embedded defaults (SQLite state and a
# local object store under .weir/), deploys examples/jobs, runs the orders pipeline and shows the
# finished run. A node already listening on 127.0.0.1:8181 is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

say "installing the wasm32-wasip1 target (once)"
rustup target add wasm32-wasip1 >/dev/null
if [ -x target/release/weir ]; then
  say "building weir (release; only what changed since the last build)"
else
  say "building weir (release): the first build compiles about 350 crates, several minutes on 2 cores (see README); later builds take seconds"
fi
cargo build --release -p weir-runtime
say "building the example tasks for wasm32-wasip1"
cargo build --release --target wasm32-wasip1 -p weir-examples
weir=target/release/weir

started=""
if ! "$weir" jobs list >/dev/null 2>&1; then
  say "starting weir serve on .weir/ (SQLite state, local object store)"
  mkdir -p .weir
  "$weir" serve >.weir/serve.log 2>&1 &
  started=$!
  trap '[ -n "$started" ] && kill "$started" 2>/dev/null; wait 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    "$weir" jobs list >/dev/null 2>&1 && break
    kill -0 "$started" 2>/dev/null || { cat .weir/serve.log; exit 1; }
    sleep 0.1
  done
  say "weir is serving on http://127.0.0.1:8181 (log: .weir/serve.log)"
fi

say "deploying examples/jobs"
"$weir" deploy examples/jobs
say "running orders-pipeline and waiting for it to finish"
"$weir" jobs run orders-pipeline --wait
say "report written by the run:"
cat examples/lake/reports/report-*.md 2>/dev/null | tail -n 20 || true
if [ -n "$started" ]; then
  echo
  echo "stopping weir; its state stays in .weir/. Start it again with: $weir serve"
fi
