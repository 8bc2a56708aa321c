//! hooks.d as an engine integration: `hookhost export hooks.d` writes files that make Podman and
//! CRI-O call hookhost's stage runner, `hookhost import hooks.d` registers existing files' hooks.
//! Reading hooks.d files (a selection source) is `hookhost_hooks::hooksd`.

mod bridge;
mod export;

pub use bridge::{BridgeError, ExportReport, ImportReport, Skipped, export, import, registry_name};
pub use export::{ExportError, v1_document, write_file};

#[cfg(test)]
mod tests;
