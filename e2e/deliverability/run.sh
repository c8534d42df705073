#!/usr/bin/env bash
# Deliverability suite: a real node (debug build, SQLite, DKIM with an RSA and an Ed25519 key
# made by `sealpost dkim generate`) delivering to a real SMTP sink (e2e/lib/smtpsink.py, which
# refuses reject.test for the bounce). deliverability.py makes the node write every kind,
# then checks each with independent tools: Python's dkim module (Debian's python3-dkim, the
# public keys given directly), email's strict policy, and SpamAssassin's shipped rules
# (local tests only, score ≤ 1.0). Prints the table and "N passed, M failed".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# Debian's tools; /usr/bin/python3 is Debian's Python (the one that sees python3-dkim), which
# may not be the python3 first on PATH.
need=()
command -v spamassassin >/dev/null 2>&1 || need+=(spamassassin)
/usr/bin/python3 -c 'import dkim, nacl' >/dev/null 2>&1 || need+=(python3-dkim python3-nacl)
if [ "${#need[@]}" -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# SEALPOST_BIN: a binary built already (a developer's); CI builds the debug binary here.
if [ -n "${SEALPOST_BIN:-}" ]; then
  bin="$SEALPOST_BIN"
else
  (cd "$root" && cargo build -q -p sealpost)
  bin="${CARGO_TARGET_DIR:-$root/target}/debug/sealpost"
fi

work="$(mktemp -d)"
node_pid=""
sink_pid=""
cleanup() {
  for pid in "$node_pid" "$sink_pid"; do
    if [ -n "$pid" ]; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL $*"; echo "0 passed, 1 failed"; exit 1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp_port="$(free_port)"
web_port="$(free_port)"
sink_port="$(free_port)"
host="secure.bank.example:$web_port"

mkdir -p "$work/keys"
"$bin" dkim generate --domain bank.example --selector sp-rsa --algorithm rsa \
  --out "$work/keys/rsa.pem" >"$work/keys/rsa.txt" 2>/dev/null || fail "dkim generate (rsa)"
"$bin" dkim generate --domain bank.example --selector sp-ed --algorithm ed25519 \
  --out "$work/keys/ed.pem" >"$work/keys/ed.txt" 2>/dev/null || fail "dkim generate (ed25519)"
# The TXT records as a resolver would give them: the quoted strings joined.
/usr/bin/python3 - "$work/keys" <<'PY'
import json, re, sys
d = sys.argv[1]
records = {}
for name in ("rsa", "ed"):
    line = open(f"{d}/{name}.txt").read().strip()
    owner, _, rest = line.partition(" IN TXT ")
    records[owner] = "".join(re.findall(r'"([^"]*)"', rest))
json.dump(records, open(f"{d}/records.json", "w"))
PY

python3 "$root/e2e/lib/smtpsink.py" --port "$sink_port" --dir "$work/sink" --reject-domain reject.test &
sink_pid=$!

cat > "$work/sealpost.toml" <<TOML
data_dir = "$work/data"
hostname = "gw.bank.example"
[smtp]
listen = "127.0.0.1:$smtp_port"
[delivery]
relay = "smtp://127.0.0.1:$sink_port"
retry_base_secs = 1
retry_max_secs = 2
[delivery.dkim]
domain = "bank.example"
selector = "sp-rsa"
key_file = "$work/keys/rsa.pem"
ed25519_key_file = "$work/keys/ed.pem"
ed25519_selector = "sp-ed"
[web]
listen = "127.0.0.1:$web_port"
public_url = "https://$host"
tls = "self-signed"
[policy]
internal_domains = ["bank.example"]
notification_from = "noreply@bank.example"
default_language = "en"
org_name = "Example Bank"
TOML
"$bin" check-config --config "$work/sealpost.toml" >"$work/check.log" 2>&1 || { cat "$work/check.log"; fail "check-config"; }
if grep -q "warning:.*DKIM" "$work/check.log"; then cat "$work/check.log"; fail "check-config warns about DKIM on an aligned set-up"; fi
"$bin" serve --config "$work/sealpost.toml" >"$work/node.log" 2>&1 &
node_pid=$!
up=""
for _ in $(seq 1 150); do
  if curl -skf "https://127.0.0.1:$web_port/healthz" >/dev/null 2>&1; then up=1; break; fi
  sleep 0.2
done
[ -n "$up" ] || { tail -20 "$work/node.log"; fail "the node did not come up"; }

status=0
/usr/bin/python3 "$here/deliverability.py" "$bin" "$work/sealpost.toml" "$smtp_port" "$web_port" \
  "$host" "$work/sink" "$work/keys/records.json" || status=$?
if [ "$status" -ne 0 ]; then
  echo "--- node log (last lines) ---"; tail -15 "$work/node.log"
fi
exit "$status"
