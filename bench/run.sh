#!/usr/bin/env bash
# Sealpost benchmark (issue 7). Not a test: nothing here runs in cargo test or CI.
# Run as root on a Debian machine (it installs Postfix if missing, reconfigures it for
# the comparison, and restores /etc/postfix on exit):
#
#   bash bench/run.sh
#
# What it measures (docs/BENCHMARKS.md explains how to read the numbers):
#  A  throughput: smtp-source (20 sessions, 50 KB, subject "[secure] bench") → Sealpost
#     (release build, SQLite; PostgreSQL too when SEALPOST_BENCH_POSTGRES_URL is set) →
#     smtp-sink, timed from smtp-source's start until the sink holds every carrier mail;
#     once with 1 recipient per mail and once with 10. The same load through Postfix as a
#     plain relay into the same kind of sink, in the same run, gives the reference.
#  C  latency at 10 mails/s, end of DATA → file closed at the sink (p50/p99), Sealpost and
#     Postfix.
# Each throughput figure is the median of BENCH_RUNS runs (default 3), with min and max.
#
# Knobs (environment): BENCH_RUNS, BENCH_MAILS (2000), BENCH_MAILS_R10 (200 mails × 10
# recipients = 2000 carriers), BENCH_RCPTS ("1 10": recipients per mail to run),
# BENCH_SEALPOST_ONLY=1 (skip the Postfix and latency parts, for profiling),
# BENCH_LAT_COUNT (300), BENCH_SKIP_BUILD=1 (use the existing target/release/sealpost),
# BENCH_PERF=1 (perf record of the first Sealpost run), SEALPOST_BENCH_POSTGRES_URL (an
# empty scratch database: runs leave accounts behind), BENCH_OUT (directory for the report,
# default /tmp).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
MEASURE="$HERE/measure.py"

RUNS="${BENCH_RUNS:-3}"
MAILS="${BENCH_MAILS:-2000}"
MAILS_R10="${BENCH_MAILS_R10:-200}"
LAT_COUNT="${BENCH_LAT_COUNT:-300}"
RCPT_COUNTS="${BENCH_RCPTS:-1 10}"
SIZE=51200
SESSIONS=20
SEALPOST_PORT="${BENCH_SEALPOST_PORT:-10225}"
SINK_PORT="${BENCH_SINK_PORT:-2726}"
POSTFIX_PORT=25
BACKUP=/var/backups/sealpost-bench-etc-postfix
POSTFIX_LOG=/var/log/sealpost-bench-postfix.log

# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root (installs and reconfigures Postfix)"
need=()
command -v postfix >/dev/null || need+=(postfix)
command -v python3 >/dev/null || need+=(python3)
if [ "${#need[@]}" -gt 0 ]; then
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ -d "$BACKUP" ]; then postfix stop >/dev/null 2>&1 || true; restore_postfix_config; fi
postfix status >/dev/null 2>&1 && die "Postfix is already running; will not take over a live MTA"
for p in "$POSTFIX_PORT" "$SEALPOST_PORT" "$SINK_PORT"; do port_open "$p" && die "port $p is in use"; done

TMP="$(mktemp -d /tmp/sealpost-bench.XXXXXX)"
# The sink writes to memory so that its disk writes are not part of either measurement.
SHM="$(mktemp -d /dev/shm/sealpost-bench.XXXXXX)"
chmod 755 "$TMP" "$SHM"
RESULTS="$TMP/results.jsonl"
: >"$RESULTS"

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
    log "building sealpost (release)"
    (cd "$ROOT" && cargo build -q --release -p sealpost)
fi
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/sealpost"

# ---------------------------------------------------------------- helpers
SINK_PID=""
start_sink() {   # start_sink NAME → sink directory in $SINK_DIR
    SINK_DIR="$SHM/$1"
    mkdir -p "$SINK_DIR"
    chown nobody "$SINK_DIR"
    smtp-sink -u nobody -d "$SINK_DIR/%H%M%S." "127.0.0.1:$SINK_PORT" 1024 >"$TMP/sink-$1.log" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    wait_port "$SINK_PORT" smtp-sink
}
stop_sink() {
    stop_pid "$SINK_PID"
    wait_port_closed "$SINK_PORT"
    rm -rf "$SINK_DIR"
}

SEALPOST_PID=""
start_sealpost() {   # start_sealpost NAME DB_URL|""
    local dir="$TMP/$1" web
    web="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    mkdir -p "$dir"
    {
        echo "data_dir = \"$dir\""
        echo "hostname = \"bench.sealpost.test\""
        echo "[database]"
        if [ -n "$2" ]; then echo "url = \"$2\""; fi
        echo "[smtp]"
        echo "listen = \"127.0.0.1:$SEALPOST_PORT\""
        echo "[delivery]"
        echo "relay = \"smtp://127.0.0.1:$SINK_PORT\""
        echo "[web]"
        echo "listen = \"127.0.0.1:$web\""
        echo "public_url = \"https://secure.bank.example\""
        echo "tls = \"off\""
        echo "[policy]"
        echo "internal_domains = [\"bank.example\"]"
    } >"$dir/sealpost.toml"
    SEALPOST_LOG=warn "$BIN" serve --config "$dir/sealpost.toml" >"$dir/sealpost.log" 2>&1 &
    SEALPOST_PID=$!
    PIDS+=("$SEALPOST_PID")
    wait_port "$SEALPOST_PORT" sealpost
}
stop_sealpost() { stop_pid "$SEALPOST_PID"; wait_port_closed "$SEALPOST_PORT"; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

record() {   # record KEY=VALUE... JSON — appends one result line
    local json="${*: -1}" kv=("${@:1:$#-1}") extra=""
    [ -n "$json" ] || json='{"error": "no measurement"}'
    for x in "${kv[@]}"; do extra+="\"${x%%=*}\": \"${x#*=}\", "; done
    echo "{${extra}${json#\{}" >>"$RESULTS"
    echo "   ${kv[*]} $json" >&2
}

# One timed throughput run against PORT. Warm-up first: one mail to the same recipients,
# so the accounts (Argon2 hashing, credentials mails) exist before the clock starts.
throughput_run() {   # throughput_run SYSTEM BACKEND RCPTS MAILS PORT RUN
    local system="$1" backend="$2" r="$3" m="$4" port="$5" run="$6" per_mail expect_warm out t0 t1
    if [ "$system" = sealpost ]; then per_mail="$r"; expect_warm=$((2 * r)); else per_mail=1; expect_warm=1; fi
    # PostgreSQL runs share one database, so some or all accounts may exist already and the
    # warm-up yields between r and 2r mails: wait for the carriers only.
    if [ "$system" = sealpost ] && [ "$backend" = postgres ]; then expect_warm="$r"; fi
    smtp-source -s 1 -m 1 -l 1000 -r "$r" -S "[secure] warmup" -f a@bank.example -t b@kunde.example \
        "127.0.0.1:$port"
    python3 "$MEASURE" warmup-wait --sink-dir "$SINK_DIR" --expect "$expect_warm" >/dev/null \
        || die "warm-up mail did not arrive ($system, r=$r)"
    [ "$system" = sealpost ] && t0="$(cpu_ticks "$SEALPOST_PID")"
    out="$(python3 "$MEASURE" throughput --sink-dir "$SINK_DIR" --expect $((m * per_mail)) --mails "$m" -- \
        -s "$SESSIONS" -m "$m" -l "$SIZE" -r "$r" -S "[secure] bench" \
        -f a@bank.example -t b@kunde.example "127.0.0.1:$port")" || true
    if [ "$system" = sealpost ]; then
        t1="$(cpu_ticks "$SEALPOST_PID")"
        out="${out%\}}, \"sealpost_cpu_s\": $(awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", (b - a) / hz}')}"
    fi
    record "system=$system" "backend=$backend" "rcpts=$r" "run=$run" "$out"
}

# ---------------------------------------------------------------- machine facts
{
    echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "cpus: $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "memory: $(free -m | awk '/^Mem:/ {print $2}') MiB"
    echo "kernel: $(uname -r)"
    # Other work on the machine skews every figure; the load average at the start says how much.
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "postfix: $(postconf -h mail_version)"
    echo "sealpost: $(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo ' (with uncommitted changes)')"
    echo "load: $RUNS runs, $MAILS mails × $SIZE bytes (r=1), $MAILS_R10 mails × 10 recipients, $SESSIONS sessions"
} | tee "$TMP/machine.txt" >&2

# ---------------------------------------------------------------- A: Sealpost
# One master key for every run: PostgreSQL runs share a database, and accounts created by the
# first run must be readable by the next (each run has its own data directory).
SEALPOST_KEYS__MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
export SEALPOST_KEYS__MASTER_KEY
backends=("sqlite:")
if [ -n "${SEALPOST_BENCH_POSTGRES_URL:-}" ]; then backends+=("postgres:$SEALPOST_BENCH_POSTGRES_URL"); fi
first=1
for b in "${backends[@]}"; do
    backend="${b%%:*}" url="${b#*:}"
    for r in $RCPT_COUNTS; do
        m=$MAILS; [ "$r" = 10 ] && m=$MAILS_R10
        for run in $(seq 1 "$RUNS"); do
            log "A: sealpost/$backend r=$r run $run"
            start_sink "sp-$backend-$r-$run"
            start_sealpost "sp-$backend-$r-$run" "$url"
            if [ "$first" = 1 ] && [ "${BENCH_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
                perf record -F 499 -g -p "$SEALPOST_PID" -o "$TMP/perf.data" >/dev/null 2>&1 &
                PERF_PID=$!
                throughput_run sealpost "$backend" "$r" "$m" "$SEALPOST_PORT" "$run"
                kill -INT "$PERF_PID"; wait "$PERF_PID" || true
                perf report -i "$TMP/perf.data" --stdio --no-children -g none --percent-limit 0.7 \
                    --sort dso,symbol 2>/dev/null | grep -v '^#' | grep -v '^$' | head -40 >"$TMP/perf-top.txt" || true
            else
                throughput_run sealpost "$backend" "$r" "$m" "$SEALPOST_PORT" "$run"
            fi
            first=0
            stop_sealpost
            stop_sink
        done
    done
done

if [ "${BENCH_SEALPOST_ONLY:-0}" = 1 ]; then
    python3 "$MEASURE" report "$RESULTS" "$TMP/machine.txt"
    [ -s "$TMP/perf-top.txt" ] && cat "$TMP/perf-top.txt"
    exit 0
fi

# ---------------------------------------------------------------- A: Postfix
log "configuring Postfix as a plain relay to the sink"
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
postfix check
postfix start >/dev/null 2>&1 || die "postfix start failed"
POSTFIX_STARTED=1
wait_port "$POSTFIX_PORT" Postfix
for r in $RCPT_COUNTS; do
    m=$MAILS; [ "$r" = 10 ] && m=$MAILS_R10
    for run in $(seq 1 "$RUNS"); do
        log "A: postfix r=$r run $run"
        start_sink "pf-$r-$run"
        throughput_run postfix postfix-queue "$r" "$m" "$POSTFIX_PORT" "$run"
        stop_sink
    done
done

# ---------------------------------------------------------------- C: latency
# measure.py runs its own timing sink on $SINK_PORT here (see TimingSink there).
log "C: latency at 10 mails/s, Postfix"
python3 "$MEASURE" latency --port "$POSTFIX_PORT" --sink-port "$SINK_PORT" --count "$LAT_COUNT" \
    --warmup-expect 1 >"$TMP/lat-pf.json" || true
record "system=postfix" "backend=postfix-queue" "test=latency" "$(cat "$TMP/lat-pf.json")"
wait_port_closed "$SINK_PORT"
postfix stop >/dev/null 2>&1; POSTFIX_STARTED=0
restore_postfix_config; CONFIG_CHANGED=0

log "C: latency at 10 mails/s, Sealpost (sqlite)"
start_sealpost "lat-sp" ""
python3 "$MEASURE" latency --port "$SEALPOST_PORT" --sink-port "$SINK_PORT" --count "$LAT_COUNT" \
    --warmup-expect 2 >"$TMP/lat-sp.json" || true
record "system=sealpost" "backend=sqlite" "test=latency" "$(cat "$TMP/lat-sp.json")"
stop_sealpost

# ---------------------------------------------------------------- report
REPORT="${BENCH_OUT:-/tmp}/sealpost-bench-$(date -u +%Y%m%d-%H%M).md"
python3 "$MEASURE" report "$RESULTS" "$TMP/machine.txt" | tee "$REPORT"
[ -s "$TMP/perf-top.txt" ] && { echo; echo "perf (first Sealpost run, self time by symbol):"; cat "$TMP/perf-top.txt"; } | tee -a "$REPORT"
echo "report written to $REPORT" >&2
