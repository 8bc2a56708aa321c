//! Podman/CRI-O hooks.d files. Filled in by the hooks.d work.
