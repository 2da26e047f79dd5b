#!/usr/bin/env bash
# Starts the canhgac test Elasticsearch node (one real Elasticsearch 8.x node, loopback only)
# in the background, waits until it is healthy and prints its URL on stdout.
#
#   start.sh [--port P] [--data DIR] [--fresh] [--timeout SECONDS]
#            [--wait-for-status green|yellow] [-Ekey=value ...]
#
#   --port P       HTTP port on 127.0.0.1 (default 19200)
#   --data DIR     node home: data, logs, pid file (default $CANHGAC_ES_DATA or /tmp/canhgac-es-test)
#   --fresh        delete DIR's previous data before starting (refused while a node runs there)
#   --timeout S    seconds to wait for the node to become healthy (default 180)
#   --wait-for-status  cluster health to wait for (default green; see README)
#   -Ekey=value    any Elasticsearch node setting, e.g. -Ethread_pool.write.queue_size=1
#
# Builds the node first if needed (Maven, artifacts from Maven Central only; extra Maven
# arguments from $CANHGAC_MAVEN_ARGS, e.g. -Dmaven.repo.local=/tmp/m2). JVM options come
# from $ES_JAVA_OPTS (default -Xms512m -Xmx1g). Idempotent: if a node already runs in DIR on
# the same port, prints its URL and exits 0. Stop it with stop.sh --data DIR.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
RUNNER="$HERE/runner"
PORT=19200
DATA="${CANHGAC_ES_DATA:-/tmp/canhgac-es-test}"
FRESH=0
TIMEOUT=180
WAIT_STATUS=green
ES_SETTINGS=()

die() { echo "start.sh: error: $*" >&2; exit 1; }
log() { echo "start.sh: $*" >&2; }

while (($#)); do
  case "$1" in
    --port) [[ $# -ge 2 ]] || die "--port needs a value"; PORT="$2"; shift 2 ;;
    --port=*) PORT="${1#*=}"; shift ;;
    --data) [[ $# -ge 2 ]] || die "--data needs a value"; DATA="$2"; shift 2 ;;
    --data=*) DATA="${1#*=}"; shift ;;
    --fresh) FRESH=1; shift ;;
    --timeout) [[ $# -ge 2 ]] || die "--timeout needs a value"; TIMEOUT="$2"; shift 2 ;;
    --timeout=*) TIMEOUT="${1#*=}"; shift ;;
    --wait-for-status) [[ $# -ge 2 ]] || die "--wait-for-status needs a value"; WAIT_STATUS="$2"; shift 2 ;;
    --wait-for-status=*) WAIT_STATUS="${1#*=}"; shift ;;
    -E?*=*) ES_SETTINGS+=("$1"); shift ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

if ! [[ "$PORT" =~ ^[1-9][0-9]{0,4}$ ]] || ((PORT > 65535)); then
  die "--port must be a TCP port number (1-65535), got '$PORT'"
fi
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || die "--timeout must be a whole number of seconds, got '$TIMEOUT'"
[[ "$WAIT_STATUS" == green || "$WAIT_STATUS" == yellow ]] || die "--wait-for-status must be green or yellow"
for s in "${ES_SETTINGS[@]+"${ES_SETTINGS[@]}"}"; do
  case "$s" in
    -Enetwork.host=*|-Ehttp.host=*|-Ehttp.bind_host=*|-Ehttp.publish_host=*|-Etransport.host=*)
      die "$s: the test node listens on 127.0.0.1 only" ;;
    -Ehttp.port=*|-Epath.home=*) die "$s: use --port / --data instead" ;;
  esac
done
command -v python3 >/dev/null || die "python3 is required (used for the health check)"
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
PIDFILE="$DATA/node.pid"
PORTFILE="$DATA/node.port"
LOGFILE="$DATA/logs/node.log"
URL="http://127.0.0.1:$PORT"

# ---- java ----------------------------------------------------------------------------------
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
command -v "$JAVA" >/dev/null || die "java not found (install OpenJDK 17+, e.g. apt-get install openjdk-17-jdk-headless, or set JAVA_HOME)"
JAVA_MAJOR="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = \([0-9]*\).*/\1/p')"
[[ -n "$JAVA_MAJOR" && "$JAVA_MAJOR" -ge 17 ]] || die "Java 17 or newer is required, $JAVA is version '${JAVA_MAJOR:-unknown}'"

# ---- helpers -------------------------------------------------------------------------------
is_our_node() {  # pid -> 0 if that process is a canhgac test node
  [[ -r "/proc/$1/cmdline" ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -q 'io.canhgac.esrunner.TestNode'
}
health() {  # prints the cluster health status, or nothing if the node does not answer
  python3 - "$URL" "$1" <<'PY' 2>/dev/null || true
import json, sys, urllib.request
url, wait = sys.argv[1], sys.argv[2]
q = f"{url}/_cluster/health?wait_for_status={wait}&timeout=1s" if wait else f"{url}/_cluster/health"
try:
    with urllib.request.urlopen(q, timeout=5) as r:
        print(json.load(r)["status"])
except urllib.error.HTTPError as e:  # 408 when wait_for_status timed out: still report it
    print(json.load(e).get("status", ""))
PY
}
port_busy() {
  python3 - "$PORT" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
finally:
    s.close()
sys.exit(1)
PY
}

# ---- already running? ----------------------------------------------------------------------
if [[ -f "$PIDFILE" ]]; then
  OLD_PID="$(cat "$PIDFILE" 2>/dev/null || true)"
  if [[ -n "$OLD_PID" ]] && is_our_node "$OLD_PID"; then
    OLD_PORT="$(cat "$PORTFILE" 2>/dev/null || echo '?')"
    [[ "$OLD_PORT" == "$PORT" ]] || die "a test node (pid $OLD_PID) already runs in $DATA on port $OLD_PORT; stop it first: $HERE/stop.sh --data $DATA"
    ((FRESH == 0)) || die "--fresh refused: a test node (pid $OLD_PID) runs in $DATA; stop it first"
    status="$(health "$WAIT_STATUS")"
    if [[ "$status" == green || "$status" == "$WAIT_STATUS" ]]; then
      log "already running (pid $OLD_PID)"
      echo "$URL"
      exit 0
    fi
    log "a node (pid $OLD_PID) runs in $DATA but is not healthy yet; waiting for it"
    NODE_PID="$OLD_PID"
  else
    rm -f "$PIDFILE" "$PORTFILE"
  fi
fi

# ---- build (if needed) ---------------------------------------------------------------------
build_is_current() {
  local cp="$RUNNER/target/classpath.txt" stamp="$RUNNER/target/.built"
  [[ -f "$cp" && -f "$stamp" ]] || return 1
  [[ "$(cat "$stamp")" == "${CANHGAC_MAVEN_ARGS:-}" ]] || return 1
  [[ -z "$(find "$RUNNER/pom.xml" "$RUNNER/src" -newer "$stamp" -print -quit)" ]] || return 1
  local jar
  while IFS= read -r jar; do [[ -f "$jar" ]] || return 1; done < <(tr ':' '\n' <"$cp")
}
build() {
  command -v mvn >/dev/null || die "mvn not found (install Maven, e.g. apt-get install maven)"
  mkdir -p "$RUNNER/target"
  exec 9>"$RUNNER/target/.build.lock"
  flock 9  # two start.sh at once build once
  if build_is_current; then exec 9>&-; return; fi
  log "building the test node (Maven; a first build downloads ~70 MB from Maven Central)"
  local t0=$SECONDS
  # shellcheck disable=SC2086  # CANHGAC_MAVEN_ARGS is a list of words on purpose
  if ! mvn -q -B -f "$RUNNER/pom.xml" ${CANHGAC_MAVEN_ARGS:-} compile dependency:build-classpath >"$RUNNER/target/build.log" 2>&1; then
    tail -n 40 "$RUNNER/target/build.log" >&2
    die "Maven build failed (full log: $RUNNER/target/build.log)"
  fi
  printf '%s' "${CANHGAC_MAVEN_ARGS:-}" >"$RUNNER/target/.built"
  log "built in $((SECONDS - t0))s"
  exec 9>&-
}

if [[ -z "${NODE_PID:-}" ]]; then
  build_is_current || build
  ! port_busy || die "port $PORT on 127.0.0.1 is already in use by another process; choose another --port"
  if ((FRESH)); then
    rm -rf "$DATA/data" "$DATA/logs" "$DATA/tmp" "$DATA/config"
  fi
  mkdir -p "$DATA/logs" "$DATA/tmp"
  # shellcheck disable=SC2206  # ES_JAVA_OPTS is a list of words, as for Elasticsearch itself
  JVM_OPTS=(${ES_JAVA_OPTS:--Xms512m -Xmx1g})
  CP="$RUNNER/target/classes:$(cat "$RUNNER/target/classpath.txt")"
  log "starting Elasticsearch on $URL (home $DATA, log $LOGFILE)"
  # setsid: the node outlives this script and does not get the caller's terminal signals
  setsid "$JAVA" "${JVM_OPTS[@]}" \
    -XX:+UseG1GC -Xss1m -Djava.awt.headless=true -Dfile.encoding=UTF-8 \
    -Djava.io.tmpdir="$DATA/tmp" \
    -Dlog4j2.disable.jmx=true -Dlog4j.shutdownHookEnabled=false -Dlog4j2.formatMsgNoLookups=true \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true -Dio.netty.recycler.maxCapacityPerThread=0 \
    -cp "$CP" io.canhgac.esrunner.TestNode \
    -Epath.home="$DATA" -Ehttp.port="$PORT" "${ES_SETTINGS[@]+"${ES_SETTINGS[@]}"}" \
    </dev/null >"$LOGFILE" 2>&1 &
  NODE_PID=$!
  echo "$NODE_PID" >"$PIDFILE"
  echo "$PORT" >"$PORTFILE"
fi

# ---- wait for health -----------------------------------------------------------------------
t0=$SECONDS
while :; do
  if ! kill -0 "$NODE_PID" 2>/dev/null; then
    rm -f "$PIDFILE" "$PORTFILE"
    echo "----- last lines of $LOGFILE -----" >&2
    tail -n 40 "$LOGFILE" >&2 || true
    die "the node exited during startup (see $LOGFILE)"
  fi
  status="$(health "$WAIT_STATUS")"
  if [[ "$status" == green || ( "$WAIT_STATUS" == yellow && "$status" == yellow ) ]]; then
    break
  fi
  if ((SECONDS - t0 >= TIMEOUT)); then
    echo "----- last lines of $LOGFILE -----" >&2
    tail -n 20 "$LOGFILE" >&2 || true
    "$HERE/stop.sh" --data "$DATA" >&2 || true
    die "the node on $URL was not $WAIT_STATUS after ${TIMEOUT}s (last status: '${status:-no answer}'); stopped it"
  fi
  sleep 0.5
done
log "healthy ($status) after $((SECONDS - t0))s, pid $NODE_PID"
echo "$URL"
