#!/usr/bin/env bash
# Installs what hookhost needs on a fresh Debian machine (idempotent), by need:
#   scripts/setup.sh demo   what scripts/demo.sh uses: runc, busybox-static, the wasm32-wasip1 target
#   scripts/setup.sh test   (the default) everything the tests use: the demo's, Debian 12's engines,
#                           today's engines and OCI tools from Debian testing/sid, and the forky root
set -euo pipefail

need="${1:-test}"
demo_packages=(runc busybox-static)
# musl-tools: the C compiler for the musl target, which wasmtime's small C helper needs when
# scripts/build-stage.sh builds the stage executable.
test_packages=(crun docker.io podman containerd iproute2 procps prometheus python3-grpcio python3-grpc-tools docker-registry debootstrap musl-tools)

apt_install() {
    local pkg missing=() sudo_cmd=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    ((${#missing[@]})) || return 0
    echo "setup: installing ${missing[*]}"
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

case "$need" in
    demo) apt_install "${demo_packages[@]}" ;;
    test) apt_install "${demo_packages[@]}" "${test_packages[@]}" ;;
    *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    echo "setup: adding the wasm32-wasip1 target"
    rustup target add wasm32-wasip1
fi
[ "$need" = test ] || exit 0

# The tests' engines, each cached outside the clone (the scripts check their caches in under a second).
# Docker 28 and containerd 2 from Debian testing (scripts/engines.sh).
"$(dirname "$0")/engines.sh" >/dev/null
# oras 1.x and cosign 3.x from Debian sid for the OCI registry tests.
"$(dirname "$0")/oci-tools.sh" >/dev/null
# NRI's API definition (NRI 0.8) for the check of the committed generated code
# (scripts/nri-api.sh).
"$(dirname "$0")/nri-api.sh" >/dev/null
# runc 1.3 and Podman 5 in a Debian testing root made by debootstrap (tests/forky.rs).
"$(dirname "$0")/forky-root.sh" >/dev/null
