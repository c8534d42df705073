#!/usr/bin/env bash
# Browser end-to-end suite: a real Sealpost node (debug build, SQLite, maildir next hop), a real
# SMTP submission, and the recipient's whole path in Debian's Chromium driven by playwright-core:
# secure.htm from disk, first login, reading (HTML body, inline image, attachment), secure reply,
# forgotten password (code and answer), first contact by mailbox code (mailbox_code.mjs: a
# code to the recipient's own address instead of a password from the sender), an admin's TOTP enrolment and password reset (the
# mailed one-time link), the phone layout and the upload fallback; also
# the carrier under a strict mail parser and secure.htm's network requests (none but the POST
# its button sends). Then, each in its own script: the datafile profile (message.sealpost
# uploaded on a phone), the opt-in `link` profile (link.mjs: the carrier's /m/{id} link,
# sign-in, the message), trust.mjs (the branded portal, settings set by the CLI, and the
# personal security phrase), recipient_totp.mjs (a recipient's authenticator app: enrolment
# in the profile with a code computed in the test, then password + code),
# passkey.mjs (a passkey registered in the profile, then sign-in
# with the passkey alone, on a second node at https://gw.test:PORT).
# Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
# The scripts share harness.mjs (environment, PASS/FAIL bookkeeping, submit, the Chromium
# launch) and totp.mjs (RFC 6238).
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
pk_pid=""
cleanup() {
  for pid in $node_pid $pk_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
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
# datafile.example blocks HTML attachments: its recipients get message.sealpost (datafile.mjs).
if ! "$bin" settings set delivery.profile@datafile.example datafile --config "$work/sealpost.toml" >/dev/null; then
  echo "FAIL sealpost settings set delivery.profile@datafile.example"; echo "0 passed, 1 failed"; exit 1
fi
# Recipients at code.example get in by a code to their own mailbox (mailbox_code.mjs).
if ! "$bin" settings set recipients.first_contact@code.example mailbox-code --config "$work/sealpost.toml" >/dev/null; then
  echo "FAIL sealpost settings set recipients.first_contact@code.example"; echo "0 passed, 1 failed"; exit 1
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

# The `link` delivery profile for one recipient domain (link.mjs); the node picks it up
# within seconds, long before recipient.mjs is done.
if ! "$bin" settings set delivery.profile@link.example link --config "$work/sealpost.toml" >/dev/null; then
  echo "FAIL sealpost settings set delivery.profile@link.example"; echo "0 passed, 1 failed"; exit 1
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

# The datafile profile: message.sealpost instead of secure.htm, uploaded on a phone.
if datafile_sent="$(python3 "$here/mail.py" datafile "$smtp_port" "$outbox" "$work")"; then
  BASE_URL="https://127.0.0.1:$web_port" WORK="$work" DATAFILE_SENT="$datafile_sent" \
    SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
    node "$here/datafile.mjs" || status=1
else
  echo "FAIL the data-file mail was not accepted and delivered as credentials + carrier"
  echo "0 passed, 1 failed"
  status=1
fi
link_status=0
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" SMTP_PORT="$smtp_port" MAIL_PY="$here/mail.py" \
  SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/link.mjs" || link_status=$?
if [ "$link_status" -ne 0 ]; then status=$link_status; fi
trust_status=0
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" SMTP_PORT="$smtp_port" \
  SEALPOST_BIN="$bin" CONFIG="$work/sealpost.toml" MAIL_PY="$here/mail.py" \
  SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/trust.mjs" || trust_status=$?
if [ "$trust_status" -ne 0 ]; then status=$trust_status; fi
mc_status=0
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" WORK="$work" SMTP_PORT="$smtp_port" \
  MAIL_PY="$here/mail.py" SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/mailbox_code.mjs" || mc_status=$?
if [ "$mc_status" -ne 0 ]; then status=$mc_status; fi
# A recipient's authenticator app (TOTP): enrolment in the profile, sign-in in two steps.
rt_status=0
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" WORK="$work" SMTP_PORT="$smtp_port" \
  MAIL_PY="$here/mail.py" SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/recipient_totp.mjs" || rt_status=$?
if [ "$rt_status" -ne 0 ]; then status=$rt_status; fi
# Message control (revoked and expired pages); same node and environment.
BASE_URL="https://127.0.0.1:$web_port" OUTBOX="$outbox" WORK="$work" SMTP_PORT="$smtp_port" \
  BIN="$bin" CONFIG="$work/sealpost.toml" SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
  node "$here/msgctl.mjs" || status=1
# Passkeys (passkey.mjs). WebAuthn needs a secure context whose host is a valid RP ID, and
# 127.0.0.1 is none; so a second node of its own serves https://gw.test:PORT (its self-signed
# certificate names gw.test). Chromium maps gw.test to 127.0.0.1 and trusts that certificate
# by the hash of its public key (no certificate error: Chromium refuses WebAuthn on a page
# with one). Its pk.example recipients get in by mailbox code first.
pk_status=0
pk_smtp="$(free_port)"
pk_web="$(free_port)"
mkdir -p "$work/pk"
cat > "$work/pk/sealpost.toml" <<TOML
data_dir = "$work/pk/data"
hostname = "gw.test"
[smtp]
listen = "127.0.0.1:$pk_smtp"
[delivery]
relay = "maildir:$work/pk/outbox"
[web]
listen = "127.0.0.1:$pk_web"
public_url = "https://gw.test:$pk_web"
tls = "self-signed"
[policy]
internal_domains = ["bank.example"]
default_language = "en"
org_name = "Example Bank"
TOML
"$bin" settings set recipients.first_contact@pk.example mailbox-code --config "$work/pk/sealpost.toml" >/dev/null || pk_status=1
"$bin" serve --config "$work/pk/sealpost.toml" >"$work/pk/node.log" 2>&1 &
pk_pid=$!
pk_up=""
for _ in $(seq 1 100); do
  if curl -skf --resolve "gw.test:$pk_web:127.0.0.1" "https://gw.test:$pk_web/healthz" >/dev/null 2>&1; then pk_up=1; break; fi
  sleep 0.2
done
spki=""
if [ -n "$pk_up" ]; then
  spki="$(openssl s_client -connect "127.0.0.1:$pk_web" -servername gw.test </dev/null 2>/dev/null \
    | openssl x509 -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)"
fi
if [ -z "$spki" ] || [ "$pk_status" -ne 0 ]; then
  echo "FAIL the passkey node (https://gw.test:$pk_web) did not come up"; tail -20 "$work/pk/node.log"
  echo "0 passed, 1 failed"
  status=1
else
  BASE_URL="https://gw.test:$pk_web" OUTBOX="$work/pk/outbox/new" WORK="$work/pk" SMTP_PORT="$pk_smtp" \
    MAIL_PY="$here/mail.py" SPKI="$spki" SHOTS="${SCREENSHOT_DIR:-$root/docs/screenshots}" \
    node "$here/passkey.mjs" || pk_status=$?
  if [ "$pk_status" -ne 0 ]; then
    status=$pk_status
    grep "ERROR\|WARN" "$work/pk/node.log" | tail -10 || true
  fi
fi
if [ "$status" -ne 0 ] && grep -q "ERROR" "$work/node.log"; then
  echo "--- node log (errors) ---"; grep "ERROR" "$work/node.log" | tail -10
fi
exit "$status"
