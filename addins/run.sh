#!/usr/bin/env bash
# The sender's buttons (addins/): the Outlook add-in's command and the Thunderbird
# extension's background script against stubbed hosts, and both manifests. Offline after
# `npm ci` (the lock pins the one dev dependency, xmllint-wasm).
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v node >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
npm ci --no-audit --no-fund
node --test test/*.test.mjs
