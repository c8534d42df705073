#!/usr/bin/env bash
# CI step for the sender's buttons: .ci/run runs every e2e/*/run.sh; the sources and their
# tests live in addins/.
set -euo pipefail
exec bash "$(dirname "$0")/../../addins/run.sh"
