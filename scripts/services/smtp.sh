#!/usr/bin/env bash
# The SMTP sink of the tests: aiosmtpd (PyPI), installed once into the shared venv
# ~/.cache/weir-tools/venv and reused. Each test starts its own sink on a free port, storing
# every message it receives in a Maildir:
#   aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox DIR
# Prints `export WEIR_TEST_SMTP_SERVER=...` (the aiosmtpd executable); progress goes to stderr.
set -euo pipefail

AIOSMTPD_VERSION=1.4.6
TOOLS="$HOME/.cache/weir-tools"
VENV="$TOOLS/venv"
mkdir -p "$TOOLS"

installed() {
  [ -x "$VENV/bin/aiosmtpd" ] &&
    compgen -G "$VENV/lib/python3*/site-packages/aiosmtpd-$AIOSMTPD_VERSION.dist-info" >/dev/null
}

if ! installed; then
  (
    flock 9
    if ! installed; then
      [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" >&2
      echo "smtp: installing aiosmtpd==$AIOSMTPD_VERSION into $VENV" >&2
      "$VENV/bin/pip" install --quiet "aiosmtpd==$AIOSMTPD_VERSION" >&2
    fi
  ) 9>"$TOOLS/venv.lock"
fi

echo "export WEIR_TEST_SMTP_SERVER=$VENV/bin/aiosmtpd"
