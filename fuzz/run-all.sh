#!/usr/bin/env bash
# Runs every fuzz target for SECS seconds (default 630), two at a time, each a single
# niced libFuzzer process. Logs go to logs/TARGET.log (not kept in git).
set -u
cd "$(dirname "$0")"
SECS="${1:-630}"
mkdir -p logs
run() {
  local t="$1" maxlen="$2"
  mkdir -p "corpus/$t"
  RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz run -s none -a "$t" "corpus/$t" "seeds/$t" -- \
    -max_total_time="$SECS" -max_len="$maxlen" -timeout=25 -print_final_stats=1 \
    >"logs/$t.log" 2>&1
  echo "$t exit $?" >>logs/summary
}
: >logs/summary
run envelope 4096 & run smtp_session 4096 & wait
run mime_display 16384 & run sanitiser 16384 & wait
run securehtm 8192
