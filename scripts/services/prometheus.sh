#!/usr/bin/env bash
# The Prometheus text-format parser of the tests: `prometheus-client` (PyPI), installed once into
# the shared venv ~/.cache/weir-tools/venv. The `/metrics` test pipes Weir's output through
# `prometheus_client.parser.text_string_to_metric_families`, the reference parser.
# Prints `export WEIR_TEST_PROMETHEUS_PYTHON=...` (a python with the parser); progress on stderr.
set -euo pipefail

PROMETHEUS_CLIENT_VERSION=0.26.0
TOOLS="$HOME/.cache/weir-tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

installed() {
  [ -x "$VENV/bin/python" ] &&
    compgen -G "$VENV/lib/python3*/site-packages/prometheus_client-$PROMETHEUS_CLIENT_VERSION.dist-info" >/dev/null
}

if ! installed; then
  (
    flock 9
    if ! installed; then
      [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
      echo "prometheus: installing prometheus-client==$PROMETHEUS_CLIENT_VERSION into $VENV" >&2
      "$VENV/bin/pip" install --quiet "prometheus-client==$PROMETHEUS_CLIENT_VERSION" >&2
    fi
  ) 9>"$TOOLS/venv.lock"
fi

echo "export WEIR_TEST_PROMETHEUS_PYTHON=$VENV/bin/python"
