# Sourced by engines.sh, oci-tools.sh and forky-root.sh.

# The Debian archive every script downloads from (it serves every suite).
debian_mirror=http://deb.debian.org/debian

# apt_private: apt-get on a private apt directory under "$dir"
# (its own sources.list, lists and cache, no dpkg status), so packages of another Debian suite
# can be downloaded — verified against that suite's signed index — without touching the
# system's apt state.
apt_private() {
    apt-get -q -o Dir::Etc::SourceList="$dir/apt/sources.list" \
        -o Dir::Etc::SourceParts=/dev/null -o Dir::Etc::Preferences=/dev/null \
        -o Dir::Etc::PreferencesParts=/dev/null -o Dir::State::Lists="$dir/apt/lists" \
        -o Dir::Cache="$dir/apt/cache" -o Dir::State::Status=/dev/null \
        -o APT::Sandbox::User=root "$@"
}

# Copies each of the named binaries from the packages unpacked under "$dir/root" into
# "$dir/bin"; fails, naming TOOL, when a package did not carry one.
copy_binaries() {
    local tool=$1 name found
    shift
    for name in "$@"; do
        found="$(find "$dir/root/usr" -path '*bin/*' -name "$name" -type f | head -n1)"
        [ -n "$found" ] || { echo "$tool: $name is in none of ${packages[*]} ($suite)" >&2; exit 1; }
        cp "$found" "$dir/bin/$name"
    done
}
