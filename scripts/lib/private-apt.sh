# Sourced by engines.sh and oci-tools.sh: apt-get on a private apt directory under "$dir"
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
