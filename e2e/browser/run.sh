#!/usr/bin/env bash
# Browser end-to-end suite: a real Sealpost node (debug build, SQLite, maildir next hop), a real
# SMTP submission, and the recipient's whole path in Debian's Chromium driven by playwright-core:
# secure.htm from disk, first login, reading (HTML body, inline image, attachment), secure reply,
# forgotten password (code and answer), an admin's TOTP enrolment and password reset (the
# mailed one-time link), the phone layout and the upload fallback; also
# the carrier under a strict mail parser and secure.htm's network requests (none but the POST).
# Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
# Screenshots go to docs/screenshots/ unless SCREENSHOT_DIR names another directory.
# Installs what it needs (chromium from Debian, playwright-core from npm; no browser download).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --silent)
(cd "$root" && cargo build -q -p sealpost)
bin="$root/target/debug/sealpost"

work="$(mktemp -d)"
node_pid=""
cleanup() {
  if [ -n "$node_pid" ]; then
    kill "$node_pid" 2>/dev/null || true
    wait "$node_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp_port="$(free_port)"
web_port="$(free_port)"
cat > "$work/sealpost.toml" <<TOML
data_dir = "$work/data"
hostname = "gw.test"
[smtp]
listen = "127.0.0.1:$smtp_port"
[delivery]
relay = "maildir:$work/outbox"
[web]
listen = "127.0.0.1:$web_port"
public_url = "https://127.0.0.1:$web_port"
tls = "self-signed"
[policy]
internal_domains = ["bank.example"]
default_language = "en"
org_name = "Example Bank"
TOML
# The admin UI answers on the public listener only to the admin networks; an operator
# allows this machine with the settings CLI before the first start.
if ! "$bin" settings set admin.allowed_networks "127.0.0.0/8, ::1/128" --config "$work/sealpost.toml" >/dev/null; then
  echo "FAIL sealpost settings set admin.allowed_networks"; echo "0 passed, 1 failed"; exit 1
fi
"$bin" serve --config "$work/sealpost.toml" >"$work/node.log" 2>&1 &
node_pid=$!
up=""
for _ in $(seq 1 100); do
  if curl -skf "https://127.0.0.1:$web_port/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
if [ -z "$up" ]; then
  echo "FAIL the node did not come up"; tail -20 "$work/node.log"; echo "0 passed, 1 failed"; exit 1
fi

# An administrator, created with the CLI while the node runs (SQLite allows a second writer).
admin_password="$("$bin" admin create ops --config "$work/sealpost.toml" | sed -n 's/^one-time password: //p' || true)"
if [ -z "$admin_password" ]; then
  echo "FAIL sealpost admin create printed no one-time password"; echo "0 passed, 1 failed"; exit 1
fi

outbox="$work/outbox/new"
if ! sent="$(python3 "$here/mail.py" send "$smtp_port" "$outbox" "$work")"; then
  echo "FAIL the flagged mail was not accepted and delivered as credentials + carrier"
  echo "0 passed, 1 failed"; exit 1
fi

status=0
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" WORK="$work" SENT="$sent" \
  ADMIN_NAME=ops ADMIN_PASSWORD="$admin_password" MAIL_PY="$here/mail.py" \
  SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/recipient.mjs" || status=$?
# Message control (revoked and expired pages); same node and environment.
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" WORK="$work" SMTP_PORT="$smtp_port" \
  BIN="$bin" CONFIG="$work/sealpost.toml" SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/msgctl.mjs" || status=1
if [ "$status" -ne 0 ] && grep -q "ERROR" "$work/node.log"; then
  echo "--- node log (errors) ---"; grep "ERROR" "$work/node.log" | tail -10
fi
exit "$status"
