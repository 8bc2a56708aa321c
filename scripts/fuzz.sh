#!/bin/sh
# Builds every fuzz target and runs each for SECONDS (default 30), starting from the committed
# seed corpus (fuzz/corpus/<target>). New inputs go to a scratch corpus, so the committed one
# stays small; crashes land in fuzz/artifacts/<target>/ and fail the script.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Works on stable rustc through RUSTC_BOOTSTRAP (cargo-fuzz needs -Z flags). Installs
# cargo-fuzz when it is missing. Uses its own target dir so sanitizer flags never invalidate the
# regular build.
set -eu
cd "$(dirname "$0")/../fuzz"
secs=${1:-30}
[ $# -gt 0 ] && shift
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${HOOKHOST_FUZZ_TARGET_DIR:-/var/cache/hookhost-fuzz-target}
# Safe Rust: the bugs worth finding are panics, hangs and wrong answers, not memory errors, and
# without ASan the (large, wasmtime-carrying) build is much faster.
flags="--sanitizer none"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
targets=${*:-$(cargo fuzz list)}
cargo fuzz build $flags
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
status=0
for t in $targets; do
    mkdir -p "$scratch/$t"
    echo "== $t: ${secs}s"
    if ! cargo fuzz run $flags "$t" "$scratch/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 2>"$scratch/$t.log"; then
        status=1
        tail -40 "$scratch/$t.log"
        echo "!! $t FAILED (artifacts in fuzz/artifacts/$t)"
    else
        grep -E '^(stat::number_of_executed_units|stat::new_units_added|Done)' "$scratch/$t.log" || true
    fi
done
exit $status
