//! Between the registry and hooks.d directories: `hookhost export hooks.d` writes a 1.0.0 file
//! per global hook that makes Podman/CRI-O call hookhost's stage runner (so WASM hooks, output
//! capture, group-kill timeouts and the audit trail work without the runtime wrapper), and
//! `hookhost import hooks.d` registers the hooks of existing files by file stem.
//!
//! hooks.d passes the same args to every stage of one file and the OCI state does not tell the
//! stages apart (prestart, createRuntime and createContainer all see `creating`), so a hook
//! registered for several stages is exported as one file per stage: `NAME@STAGE.json`; a
//! single-stage hook as `NAME.json`. Each file carries a snapshot of the hook, as a container
//! created by the wrapper does: re-export after changing the registry. startContainer hooks
//! run inside the container, where hookhost is not: a native one is exported as itself.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook as OciHook;
use serde_json::json;
use thiserror::Error;

use super::{ExportError, v1_document, write_file};
use hookhost_core::bundle::{self, TIMEOUT_SLACK_SECS};
use hookhost_core::define::{self, DefineError, Definition};
use hookhost_core::hook::{Hook, HookKind, RawTimeout, Stage, oci_timeout_secs};
use hookhost_core::hooksd::{self as reader, HooksdError};
use hookhost_core::plan::{PlannedHook, StagePlan};
use hookhost_core::registry::{Registry, RegistryError};

#[derive(Debug, Error)]
pub enum BridgeError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error("cannot read {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },
}

/// Why one hook was not exported or imported.
#[derive(Debug, Error)]
pub enum Skipped {
    #[error("{name}: a WASM hook cannot run at startContainer (inside the container)")]
    WasmInContainer { name: String },
    #[error("{0}")]
    Unreadable(#[from] HooksdError),
    #[error(
        "{}: its 0.1.0 conditions are OR-ed, which hookhost's conditions (all must hold) cannot \
         express; register it by hand with the conditions you mean", file.display()
    )]
    OrConditions { file: PathBuf },
    #[error("{}: written by `hookhost export`; not imported again", file.display())]
    OwnExport { file: PathBuf },
    #[error("{}: {source}", file.display())]
    Define {
        file: PathBuf,
        #[source]
        source: DefineError,
    },
    #[error("{}: {source}", file.display())]
    Register {
        file: PathBuf,
        #[source]
        source: RegistryError,
    },
}

#[derive(Debug, Default)]
pub struct ExportReport {
    pub written: Vec<PathBuf>,
    /// Files of earlier exports (from this registry) whose hook is no longer global.
    pub removed: Vec<PathBuf>,
    pub skipped: Vec<Skipped>,
    /// Registry entries that could not be read.
    pub errors: Vec<RegistryError>,
}

/// Writes the hooks.d files of every global hook into `dir` and removes stale ones.
pub fn export(
    registry: &Registry,
    dir: &Path,
    exe: &Path,
    root: &Path,
) -> Result<ExportReport, BridgeError> {
    let (hooks, errors) = registry.global_hooks()?;
    let mut report = ExportReport {
        errors,
        ..ExportReport::default()
    };
    for hook in &hooks {
        let when = hook.when.as_ref().expect("global hooks have conditions");
        for &stage in &hook.stages {
            let oci = match exported_hook(hook, stage, exe, root) {
                Ok(oci) => oci,
                Err(skip) => {
                    report.skipped.push(skip);
                    continue;
                }
            };
            let document = v1_document(&oci, when, &[stage]);
            report
                .written
                .push(write_file(dir, &file_stem(hook, stage), &document)?);
        }
    }
    report.removed = remove_stale(dir, root, &report.written)?;
    Ok(report)
}

fn file_stem(hook: &Hook, stage: Stage) -> String {
    if hook.stages.len() == 1 {
        hook.name.clone()
    } else {
        format!("{}@{}", hook.name, stage)
    }
}

/// The OCI hook Podman runs: `hookhost stage STAGE --plan …`, or the native hook itself at
/// startContainer.
fn exported_hook(hook: &Hook, stage: Stage, exe: &Path, root: &Path) -> Result<OciHook, Skipped> {
    let spec = &hook.spec;
    let mut oci = OciHook::default();
    if stage == Stage::StartContainer {
        if spec.kind == HookKind::Wasm {
            return Err(Skipped::WasmInContainer {
                name: hook.name.clone(),
            });
        }
        let mut env = spec.env.clone();
        env.push(format!("HOOKHOST_STAGE={stage}"));
        oci.set_path(spec.path.clone());
        oci.set_args(Some(spec.args.clone()));
        oci.set_env(Some(env));
        oci.set_timeout(Some(oci_timeout_secs([spec.timeout], 0) as i64));
        return Ok(oci);
    }
    let plan = StagePlan {
        root: root.to_path_buf(),
        hooks: vec![PlannedHook {
            name: hook.name.clone(),
            spec: spec.clone(),
        }],
    };
    oci.set_path(exe.to_path_buf());
    oci.set_args(Some(bundle::self_args(stage, &plan)));
    oci.set_timeout(Some(
        oci_timeout_secs([spec.timeout], TIMEOUT_SLACK_SECS) as i64
    ));
    Ok(oci)
}

/// The registry root of a stage-runner hooks.d hook, if `hook` is one.
fn exported_from(hook: &OciHook) -> Option<PathBuf> {
    bundle::own_plan(&json!({ "args": hook.args() })).map(|plan| plan.root)
}

/// Removes `.json` files in `dir` that an earlier export from `root` wrote and this one did not.
fn remove_stale(dir: &Path, root: &Path, keep: &[PathBuf]) -> Result<Vec<PathBuf>, BridgeError> {
    let set = reader::read_dirs(&[dir.to_path_buf()]);
    let mut removed = Vec::new();
    for hook in set.hooks {
        let ours = exported_from(&hook.hook).is_some_and(|r| r == root);
        if ours && !keep.contains(&hook.file) {
            std::fs::remove_file(&hook.file).map_err(|source| BridgeError::ReadDir {
                dir: hook.file.clone(),
                source,
            })?;
            removed.push(hook.file);
        }
    }
    Ok(removed)
}

#[derive(Debug, Default)]
pub struct ImportReport {
    pub imported: Vec<String>,
    pub skipped: Vec<Skipped>,
}

/// Registers every hook of the hooks.d directory `dir` under its file stem, with its stages
/// and conditions. Files hookhost exported itself are left alone.
pub fn import(registry: &Registry, dir: &Path) -> Result<ImportReport, BridgeError> {
    if let Err(source) = std::fs::read_dir(dir) {
        return Err(BridgeError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        });
    }
    let set = reader::read_dirs(&[dir.to_path_buf()]);
    let mut report = ImportReport {
        skipped: set.errors.into_iter().map(Skipped::from).collect(),
        ..ImportReport::default()
    };
    for hook in set.hooks {
        match import_one(registry, &hook) {
            Ok(name) => report.imported.push(name),
            Err(skip) => report.skipped.push(skip),
        }
    }
    Ok(report)
}

fn import_one(registry: &Registry, hook: &reader::HooksdHook) -> Result<String, Skipped> {
    let file = hook.file.clone();
    if exported_from(&hook.hook).is_some() {
        return Err(Skipped::OwnExport { file });
    }
    let when = hook
        .condition
        .to_when()
        .ok_or_else(|| Skipped::OrConditions { file: file.clone() })?;
    let oci = &hook.hook;
    let def = Definition {
        name: hook.name.clone(),
        path: oci.path().clone(),
        stages: hook.stages.clone(),
        args: oci.args().clone().unwrap_or_default(),
        env: oci.env().clone().unwrap_or_default(),
        timeout: oci.timeout().map(RawTimeout::from),
        limits: None,
        grants: None,
        when: Some(when),
        pin: false,
    };
    let built = define::build(def, registry).map_err(|source| Skipped::Define {
        file: file.clone(),
        source,
    })?;
    registry
        .create(&built)
        .map_err(|source| Skipped::Register { file, source })?;
    Ok(built.name)
}
