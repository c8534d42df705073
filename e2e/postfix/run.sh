#!/usr/bin/env bash
# End-to-end test of Sealpost behind a real Postfix, run by CI as root on Debian.
#
#   bash e2e/postfix/run.sh
#
# Ports below are the defaults (chosen off the usual 10025/10026 so that a developer's own
# Sealpost can keep running); every one can be moved by the environment, see the end.
#
# Topology for checks 1 and 2 (the production set-up of docs/MAIL-SERVER-INTEGRATION.md):
#
#   swaks ──► Postfix :25 ──content_filter──► Sealpost A :10125
#                                                 │ delivery.relay
#             Postfix :10126 (re-injection) ◄─────┘
#                 │ relayhost
#                 ▼
#             smtp-sink :2626 (one file per mail in $TMP/sink-main)
#
# Checks 3 and 4 are about what Sealpost does when *its* next hop answers 4xx or 5xx.
# In the content_filter set-up that next hop is Postfix's re-injection port, which
# accepts everything from Sealpost; a remote server's 4xx/5xx is then Postfix's
# business, not Sealpost's. So these checks use a second Sealpost node (B, its own
# SQLite) whose delivery.relay points straight at an smtp-sink on :2627 that we
# restart with different behaviour, and swaks talks to B directly:
#
#   swaks ──► Sealpost B :10135 ──delivery.relay──► smtp-sink :2627
#                                                    (-r RCPT: 450, then normal)
#                                                    (-f RCPT: 500, then normal)
#
# Environment: SEALPOST_E2E_KEEP=1 keeps the temporary directory even on success.
# Ports can be moved with E2E_SMTP_PORT, E2E_SEALPOST_PORT, E2E_REINJECT_PORT,
# E2E_SINK_PORT, E2E_SEALPOST_B_PORT, E2E_SINK_B_PORT, E2E_PROXY_PORT.
#
# Check 5 is the before-queue variant (Postfix SMTPD_PROXY_README): a second Postfix smtpd
# on :10127 hands each mail to Sealpost A during the client's SMTP session
# (smtpd_proxy_filter), so Postfix queues it only once, after Sealpost, via :10126.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
SINKMAIL="$HERE/sinkmail.py"

SMTP_PORT="${E2E_SMTP_PORT:-25}"
SEALPOST_PORT="${E2E_SEALPOST_PORT:-10125}"
REINJECT_PORT="${E2E_REINJECT_PORT:-10126}"
SINK_PORT="${E2E_SINK_PORT:-2626}"
SEALPOST_B_PORT="${E2E_SEALPOST_B_PORT:-10135}"
SINK_B_PORT="${E2E_SINK_B_PORT:-2627}"
PROXY_PORT="${E2E_PROXY_PORT:-10127}"

# A copy of /etc/postfix survives a run that is killed before its trap runs; the next
# run restores it first, so repeated runs never build on a half-changed configuration.
BACKUP=/var/backups/sealpost-e2e-etc-postfix
POSTFIX_LOG=/var/log/sealpost-e2e-postfix.log   # maillog_file must be under /var (maillog_file_prefixes)

PASSED=0
FAILED=0
PIDS=()
TMP=""
POSTFIX_STARTED=0
CONFIG_CHANGED=0

log() { printf '== %s\n' "$*"; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

pass() { PASSED=$((PASSED + 1)); printf 'PASS %s — %s\n' "$1" "$2"; }
fail() { FAILED=$((FAILED + 1)); printf 'FAIL %s — %s\n' "$1" "$2"; }

# check NAME CMD...: runs CMD (which prints what it saw), PASS on exit 0, FAIL otherwise.
check() {
    local name="$1"; shift
    local out
    if out="$("$@" 2>&1)"; then pass "$name" "$out"; else fail "$name" "$out"; fi
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
    local port="$1" what="$2" i
    for i in $(seq 1 150); do
        port_open "$port" && return 0
        sleep 0.2
    done
    die "$what did not start listening on 127.0.0.1:$port"
}

wait_port_closed() {
    local port="$1" i
    for i in $(seq 1 50); do
        port_open "$port" || return 0
        sleep 0.1
    done
    return 1
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

stop_pid() {
    local pid="$1"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
}

restore_postfix_config() {
    if [ -d "$BACKUP" ]; then
        rm -rf /etc/postfix
        cp -a "$BACKUP" /etc/postfix
        rm -rf "$BACKUP"
    fi
}

cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [ "$POSTFIX_STARTED" = 1 ]; then postfix stop >/dev/null 2>&1; fi
    if [ "$CONFIG_CHANGED" = 1 ]; then restore_postfix_config; fi
    if [ -n "$TMP" ]; then
        if [ "$FAILED" -gt 0 ] || [ "$rc" -ne 0 ] || [ "${SEALPOST_E2E_KEEP:-0}" = 1 ]; then
            echo "logs and mails kept in $TMP (Postfix log: $POSTFIX_LOG)"
        else
            rm -rf "$TMP"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ "$(id -u)" = 0 ] || die "run as root (installs packages, configures and starts Postfix)"

# ---------------------------------------------------------------- packages
need=()
command -v postfix >/dev/null || need+=(postfix)
command -v swaks >/dev/null || need+=(swaks)
command -v python3 >/dev/null || need+=(python3)
# The DKIM check runs Debian's /usr/bin/python3, the one that sees python3-dkim.
/usr/bin/python3 -c 'import dkim, nacl' >/dev/null 2>&1 || need+=(python3-dkim python3-nacl)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v smtp-sink >/dev/null || die "smtp-sink missing (it ships in the postfix package)"

# ---------------------------------------------------------------- Postfix set-up
if [ -d "$BACKUP" ]; then
    log "restoring /etc/postfix left changed by an interrupted run"
    postfix stop >/dev/null 2>&1 || true
    restore_postfix_config
fi
if postfix status >/dev/null 2>&1; then
    die "Postfix is already running; this test reconfigures it and will not take over a live MTA"
fi
for p in "$SMTP_PORT" "$SEALPOST_PORT" "$REINJECT_PORT" "$SINK_PORT" "$SEALPOST_B_PORT" "$SINK_B_PORT" "$PROXY_PORT"; do
    port_open "$p" && die "port $p is in use"
done

TMP="$(mktemp -d /tmp/sealpost-e2e.XXXXXX)"
chmod 755 "$TMP"
RUN="$(date +%s)-$$"   # in every address and subject: mails from older runs never match

mkdir -p "$(dirname "$BACKUP")"
cp -a /etc/postfix "$BACKUP"
CONFIG_CHANGED=1
: > "$POSTFIX_LOG"

log "configuring Postfix (loopback only, content_filter to Sealpost on :$SEALPOST_PORT)"
postconf -e \
    "myhostname = gw.test" \
    "mydestination = localhost" \
    "mynetworks = 127.0.0.0/8" \
    "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" \
    "default_transport = smtp" \
    "relay_transport = relay" \
    "relayhost = [127.0.0.1]:$SINK_PORT" \
    "smtpd_relay_restrictions = permit_mynetworks, reject" \
    "smtp_tls_security_level = none" \
    "smtpd_tls_security_level = none" \
    "smtp_dns_support_level = disabled" \
    "maillog_file = $POSTFIX_LOG" \
    "content_filter = sealpost:[127.0.0.1]:$SEALPOST_PORT" \
    "queue_run_delay = 5s" \
    "minimal_backoff_time = 5s" \
    "maximal_backoff_time = 10s"
# Port 25 listener: the stock "smtp inet" entry, moved if E2E_SMTP_PORT is set.
if [ "$SMTP_PORT" != 25 ]; then
    postconf -M "127.0.0.1:$SMTP_PORT/inet=127.0.0.1:$SMTP_PORT inet n - n - - smtpd"
fi
# No init script runs here to copy /etc/services, resolv.conf … into the chroot, so run
# every service unchrooted (the Postfix default outside Debian).
postconf -F '*/*/chroot = n'
# The filter transport and the re-injection listener (Postfix FILTER_README, after-queue).
postconf -M "sealpost/unix=sealpost unix - - n - 20 smtp"
postconf -P "sealpost/unix/smtp_send_xforward_command=yes" \
            "sealpost/unix/disable_mime_output_conversion=yes" \
            "sealpost/unix/smtp_generic_maps="
postconf -M "127.0.0.1:$REINJECT_PORT/inet=127.0.0.1:$REINJECT_PORT inet n - n - 20 smtpd"
postconf -P "127.0.0.1:$REINJECT_PORT/inet/content_filter=" \
            "127.0.0.1:$REINJECT_PORT/inet/receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_address_mappings" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_helo_restrictions=" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_client_restrictions=" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_sender_restrictions=" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_recipient_restrictions=permit_mynetworks,reject" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_relay_restrictions=permit_mynetworks,reject" \
            "127.0.0.1:$REINJECT_PORT/inet/mynetworks=127.0.0.0/8" \
            "127.0.0.1:$REINJECT_PORT/inet/smtpd_authorized_xforward_hosts=127.0.0.0/8"
# The before-queue listener of check 5 (docs/MAIL-SERVER-INTEGRATION.md, "before-queue").
postconf -M "127.0.0.1:$PROXY_PORT/inet=127.0.0.1:$PROXY_PORT inet n - n - 20 smtpd"
postconf -P "127.0.0.1:$PROXY_PORT/inet/smtpd_proxy_filter=127.0.0.1:$SEALPOST_PORT" \
            "127.0.0.1:$PROXY_PORT/inet/smtpd_proxy_options=speed_adjust" \
            "127.0.0.1:$PROXY_PORT/inet/content_filter="
postfix check

# ---------------------------------------------------------------- sinks
# smtp-sink -d TEMPLATE: each mail goes to its own file named strftime(TEMPLATE) plus a
# random hex suffix ("DIR/%H%M%S." → DIR/211623.4526a87f); missing directories are
# created. It switches to -u's user before writing, so that user owns the directory.
start_sink() {   # start_sink PORT LOGFILE ARGS... ; sets SINK_PID
    smtp-sink -u nobody "${@:3}" "127.0.0.1:$1" 256 >"$2" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    wait_port "$1" "smtp-sink"
}
SINK_MAIN="$TMP/sink-main"
SINK_B="$TMP/sink-b"
mkdir -p "$SINK_MAIN" "$SINK_B"
chown nobody "$SINK_MAIN" "$SINK_B"
start_sink "$SINK_PORT" "$TMP/sink-main.log" -d "$SINK_MAIN/%H%M%S."

# ---------------------------------------------------------------- Sealpost
log "building sealpost"
(cd "$ROOT" && cargo build -q -p sealpost)
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/sealpost"
[ -x "$BIN" ] || die "$BIN not built"

# Node A signs what it writes (docs/MAIL-SERVER-INTEGRATION.md, "DKIM"), with an RSA and an
# Ed25519 key from `sealpost dkim generate`; the records go to the verifier directly.
mkdir -p "$TMP/dkim"
"$BIN" dkim generate --domain bank.example --selector e2e-rsa --out "$TMP/dkim/rsa.pem" \
    >"$TMP/dkim/rsa.txt" 2>/dev/null || die "sealpost dkim generate (rsa) failed"
"$BIN" dkim generate --domain bank.example --selector e2e-ed --algorithm ed25519 \
    --out "$TMP/dkim/ed.pem" >"$TMP/dkim/ed.txt" 2>/dev/null || die "sealpost dkim generate (ed25519) failed"
python3 - "$TMP/dkim" <<'PY'
import json, re, sys
d = sys.argv[1]
records = {}
for name in ("rsa", "ed"):
    owner, _, rest = open(f"{d}/{name}.txt").read().strip().partition(" IN TXT ")
    records[owner] = "".join(re.findall(r'"([^"]*)"', rest))
json.dump(records, open(f"{d}/records.json", "w"))
PY
write_config() {   # write_config NAME SMTP_PORT RELAY ROLES
    local web
    web="$(free_port)"
    cat >"$TMP/$1.toml" <<EOF
data_dir = "$TMP/$1"
node_name = "e2e-$1"
hostname = "$1.sealpost.test"
roles = $4
[smtp]
listen = "127.0.0.1:$2"
[delivery]
relay = "$3"
retry_base_secs = 2
retry_max_secs = 4
[web]
listen = "127.0.0.1:$web"
# TLS ends at a load balancer in this picture; the URL is only baked into secure.htm.
public_url = "https://secure.bank.example"
tls = "off"
[policy]
internal_domains = ["bank.example"]
notification_from = "noreply@bank.example"
EOF
    if [ "$1" = a ]; then
        cat >>"$TMP/$1.toml" <<EOF
[delivery.dkim]
domain = "bank.example"
selector = "e2e-rsa"
key_file = "$TMP/dkim/rsa.pem"
ed25519_key_file = "$TMP/dkim/ed.pem"
ed25519_selector = "e2e-ed"
EOF
    fi
}
start_sealpost() {   # start_sealpost NAME SMTP_PORT
    SEALPOST_LOG=info "$BIN" serve --config "$TMP/$1.toml" >"$TMP/$1.log" 2>&1 &
    PIDS+=($!)
    wait_port "$2" "sealpost $1"
}
write_config a "$SEALPOST_PORT" "smtp://127.0.0.1:$REINJECT_PORT" '["smtp", "delivery", "web"]'
write_config b "$SEALPOST_B_PORT" "smtp://127.0.0.1:$SINK_B_PORT" '["smtp", "delivery"]'
start_sealpost a "$SEALPOST_PORT"
start_sealpost b "$SEALPOST_B_PORT"

log "starting Postfix"
postfix start >/dev/null 2>&1 || { tail -20 "$POSTFIX_LOG"; die "postfix start failed"; }
POSTFIX_STARTED=1
wait_port "$SMTP_PORT" "Postfix"
wait_port "$REINJECT_PORT" "Postfix re-injection"
wait_port "$PROXY_PORT" "Postfix before-queue listener"

send() {   # send SERVER_PORT LOGNAME swaks-args...
    local port="$1" name="$2"; shift 2
    if ! swaks --server 127.0.0.1 --port "$port" "$@" >"$TMP/swaks-$name.log" 2>&1; then
        fail "$name" "swaks could not hand the mail over: $(grep -E '^<\*\*|^\*\*\*' "$TMP/swaks-$name.log" | head -3 | tr '\n' ' ')"
        return 1
    fi
}

# ---------------------------------------------------------------- 1: flagged mail
log "1: flagged mail through Postfix → Sealpost → Postfix → sink"
ADVISOR="advisor-$RUN@bank.example"
CUSTOMER="kunde-$RUN@kunde.example"
SECRET="Confidential e2e body $RUN"
if send "$SMTP_PORT" flagged --from "$ADVISOR" --to "$CUSTOMER" \
        --header "Subject: [secure] statement $RUN" --body "$SECRET"; then
    if f="$(python3 "$SINKMAIL" wait "$SINK_MAIN" --rcpt "$CUSTOMER" --kind carrier --timeout 60)"; then
        check "flagged-carrier" python3 "$SINKMAIL" carrier "$f" --secret "$SECRET"
        check "flagged-carrier-dkim" /usr/bin/python3 "$SINKMAIL" dkim "$f" --records "$TMP/dkim/records.json"
    else
        fail "flagged-carrier" "$f"
    fi
    if f="$(python3 "$SINKMAIL" wait "$SINK_MAIN" --rcpt "$ADVISOR" --kind credentials --timeout 30)"; then
        check "flagged-credentials" python3 "$SINKMAIL" credentials "$f" --account "$CUSTOMER"
        check "flagged-credentials-dkim" /usr/bin/python3 "$SINKMAIL" dkim "$f" --records "$TMP/dkim/records.json"
    else
        fail "flagged-credentials" "$f"
    fi
fi

# ---------------------------------------------------------------- 2: unflagged mail
log "2: unflagged mail through the same path, compared byte for byte"
PLAIN="$TMP/plain-$RUN.eml"
# Every header Postfix would otherwise add for a client on its own interfaces
# (local_header_rewrite_clients) is present: From, To, Date, Message-ID. The body has
# what transports like to touch: leading dots, trailing white space, a tab, 8-bit
# UTF-8, a "From " line, a folded header, an empty line at the end.
printf '%s\r\n' \
    "From: Anna Advisor <$ADVISOR>" \
    "To: Friend <friend-$RUN@kunde.example>" \
    "Subject: Lunch on Friday? $RUN" \
    "Date: Thu, 26 Nov 2026 10:00:00 +0100" \
    "Message-ID: <plain-$RUN@bank.example>" \
    "MIME-Version: 1.0" \
    "Content-Type: text/plain; charset=utf-8" \
    "Content-Transfer-Encoding: 8bit" \
    "X-Folded: first part" \
    "	second part after a tab" \
    "" \
    ".leading dot" \
    "..two leading dots" \
    "trailing spaces   " \
    "a	tab" \
    "Grüße, äöü ß € — 8-bit UTF-8" \
    "From the start of a line" \
    "" \
    "last line" \
    "" >"$PLAIN"
# swaks always sends CRLF before the terminating "." (a file ending in CRLF would gain an
# empty line), so it gets the file minus its last CRLF: the wire then carries $PLAIN exactly.
head -c -2 "$PLAIN" >"$PLAIN.swaks"
if send "$SMTP_PORT" unflagged --from "$ADVISOR" --to "friend-$RUN@kunde.example" --data "@$PLAIN.swaks"; then
    if f="$(python3 "$SINKMAIL" wait "$SINK_MAIN" --rcpt "friend-$RUN@kunde.example" --timeout 60)"; then
        check "unflagged-identical" python3 "$SINKMAIL" identical "$f" --original "$PLAIN" --hops 2
    else
        fail "unflagged-identical" "$f"
    fi
fi

# ---------------------------------------------------------------- 3: 4xx is retried
log "3: next hop answers 450 to RCPT, later accepts"
# -r RCPT: every RCPT gets smtp-sink's soft reject "450 4.3.0 Error: command failed".
start_sink "$SINK_B_PORT" "$TMP/sink-b-soft.log" -v -r RCPT
SOFT_PID=$SINK_PID
RETRY_RCPT="retry-$RUN@kunde.example"
if send "$SEALPOST_B_PORT" retry --from "$ADVISOR" --to "$RETRY_RCPT" \
        --header "Subject: retry $RUN" --body "retry test $RUN"; then
    # Two refused attempts: the second one is already a retry after a 4xx.
    for _ in $(seq 1 150); do
        n="$(grep -c "RCPT TO:<$RETRY_RCPT>" "$TMP/sink-b-soft.log" || true)"
        [ "$n" -ge 2 ] && break
        sleep 0.2
    done
    stop_pid "$SOFT_PID"
    wait_port_closed "$SINK_B_PORT" || true
    start_sink "$SINK_B_PORT" "$TMP/sink-b.log" -d "$SINK_B/%H%M%S."
    if [ "$n" -lt 2 ]; then
        fail "4xx-retried" "only $n attempt(s) reached the 450 sink within 30 s"
    elif f="$(python3 "$SINKMAIL" wait "$SINK_B" --rcpt "$RETRY_RCPT" --token "retry test $RUN" --timeout 60)"; then
        pass "4xx-retried" "$n attempts answered 450, then delivered: $(python3 "$SINKMAIL" describe "$f")"
    else
        fail "4xx-retried" "$n attempts answered 450, but after that: $f"
    fi
    stop_pid "$SINK_PID"
    wait_port_closed "$SINK_B_PORT" || true
fi

# ---------------------------------------------------------------- 4: 5xx bounces
log "4: next hop answers 500 to RCPT → bounce to the sender"
# -f RCPT: every RCPT gets smtp-sink's hard reject "500 5.3.0 Error: command failed".
# The bounce goes to the same next hop, and this sink would refuse it too. So the sink
# holds its reply to QUIT (-W quit:30); Sealpost's client waits up to 5 s for that reply
# before it records the result and queues the bounce, and meanwhile we stop this sink
# and start an accepting one. The bounce's first try may meet a closed port; it is then
# retried after retry_base_secs like any deferral.
start_sink "$SINK_B_PORT" "$TMP/sink-b-hard.log" -v -f RCPT -W quit:30
HARD_PID=$SINK_PID
GONE_RCPT="gone-$RUN@kunde.example"
BOUNCE_SENDER="sender-$RUN@bank.example"
if send "$SEALPOST_B_PORT" bounce --from "$BOUNCE_SENDER" --to "$GONE_RCPT" \
        --header "Subject: bounce $RUN" --body "bounce test $RUN"; then
    seen=0
    for _ in $(seq 1 150); do
        if grep -q "RCPT TO:<$GONE_RCPT>" "$TMP/sink-b-hard.log" && grep -q "QUIT" "$TMP/sink-b-hard.log"; then
            seen=1; break
        fi
        sleep 0.1
    done
    stop_pid "$HARD_PID"
    wait_port_closed "$SINK_B_PORT" || true
    start_sink "$SINK_B_PORT" "$TMP/sink-b.log" -d "$SINK_B/%H%M%S."
    if [ "$seen" = 0 ]; then
        fail "5xx-bounce" "the 500 sink never saw RCPT TO:<$GONE_RCPT> and QUIT"
    elif f="$(python3 "$SINKMAIL" wait "$SINK_B" --rcpt "$BOUNCE_SENDER" --timeout 60)"; then
        check "5xx-bounce" python3 "$SINKMAIL" bounce "$f" --sender "$BOUNCE_SENDER" --failed "$GONE_RCPT"
    else
        fail "5xx-bounce" "$f"
    fi
    n="$(python3 "$SINKMAIL" count "$SINK_B" --rcpt "$GONE_RCPT")"
    if [ "$n" != 0 ]; then fail "5xx-not-delivered" "$n copies reached $GONE_RCPT"; fi
fi

# ---------------------------------------------------------------- 5: before-queue
log "5: flagged mail through Postfix's before-queue proxy → Sealpost → Postfix → sink"
PROXY_CUSTOMER="proxy-$RUN@kunde.example"
PROXY_SECRET="Before-queue e2e body $RUN"
if send "$PROXY_PORT" before-queue --from "$ADVISOR" --to "$PROXY_CUSTOMER" \
        --header "Subject: [secure] proxied $RUN" --body "$PROXY_SECRET"; then
    # Sealpost answered the DATA itself: the 250 swaks saw carries Sealpost's queue id.
    if grep -q "queued as [0-9a-f]\{32\}" "$TMP/swaks-before-queue.log"; then
        pass "before-queue-250-from-sealpost" "$(grep -o 'queued as [0-9a-f]*' "$TMP/swaks-before-queue.log" | head -1)"
    else
        fail "before-queue-250-from-sealpost" "$(grep -E '^<-  250' "$TMP/swaks-before-queue.log" | tail -1)"
    fi
    if f="$(python3 "$SINKMAIL" wait "$SINK_MAIN" --rcpt "$PROXY_CUSTOMER" --kind carrier --timeout 60)"; then
        check "before-queue-carrier" python3 "$SINKMAIL" carrier "$f" --secret "$PROXY_SECRET"
    else
        fail "before-queue-carrier" "$f"
    fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
