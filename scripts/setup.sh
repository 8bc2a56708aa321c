#!/usr/bin/env bash
# Installs what hookhost's demo and tests need on a fresh Debian machine (idempotent).
set -euo pipefail

packages=(runc crun busybox-static docker.io podman containerd iproute2 procps prometheus python3-grpcio python3-grpc-tools docker-registry)
missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -qx wasm32-wasip1; then
    echo "setup: adding the wasm32-wasip1 target"
    rustup target add wasm32-wasip1
fi
# Docker 28 and containerd 2 from Debian testing, cached outside the clone (scripts/engines.sh).
"$(dirname "$0")/engines.sh" >/dev/null
# oras 1.x and cosign 3.x from Debian sid for the OCI registry tests, cached outside the clone.
"$(dirname "$0")/oci-tools.sh" >/dev/null
# NRI's API definition (NRI 0.8) for the check of the committed generated code, cached outside
# the clone (scripts/nri-api.sh).
"$(dirname "$0")/nri-api.sh" >/dev/null
