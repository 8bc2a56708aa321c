#!/usr/bin/env bash
# Regenerates crates/hookhost-nri/src/api/generated.rs, the NRI API's messages as Rust, from the
# api.proto of Debian forky's golang-github-containerd-nri-dev (NRI 0.8, what containerd 2.1
# speaks; fetched and cached outside the clone by scripts/nri-api.sh). Pure Rust: rust-protobuf's
# generator in crates/hookhost-nri/codegen, no protoc. The default build never runs this: it
# uses the committed file, which crates/hookhost-nri/tests/codegen.rs checks against a fresh
# generation.
set -euo pipefail
cd "$(dirname "$0")/.."
proto="$(scripts/nri-api.sh)"
out=crates/hookhost-nri/src/api/generated.rs
# Its own target dir: the generator is not part of the workspace's build.
CARGO_TARGET_DIR="${HOOKHOST_NRI_CODEGEN_TARGET_DIR:-/var/cache/hookhost-nri-api/target}" \
    cargo run --quiet --locked --manifest-path crates/hookhost-nri/codegen/Cargo.toml -- "$proto" "$out"
echo "nri-codegen: wrote $out" >&2
