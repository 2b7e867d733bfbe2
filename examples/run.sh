#!/usr/bin/env bash
# Builds Weir and the example tasks, starts Weir on its embedded defaults (SQLite state and a
# local object store under .weir/), deploys examples/jobs, runs the orders pipeline and shows the
# finished run. A node already listening on 127.0.0.1:8181 is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip1 >/dev/null
cargo build --release -p weir-runtime
cargo build --release --target wasm32-wasip1 -p weir-examples
weir=target/release/weir

started=""
if ! "$weir" jobs list >/dev/null 2>&1; then
  mkdir -p .weir
  "$weir" serve >.weir/serve.log 2>&1 &
  started=$!
  trap '[ -n "$started" ] && kill "$started" 2>/dev/null; wait 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    "$weir" jobs list >/dev/null 2>&1 && break
    kill -0 "$started" 2>/dev/null || { cat .weir/serve.log; exit 1; }
    sleep 0.1
  done
  echo "weir is serving on http://127.0.0.1:8181 (log: .weir/serve.log)"
fi

"$weir" deploy examples/jobs
echo
"$weir" jobs run orders-pipeline --wait
echo
echo "report written by the run:"
cat examples/lake/reports/report-*.md 2>/dev/null | tail -n 20 || true
if [ -n "$started" ]; then
  echo
  echo "stopping weir; its state stays in .weir/. Start it again with: $weir serve"
fi
