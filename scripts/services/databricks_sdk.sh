#!/usr/bin/env bash
# The official Databricks SDK for Python (PyPI `databricks-sdk`), which the drop-in API test
# (tests/e2e/databricks_sdk.rs) drives Weir with. Installed once into the shared venv
# ~/.cache/weir-tools/venv and reused. Pinned: 0.155.0 installs from the registry here (newer
# releases want a newer certifi). Prints `export WEIR_TEST_PYTHON=...`; progress goes to stderr.
set -euo pipefail

SDK_VERSION=0.155.0
TOOLS="$HOME/.cache/weir-tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

installed() {
  [ -x "$VENV/bin/python" ] &&
    compgen -G "$VENV/lib/python3*/site-packages/databricks_sdk-$SDK_VERSION.dist-info" >/dev/null
}

if ! installed; then
  (
    flock 9
    if ! installed; then
      [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
      echo "databricks_sdk: installing databricks-sdk==$SDK_VERSION into $VENV" >&2
      "$VENV/bin/pip" install --quiet "databricks-sdk==$SDK_VERSION" >&2
    fi
  ) 9>"$TOOLS/venv.lock"
fi

echo "export WEIR_TEST_PYTHON=$VENV/bin/python"
