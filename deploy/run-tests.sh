#!/usr/bin/env bash
# Runs the whole suite. Servers the tests need are started here (and stopped on
# exit); a test that needs a missing server fails in CI instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
"$BIN/ruff" check .
"$BIN/mypy"  # strict on the kernel, the shipper and the collector ([tool.mypy] in pyproject.toml)

# The test Elasticsearch node (deploy/elasticsearch, a real Elasticsearch 8.x built from Maven
# Central): one node on a free 127.0.0.1 port for the whole run, stopped on exit. The tests
# find it through CANHGAC_TEST_ES_URL; if that is already set, that node is used instead.
if [[ -z "${CANHGAC_TEST_ES_URL:-}" ]]; then
  ES_DATA="$(mktemp -d "${TMPDIR:-/tmp}/canhgac-es-run.XXXXXX")"
  stop_es() {
    deploy/elasticsearch/stop.sh --data "$ES_DATA" || true
    rm -rf "$ES_DATA"
  }
  trap stop_es EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  ES_PORT="$("$BIN/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  CANHGAC_TEST_ES_URL="$(deploy/elasticsearch/start.sh --port "$ES_PORT" --data "$ES_DATA" --fresh)"
  export CANHGAC_TEST_ES_URL
  echo "run-tests.sh: test Elasticsearch at $CANHGAC_TEST_ES_URL"
fi

# not exec: the EXIT trap must run after pytest to stop the node
"$BIN/pytest" -q -p no:cacheprovider "$@"
