//! Turning what a user asked for on `hookhost create` into a validated [`Hook`].

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::grants::Grants;
use crate::hook::{
    self, DEFAULT_TIMEOUT_SECS, Hook, HookKind, HookSpec, InvalidName, OnFailure, RawTimeout,
    Source, Stage, TimeoutError, TimeoutSource,
};
use crate::registry::{Registry, RegistryError};
use crate::when::When;
use hookhost_exec::limits::WasmLimits;
use hookhost_exec::wasm::WasmError;

#[derive(Debug, Error)]
pub enum DefineError {
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("hook path {0:?} must be absolute")]
    RelativePath(PathBuf),
    #[error("hook path {path}: {reason}")]
    BadPath { path: PathBuf, reason: String },
    #[error("hook path {0} is not executable (chmod +x it, or register a WASM module)")]
    NotExecutable(PathBuf),
    #[error("invalid env entry {0:?}: expected KEY=VALUE")]
    BadEnv(String),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error("hook {name} could never run")]
    Unrunnable {
        name: String,
        #[source]
        source: hook::Unrunnable,
    },
    #[error("{0}")]
    WasmOnly(String),
    #[error(
        "--on-failure fail cannot apply at poststop: the container is already gone, and the \
         runtime-spec makes poststop failures warnings"
    )]
    FailAtPoststop,
    #[error(
        "--may-adjust applies to precreate hooks only (register the hook with --type precreate): \
         hooks of the other stages run after the container's configuration is fixed"
    )]
    AdjustNeedsPrecreate,
    #[error(
        "{} is a WebAssembly module: --leave-helpers applies to native hooks only (a module \
         starts no processes)", .0.display()
    )]
    NativeOnly(PathBuf),
    #[error("cannot register the module {}", path.display())]
    BadModule {
        path: PathBuf,
        #[source]
        source: Box<hookhost_exec::wasm::WasmError>,
    },
    #[error(
        "cannot register the module {}: compiling it {stop}. A module this costly to compile \
         is refused; if you trust it, raise compileCpuTime or compileMemory in hookhost's \
         config file", path.display()
    )]
    CompileBound {
        path: PathBuf,
        stop: hookhost_exec::wasm::CompileStop,
    },
    #[error(
        "a precreate hook's timeout ({timeout} s) must fit the NRI plugin's budget on this node \
         ({budget_ms} ms, from \"nri\" in hookhost's config file): under `hookhost nri` \
         precreate hooks run while the runtime waits, and one running past the budget refuses \
         the container. Give it --timeout 1 (a precreate hook should take milliseconds), or \
         raise the runtime's NRI request timeout and hookhost's nri.requestTimeoutMs with it"
    )]
    OverNriBudget { timeout: u64, budget_ms: u128 },
    #[error(transparent)]
    Grant(#[from] crate::grants::GrantError),
    #[error(transparent)]
    Untrusted(#[from] hookhost_exec::fs::Untrusted),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "{reference} is not a WebAssembly module: only WASM hooks can come from a registry \
         (they run sandboxed; a native executable is registered from a local file)"
    )]
    FetchedNative { reference: String },
}

/// Everything `hookhost create` was given.
#[derive(Debug, Clone, Default)]
pub struct Definition {
    pub name: String,
    pub path: PathBuf,
    /// Empty means prestart, as in the seed.
    pub stages: Vec<Stage>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    /// As given: validated here, so every way of registering a hook gets the same check.
    pub timeout: Option<RawTimeout>,
    pub limits: Option<WasmLimits>,
    pub grants: Option<Grants>,
    /// Native hooks only: see [`HookSpec::leave_helpers`].
    pub leave_helpers: bool,
    /// See [`HookSpec::on_failure`].
    pub on_failure: Option<OnFailure>,
    /// Precreate hooks only: see [`HookSpec::may_adjust`].
    pub may_adjust: Option<crate::may_adjust::MayAdjust>,
    pub when: Option<When>,
    /// Record the native binary's sha256 so the stage runner refuses it once it changed
    /// (WASM modules are always pinned).
    pub pin: bool,
}

impl Definition {
    /// What `hook` was registered with, as a definition that builds it again from its Path
    /// (`hookhost update`: a rebuilt module at the same Path is read anew). A pinned native
    /// hook stays pinned; a WASM hook's limits and grants are kept as they are.
    pub fn from_hook(hook: &Hook) -> Definition {
        let spec = &hook.spec;
        Definition {
            name: hook.name.clone(),
            path: spec.path.clone(),
            stages: hook.stages.clone(),
            args: spec.args.clone(),
            env: spec.env.clone(),
            timeout: Some(RawTimeout::from(spec.timeout)),
            limits: spec.limits.clone(),
            grants: spec.grants.clone(),
            leave_helpers: spec.leave_helpers,
            on_failure: spec.on_failure,
            may_adjust: spec.may_adjust.clone(),
            when: hook.when.clone(),
            pin: spec.kind == HookKind::Native && spec.digest.is_some(),
        }
    }
}

/// A module that was not read from a local file (pulled from an OCI registry), and where it
/// came from. `Definition::path` then holds the reference.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub source: Source,
}

/// Validates a definition; for a WASM module, stores it in the registry. The hook itself is
/// not registered here: the caller does that, so nothing is registered when validation fails.
pub fn build(def: Definition, registry: &Registry) -> Result<Hook, DefineError> {
    build_program(def, None, registry, true)
}

/// [`build`] without writing anything: a WASM module's digest is computed, the module is
/// neither validated nor stored (what `apply --dry-run` needs to compare).
pub fn build_unstored(def: Definition, registry: &Registry) -> Result<Hook, DefineError> {
    build_program(def, None, registry, false)
}

/// [`build`], [`build_unstored`] or [`build_fetched`], as `apply` chooses per entry.
pub fn build_from(
    def: Definition,
    fetched: Option<Fetched>,
    registry: &Registry,
    store: bool,
) -> Result<Hook, DefineError> {
    build_program(def, fetched, registry, store)
}

/// [`build`] for a module fetched from elsewhere: the same checks, precompilation and
/// content-addressed storage as a local module, plus the recorded [`Source`].
pub fn build_fetched(
    def: Definition,
    fetched: Fetched,
    registry: &Registry,
) -> Result<Hook, DefineError> {
    build_program(def, Some(fetched), registry, true)
}

fn build_program(
    def: Definition,
    fetched: Option<Fetched>,
    registry: &Registry,
    store: bool,
) -> Result<Hook, DefineError> {
    hook::validate_name(&def.name)?;
    let stages = normalise_stages(def.stages.clone());
    if def.on_failure == Some(OnFailure::Fail) && stages.contains(&Stage::Poststop) {
        return Err(DefineError::FailAtPoststop);
    }
    if def.may_adjust.is_some() && !stages.contains(&Stage::Precreate) {
        return Err(DefineError::AdjustNeedsPrecreate);
    }
    if let Some(grants) = &def.grants {
        grants.validate_for(&stages)?;
    }
    let timeout = match &def.timeout {
        Some(raw) => raw.validate(TimeoutSource::Flag)?,
        None => DEFAULT_TIMEOUT_SECS,
    };
    if let Some(budget) = registry.nri_budget()
        && stages.contains(&Stage::Precreate)
        && std::time::Duration::from_secs(timeout) > budget
    {
        return Err(DefineError::OverNriBudget {
            timeout,
            budget_ms: budget.as_millis(),
        });
    }
    if let Some(bad) = def
        .env
        .iter()
        .find(|e| !e.contains('=') || e.starts_with('='))
    {
        return Err(DefineError::BadEnv(bad.clone()));
    }
    let (bytes, source) = match fetched {
        Some(Fetched { bytes, source }) => (bytes, Some(source)),
        None => (read_program(&def.path)?, None),
    };
    let kind = if hookhost_exec::wasm::is_wasm(&bytes) {
        HookKind::Wasm
    } else {
        HookKind::Native
    };
    if let (Some(source), HookKind::Native) = (&source, kind) {
        return Err(DefineError::FetchedNative {
            reference: source.reference.clone(),
        });
    }
    let args = match def.args.is_empty() {
        true => vec![default_argv0(&def, kind)],
        false => def.args.clone(),
    };
    // Before anything is stored: a hook that can never run is never registered.
    hook::check_registrable(kind, &stages, &args, &def.env).map_err(|source| {
        DefineError::Unrunnable {
            name: def.name.clone(),
            source,
        }
    })?;
    let digest = match kind {
        HookKind::Native => {
            check_native(&def)?;
            if def.pin {
                // Pinning a file another user can replace would pin nothing.
                hookhost_exec::fs::check_trusted_path(&def.path)?;
                Some(hookhost_exec::fs::sha256_hex(&bytes))
            } else {
                None
            }
        }
        HookKind::Wasm => {
            if def.leave_helpers {
                return Err(DefineError::NativeOnly(def.path.clone()));
            }
            if let Some(grants) = &def.grants {
                grants.validate()?;
            }
            Some(match store {
                true => store_wasm(&def.path, &bytes, registry)?,
                false => hookhost_exec::fs::sha256_hex(&bytes),
            })
        }
    };
    Ok(Hook {
        name: def.name,
        stages,
        spec: HookSpec {
            kind,
            path: def.path,
            args,
            env: def.env,
            timeout,
            digest,
            limits: (kind == HookKind::Wasm).then(|| def.limits.unwrap_or_default()),
            grants: (kind == HookKind::Wasm).then(|| def.grants.unwrap_or_default()),
            leave_helpers: def.leave_helpers,
            on_failure: def.on_failure,
            may_adjust: def.may_adjust,
        },
        when: def.when,
        created: chrono::Utc::now(),
        source,
        shadow: None,
    })
}

fn read_program(path: &Path) -> Result<Vec<u8>, DefineError> {
    if !path.is_absolute() {
        return Err(DefineError::RelativePath(path.to_path_buf()));
    }
    let bad = |reason: String| DefineError::BadPath {
        path: path.to_path_buf(),
        reason,
    };
    let meta = fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() {
        return Err(bad("not a regular file".into()));
    }
    fs::read(path).map_err(|e| bad(e.to_string()))
}

fn check_native(def: &Definition) -> Result<(), DefineError> {
    let mode = fs::metadata(&def.path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0);
    if mode & 0o111 == 0 {
        return Err(DefineError::NotExecutable(def.path.clone()));
    }
    if def.limits.is_some() || def.grants.is_some() {
        return Err(DefineError::WasmOnly(format!(
            "{} is a native executable: --fuel, --memory, --write-limit and --allow-* apply to WASM hooks only",
            def.path.display()
        )));
    }
    Ok(())
}

/// Validates and precompiles the module (so the first container start is fast) under the
/// registry's compile bounds, then stores it under its digest (`path` names it in errors).
pub fn store_wasm(path: &Path, bytes: &[u8], registry: &Registry) -> Result<String, DefineError> {
    let cache_dir = registry.paths().cache_dir();
    let limits = registry.compile_limits();
    hookhost_exec::wasm::precompile(bytes, &cache_dir, limits).map_err(|source| match source {
        WasmError::CompileBound(stop) => DefineError::CompileBound {
            path: path.to_path_buf(),
            stop,
        },
        source => DefineError::BadModule {
            path: path.to_path_buf(),
            source: Box::new(source),
        },
    })?;
    Ok(registry.store_module(bytes)?)
}

/// argv0 when none is given: what a shell would pass.
fn default_argv0(def: &Definition, kind: HookKind) -> String {
    match kind {
        HookKind::Native => def.path.to_string_lossy().into_owned(),
        HookKind::Wasm => def.name.clone(),
    }
}

/// Spec order, no duplicates, prestart when none was asked for.
fn normalise_stages(mut stages: Vec<Stage>) -> Vec<Stage> {
    if stages.is_empty() {
        return vec![Stage::Prestart];
    }
    stages.sort();
    stages.dedup();
    stages
}
