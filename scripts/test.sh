#!/usr/bin/env bash
# Runs every test: unit tests, the guest SDK and example hooks, and the integration tests
# against real runc, dockerd, podman, containerd and wasmtime — the engine tests on both stacks:
# Debian 12's runc 1.1 and Podman 4.3, then today's runc and Podman from Debian testing in the
# forky root (scripts/forky-root.sh). Needs root (it runs containers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
# Built as shipped (static, non-PIE: scripts/cargo-static.sh), so the tests run that executable,
# with the stage executable beside it (scripts/build-stage.sh), which the engine tests' containers
# then run at every stage.
scripts/cargo-static.sh test --workspace --all-targets --no-run "$@"
scripts/build-stage.sh dev
scripts/cargo-static.sh test --workspace --all-targets "$@"
scripts/cargo-static.sh test --workspace --doc
# The engine test files again, their runc and Podman now today's (tests/common/forky.rs); the
# executables are those just built.
forky_tests=(runc_core start on_failure wrapper hooksd_parity podman precreate)
HOOKHOST_TEST_STACK=forky scripts/cargo-static.sh test --workspace "${forky_tests[@]/#/--test=}"
