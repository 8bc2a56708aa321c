//! hooks.d as an engine integration: `hookhost export hooks.d` writes files that make Podman and
//! CRI-O call hookhost's stage runner, `hookhost import hooks.d` registers existing files' hooks.
//! Reading and writing the files themselves is `hookhost_hooks::hooksd`.

mod bridge;

pub use bridge::{
    BridgeError, ExportReport, ExportTo, ImportReport, Skipped, export, import, registry_name,
};
