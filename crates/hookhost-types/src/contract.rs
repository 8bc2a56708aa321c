//! The host/guest contract's names, used by hookhost when it runs a hook and by the guest SDK
//! when a hook reads its invocation.

/// The environment variable naming the stage a hook runs at (`prestart`, …, `poststop`).
pub const STAGE_ENV: &str = "HOOKHOST_STAGE";
/// Where a WASM hook granted `--allow-bundle` sees the container's bundle directory.
pub const BUNDLE_GUEST: &str = "/bundle";
/// Where a WASM hook granted `--allow-rootfs` sees the container's root filesystem.
pub const ROOTFS_GUEST: &str = "/rootfs";
