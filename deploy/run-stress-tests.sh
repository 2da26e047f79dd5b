#!/usr/bin/env bash
# `make test-stress`: the whole suite while stress-ng keeps both cores (and some memory
# and I/O) busy. A test that depends on how fast the machine is fails here; none may.
# STRESS_CPU_LOAD (default 90) is the percentage each CPU worker aims at.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v stress-ng >/dev/null || { echo "stress-ng missing: run deploy/test-deps.sh" >&2; exit 2; }
workers=$(nproc)
load="${STRESS_CPU_LOAD:-90}"
stress-ng --cpu "$workers" --cpu-load "$load" --vm 1 --vm-bytes 256M --hdd 1 --hdd-bytes 64M \
  --quiet --timeout 0 &
stress_pid=$!
trap 'kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true' EXIT
echo "run-stress-tests.sh: stress-ng (pid $stress_pid): $workers CPU workers at $load %, 1 VM, 1 HDD worker"
uptime
bash deploy/run-tests.sh "$@"
uptime
