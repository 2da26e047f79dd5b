#!/usr/bin/env bash
# The Debian packages tested for real, in a clean Debian 12 root, with no network:
#   1. build the packages and the offline bundle twice from this tree: the current version
#      and a "previous" one (same tree, version <v>~prev1);
#   2. make a clean Debian 12 root (mmdebstrap, or debootstrap, from the Debian registry),
#      cached in ~/.cache/canhgac/debian12-root.tar so a machine pays for it once;
#   3. in a new network namespace (loopback only) and mount namespace: install the previous
#      bundle with its install.sh, check users, modes, conffiles and the enabled unit; start
#      the collector and the agent in the root (chroot, the binaries run directly: no systemd
#      in a chroot; the agent under setpriv with exactly the unit's user and capabilities),
#      enroll the agent and wait for its events in the collector's store;
#   4. upgrade to the current bundle: config changes and state kept, the same agent's events
#      arrive again without re-enrolling;
#   5. remove (config and state stay), purge (nothing of canhgac is left: file lists compared).
# Prints "figure:" lines (sizes, install times). Needs root. Usage:
#   deploy/package-test.sh [--keep]        (--keep: leave the work directory for inspection)
# In CI (CI=true) a missing tool is an error like any other: this script never skips.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CANHGAC_CACHE:-$HOME/.cache/canhgac}
ROOT_TAR=$CACHE/debian12-root.tar
PY=${PYTHON:-$REPO/.venv/bin/python}
[ -x "$PY" ] || PY=$(command -v python3)

say() { printf '%s package-test: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND until it succeeds or the deadline passes.
wait_until() {
    local what=$1 limit=$2; shift 2
    local deadline=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || fail "gave up after ${limit}s waiting for $what"
        sleep 0.2
    done
}

# --- inside the namespaces -------------------------------------------------------------

inner() {
    ROOT=$1 WORK=$2
    ip link set lo up
    mount -t proc proc "$ROOT/proc"
    mount --rbind /dev "$ROOT/dev"
    mount -t tmpfs tmpfs "$ROOT/run"
    mount -t tmpfs tmpfs "$ROOT/tmp"
    [ -z "$(ip route show)" ] && [ -z "$(ip -6 route show)" ] || fail "the namespace has a route out"
    ROOT_ENV=(/usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8)
    in_root() { chroot "$ROOT" "${ROOT_ENV[@]}" "$@"; }

    snapshot "$ROOT" > "$WORK/files-clean.txt"
    in_root dpkg-query -W -f '${Package}\n' | sort > "$WORK/packages-clean.txt"
    local du_before; du_before=$(du -skx "$ROOT" | cut -f1)

    say "offline install of the previous version (python3.11 and its libraries from the bundle too)"
    local t; t=$(now)
    in_root /root/prev/install.sh > "$WORK/install-prev.log" 2>&1 || { cat "$WORK/install-prev.log" >&2; fail "install.sh (previous)"; }
    echo "figure: offline install, both packages and their Debian dependencies, clean root: $(elapsed "$t") s"
    local du_after; du_after=$(du -skx "$ROOT" | cut -f1)
    echo "figure: disk used by the install (root before -> after): $(( (du_after - du_before) / 1024 )) MiB"
    for role in agent collector; do
        echo "figure: /opt/canhgac/$role on disk (with byte code): $(du -sm "$ROOT/opt/canhgac/$role" | cut -f1) MiB"
    done
    check_installed "$ROOT" "$PREV_VERSION"

    say "collector and agent in the root"
    start_collector
    local token; token=$(in_root canhgac collector enroll-token --config /etc/canhgac/collector.yaml --system sys-1 2>/dev/null)
    install -m 0644 "$ROOT/var/lib/canhgac/collector/tls/ca.pem" "$ROOT/etc/canhgac/ca.pem"
    in_root canhgac-agent enroll --collector https://127.0.0.1:8443 --token "$token" --ca /etc/canhgac/ca.pem \
        > "$WORK/enroll.log" 2>&1 || { cat "$WORK/enroll.log" >&2; fail "enroll"; }
    [ "$(in_root stat -c %U /var/lib/canhgac/agent/credentials.json)" = canhgac-agent ] || fail "credentials.json not owned by canhgac-agent"
    AGENT_ID=$(in_root /opt/canhgac/agent/bin/python -c 'import json; print(json.load(open("/var/lib/canhgac/agent/credentials.json"))["agent_id"])')
    say "enrolled agent $AGENT_ID"
    local since; since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    t=$(now)
    start_agent
    wait_until "the agent's events in the collector" 120 events_since "$since"
    echo "figure: agent start to its first event stored by the collector: $(elapsed "$t") s"
    check_agent_capabilities
    stop_services

    say "upgrade to $VERSION keeps config and state"
    echo "# local change kept across upgrades" >> "$ROOT/etc/canhgac/agent.yaml"
    local creds; creds=$(sha256sum < "$ROOT/var/lib/canhgac/agent/credentials.json")
    local auth; auth=$(ls "$ROOT/var/lib/canhgac/collector")
    t=$(now)
    in_root /root/cur/install.sh > "$WORK/install-cur.log" 2>&1 || { cat "$WORK/install-cur.log" >&2; fail "install.sh (upgrade)"; }
    echo "figure: offline upgrade $PREV_VERSION -> $VERSION, both packages: $(elapsed "$t") s"
    check_installed "$ROOT" "$VERSION"
    grep -q "local change kept" "$ROOT/etc/canhgac/agent.yaml" || fail "the upgrade lost a change to agent.yaml"
    [ "$(sha256sum < "$ROOT/var/lib/canhgac/agent/credentials.json")" = "$creds" ] || fail "the upgrade changed the agent's credentials"
    [ "$(ls "$ROOT/var/lib/canhgac/collector")" = "$auth" ] || fail "the upgrade changed the collector's state directory"
    start_collector
    since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    start_agent
    wait_until "the same agent's events after the upgrade" 120 events_since "$since"
    stop_services

    say "remove keeps config and state; purge leaves nothing"
    in_root dpkg --remove canhgac-agent canhgac-collector > "$WORK/remove.log" 2>&1 || { cat "$WORK/remove.log" >&2; fail "dpkg --remove"; }
    [ ! -e "$ROOT/opt/canhgac" ] || fail "remove left /opt/canhgac: $(find "$ROOT/opt/canhgac" | head -5)"
    [ ! -e "$ROOT/usr/bin/canhgac" ] || fail "remove left /usr/bin/canhgac"
    [ -f "$ROOT/etc/canhgac/agent.yaml" ] && [ -f "$ROOT/var/lib/canhgac/agent/credentials.json" ] \
        || fail "remove deleted the config or the state (only purge may)"
    in_root dpkg --purge canhgac-agent canhgac-collector > "$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; fail "dpkg --purge"; }
    # Purge deletes what the packages made and nothing of the administrator's: the CA this
    # test put in /etc/canhgac (as the README says to) is all that may be left there.
    [ "$(ls -A "$ROOT/etc/canhgac")" = ca.pem ] || fail "after purge /etc/canhgac holds: $(ls -A "$ROOT/etc/canhgac")"
    rm -r "$ROOT/etc/canhgac"
    check_nothing_left "$ROOT"
    say "all checks passed"
}

check_installed() {
    local root=$1 version=$2 role
    for role in agent collector; do
        [ "$(in_root dpkg-query -W -f '${Version} ${db:Status-Abbrev}' "canhgac-$role")" = "$version ii " ] \
            || fail "canhgac-$role is not installed at $version: $(in_root dpkg-query -W -f '${Version} ${db:Status-Abbrev}' "canhgac-$role")"
        in_root getent passwd "canhgac-$role" | grep -q ":/var/lib/canhgac/$role:/usr/sbin/nologin$" \
            || fail "user canhgac-$role missing or wrong"
        [ "$(in_root stat -c '%U:%G %a' "/var/lib/canhgac/$role")" = "canhgac-$role:canhgac-$role 700" ] \
            || fail "/var/lib/canhgac/$role: $(in_root stat -c '%U:%G %a' "/var/lib/canhgac/$role")"
        [ "$(in_root stat -c '%U:%G %a' "/etc/canhgac/$role.yaml")" = "root:canhgac-$role 640" ] \
            || fail "/etc/canhgac/$role.yaml: $(in_root stat -c '%U:%G %a' "/etc/canhgac/$role.yaml")"
        grep -qx "/etc/canhgac/$role.yaml" "$root/var/lib/dpkg/info/canhgac-$role.conffiles" || fail "$role.yaml is not a conffile"
        [ -L "$root/etc/systemd/system/multi-user.target.wants/canhgac-$role.service" ] || fail "canhgac-$role.service is not enabled"
    done
    in_root canhgac-agent --help > /dev/null || fail "canhgac-agent --help"
    in_root canhgac --help > /dev/null || fail "canhgac --help"
    in_root canhgac version | grep -q "^canhgac " || fail "canhgac version"
}

start_collector() {
    # As the unit runs it: its user, no capabilities, no new privileges.
    # chroot itself in the background (not a function: that would be a subshell), so that
    # $! is the collector's own pid (chroot, env and setpriv all exec).
    chroot "$ROOT" "${ROOT_ENV[@]}" setpriv --reuid=canhgac-collector --regid=canhgac-collector --init-groups --no-new-privs \
        --inh-caps=-all --bounding-set=-all \
        /opt/canhgac/collector/bin/canhgac collector run --config /etc/canhgac/collector.yaml \
        >> "$WORK/collector.log" 2>&1 &
    COLLECTOR_PID=$!
    wait_until "the collector on 127.0.0.1:8443" 60 bash -c 'exec 3<>/dev/tcp/127.0.0.1/8443'
    [ -f "$ROOT/var/lib/canhgac/collector/tls/ca.pem" ] || fail "no CA in the collector's state"
    # The built-in rule packs come from /opt/canhgac/collector/share/canhgac/rules (a wheel has no configs/).
    wait_until "the collector's detection rules" 60 grep -qE 'detection: [1-9][0-9]* rules' "$WORK/collector.log"
}

start_agent() {
    # The unit's user and exactly its AmbientCapabilities (e.g. CAP_SYS_PTRACE -> +sys_ptrace).
    local caps; caps=$(sed -n 's/^AmbientCapabilities=//p' "$ROOT/lib/systemd/system/canhgac-agent.service" \
        | tr 'A-Z' 'a-z' | sed 's/cap_/+/g; s/ /,/g')
    # MemoryDenyWriteExecute=yes: the kernel's own form of it (PR_SET_MDWE, kept across exec),
    # set before the agent starts, so a W+X mapping anywhere in it would fail here too.
    local mdwe=()
    if grep -qx 'MemoryDenyWriteExecute=yes' "$ROOT/lib/systemd/system/canhgac-agent.service"; then
        mdwe=(/opt/canhgac/agent/bin/python -c 'import ctypes, os, sys
if ctypes.CDLL(None).prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE failed")
os.execv(sys.argv[1], sys.argv[1:])')
    fi
    chroot "$ROOT" "${ROOT_ENV[@]}" setpriv --reuid=canhgac-agent --regid=canhgac-agent --init-groups --no-new-privs \
        --inh-caps="-all${caps:+,$caps}" --ambient-caps="-all${caps:+,$caps}" --bounding-set="-all${caps:+,$caps}" \
        "${mdwe[@]}" /opt/canhgac/agent/bin/canhgac agent run --config /etc/canhgac/agent.yaml \
        >> "$WORK/agent.log" 2>&1 &
    AGENT_PID=$!
}

check_agent_capabilities() {
    # The running agent holds exactly the unit's capabilities, and no probe complains of a missing one.
    local -A bit=([CAP_DAC_READ_SEARCH]=2 [CAP_NET_ADMIN]=12 [CAP_NET_RAW]=13 [CAP_SYS_PTRACE]=19)
    local cap mask=0
    for cap in $(sed -n 's/^AmbientCapabilities=//p' "$ROOT/lib/systemd/system/canhgac-agent.service"); do
        [ -n "${bit[$cap]:-}" ] || fail "the test does not know $cap"
        mask=$((mask | (1 << ${bit[$cap]})))
    done
    local eff; eff=$(awk '/^CapEff:/ { print $2 }' "$ROOT/proc/$AGENT_PID/status")
    [ "$((16#$eff))" = "$mask" ] || fail "the agent's CapEff is $eff, the unit grants $(printf '%016x' "$mask")"
    ! grep -E "lacks CAP_|CAP_[A-Z_]+ missing" "$WORK/agent.log" || fail "a probe lacks a capability"
    [ "$(awk '/^NoNewPrivs:/ { print $2 }' "$ROOT/proc/$AGENT_PID/status")" = 1 ] || fail "the agent may gain privileges"
    echo "figure: agent capabilities (CapEff) in the root: $eff"
}

events_since() {
    local n
    n=$(in_root canhgac query "agent.id:$AGENT_ID" --from "$1" --store /var/lib/canhgac/collector/events.db \
        --format ndjson --limit 5 2>/dev/null | grep -c '"agent"') || return 1
    [ "$n" -gt 0 ]
}

stop_services() {
    local pid
    for pid in ${AGENT_PID:-} ${COLLECTOR_PID:-}; do
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    # Nothing of either may outlive its main process (the collector's ingest workers included).
    wait_until "the service users' processes to end" 60 no_service_processes
    AGENT_PID="" COLLECTOR_PID=""
}

no_service_processes() {
    # The root's /proc is this pid namespace's: any process of the two service users?
    local uids status uid u
    uids="$(in_root id -u canhgac-agent) $(in_root id -u canhgac-collector)"
    for status in "$ROOT"/proc/[0-9]*/status; do
        uid=$(awk '/^Uid:/ { print $2 }' "$status" 2>/dev/null) || continue
        for u in $uids; do [ "$uid" != "$u" ] || return 1; done
    done
}

snapshot() {
    (cd "$1" && find . -xdev \( -path ./proc -o -path ./dev -o -path ./run -o -path ./tmp -o -path ./root \) -prune \
        -o -print | sort)
}

check_nothing_left() {
    local root=$1
    in_root dpkg-query -W -f '${Package}\n' | sort > "$WORK/packages-after.txt"
    # Files of the Debian packages the bundle added (python3.11 and its libraries) may stay;
    # nothing else may, apart from dpkg's, apt's and the logs' own records.
    comm -13 "$WORK/packages-clean.txt" "$WORK/packages-after.txt" | grep -v '^canhgac-' > "$WORK/packages-added.txt" || true
    : > "$WORK/owned.txt"
    local p
    while read -r p; do
        # dpkg lists /lib/... where a merged-/usr root has /usr/lib/...: both forms count.
        in_root dpkg -L "$p" | sed -e 's|^|.|' -e 'p' -e 's#^\./\(lib\|lib64\|bin\|sbin\)/#./usr/\1/#' >> "$WORK/owned.txt"
    done < "$WORK/packages-added.txt"
    snapshot "$root" > "$WORK/files-purged.txt"
    comm -13 "$WORK/files-clean.txt" "$WORK/files-purged.txt" \
        | grep -vxF -f "$WORK/owned.txt" \
        | grep -vE '^\./(var/lib/dpkg|var/lib/apt|var/cache/(apt|debconf|ldconfig)|var/log|usr/lib/python3\.11|etc/ld\.so\.cache|etc/(passwd|group|shadow|gshadow)-)(/|$)' \
        | grep -vE '^\./(etc/inputrc|usr/local/lib/python3\.11|var/lib/python)(/|$)' \
        > "$WORK/left.txt" || true
    if [ -s "$WORK/left.txt" ]; then fail "purge left files behind:$(head -20 "$WORK/left.txt" | tr '\n' ' ')"; fi
    if grep -rl canhgac "$root/etc/passwd" "$root/etc/group" "$root/etc/shadow" "$root/etc/gshadow" 2>/dev/null; then
        fail "purge left the canhgac users or groups"
    fi
    find "$root/etc" "$root/var/lib" "$root/opt" "$root/usr" "$root/lib" -name '*canhgac*' > "$WORK/named.txt" 2>/dev/null || true
    [ ! -s "$WORK/named.txt" ] || fail "purge left: $(head -10 "$WORK/named.txt" | tr '\n' ' ')"
    [ -z "$(in_root dpkg-statoverride --list | grep canhgac || true)" ] || fail "purge left a dpkg-statoverride"
    echo "figure: files left after purge that are not the dependencies' own: $(wc -l < "$WORK/left.txt")"
}

# --- outside: build, the cached root, then the namespaces --------------------------------

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || fail "$tool is missing: bash deploy/test-deps.sh installs it"
    done
}

debian_root() {
    mkdir -p "$CACHE"
    exec 9>"$CACHE/debian12-root.lock"
    flock 9
    if [ -f "$ROOT_TAR" ] && [ -s "$ROOT_TAR" ]; then return; fi
    # Whatever an interrupted or older run left (a directory, a partial file) is made anew.
    rm -rf "$ROOT_TAR" "$ROOT_TAR.tmp"
    say "making the clean Debian 12 root (once per machine): $ROOT_TAR"
    local sources=()
    # The machine's own configured Debian mirror, if it has one in deb822 form.
    [ -f /etc/apt/sources.list.d/debian.sources ] && sources=(/etc/apt/sources.list.d/debian.sources)
    local t; t=$(now)
    if command -v mmdebstrap >/dev/null; then
        # --format: mmdebstrap guesses it from the name, and "*.tmp" is not a tarball's
        # (it made a directory, which the extraction below then could not read).
        mmdebstrap --quiet --variant=minbase --format=tar bookworm "$ROOT_TAR.tmp" "${sources[@]}"
    else
        local dir; dir=$(mktemp -d)
        debootstrap --variant=minbase bookworm "$dir" >/dev/null
        tar -C "$dir" -cf "$ROOT_TAR.tmp" .
        rm -rf "$dir"
    fi
    mv "$ROOT_TAR.tmp" "$ROOT_TAR"
    echo "figure: clean Debian 12 root made in $(elapsed "$t") s ($(du -m "$ROOT_TAR" | cut -f1) MiB tar)"
}

outer() {
    [ "$(id -u)" = 0 ] || fail "run as root (chroot, namespaces, mounts)"
    need dpkg-deb apt-ftparchive lintian unshare chroot setpriv flock strip
    command -v mmdebstrap >/dev/null || command -v debootstrap >/dev/null \
        || fail "mmdebstrap or debootstrap is missing: bash deploy/test-deps.sh installs them"
    local keep=0
    [ "${1:-}" = --keep ] && keep=1
    WORK=$(mktemp -d /var/tmp/canhgac-package-test.XXXXXX)
    # shellcheck disable=SC2064
    [ "$keep" = 1 ] || trap "rm -rf '$WORK'" EXIT
    VERSION=$("$PY" -c 'import re,sys; print(re.search(r"__version__ = \"(.+?)\"", open(sys.argv[1]).read())[1])' "$REPO/canhgac/__init__.py")
    PREV_VERSION="$VERSION~prev1"
    export VERSION PREV_VERSION

    local t; t=$(now)
    if [ -n "${PACKAGE_TEST_BUILT:-}" ]; then  # a kept work directory's builds (developing this script)
        cp -r "$PACKAGE_TEST_BUILT/cur" "$PACKAGE_TEST_BUILT/prev" "$WORK/"
    else
        say "building $VERSION and $PREV_VERSION"
        "$PY" "$REPO/deploy/package/build.py" --out "$WORK/cur" --work "$WORK/build-cur" > "$WORK/build.log"
        "$PY" "$REPO/deploy/package/build.py" --version "$PREV_VERSION" --out "$WORK/prev" --work "$WORK/build-prev" >> "$WORK/build.log"
        rm -rf "$WORK/build-cur" "$WORK/build-prev"
        say "built both in $(elapsed "$t") s"
    fi
    # lintian: errors and warnings fail (each remaining tag is overridden and explained in
    # docs/packaging.md); info and pedantic tags are listed there too.
    lintian --fail-on error,warning --tag-display-limit 0 "$WORK"/cur/*.deb > "$WORK/lintian.txt" 2>&1 \
        || { grep -v 'running with root' "$WORK/lintian.txt" >&2; fail "lintian"; }
    local f
    for f in "$WORK"/cur/*; do echo "figure: $(basename "$f"): $(du -k "$f" | cut -f1) KiB"; done

    debian_root
    mkdir "$WORK/root"
    t=$(now)
    tar -C "$WORK/root" --numeric-owner -xf "$ROOT_TAR"
    say "clean root unpacked in $(elapsed "$t") s"
    rm -f "$WORK/root/etc/resolv.conf"
    mkdir -p "$WORK/root/root/prev" "$WORK/root/root/cur"
    tar -C "$WORK/root/root/prev" --strip-components=1 -xzf "$WORK/prev/canhgac-offline-$PREV_VERSION.tar.gz"
    tar -C "$WORK/root/root/cur" --strip-components=1 -xzf "$WORK/cur/canhgac-offline-$VERSION.tar.gz"

    # Everything after this runs with loopback only: the install cannot reach any registry.
    unshare --net --mount --pid --fork --propagation private \
        bash "$REPO/deploy/package-test.sh" --inner "$WORK/root" "$WORK"
    [ "$keep" = 0 ] || say "work directory kept: $WORK"
}

if [ "${1:-}" = --inner ]; then
    inner "$2" "$3"
else
    outer "$@"
fi
