#!/usr/bin/env bash
# Runs every test: unit tests, the guest SDK and example hooks, and the integration tests
# against real runc, dockerd, podman, containerd and wasmtime. Needs root (it runs containers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Built as shipped (static, non-PIE: scripts/cargo-static.sh), so the tests run that executable.
scripts/cargo-static.sh test --workspace --all-targets "$@"
scripts/cargo-static.sh test --workspace --doc
