#!/bin/sh
# Offline install of canhgac from this bundle: no network, no other apt source.
#   ./install.sh                      both packages
#   ./install.sh canhgac-agent        only the agent (or canhgac-collector)
# apt installs from debs/ only what the server lacks (python3.11 and its libraries on a
# minimal Debian 12) and never downgrades what it has. A config file you changed is kept
# (--force-confold). Needs root.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
[ "$(id -u)" = 0 ] || { echo "install.sh: run as root" >&2; exit 1; }
[ -f "$here/debs/Packages" ] || { echo "install.sh: $here/debs/Packages missing: is the bundle complete?" >&2; exit 1; }
packages=${*:-canhgac-agent canhgac-collector}
for p in $packages; do
    case "$p" in
        canhgac-agent|canhgac-collector) ;;
        *) echo "install.sh: unknown package '$p' (canhgac-agent or canhgac-collector)" >&2; exit 2 ;;
    esac
done
if command -v sha256sum >/dev/null; then
    (cd "$here" && sha256sum --quiet --check SHA256SUMS) || { echo "install.sh: $here/SHA256SUMS do not match: damaged bundle" >&2; exit 1; }
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/lists/partial" "$tmp/archives/partial" "$tmp/parts"
echo "deb [trusted=yes] file:$here/debs ./" > "$tmp/sources.list"

# apt sees only the bundle (its own lists and caches in $tmp; the server's are untouched).
apt_local() {
    apt-get -o Dir::Etc::SourceList="$tmp/sources.list" -o Dir::Etc::SourceParts="$tmp/parts" \
        -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::Archives="$tmp/archives" \
        -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= -o Acquire::Languages=none \
        -o APT::Sandbox::User=root "$@"
}
apt_local -qq update
# shellcheck disable=SC2086  # package names are plain words checked above
DEBIAN_FRONTEND=noninteractive apt_local -y -q --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold install $packages
echo "install.sh: installed $packages"
