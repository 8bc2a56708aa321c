#!/usr/bin/env bash
# Provides today's engines for the tests: dockerd 28.x (+ its docker CLI) and containerd 2.x
# (+ ctr and the runc shim) from Debian's packages, without installing them. A private apt
# directory (signed by the system's Debian keyring, so apt verifies every .deb against the
# signed index) downloads them with `apt-get download`; `dpkg -x` unpacks them into
# $HOOKHOST_ENGINES_DIR (default /var/cache/hookhost-engines), outside any clone, so CI runs
# reuse them. The binaries are linked into $HOOKHOST_ENGINES_DIR/bin and their sha256 recorded;
# a later run checks them and downloads again when they changed or are missing.
# Debian's newer runc/crun need a newer glibc than Debian 12 has: they are not kept, the
# engines use the system's runc. Kubernetes' CRI api.proto (golang-k8s-cri-api-dev) is compiled
# into a Python gRPC client module in $HOOKHOST_ENGINES_DIR/cri for the CRI test. Idempotent; prints the bin directory. The tests find it at
# the same place (HOOKHOST_ENGINES_DIR).
set -euo pipefail

dir="${HOOKHOST_ENGINES_DIR:-/var/cache/hookhost-engines}"
suite="${HOOKHOST_ENGINES_SUITE:-forky}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
packages=(docker.io docker-cli containerd golang-k8s-cri-api-dev)
binaries=(dockerd docker docker-proxy containerd ctr containerd-shim-runc-v2)
sums="$dir/SHA256SUMS"

cached() {
    [ -s "$sums" ] && (cd "$dir" && sha256sum --quiet --strict -c "$sums") >/dev/null 2>&1
}

# shellcheck source=lib/private-apt.sh
. "$(dirname "$0")/lib/private-apt.sh"

download() {
    rm -rf "$dir/apt" "$dir/debs" "$dir/root" "$dir/bin" "$dir/cri" "$sums"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root" "$dir/bin" "$dir/cri"
    echo "deb [signed-by=$keyring] $debian_mirror $suite main" >"$dir/apt/sources.list"
    apt_private update >&2
    (cd "$dir/debs" && apt_private download "${packages[@]}" >&2)
    for deb in "$dir"/debs/*.deb; do
        dpkg -x "$deb" "$dir/root"
    done
    # Newer runc/crun need glibc >= 2.38: never let the engines find them here.
    find "$dir/root" \( -name runc -o -name crun \) -type f -delete
    copy_binaries engines "${binaries[@]}"
    cri_client
    (cd "$dir" && sha256sum "${binaries[@]/#/bin/}" cri/*) >"$sums"
    rm -rf "$dir/debs" "$dir/root" "$dir/apt/cache"
}

# The CRI API as a Python module (Debian 12's grpc-tools, whose protoc predates the
# `debug_redact` field option: it only affects how Go prints a field, so it is dropped).
cri_client() {
    local proto
    proto="$(find "$dir/root" -path '*/runtime/v1/api.proto' | head -n1)"
    [ -n "$proto" ] || { echo "engines: no CRI api.proto in golang-k8s-cri-api-dev" >&2; exit 1; }
    sed 's/ *\[debug_redact *= *true\]//' "$proto" >"$dir/cri/api.proto"
    /usr/bin/python3 -m grpc_tools.protoc -I "$dir/cri" --python_out="$dir/cri" \
        --grpc_python_out="$dir/cri" "$dir/cri/api.proto"
}

check_versions() {
    local docker containerd
    docker="$("$dir/bin/dockerd" --version)"
    containerd="$("$dir/bin/containerd" --version)"
    [[ "$docker" =~ version\ (2[89]|[3-9][0-9])\. ]] || { echo "engines: want dockerd >= 28: $docker" >&2; exit 1; }
    [[ "$containerd" =~ \ v?([2-9])\.[0-9]+ ]] || { echo "engines: want containerd >= 2: $containerd" >&2; exit 1; }
    echo "engines: $docker; $containerd" >&2
}

# One download at a time (CI runs and engineers share the cache).
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if ! cached; then
    echo "engines: fetching ${packages[*]} from Debian $suite into $dir" >&2
    download
fi
check_versions
echo "$dir/bin"
