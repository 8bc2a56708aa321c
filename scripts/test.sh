#!/usr/bin/env bash
# Runs every test: unit tests, the guest SDK and example hooks, and the integration tests
# against real runc, dockerd, podman, containerd and wasmtime. Needs root (it runs containers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo test --workspace --all-targets "$@"
cargo test --workspace --doc
