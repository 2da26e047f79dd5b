#!/usr/bin/env bash
# Runs the whole suite. Servers the tests need are started here (and stopped on
# exit); a test that needs a missing server fails in CI instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check .
exec "$BIN/pytest" -q -p no:cacheprovider "$@"
