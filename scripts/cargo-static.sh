#!/usr/bin/env bash
# cargo, building hookhost as it is shipped: for this machine's own target triple, with glibc
# linked in statically and no PIE (`-C target-feature=+crt-static -C relocation-model=static`).
#
#   scripts/cargo-static.sh build --release --bin hookhost   # -> $CARGO_TARGET_DIR/<triple>/release/hookhost
#   scripts/cargo-static.sh test --workspace --all-targets
#   scripts/cargo-static.sh bench --bench stage
#   scripts/cargo-static.sh --print-bin-dir PROFILE           # where the executables of PROFILE land
#
# Why: `hookhost stage` is a fresh process on every container start. Without a dynamic loader
# there is no symbol binding and no shared libraries to map, which took a third off a WASM
# stage here (README, "Benchmarks"). The explicit `--target` keeps the flags off build scripts
# and proc-macros, which cannot be linked statically. Other platforms get a plain cargo.
set -euo pipefail
host="$(rustc -vV | sed -n 's/^host: //p')"
if [ "${1:-}" = --print-bin-dir ]; then
    case "$host" in
        *-linux-gnu) echo "${CARGO_TARGET_DIR:-target}/$host/$2" ;;
        *) echo "${CARGO_TARGET_DIR:-target}/$2" ;;
    esac
    exit 0
fi
case "$host" in
    *-linux-gnu)
        command="$1"
        shift
        exec cargo "$command" --target "$host" \
            --config "target.$host.rustflags=['-C', 'target-feature=+crt-static', '-C', 'relocation-model=static']" \
            "$@"
        ;;
    *) exec cargo "$@" ;;
esac
