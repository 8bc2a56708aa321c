#!/usr/bin/env bash
# Provides the NRI API definition that containerd 2.1 speaks (NRI 0.8): `pkg/api/api.proto` from
# Debian's `golang-github-containerd-nri-dev` (Apache-2.0), without installing it. A private apt
# directory (signed by the system's Debian keyring, so apt verifies the .deb against the signed
# index) downloads it with `apt-get download`; `dpkg -x` unpacks it and the proto, its license
# and the package version are kept in $HOOKHOST_NRI_API_DIR (default /var/cache/hookhost-nri-api),
# outside any clone. Idempotent; prints the path of api.proto. Only scripts/nri-codegen.sh and
# its check (crates/hookhost-nri/tests/codegen.rs) need it: the build uses the committed,
# generated Rust code.
set -euo pipefail

dir="${HOOKHOST_NRI_API_DIR:-/var/cache/hookhost-nri-api}"
suite="${HOOKHOST_NRI_API_SUITE:-forky}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
packages=(golang-github-containerd-nri-dev)
sums="$dir/SHA256SUMS"

cached() {
    [ -s "$sums" ] && (cd "$dir/api" && sha256sum --quiet --strict -c "$sums") >/dev/null 2>&1
}

# shellcheck source=lib/private-apt.sh
. "$(dirname "$0")/lib/private-apt.sh"

download() {
    local deb proto
    rm -rf "$dir/apt" "$dir/debs" "$dir/root" "$dir/api" "$sums"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root" "$dir/api"
    echo "deb [signed-by=$keyring] http://deb.debian.org/debian $suite main" >"$dir/apt/sources.list"
    apt_private update >&2
    (cd "$dir/debs" && apt_private download "${packages[@]}" >&2)
    deb="$(ls "$dir"/debs/*.deb)"
    dpkg -x "$deb" "$dir/root"
    proto="$(find "$dir/root" -path '*/containerd/nri/pkg/api/api.proto' | head -n1)"
    [ -n "$proto" ] || { echo "nri-api: no pkg/api/api.proto in ${packages[*]} ($suite)" >&2; exit 1; }
    cp "$proto" "$dir/api/api.proto"
    cp "$dir/root/usr/share/doc/golang-github-containerd-nri-dev/copyright" "$dir/api/copyright"
    dpkg-deb -f "$deb" Version >"$dir/api/VERSION"
    (cd "$dir/api" && sha256sum api.proto copyright VERSION) >"$sums"
    rm -rf "$dir/debs" "$dir/root" "$dir/apt/cache"
}

check_version() {
    local version
    version="$(cat "$dir/api/VERSION")"
    [[ "$version" =~ ^0\.8\. ]] || { echo "nri-api: want NRI 0.8.x (containerd 2.1), have $version" >&2; exit 1; }
    echo "nri-api: golang-github-containerd-nri-dev $version" >&2
}

mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if ! cached; then
    echo "nri-api: fetching ${packages[*]} from Debian $suite into $dir" >&2
    download
fi
check_version
echo "$dir/api/api.proto"
