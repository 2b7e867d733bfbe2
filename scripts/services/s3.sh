#!/usr/bin/env bash
# The S3-compatible server of the tests: moto in server mode (PyPI `moto[server]`), installed
# once into the shared venv ~/.cache/weir-tools/venv and reused. Tests start their own server
# (`moto_server -H 127.0.0.1 -p PORT`, in memory) or share one per test process with a bucket
# named after each test. Prints `export WEIR_TEST_S3_SERVER=...`; progress goes to stderr.
#
# Why moto and not s3s-fs: `pip install moto[server]` takes about a minute and compiles
# nothing, while `cargo install s3s-fs` compiles a few hundred crates (and its newest release
# needs a newer rustc than the project's). See BENCHMARKS.md (file arrival) for the numbers.
set -euo pipefail

MOTO_VERSION=5.2.5
TOOLS="$HOME/.cache/weir-tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

installed() {
  [ -x "$VENV/bin/moto_server" ] &&
    compgen -G "$VENV/lib/python3*/site-packages/moto-$MOTO_VERSION.dist-info" >/dev/null &&
    compgen -G "$VENV/lib/python3*/site-packages/flask" >/dev/null
}

if ! installed; then
  (
    flock 9
    if ! installed; then
      [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
      echo "s3: installing moto[server]==$MOTO_VERSION into $VENV" >&2
      "$VENV/bin/pip" install --quiet "moto[server]==$MOTO_VERSION" >&2
    fi
  ) 9>"$TOOLS/venv.lock"
fi

echo "export WEIR_TEST_S3_SERVER=$VENV/bin/moto_server"
