#!/usr/bin/env bash
# Stops the canhgac test Elasticsearch node started by start.sh.
#
#   stop.sh [--data DIR] [--timeout SECONDS]
#
# DIR defaults to $CANHGAC_ES_DATA or /tmp/canhgac-es-test, as for start.sh. Sends SIGTERM
# (the node closes cleanly), then SIGKILL after the timeout (default 30 s). Idempotent: a node
# that is not running is not an error. Only a process that is a canhgac test node is signalled.
set -euo pipefail

DATA="${CANHGAC_ES_DATA:-/tmp/canhgac-es-test}"
TIMEOUT=30
die() { echo "stop.sh: error: $*" >&2; exit 1; }
while (($#)); do
  case "$1" in
    --data) [[ $# -ge 2 ]] || die "--data needs a value"; DATA="$2"; shift 2 ;;
    --data=*) DATA="${1#*=}"; shift ;;
    --timeout) [[ $# -ge 2 ]] || die "--timeout needs a value"; TIMEOUT="$2"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a whole number of seconds"

PIDFILE="$DATA/node.pid"
if [[ ! -f "$PIDFILE" ]]; then
  echo "stop.sh: no test node running in $DATA" >&2
  exit 0
fi
PID="$(cat "$PIDFILE" 2>/dev/null || true)"
is_our_node() {
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'io.canhgac.esrunner.TestNode'
}
if [[ -z "$PID" ]] || ! is_our_node "$PID"; then
  echo "stop.sh: stale pid file in $DATA (no node running); removed" >&2
  rm -f "$PIDFILE" "$DATA/node.port"
  exit 0
fi
kill -TERM "$PID" 2>/dev/null || true
for ((i = 0; i < TIMEOUT * 10; i++)); do
  is_our_node "$PID" || break
  sleep 0.1
done
if is_our_node "$PID"; then
  echo "stop.sh: node (pid $PID) still running after ${TIMEOUT}s; sending SIGKILL" >&2
  kill -KILL "$PID" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do is_our_node "$PID" || break; sleep 0.1; done
fi
rm -f "$PIDFILE" "$DATA/node.port"
echo "stop.sh: stopped the test node (pid $PID) in $DATA" >&2
