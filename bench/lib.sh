# Shared by bench/run.sh and bench/extra.sh (sourced, not run): process bookkeeping, port
# waits, and the clean-up that stops everything and restores /etc/postfix on exit. The caller
# sets BACKUP (where /etc/postfix is saved) before sourcing.
PIDS=()
TMP=""
SHM=""
POSTFIX_STARTED=0
CONFIG_CHANGED=0

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
    local i
    for i in $(seq 1 150); do port_open "$1" && return 0; sleep 0.2; done
    die "$2 did not start listening on 127.0.0.1:$1"
}
wait_port_closed() {
    local i
    for i in $(seq 1 100); do port_open "$1" || return 0; sleep 0.1; done
}
stop_pid() {
    if kill -0 "$1" 2>/dev/null; then kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; fi
}
restore_postfix_config() {
    if [ -d "$BACKUP" ]; then rm -rf /etc/postfix; cp -a "$BACKUP" /etc/postfix; rm -rf "$BACKUP"; fi
}
cleanup() {
    local rc=$?
    set +e
    for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
    if [ "$POSTFIX_STARTED" = 1 ]; then postfix stop >/dev/null 2>&1; fi
    if [ "$CONFIG_CHANGED" = 1 ]; then restore_postfix_config; fi
    [ -n "$SHM" ] && rm -rf "$SHM"
    [ -n "$TMP" ] && echo "logs kept in $TMP" >&2
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
