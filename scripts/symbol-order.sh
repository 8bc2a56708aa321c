#!/usr/bin/env bash
# Writes build/symbol-order.txt: the functions of the shipped hookhost executable that a
# container start runs, which the linker then places together (build.rs passes the file to
# lld as --symbol-ordering-file for the static x86-64 build).
#
#   scripts/symbol-order.sh [ROUNDS]     # default 600; needs perf and python3
#
# Why: `hookhost stage` and `hookhost-runtime` are fresh processes at every container start,
# and each first touch of a 64 KiB window of a cached executable is a page fault (~2.4 µs
# here). Spread over 20 MB of text, the code a stage runs touched ~88 windows; gathered in
# about 1 MB it touches ~16 (README, "Benchmarks"). A stale list is harmless: a renamed
# function is merely left where the linker puts it; rerun this after large changes.
#
# How: builds the shipped executable, registers the SDK example as a WASM hook and /bin/true
# as a native one, then samples (perf, cpu-clock at the highest rate allowed) ROUNDS runs each
# of a stage with the WASM hook, a stage with the native hook, a stage with ten WASM hooks and
# a `run` through the wrapper with a no-op runtime, and lists every function a sample fell in.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-600}"
command -v perf >/dev/null || { echo "symbol-order.sh: needs perf (Debian: linux-perf)" >&2; exit 1; }
scripts/cargo-static.sh build --release -q --bin hookhost
cargo build --release -q --target wasm32-wasip1 -p sdk-minimal
hookhost="$(scripts/cargo-static.sh --print-bin-dir release)/hookhost"
wasm="${CARGO_TARGET_DIR:-target}/wasm32-wasip1/release/sdk-minimal.wasm"

work="$(mktemp -d /tmp/hookhost-order.XXXXXX)"
holder=""
trap '[ -z "$holder" ] || kill "$holder" 2>/dev/null || true; rm -rf "$work"' EXIT
export HOOKHOST_ROOT="$work/root"
for i in $(seq 0 9); do
    # Ten distinct modules: the SDK hook with a custom section of its own each.
    python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); n=b"order"+sys.argv[3].encode(); b=bytes([len(n)])+n; open(sys.argv[2],"wb").write(d+bytes([0,len(b)])+b)' \
        "$wasm" "$work/sdk$i.wasm" "$i"
    "$hookhost" create --type createRuntime "sdk$i" "$work/sdk$i.wasm" >/dev/null
done
"$hookhost" create --type createRuntime native /bin/true >/dev/null

# The stage call hookhost injects into a bundle for HOOKS, its plan path made absolute.
stage_call() {
    local bundle="$work/bundle-$1"
    shift
    mkdir -p "$bundle"
    echo '{"ociVersion":"1.0.2","root":{"path":"rootfs"}}' >"$bundle/config.json"
    local args=(inject --bundle "$bundle")
    for hook in "$@"; do args+=(--add-hook "$hook"); done
    "$hookhost" "${args[@]}" >/dev/null
    python3 -c 'import json,os,sys; b=sys.argv[1]; h=next(iter(json.load(open(b+"/config.json"))["hooks"].values()))[0]; a=h["args"]; a[4]=os.path.join(b,a[4]); print(" ".join(a[1:]))' "$bundle"
}
sdk="$(stage_call sdk sdk0)"
native="$(stage_call native native)"
ten="$(stage_call ten sdk0 sdk1 sdk2 sdk3 sdk4 sdk5 sdk6 sdk7 sdk8 sdk9)"
sleep 1000 &
holder=$!
echo "{\"ociVersion\":\"1.0.2\",\"id\":\"order\",\"status\":\"creating\",\"pid\":$holder,\"bundle\":\"$work/bundle-sdk\"}" >"$work/state.json"
echo '{"runtime": "/bin/true"}' >"$work/noop.json"
mkdir -p "$work/wrapper/bundle"
ln -s "$(realpath "$hookhost")" "$work/wrapper/hookhost-runtime"
echo '{"ociVersion":"1.0.2","process":{"args":["true"]},"root":{"path":"rootfs"}}' >"$work/wrapper/bundle/config.json"

rate="$(cat /proc/sys/kernel/perf_event_max_sample_rate)"
# shellcheck disable=SC2086 # the stage calls are word lists
perf record -q -e cpu-clock -F "$rate" -o "$work/perf.data" -- sh -c "
    for i in \$(seq $rounds); do
        '$hookhost' $sdk <'$work/state.json'
        '$hookhost' $native <'$work/state.json'
        '$hookhost' $ten <'$work/state.json'
        HOOKHOST_CONFIG='$work/noop.json' '$work/wrapper/hookhost-runtime' --root '$work/runc' run --bundle '$work/wrapper/bundle' order
    done >/dev/null"
perf script -i "$work/perf.data" -F comm,ip 2>/dev/null | awk '$1 == "hookhost" || $1 == "hookhost-runtim" { print $2 }' >"$work/ips"
nm -S --defined-only -n --no-demangle "$hookhost" >"$work/symbols"
python3 - "$work/symbols" "$work/ips" build/symbol-order.txt <<'EOF'
import bisect, sys
symbols = []
for line in open(sys.argv[1]):
    fields = line.split(None, 3)
    if len(fields) == 4:
        symbols.append((int(fields[0], 16), max(int(fields[1], 16), 1), fields[3].strip()))
starts = [s[0] for s in symbols]
hot = set()
for line in open(sys.argv[2]):
    ip = int(line, 16)
    i = bisect.bisect_right(starts, ip) - 1
    if i >= 0 and ip < symbols[i][0] + symbols[i][1]:
        hot.add(i)
with open(sys.argv[3], "w") as out:
    for i in sorted(hot):
        out.write(symbols[i][2] + "\n")
print(f"symbol-order.sh: {len(hot)} functions, {sum(symbols[i][1] for i in hot)} bytes -> {sys.argv[3]}")
EOF
