#!/usr/bin/env bash
# Writes build/symbol-order.txt: the functions of the shipped hookhost executable that a
# container start runs, which the linker then places together (build.rs passes the file to
# lld as --symbol-ordering-file for the static x86-64 build); with `small`, the same for the
# small executables hookhost-stage and hookhost-runtime (build/small-symbol-order.txt, which
# crates/hookhost-stage/build.rs passes for the x86-64 musl build).
#
#   scripts/symbol-order.sh [small] [ROUNDS]     # default 600; needs perf and python3
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
# a `run` through the wrapper with a no-op runtime, and lists every function a sample fell in,
# and every function and data object whose first touch was a page fault (each is sampled).
set -euo pipefail
cd "$(dirname "$0")/.."
small=""
rounds=600
for arg in "$@"; do
    case "$arg" in
        small) small=1 ;;
        *[!0-9]* | "") echo "usage: $0 [small] [ROUNDS]" >&2; exit 2 ;;
        *) rounds="$arg" ;;
    esac
done
command -v perf >/dev/null || { echo "symbol-order.sh: needs perf (Debian: linux-perf)" >&2; exit 1; }
scripts/cargo-static.sh build --release -q --bin hookhost
cargo build --release -q --target wasm32-wasip1 -p sdk-minimal
hookhost="$(scripts/cargo-static.sh --print-bin-dir release)/hookhost"
# What runs the stages and the wrapper, and the list written.
stage="$hookhost"
runtime="$hookhost"
list=build/symbol-order.txt
if [ -n "$small" ]; then
    scripts/build-stage.sh release
    stage="$(dirname "$hookhost")/hookhost-stage"
    runtime="$(dirname "$hookhost")/hookhost-runtime"
    list=build/small-symbol-order.txt
fi
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
ln -s "$(realpath "$runtime")" "$work/wrapper/hookhost-runtime"
echo '{"ociVersion":"1.0.2","process":{"args":["true"]},"root":{"path":"rootfs"}}' >"$work/wrapper/bundle/config.json"

rate="$(cat /proc/sys/kernel/perf_event_max_sample_rate)"
# shellcheck disable=SC2086 # the stage calls are word lists
perf record -q -e "cpu-clock/freq=$rate/" -e page-faults/period=1/ -d -o "$work/perf.data" -- sh -c "
    for i in \$(seq $rounds); do
        '$stage' $sdk <'$work/state.json'
        '$stage' $native <'$work/state.json'
        '$stage' $ten <'$work/state.json'
        HOOKHOST_CONFIG='$work/noop.json' '$work/wrapper/hookhost-runtime' --root '$work/runc' run --bundle '$work/wrapper/bundle' order
    done >/dev/null"
# Each sample's process name (perf keeps 15 characters), instruction and data address.
perf script -i "$work/perf.data" -F comm,ip,addr 2>/dev/null >"$work/samples"
nm -S --defined-only -n --no-demangle "$stage" >"$work/stage.symbols"
nm -S --defined-only -n --no-demangle "$runtime" >"$work/runtime.symbols"
python3 - "$work/samples" "$list" "$(basename "$stage" | cut -c1-15)" "$work/stage.symbols" \
    "hookhost-runtim" "$work/runtime.symbols" <<'EOF'
import bisect, sys
samples, out_path, programs = sys.argv[1], sys.argv[2], sys.argv[3:]
tables = {}
for comm, path in zip(programs[::2], programs[1::2]):
    symbols = []
    for line in open(path):
        fields = line.split(None, 3)
        if len(fields) == 4:
            symbols.append((int(fields[0], 16), max(int(fields[1], 16), 1), fields[3].strip()))
    tables[comm] = (symbols, [s[0] for s in symbols], set())
for line in open(samples):
    fields = line.split()
    if len(fields) < 2 or fields[0] not in tables:
        continue
    symbols, starts, hot = tables[fields[0]]
    for value in fields[1:]:
        address = int(value, 16)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < symbols[i][0] + symbols[i][1]:
            hot.add(i)
names, size = [], 0
for symbols, _, hot in tables.values():
    for i in sorted(hot):
        if symbols[i][2] not in names:
            names.append(symbols[i][2])
            size += symbols[i][1]
with open(out_path, "w") as out:
    out.writelines(name + "\n" for name in names)
print(f"symbol-order.sh: {len(names)} symbols, {size} bytes -> {out_path}")
EOF
