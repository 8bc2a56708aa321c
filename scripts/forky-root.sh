#!/usr/bin/env bash
# Provides today's runc and Podman for the tests: a Debian testing (forky) root made by
# debootstrap with runc >= 1.2, Podman >= 5, conmon and crun, which need a newer glibc than
# Debian 12 has, so they run chrooted there (tests/common/forky.rs sets up the mounts). The root
# is cached outside any clone in $HOOKHOST_FORKY_ROOT (default /var/cache/hookhost-forky-root)
# as root/, with a STAMP of its package versions and the sha256 of its key binaries; a later run
# checks the stamp (under a second) and builds the root again when it is missing, changed or of
# the wrong major versions. debootstrap checks every package against the suite's signed index
# (the system's Debian keyring). Idempotent; prints the root's directory.
set -euo pipefail

dir="${HOOKHOST_FORKY_ROOT:-/var/cache/hookhost-forky-root}"
suite="${HOOKHOST_FORKY_SUITE:-forky}"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
# python3: the tests' Podman-style precreate hooks are python scripts (tests/precreate.rs).
include=podman,runc,crun,conmon,containerd,iptables,ca-certificates,python3
packages=(runc podman conmon crun containerd)
binaries=(usr/sbin/runc usr/bin/podman usr/bin/conmon usr/bin/crun usr/bin/containerd)
root="$dir/root"

# shellcheck source=lib/private-apt.sh
. "$(dirname "$0")/lib/private-apt.sh"

# The stamp of a root: what it was asked to include, its packages' versions and its binaries'
# sha256.
stamp() {
    local pkg
    echo "include $include"
    for pkg in "${packages[@]}"; do
        echo "$pkg $(chroot "$1" dpkg-query -W -f='${Version}' "$pkg")"
    done
    (cd "$1" && sha256sum "${binaries[@]}")
}

cached() {
    [ -s "$dir/STAMP" ] && [ -d "$root" ] && [ "$(stamp "$root" 2>/dev/null)" = "$(cat "$dir/STAMP")" ]
}

# The major versions the tests are about (the suite moves: never an exact build).
check_versions() {
    local runc podman
    runc="$(sed -n 's/^runc //p' "$dir/STAMP")"
    podman="$(sed -n 's/^podman //p' "$dir/STAMP")"
    [[ "$runc" =~ ^1\.([2-9]|[1-9][0-9])\. ]] || { echo "forky-root: want runc >= 1.2, got $runc" >&2; return 1; }
    [[ "$podman" =~ ^([5-9]|[1-9][0-9])\. ]] || { echo "forky-root: want Podman >= 5, got $podman" >&2; return 1; }
    echo "forky-root: runc $runc, Podman $podman, conmon $(sed -n 's/^conmon //p' "$dir/STAMP")" >&2
}

build() {
    command -v debootstrap >/dev/null || { echo "forky-root: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }
    local new="$dir/root.new"
    rm -rf "$new" "$root" "$dir/STAMP"
    mkdir -p "$new"
    # Debian 12's debootstrap has no script for forky; sid's fits every current suite.
    debootstrap --variant=minbase --include="$include" --keyring="$keyring" \
        "$suite" "$new" "$debian_mirror" /usr/share/debootstrap/scripts/sid >&2
    rm -rf "$new/var/cache/apt/archives"/*.deb
    stamp "$new" >"$dir/STAMP"
    mv "$new" "$root"
}

# One build at a time (CI runs and engineers share the cache).
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
if ! cached || ! check_versions 2>/dev/null; then
    echo "forky-root: building a Debian $suite root with $include in $root" >&2
    build
fi
check_versions
echo "$root"
