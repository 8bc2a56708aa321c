//! `hookhost recompile`: compiles every registered WASM module for the running hookhost build.
//!
//! The compile cache is keyed by the engine's fingerprint (wasmtime version, architecture,
//! engine settings), so an upgrade leaves every artifact stale. A stage that misses the cache
//! compiles the module within the hook's own timeout, which a large module may not fit; run
//! after an upgrade (a package's post-install step), this compiles them all under the
//! registration bounds instead, and removes the artifacts only another build can load.

use std::collections::BTreeMap;

use hookhost_exec::wasm::{self, WasmError};
use thiserror::Error;

use crate::hook::HookKind;
use crate::registry::{Registry, RegistryError};

#[derive(Debug, Error)]
pub enum RecompileError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("cannot clear old artifacts from the compile cache {}", dir.display())]
    Prune {
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What became of one module.
#[derive(Debug)]
pub struct Module {
    /// Its sha256.
    pub digest: String,
    /// The hooks that run it.
    pub hooks: Vec<String>,
    /// Whether it was compiled (`false`: its artifact was already there), or why it could not
    /// be.
    pub result: Result<bool, WasmError>,
}

/// What `recompile` did.
#[derive(Debug)]
pub struct Report {
    /// Every module registered hooks run, in digest order.
    pub modules: Vec<Module>,
    /// Artifact files of other hookhost builds removed.
    pub removed: usize,
    /// Entries that could not be read (their modules are not compiled).
    pub unreadable: Vec<RegistryError>,
}

impl Report {
    /// Whether every module has its artifact now.
    pub fn success(&self) -> bool {
        self.modules.iter().all(|m| m.result.is_ok())
    }
}

/// Compiles every module a registered WASM hook runs whose artifact for this build is missing
/// or stale, under the registry's compile bounds; then removes other builds' artifacts.
pub fn recompile(registry: &Registry) -> Result<Report, RecompileError> {
    let (hooks, unreadable) = registry.list()?;
    let mut by_digest: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for hook in hooks {
        if let (HookKind::Wasm, Some(digest)) = (hook.spec.kind, hook.spec.digest) {
            by_digest.entry(digest).or_default().push(hook.name);
        }
    }
    let cache_dir = registry.paths().cache_dir();
    let modules = by_digest
        .into_iter()
        .map(|(digest, hooks)| {
            let module_path = registry.paths().module_file(&digest);
            let result =
                wasm::ensure_compiled(&module_path, &digest, &cache_dir, registry.compile_limits());
            Module {
                digest,
                hooks,
                result,
            }
        })
        .collect();
    let removed =
        wasm::remove_foreign_artifacts(&cache_dir).map_err(|source| RecompileError::Prune {
            dir: cache_dir.clone(),
            source,
        })?;
    Ok(Report {
        modules,
        removed,
        unreadable,
    })
}
