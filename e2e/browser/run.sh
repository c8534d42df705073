#!/usr/bin/env bash
# Browser end-to-end suite: a real Sealpost node (debug build), a real SMTP submission, the
# delivered secure.htm opened from disk in Debian's Chromium driven by playwright-core.
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

work="$(mktemp -d)"
node_pid=""
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null && wait "$node_pid" 2>/dev/null || true
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
TOML
"$root/target/debug/sealpost" serve --config "$work/sealpost.toml" >"$work/node.log" 2>&1 &
node_pid=$!
for _ in $(seq 1 50); do
  curl -skf "https://127.0.0.1:$web_port/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

export SMTP_PORT="$smtp_port" OUTBOX="$work/outbox/new" WORK="$work"
python3 - <<'PY'
import email, email.policy, glob, os, smtplib, time
port = int(os.environ["SMTP_PORT"])
msg = ("From: Anna Advisor <advisor@bank.example>\r\nTo: customer@example.com\r\n"
       "Subject: [secure] Your statement\r\nDate: Thu, 26 Nov 2026 10:00:00 +0000\r\n\r\n"
       "Confidential text for the browser\r\n")
smtplib.SMTP("127.0.0.1", port).sendmail("advisor@bank.example", ["customer@example.com"], msg)
password = secure = None
for _ in range(100):
    for f in glob.glob(os.path.join(os.environ["OUTBOX"], "*")):
        m = email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
        kind = m["X-Sealpost-Kind"]
        if kind == "credentials":
            for line in m.get_content().splitlines():
                if line.startswith(("Password: ", "Passwort: ")):
                    password = line.split(": ", 1)[1].strip()
        elif kind == "carrier":
            for part in m.iter_attachments():
                if part.get_filename() == "secure.htm":
                    secure = part.get_payload(decode=True)
    if password and secure:
        break
    time.sleep(0.1)
assert password and secure, "credentials and carrier mail delivered"
open(os.path.join(os.environ["WORK"], "secure.htm"), "wb").write(secure)
open(os.path.join(os.environ["WORK"], "password"), "w").write(password)
PY

node "$here/recipient.mjs" "$work/secure.htm" customer@example.com "$(cat "$work/password")" \
  "Confidential text for the browser" "${SCREENSHOT_DIR:-$work/shots}"
