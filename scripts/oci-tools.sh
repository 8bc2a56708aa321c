#!/usr/bin/env bash
# Provides the OCI tools the registry tests drive: `oras` 1.x and `cosign` 3.x from Debian's
# packages, without installing them (Debian 12 has neither). A private apt directory (signed by
# the system's Debian keyring, so apt verifies every .deb against the signed index) downloads
# them with `apt-get download`; `dpkg -x` unpacks them into $HOOKHOST_OCI_TOOLS_DIR (default
# /var/cache/hookhost-oci-tools), outside any clone, so CI runs reuse them. The binaries are
# copied into $HOOKHOST_OCI_TOOLS_DIR/bin and their sha256 recorded; a later run checks them and
# downloads again when they changed or are missing. Idempotent; prints the bin directory. The
# tests find it at the same place (HOOKHOST_OCI_TOOLS_DIR). The registry itself is Debian 12's
# `docker-registry`, installed by scripts/setup.sh.
set -euo pipefail

dir="${HOOKHOST_OCI_TOOLS_DIR:-/var/cache/hookhost-oci-tools}"
suite="${HOOKHOST_OCI_TOOLS_SUITE:-sid}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
packages=(oras cosign)
binaries=(oras cosign)
sums="$dir/SHA256SUMS"

cached() {
    [ -s "$sums" ] && (cd "$dir/bin" && sha256sum --quiet --strict -c "$sums") >/dev/null 2>&1
}

# shellcheck source=lib/private-apt.sh
. "$(dirname "$0")/lib/private-apt.sh"

download() {
    rm -rf "$dir/apt" "$dir/debs" "$dir/root" "$dir/bin" "$sums"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/cache/archives/partial" "$dir/debs" "$dir/root" "$dir/bin"
    echo "deb [signed-by=$keyring] $debian_mirror $suite main" >"$dir/apt/sources.list"
    apt_private update >&2
    (cd "$dir/debs" && apt_private download "${packages[@]}" >&2)
    for deb in "$dir"/debs/*.deb; do
        dpkg -x "$deb" "$dir/root"
        # Debian's cosign calls itself "devel": keep the package versions for check_versions.
        echo "$(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version)" >>"$dir/bin/VERSIONS"
    done
    copy_binaries oci-tools "${binaries[@]}"
    (cd "$dir/bin" && sha256sum "${binaries[@]}" VERSIONS) >"$sums"
    rm -rf "$dir/debs" "$dir/root" "$dir/apt/cache"
}

check_versions() {
    local oras cosign
    oras="$(awk '$1 == "oras" {print $2}' "$dir/bin/VERSIONS" 2>/dev/null)"
    cosign="$(awk '$1 == "cosign" {print $2}' "$dir/bin/VERSIONS" 2>/dev/null)"
    [[ "$oras" =~ ^1\. ]] || { echo "oci-tools: want oras 1.x, have ${oras:-none}" >&2; exit 1; }
    [[ "$cosign" =~ ^3\. ]] || { echo "oci-tools: want cosign 3.x, have ${cosign:-none}" >&2; exit 1; }
    "$dir/bin/oras" version >/dev/null && "$dir/bin/cosign" version >/dev/null 2>&1
    echo "oci-tools: oras $oras; cosign $cosign" >&2
}

if ! cached; then
    echo "oci-tools: fetching ${packages[*]} from Debian $suite into $dir" >&2
    download
fi
check_versions
echo "$dir/bin"
