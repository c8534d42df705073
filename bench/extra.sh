#!/usr/bin/env bash
# Extra Sealpost benchmarks, separate from bench/run.sh (parts A and C stay as they are).
# Run as root on a Debian machine with Postfix installed and not running (parts B and E;
# part D alone needs no Postfix: its relay sink is e2e/lib/smtpsink.py):
#
#   BENCH_SKIP_BUILD=1 bash bench/extra.sh                 # parts B, E and D
#   BENCH_PARTS="E D" BENCH_SKIP_BUILD=1 bash bench/extra.sh
#
#  B  filter overhead: smtp-source → Postfix :25 → Sealpost → … → relayhost smtp-sink, versus
#     the same Postfix with no filter; BENCH_B_MAILS (1000) × 50 KB "[secure]", 20 sessions,
#     mails/s until the sink has every mail; median of BENCH_B_RUNS (3). BENCH_B_MODES picks
#     the set-ups of docs/MAIL-SERVER-INTEGRATION.md (default all three): "after" =
#     content_filter (after-queue) → Sealpost → Postfix re-injection port; "before" =
#     smtpd_proxy_filter (before-queue) → Sealpost → re-injection port; "direct" =
#     content_filter → Sealpost → the relayhost itself. /etc/postfix is restored.
#  E  memory: VmHWM/VmRSS of the sealpost process after an A-style run (BENCH_E_MAILS 2000 ×
#     50 KB, then 200 × 10 recipients) and, in a fresh process, with BENCH_E_IDLE (1000) idle
#     SMTP connections open.
#  D  portal: POST /open + GET /open/{token} for 100 KB, 1 MB and 20 MB messages (an
#     incompressible attachment), one client (median of 7) and 16 concurrent clients, the
#     server's peak RSS during one single open of each size, and of one 20 MB open in a fresh
#     process (same database) above its idle RSS; then, in the same run, the bare
#     decode + decrypt + decompress of envelopes of the same shape (criterion bench
#     crates/sealpost-crypto/benches/open.rs) and the ratio portal median ÷ bare median.
# Results: one JSON line per measurement in $BENCH_OUT/sealpost-extra-*.jsonl (default /tmp);
# docs/BENCHMARKS.md has the tables made from them.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MEASURE="$HERE/measure.py"
EXTRA="$HERE/extra.py"

PARTS="${BENCH_PARTS:-B E D}"
B_RUNS="${BENCH_B_RUNS:-3}"
B_MAILS="${BENCH_B_MAILS:-1000}"
B_MODES="${BENCH_B_MODES:-after before direct}"
E_MAILS="${BENCH_E_MAILS:-2000}"
E_IDLE="${BENCH_E_IDLE:-1000}"
SIZE=51200
SESSIONS=20
SEALPOST_PORT="${BENCH_SEALPOST_PORT:-10225}"
REINJECT_PORT="${BENCH_REINJECT_PORT:-10226}"
SINK_PORT="${BENCH_SINK_PORT:-2726}"
POSTFIX_PORT=25
BACKUP=/var/backups/sealpost-bench-etc-postfix
POSTFIX_LOG=/var/log/sealpost-bench-postfix.log

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

has_part() { [[ " $PARTS " == *" $1 "* ]]; }
NEED_POSTFIX=0
if has_part B || has_part E; then NEED_POSTFIX=1; fi

[ "$(id -u)" = 0 ] || die "run as root (reconfigures Postfix; reads /proc of the server)"
if [ "$NEED_POSTFIX" = 1 ]; then
    command -v postfix >/dev/null || die "Postfix missing (bench/run.sh installs it)"
    if [ -d "$BACKUP" ]; then postfix stop >/dev/null 2>&1 || true; restore_postfix_config; fi
    postfix status >/dev/null 2>&1 && die "Postfix is already running; will not take over a live MTA"
    for p in "$POSTFIX_PORT" "$REINJECT_PORT"; do port_open "$p" && die "port $p is in use"; done
fi
for p in "$SEALPOST_PORT" "$SINK_PORT"; do port_open "$p" && die "port $p is in use"; done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true   # 1,000 idle connections need >1,000 descriptors

TMP="$(mktemp -d /tmp/sealpost-extra.XXXXXX)"
SHM="$(mktemp -d /dev/shm/sealpost-extra.XXXXXX)"
chmod 755 "$TMP" "$SHM"
RESULTS="${BENCH_OUT:-/tmp}/sealpost-extra-$(date -u +%Y%m%d-%H%M).jsonl"
: >"$RESULTS"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building sealpost (release)"
    (cd "$ROOT" && cargo build -q --release -p sealpost)
fi
BIN="${BENCH_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/sealpost}"   # BENCH_BIN: another build
SEALPOST_KEYS__MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export SEALPOST_KEYS__MASTER_KEY

SINK_PID=""
start_sink() {   # start_sink NAME → $SINK_DIR
    SINK_DIR="$SHM/$1"
    mkdir -p "$SINK_DIR"; chown nobody "$SINK_DIR"
    smtp-sink -u nobody -d "$SINK_DIR/%H%M%S." "127.0.0.1:$SINK_PORT" 1024 >"$TMP/sink-$1.log" 2>&1 &
    SINK_PID=$!; PIDS+=("$SINK_PID")
    wait_port "$SINK_PORT" smtp-sink
}
# The same, with the Python sink of the e2e suites (no Postfix needed; *.eml files).
start_pysink() {   # start_pysink NAME → $SINK_DIR
    SINK_DIR="$SHM/$1"
    mkdir -p "$SINK_DIR"
    python3 "$ROOT/e2e/lib/smtpsink.py" --port "$SINK_PORT" --dir "$SINK_DIR" >"$TMP/sink-$1.log" 2>&1 &
    SINK_PID=$!; PIDS+=("$SINK_PID")
    wait_port "$SINK_PORT" "smtp sink"
}
stop_sink() { stop_pid "$SINK_PID"; wait_port_closed "$SINK_PORT"; rm -rf "$SINK_DIR"; }

SEALPOST_PID=""
WEB_PORT=""
start_sealpost() {   # start_sealpost NAME RELAY_PORT [extra [smtp] lines]
    local dir="$TMP/$1"
    WEB_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    mkdir -p "$dir"
    {
        echo "data_dir = \"$dir\""
        echo "hostname = \"bench.sealpost.test\""
        echo "[smtp]"
        echo "listen = \"127.0.0.1:$SEALPOST_PORT\""
        [ -n "${3:-}" ] && printf '%s\n' "$3"
        echo "[delivery]"
        echo "relay = \"smtp://127.0.0.1:$2\""
        echo "[web]"
        echo "listen = \"127.0.0.1:$WEB_PORT\""
        echo "public_url = \"https://secure.bank.example\""
        echo "tls = \"off\""
        echo "[policy]"
        echo "internal_domains = [\"bank.example\"]"
    } >"$dir/sealpost.toml"
    SEALPOST_LOG=warn "$BIN" serve --config "$dir/sealpost.toml" >"$dir/sealpost.log" 2>&1 &
    SEALPOST_PID=$!; PIDS+=("$SEALPOST_PID")
    wait_port "$SEALPOST_PORT" sealpost
    wait_port "$WEB_PORT" "sealpost web"
}
stop_sealpost() { stop_pid "$SEALPOST_PID"; wait_port_closed "$SEALPOST_PORT"; }

record() {   # record KEY=VALUE... JSON
    local json="${*: -1}" kv=("${@:1:$#-1}") extra=""
    [ -n "$json" ] || json='{"error": "no measurement"}'
    for x in "${kv[@]}"; do extra+="\"${x%%=*}\": \"${x#*=}\", "; done
    echo "{${extra}${json#\{}" >>"$RESULTS"
    echo "   ${kv[*]} $json" >&2
}

# smtp-source load into PORT, timed until the sink has EXPECT more files (after a warm-up
# mail that yields WARM files: the account and its credentials mail exist before the clock).
timed_load() {   # timed_load PORT MAILS RCPTS WARM
    smtp-source -s 1 -m 1 -l 1000 -r "$3" -S "[secure] warmup" -f a@bank.example -t b@kunde.example "127.0.0.1:$1"
    python3 "$MEASURE" warmup-wait --sink-dir "$SINK_DIR" --expect "$4" >/dev/null || die "warm-up mail did not arrive"
    python3 "$MEASURE" throughput --sink-dir "$SINK_DIR" --expect $(($2 * ${5:-$3})) --mails "$2" -- \
        -s "$SESSIONS" -m "$2" -l "$SIZE" -r "$3" -S "[secure] bench" \
        -f a@bank.example -t b@kunde.example "127.0.0.1:$1" || true
}

{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "cpus: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    [ "$NEED_POSTFIX" = 1 ] && echo "postfix: $(postconf -h mail_version)"
    echo "sealpost: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "parts: $PARTS"
} | tee "$TMP/machine.txt" >&2

# ---------------------------------------------------------------- E: memory
if has_part E; then
    log "E: peak RSS during an A-style run ($E_MAILS × 50 KB, then 200 × 10 recipients)"
    start_sink e-a
    start_sealpost e-a "$SINK_PORT"
    record "part=E" "phase=started" "$(python3 "$EXTRA" rss "$SEALPOST_PID")"
    out="$(timed_load "$SEALPOST_PORT" "$E_MAILS" 1 2)"
    record "part=E" "phase=load-r1" "${out%\}}, \"mem\": $(python3 "$EXTRA" rss "$SEALPOST_PID")}"
    out="$(timed_load "$SEALPOST_PORT" 200 10 20)"
    record "part=E" "phase=load-r10" "${out%\}}, \"mem\": $(python3 "$EXTRA" rss "$SEALPOST_PID")}"
    stop_sealpost; stop_sink
    log "E: $E_IDLE idle SMTP connections (fresh process)"
    start_sink e-idle
    start_sealpost e-idle "$SINK_PORT" "max_connections = $((E_IDLE + 500))
max_connections_per_ip = $((E_IDLE + 500))"
    sleep 1
    record "part=E" "phase=idle" "$(python3 "$EXTRA" idle --port "$SEALPOST_PORT" --pid "$SEALPOST_PID" --count "$E_IDLE")"
    stop_sealpost; stop_sink
fi

# ---------------------------------------------------------------- D: portal
if has_part D; then
    log "D: portal open, 100 KB / 1 MB / 20 MB, 1 and 16 clients"
    start_pysink d
    start_sealpost d "$SINK_PORT"
    record "part=D" "phase=idle" "$(python3 "$EXTRA" rss "$SEALPOST_PID")"
    mkdir -p "$TMP/d-state"
    portal="$(python3 "$EXTRA" portal --smtp-port "$SEALPOST_PORT" --web-port "$WEB_PORT" \
        --sink-dir "$SINK_DIR" --pid "$SEALPOST_PID" --rss-out "$TMP/single-open-rss.json" \
        --state-dir "$TMP/d-state")" || portal=""
    [ -n "$portal" ] || portal='{"portal": []}'
    record "part=D" "$portal"
    record "part=D" "phase=single-open-rss" "$(cat "$TMP/single-open-rss.json" 2>/dev/null)"
    record "part=D" "phase=after" "$(python3 "$EXTRA" rss "$SEALPOST_PID")"
    stop_sealpost
    # One 20 MB open in a fresh process (same database and master key): peak above idle.
    start_sealpost d "$SINK_PORT"
    record "part=D" "phase=single-open-fresh" "$(python3 "$EXTRA" single-open --web-port "$WEB_PORT" \
        --pid "$SEALPOST_PID" --state-dir "$TMP/d-state" --size 20971520)"
    stop_sealpost; stop_sink
    rm -rf "$TMP/d-state"
    # The bare crypto of the same envelope shape, after the server is gone (no CPU shared).
    log "D: bare decode + decrypt + decompress (criterion, crates/sealpost-crypto/benches/open.rs)"
    export CRITERION_HOME="$TMP/criterion"
    if (cd "$ROOT" && cargo bench -q -p sealpost-crypto --bench open -- --noplot) >"$TMP/criterion.log" 2>&1; then
        grep -E '^bare_open/|time:' "$TMP/criterion.log" >&2 || true
        record "part=D" "phase=portal-over-bare" \
            "$(python3 "$EXTRA" ratio --criterion "$CRITERION_HOME" --portal-json "$portal")"
    else
        record "part=D" "phase=portal-over-bare" '{"error": "cargo bench failed, see criterion.log"}'
    fi
fi

# ---------------------------------------------------------------- B: filter overhead
if has_part B; then
    log "B: configuring Postfix (plain relay first; content_filter entries ready)"
    mkdir -p "$(dirname "$BACKUP")"
    cp -a /etc/postfix "$BACKUP"
    CONFIG_CHANGED=1
    : >"$POSTFIX_LOG"
    postconf -e "myhostname = gw.test" "mydestination = localhost" "mynetworks = 127.0.0.0/8" \
        "inet_interfaces = loopback-only" "inet_protocols = ipv4" \
        "default_transport = smtp" "relay_transport = relay" "relayhost = [127.0.0.1]:$SINK_PORT" \
        "smtpd_relay_restrictions = permit_mynetworks, reject" \
        "smtp_tls_security_level = none" "smtpd_tls_security_level = none" \
        "smtp_dns_support_level = disabled" "maillog_file = $POSTFIX_LOG" "content_filter ="
    postconf -F '*/*/chroot = n'
    # The filter transport and the re-injection listener, as in e2e/postfix/run.sh and
    # docs/MAIL-SERVER-INTEGRATION.md (Postfix FILTER_README, after-queue).
    postconf -M "sealpost/unix=sealpost unix - - n - 20 smtp"
    postconf -P "sealpost/unix/smtp_send_xforward_command=yes" \
                "sealpost/unix/disable_mime_output_conversion=yes" \
                "sealpost/unix/smtp_generic_maps="
    postconf -M "127.0.0.1:$REINJECT_PORT/inet=127.0.0.1:$REINJECT_PORT inet n - n - 20 smtpd"
    postconf -P "127.0.0.1:$REINJECT_PORT/inet/content_filter=" \
                "127.0.0.1:$REINJECT_PORT/inet/receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_helo_restrictions=" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_client_restrictions=" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_sender_restrictions=" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_recipient_restrictions=permit_mynetworks,reject" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_relay_restrictions=permit_mynetworks,reject" \
                "127.0.0.1:$REINJECT_PORT/inet/mynetworks=127.0.0.0/8" \
                "127.0.0.1:$REINJECT_PORT/inet/smtpd_authorized_xforward_hosts=127.0.0.0/8"
    postfix check
    postfix start >/dev/null 2>&1 || die "postfix start failed"
    POSTFIX_STARTED=1
    wait_port "$POSTFIX_PORT" Postfix
    wait_port "$REINJECT_PORT" "Postfix re-injection"
    for run in $(seq 1 "$B_RUNS"); do
        log "B: Postfix alone, run $run"
        start_sink b-pf-$run
        record "part=B" "system=postfix-alone" "run=$run" "$(timed_load "$POSTFIX_PORT" "$B_MAILS" 1 1)"
        stop_sink
    done
    for mode in $B_MODES; do
        # Each mode starts from the plain relay: no content_filter, no proxy on :25.
        postconf -e "content_filter ="
        postconf -PX "smtp/inet/smtpd_proxy_filter" "smtp/inet/smtpd_proxy_options" 2>/dev/null || true
        relay="$REINJECT_PORT"
        case "$mode" in
            after) postconf -e "content_filter = sealpost:[127.0.0.1]:$SEALPOST_PORT" ;;
            before) postconf -P "smtp/inet/smtpd_proxy_filter=127.0.0.1:$SEALPOST_PORT" \
                                "smtp/inet/smtpd_proxy_options=speed_adjust" ;;
            direct) postconf -e "content_filter = sealpost:[127.0.0.1]:$SEALPOST_PORT"
                    relay="$SINK_PORT" ;;
            *) die "unknown BENCH_B_MODES entry: $mode" ;;
        esac
        postfix reload >/dev/null 2>&1
        sleep 1
        for run in $(seq 1 "$B_RUNS"); do
            log "B: Postfix + Sealpost ($mode), run $run"
            start_sink "b-$mode-$run"
            start_sealpost "b-$mode-$run" "$relay"
            cpu0="$(awk '{print $14 + $15}' "/proc/$SEALPOST_PID/stat")"
            out="$(timed_load "$POSTFIX_PORT" "$B_MAILS" 1 2)"
            cpu1="$(awk '{print $14 + $15}' "/proc/$SEALPOST_PID/stat")"
            out="${out%\}}, \"sealpost_cpu_s\": $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}'), \"mem\": $(python3 "$EXTRA" rss "$SEALPOST_PID")}"
            record "part=B" "system=postfix+sealpost-$mode" "run=$run" "$out"
            stop_sealpost; stop_sink
        done
    done
    postfix stop >/dev/null 2>&1; POSTFIX_STARTED=0
    restore_postfix_config; CONFIG_CHANGED=0
fi

cat "$TMP/machine.txt" >"${RESULTS%.jsonl}.machine.txt"
echo "results: $RESULTS" >&2
