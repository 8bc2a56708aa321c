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
//! A precreate hook is exported as a `precreate` file calling `hookhost stage precreate`, which
//! speaks Podman's protocol (config.json on stdin and stdout) and checks the hook's
//! `--may-adjust` grants; conflicts are checked between the hooks of one file only, since
//! Podman chains the files itself.

use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook as OciHook;
use thiserror::Error;

use hookhost_core::bundle::{self, InjectError};
use hookhost_core::plan::{ContainerPlan, LegacyStagePlan, PlanFile};
use hookhost_exec::fs as fsutil;
use hookhost_hooks::define::{self, DefineError, Definition};
use hookhost_hooks::hook::{Hook, HookKind, RawTimeout, Stage, oci_timeout_secs};
use hookhost_hooks::hooksd::{self as reader, HooksdError};
use hookhost_hooks::hooksd::{ExportError, v1_document, write_file};
use hookhost_hooks::registry::{Registry, RegistryError};
use hookhost_types::{STAGE_ENV, StageCall};

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
    #[error(
        "{name}: startRuntime is run by hookhost's runtime wrapper, not by Podman or CRI-O; \
         select it through the wrapper (`--runtime hookhost-runtime`)"
    )]
    StartRuntime { name: String },
    #[error("{0}")]
    Unreadable(#[from] HooksdError),
    #[error(
        "{}: its 0.1.0 conditions are OR-ed, which hookhost's conditions (all must hold) cannot \
         express; register it by hand with the conditions you mean", file.display()
    )]
    OrConditions { file: PathBuf },
    #[error("{}: written by `hookhost export`; not imported again", file.display())]
    OwnExport { file: PathBuf },
    #[error(
        "{}: it has no condition, so it never runs (as in Podman); add \"when\" to import it",
        file.display()
    )]
    NeverRuns { file: PathBuf },
    #[error(
        "{}: its \"stages\" list is empty, so it is never injected (as in Podman); name a stage to import it",
        file.display()
    )]
    NoStages { file: PathBuf },
    #[error("{name}: cannot write its plan file")]
    Plan {
        name: String,
        #[source]
        source: Box<InjectError>,
    },
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

/// Where exported files send Podman: hookhost's executable, the registry root, and the CDI
/// spec directories a precreate hook's CDI requests are resolved from (the config file's
/// `cdiSpecDirs`; empty: the defaults).
#[derive(Debug, Clone, Copy)]
pub struct ExportTo<'a> {
    pub exe: &'a Path,
    pub root: &'a Path,
    pub cdi_spec_dirs: &'a [PathBuf],
}

/// Writes the hooks.d files of every global hook into `dir` and removes stale ones.
pub fn export(registry: &Registry, dir: &Path, to: ExportTo) -> Result<ExportReport, BridgeError> {
    let (entries, errors) = registry.global_entries()?;
    let (hooks, shadows): (Vec<Hook>, Vec<Hook>) =
        entries.into_iter().partition(|h| h.shadow.is_none());
    let mut report = ExportReport {
        errors,
        ..ExportReport::default()
    };
    for hook in &hooks {
        let when = hook.when.as_ref().expect("global hooks have conditions");
        for &stage in &hook.stages {
            let oci = match exported_hook(hook, &shadows, registry, stage, to, dir) {
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
    report.removed = remove_stale(dir, to.root, &report.written)?;
    Ok(report)
}

fn file_stem(hook: &Hook, stage: Stage) -> String {
    if hook.stages.len() == 1 {
        hook.name.clone()
    } else {
        format!("{}@{}", hook.name, stage)
    }
}

/// Where an export keeps the plan files its hooks.d files name: a directory Podman and CRI-O
/// do not read (they read only `*.json` files), owner-only, so a hook's registered environment
/// is not readable by other users even though hooks.d files are.
pub const PLAN_DIR: &str = ".hookhost";

/// The OCI hook Podman runs: `hookhost stage STAGE --plan DIR/.hookhost/SHA.json --sha256 SHA`
/// (the plan file written here), or the native hook itself at startContainer.
fn exported_hook(
    hook: &Hook,
    shadows: &[Hook],
    registry: &Registry,
    stage: Stage,
    to: ExportTo,
    dir: &Path,
) -> Result<OciHook, Skipped> {
    let spec = &hook.spec;
    let mut oci = OciHook::default();
    if stage == Stage::StartRuntime {
        return Err(Skipped::StartRuntime {
            name: hook.name.clone(),
        });
    }
    if stage == Stage::StartContainer {
        if spec.kind == HookKind::Wasm {
            return Err(Skipped::WasmInContainer {
                name: hook.name.clone(),
            });
        }
        oci.set_path(spec.path.clone());
        oci.set_args(Some(spec.args.clone()));
        // Without env the hook inherits the container process's environment (as injected).
        if !spec.env.is_empty() {
            let mut env = spec.env.clone();
            env.push(format!("{STAGE_ENV}={stage}"));
            oci.set_env(Some(env));
        }
        oci.set_timeout(Some(oci_timeout_secs([spec.timeout], 0) as i64));
        return Ok(oci);
    }
    let mut plan = ContainerPlan::default();
    plan.push_registered(hook, &[]);
    hookhost_core::shadow::attach(&mut plan, shadows, Some(registry));
    plan.stages.retain(|s, _| *s == stage);
    let file = PlanFile {
        root: to.root.to_path_buf(),
        events_max_size: None,
        replay: None,
        runtime_log: None,
        cdi_spec_dirs: to.cdi_spec_dirs.to_vec(),
        plan,
    };
    let call = write_plan(&file, stage, dir).map_err(|source| Skipped::Plan {
        name: hook.name.clone(),
        source: Box::new(source),
    })?;
    oci.set_path(bundle::stage_executable(to.exe));
    oci.set_args(Some(call.to_args()));
    let hooks = &file.plan.stages[&stage];
    oci.set_timeout(bundle::outer_timeout(hooks).map(|t| t as i64));
    Ok(oci)
}

/// Writes a plan file into `DIR/.hookhost/` (0700), as a bundle's plan is written.
fn write_plan(file: &PlanFile, stage: Stage, dir: &Path) -> Result<StageCall, InjectError> {
    let plans = dir.join(PLAN_DIR);
    fsutil::create_dir_all(&plans, 0o700).map_err(|source| InjectError::Write {
        file: plans.clone(),
        source,
    })?;
    let (plan, sha256) = bundle::write_plan(file, &plans)?;
    Ok(StageCall {
        stage,
        plan,
        sha256,
    })
}

/// The stage call of a hooks.d hook hookhost exported (this version or an older one, which
/// carried its plan in argv), with the registry root it came from when that can be read.
fn exported_from(hook: &OciHook) -> Option<Option<PathBuf>> {
    let args = hook.args().clone().unwrap_or_default();
    if let Some(call) = StageCall::from_hook_args(&args) {
        return Some(bundle::load_plan(&call, Path::new("")).ok().map(|p| p.root));
    }
    let legacy = LegacyStagePlan::from_argv(&args).filter(|_| args[0] == "hookhost")?;
    Some(Some(legacy.root))
}

/// Removes `.json` files in `dir` that an earlier export from `root` wrote and this one did not
/// (and those whose plan file is gone), then every plan file no hooks.d file names any more.
fn remove_stale(dir: &Path, root: &Path, keep: &[PathBuf]) -> Result<Vec<PathBuf>, BridgeError> {
    let io = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| BridgeError::ReadDir { dir, source }
    };
    let set = reader::read_dirs(&[dir.to_path_buf()]);
    let mut removed = Vec::new();
    let mut named = Vec::new();
    for hook in set.hooks {
        let ours = exported_from(&hook.hook).is_some_and(|r| r.is_none_or(|r| r == root));
        if ours && !keep.contains(&hook.file) {
            std::fs::remove_file(&hook.file).map_err(io(&hook.file))?;
            removed.push(hook.file);
        } else if let Some(call) =
            StageCall::from_hook_args(&hook.hook.args().clone().unwrap_or_default())
        {
            named.push(call.plan);
        }
    }
    let plans = dir.join(PLAN_DIR);
    if let Ok(entries) = std::fs::read_dir(&plans) {
        for entry in entries {
            let path = entry.map_err(io(&plans))?.path();
            if !named.contains(&path) {
                std::fs::remove_file(&path).map_err(io(&path))?;
            }
        }
    }
    Ok(removed)
}

#[derive(Debug, Default)]
pub struct ImportReport {
    /// The registered names, in hooks.d order (which is also the order global hooks run in).
    pub imported: Vec<String>,
    /// Files whose stem is not a valid hook name, and the name each was registered under.
    pub renamed: Vec<(PathBuf, String)>,
    pub skipped: Vec<Skipped>,
}

/// The registry name for a hooks.d file stem. containers/common accepts any `*.json` file;
/// hookhost's names are ASCII letters, digits, `_`, `.` and `-`, starting with a letter or
/// digit, at most 128 bytes: any other character becomes `_`, and a stem not starting with a
/// letter or digit gets the prefix `hooksd-`.
pub fn registry_name(stem: &str) -> String {
    let mapped: String = stem
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') => c,
            _ => '_',
        })
        .collect();
    let mut name = match mapped.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => mapped,
        _ => format!("hooksd-{mapped}"),
    };
    name.truncate(MAX_NAME_BYTES);
    name
}

/// The longest hook name (`hook::validate_name`).
const MAX_NAME_BYTES: usize = 128;

/// Registers every hook of the hooks.d directory `dir` under its file stem (mapped to a valid
/// name when needed, see [`registry_name`]), with its conditions and its stages as they run
/// (a `prestart` file at createRuntime). Files hookhost exported itself are left alone.
pub fn import(registry: &Registry, dir: &Path) -> Result<ImportReport, BridgeError> {
    if let Err(source) = std::fs::read_dir(dir) {
        return Err(BridgeError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        });
    }
    let set = reader::read_dirs(&[dir.to_path_buf()]);
    let mut report = ImportReport {
        skipped: (set.errors.into_iter().chain(set.ignored))
            .map(Skipped::from)
            .collect(),
        ..ImportReport::default()
    };
    for hook in set.hooks {
        match import_one(registry, &hook) {
            Ok(name) => {
                if name != hook.name {
                    report.renamed.push((hook.file.clone(), name.clone()));
                }
                report.imported.push(name);
            }
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
    if hook.condition.is_empty() {
        return Err(Skipped::NeverRuns { file });
    }
    if hook.stages.is_empty() {
        return Err(Skipped::NoStages { file });
    }
    let when = hook
        .condition
        .to_when()
        .ok_or_else(|| Skipped::OrConditions { file: file.clone() })?;
    let oci = &hook.hook;
    let mut stages: Vec<Stage> = Vec::new();
    for stage in hook.stages.iter().map(|&s| reader::injected_stage(s)) {
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    let may_adjust = stages
        .contains(&Stage::Precreate)
        .then(hookhost_hooks::may_adjust::MayAdjust::all);
    let def = Definition {
        name: registry_name(&hook.name),
        path: oci.path().clone(),
        stages,
        args: oci.args().clone().unwrap_or_default(),
        env: oci.env().clone().unwrap_or_default(),
        timeout: oci.timeout().map(RawTimeout::from),
        limits: None,
        grants: None,
        leave_helpers: false,
        on_failure: None,
        // A hooks.d precreate file may change anything under Podman: imported, it keeps that
        // (narrow it by registering it again with --may-adjust).
        may_adjust,
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
