#!/usr/bin/env bash
# Fault suite: crash during load, next hop down / 5xx / hanging, disk full under a maildir
# next hop. Builds the debug binary, then runs e2e/faults/faults.py against real
# `sealpost serve` processes. Final line "N passed, M failed"; non-zero exit on failure.
# Options are passed on to faults.py (e.g. --only crash --mails 500 --keep).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build -p sealpost --quiet
python3 e2e/faults/faults.py --bin target/debug/sealpost "$@" &
pid=$!
# faults.py stops its children itself; this only covers the runner being interrupted.
trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' INT TERM
wait "$pid"
