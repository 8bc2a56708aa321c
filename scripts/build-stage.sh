#!/usr/bin/env bash
# Builds hookhost's two small executables (crates/hookhost-stage), the stage executable
# hookhost-stage and the runtime wrapper hookhost-runtime, and puts them beside the hookhost
# that scripts/cargo-static.sh builds for the same profile:
#
#   scripts/build-stage.sh release    # -> $CARGO_TARGET_DIR/<triple>/release/hookhost-{stage,runtime}
#   scripts/build-stage.sh dev        # beside the test build's hookhost (…/debug/)
#
# What the runtime executes at each stage is hookhost-stage when it lies beside hookhost
# (`inject`, the wrapper, the NRI plugin and hooks.d exports name it then), and what engines run
# as their runtime is hookhost-runtime (`hookhost install docker` names it then). Each is one
# path only: no CLI, OCI client or Cranelift, linked statically against musl, whose start-up does not probe
# the CPU as glibc's does (each `cpuid` traps to the hypervisor on a VM), and with the talc
# allocator over large blocks instead of musl's, which maps and unmaps memory for every few
# allocations. README, "Benchmarks", has the figures. Where there is no musl target for this
# machine, nothing is built: hookhost then names itself and runs `hookhost stage`, and
# hookhost-runtime is a link to hookhost.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:?usage: $0 PROFILE (release, dev, demo, …)}"
host="$(rustc -vV | sed -n 's/^host: //p')"
case "$host" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) musl="${host%-gnu}-musl" ;;
    *) echo "build-stage: no musl target for $host; hookhost runs its stages itself" >&2; exit 0 ;;
esac
# wasmtime compiles a small C helper, with the musl target's C compiler.
if ! command -v "${musl%%-unknown*}-linux-musl-gcc" >/dev/null && ! command -v musl-gcc >/dev/null; then
    echo "build-stage: no C compiler for $musl (musl-gcc; on Debian: apt-get install musl-tools)" >&2
    exit 1
fi
if ! rustup target list --installed | grep -qx "$musl"; then
    echo "build-stage: adding the $musl target"
    rustup target add "$musl"
fi
# Non-PIE, as the glibc build: no relocation of itself at every start.
cargo build -q --profile "$profile" -p hookhost-stage --target "$musl" \
    --config "target.$musl.rustflags=['-C', 'relocation-model=static']"
case "$profile" in
    dev) dir=debug ;;
    *) dir="$profile" ;;
esac
target="${CARGO_TARGET_DIR:-target}"
bin_dir="$(scripts/cargo-static.sh --print-bin-dir "$dir")"
mkdir -p "$bin_dir"
for exe in hookhost-stage hookhost-runtime; do
    # A file, not a link (`hookhost install docker` may have left a link to hookhost there).
    rm -f "$bin_dir/$exe"
    install -m 0755 "$target/$musl/$dir/$exe" "$bin_dir/$exe"
done
