//! The host/guest contract's names, used by hookhost when it runs a hook and by the guest SDK
//! when a hook reads its invocation.

/// The environment variable naming the stage a hook runs at (`prestart`, …, `poststop`).
pub const STAGE_ENV: &str = "HOOKHOST_STAGE";
/// Where a WASM hook granted `--allow-bundle` sees the container's bundle directory.
pub const BUNDLE_GUEST: &str = "/bundle";
/// Where a WASM hook granted `--allow-rootfs` sees the container's root filesystem.
pub const ROOTFS_GUEST: &str = "/rootfs";
/// The annotation key prefix by which a container (or a precreate hook, in its output) requests
/// CDI devices: `cdi.k8s.io/NAME` = comma-separated fully qualified device names
/// (`vendor.com/class=name`), as the Container Device Interface defines it.
pub const CDI_ANNOTATION_PREFIX: &str = "cdi.k8s.io/";
/// The key under that prefix the guest SDK's `add_cdi_device` writes.
pub const CDI_SDK_ANNOTATION: &str = "cdi.k8s.io/hookhost";
