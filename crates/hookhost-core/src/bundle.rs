//! A bundle as hookhost leaves it: `config.json` edited losslessly, with hookhost added as the
//! OCI hook of each stage that has work (after the hooks already there), and beside it the
//! plan file those entries name (`hookhost_types::StageCall`).
//!
//! The document is edited as a `serde_json::Value` (key order preserved), so every field
//! hookhost does not know survives untouched; `oci-spec` is used only to validate it.
//!
//! The plan file (`hookhost-plan-SHA256.json`, mode 0600) holds the container's hooks with
//! their registered environment: nothing of it is in argv or in config.json, which other users
//! may read. It lives in the bundle, so it goes when the engine removes the bundle (Docker,
//! containerd, Podman and CRI-O do after `delete`), and a bundle run again (`runc run` twice)
//! still finds it. It is named by its sha256, which every entry carries: a bundle injected
//! again gets a new file and its already-created containers keep theirs.

use std::path::{Path, PathBuf};

use hookhost_types::{
    HOOKHOST_EXECUTABLE, STAGE_EXECUTABLE, START_ANNOTATION, Stage, StageCall, StartCalls,
};
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::plan::{ContainerPlan, LegacyStagePlan, PlanError, PlanFile, PlannedHook};
use hookhost_exec::fs as fsutil;
use hookhost_hooks::hook::HookKind;

/// Slack added to the OCI timeout of hookhost's own entry, so that hookhost reports a hook's
/// timeout itself before the runtime kills hookhost.
pub const TIMEOUT_SLACK_SECS: u64 = 5;

#[derive(Debug, Error)]
pub enum InjectError {
    #[error("cannot read {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid JSON", file.display())]
    Malformed {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} is not a valid OCI runtime config", file.display())]
    NotOci {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {reason}", file.display())]
    Shape { file: PathBuf, reason: String },
    #[error("cannot write {}", file.display())]
    Write {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "startRuntime hooks ({}) run only through hookhost's runtime wrapper when the engine \
         calls the runtime's `create` and then its `start` (Docker, containerd, Podman and CRI-O \
         do); `hookhost inject` and a runtime's one-shot `run` cannot run them: start the \
         container with the wrapper (`hookhost run`, `docker run --runtime hookhost`, \
         `ctr run --runc-binary hookhost-runtime`)", names.join(", ")
    )]
    NeedsWrapper { names: Vec<String> },
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Existing(#[from] PlanLoadError),
    #[error(
        "no stage runner for the entries: {} (the hookhost beside the runtime wrapper) cannot be \
         used, and no usable {STAGE_EXECUTABLE} is beside it", exe.display()
    )]
    NoStageRunner {
        exe: PathBuf,
        #[source]
        source: fsutil::Untrusted,
    },
}

/// Why a stage (or a second injection) could not read the plan a bundle's entries name.
#[derive(Debug, Error)]
pub enum PlanLoadError {
    #[error(
        "hookhost's plan file {} is not in the bundle: config.json has hookhost's stage entries, \
         but not the plan they name (a config.json copied from a bundle hookhost injected, or \
         a plan file removed). Inject this bundle again (`hookhost inject --bundle DIR`, or \
         create the container through hookhost-runtime): hookhost's entries are then replaced \
         with this bundle's own", file.display()
    )]
    Missing { file: PathBuf },
    #[error("cannot read hookhost's plan file {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Untrusted(#[from] fsutil::Untrusted),
    #[error(
        "hookhost's plan file {} is larger than {} bytes", file.display(), crate::plan::MAX_PLAN_BYTES
    )]
    TooLarge { file: PathBuf },
    #[error(
        "hookhost's plan file {} is not the one injected (sha256 {actual}, expected {expected}): \
         it was changed or replaced afterwards; inject the bundle again", file.display()
    )]
    Mismatch {
        file: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("hookhost's plan file {} is not valid", file.display())]
    Invalid {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "the container's state names no bundle, so the plan file {} cannot be found", file.display()
    )]
    NoBundle { file: PathBuf },
}

/// How hookhost calls itself back at each stage.
#[derive(Debug, Clone)]
pub struct SelfCall {
    /// hookhost's own executable (absolute, as the runtime resolves it).
    pub exe: PathBuf,
    /// The registry root the stage runner reads modules and writes events under.
    pub root: PathBuf,
    /// The audit trail's bound (the config's `eventsMaxSize`); none: the default.
    pub events_max_size: Option<u64>,
    /// The replay records' settings (the config's `replay`); none: the defaults.
    pub replay: Option<hookhost_hooks::config::ReplaySettings>,
    /// The runtime's log file, when there is one (the wrapper's `create` call names it).
    pub runtime_log: Option<crate::runtime_log::RuntimeLog>,
    /// Whether the runtime wrapper injects at a `create` call, and so runs the
    /// [`Stage::runs_at_start`] stages itself at the engine's `start` call (named by the
    /// [`START_ANNOTATION`]) instead of leaving them to the runtime.
    pub at_start: bool,
    /// Whether the entries name the plan file by its absolute path: the NRI plugin keeps it in
    /// the state directory, since the runtime's bundle is not known when it is written.
    pub absolute_plan: bool,
    /// Whether `exe` is not the running program but a file beside it (the small runtime
    /// wrapper names the `hookhost` beside it): an entry names it only once it passed the
    /// trust check hook files pass, so that a missing or writable one refuses the container
    /// here, with a message, instead of failing it at its first stage or running as root what
    /// anyone could have put there.
    pub check_exe: bool,
}

/// What a stage entry runs for hookhost's executable `hookhost`: the stage executable
/// installed beside it ([`STAGE_EXECUTABLE`], which starts in a fraction of hookhost's time),
/// else `hookhost` itself. The entry's `args` are the same either way.
pub fn stage_executable(hookhost: &Path) -> PathBuf {
    small_executable(hookhost, STAGE_EXECUTABLE)
}

/// hookhost's small executable `name` installed beside `hookhost` (scripts/build-stage.sh:
/// the stage executable, the runtime wrapper), else `hookhost` itself, which does what each of
/// them does under its name. Only beside an executable named [`HOOKHOST_EXECUTABLE`] (the one
/// they hand other calls and compiling to; not the NRI plugin's copy under another name), and
/// only an executable file that passes the trust check every hook file passes: else
/// containers would run, as root, what anyone could have put there.
pub fn small_executable(hookhost: &Path, name: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let beside = hookhost.with_file_name(name);
    let usable = hookhost.file_name() == Some(HOOKHOST_EXECUTABLE.as_ref())
        && std::fs::metadata(&beside)
            .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        && hookhost_exec::fs::check_trusted_path(&beside).is_ok();
    match usable {
        true => beside,
        false => hookhost.to_path_buf(),
    }
}

/// What the entries of `call` run: [`stage_executable`]; `call.exe` itself only once it passed
/// the trust check when [`SelfCall::check_exe`] says so.
fn entry_executable(call: &SelfCall) -> Result<PathBuf, InjectError> {
    let exe = stage_executable(&call.exe);
    if call.check_exe && exe == call.exe {
        hookhost_exec::fs::check_trusted_path(&exe).map_err(|source| {
            InjectError::NoStageRunner {
                exe: exe.clone(),
                source,
            }
        })?;
    }
    Ok(exe)
}

/// Reads the plan file `call` names, for a container whose bundle is `bundle`: a file owned by
/// root or the current user that no one else can write, no larger than the largest plan, and
/// with the sha256 the entry recorded.
pub fn load_plan(call: &StageCall, bundle: &Path) -> Result<PlanFile, PlanLoadError> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = if call.plan.is_absolute() {
        call.plan.clone()
    } else if bundle.as_os_str().is_empty() {
        return Err(PlanLoadError::NoBundle {
            file: call.plan.clone(),
        });
    } else {
        bundle.join(&call.plan)
    };
    let read_err = |source| PlanLoadError::Read {
        file: file.clone(),
        source,
    };
    let mut handle = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(&file)
    {
        Ok(handle) => handle,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PlanLoadError::Missing { file });
        }
        Err(e) => return Err(read_err(e)),
    };
    let meta = handle.metadata().map_err(read_err)?;
    fsutil::check_trusted_meta(&file, &meta)?;
    let limit = crate::plan::MAX_PLAN_BYTES as u64;
    let mut bytes = Vec::with_capacity(meta.len().min(limit) as usize);
    (&mut handle)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > limit {
        return Err(PlanLoadError::TooLarge { file });
    }
    let actual = fsutil::sha256_hex(&bytes);
    if actual != call.sha256 {
        return Err(PlanLoadError::Mismatch {
            file,
            expected: call.sha256.clone(),
            actual,
        });
    }
    PlanFile::decode(&bytes).map_err(|source| PlanLoadError::Invalid { file, source })
}

/// Writes `file` into `dir` as `hookhost-plan-SHA256.json`, owner-only; returns its path and
/// sha256. The one writer of plan files: bundles, and hooks.d exports.
pub fn write_plan(file: &PlanFile, dir: &Path) -> Result<(PathBuf, String), InjectError> {
    let bytes = file.encode()?;
    let sha256 = fsutil::sha256_hex(&bytes);
    let path = dir.join(StageCall::plan_file_name(&sha256));
    fsutil::write_atomic(&path, &bytes, 0o600).map_err(|source| InjectError::Write {
        file: path.clone(),
        source,
    })?;
    Ok((path, sha256))
}

/// A bundle's config.json, read and validated, ready to be edited.
pub struct BundleConfig {
    pub file: PathBuf,
    pub doc: Value,
    /// Whether the saved file must be readable by its owner only (it carries a startContainer
    /// hook's registered environment).
    private: bool,
    /// The plan file hookhost's entries named but this bundle does not have (a config.json
    /// copied from another bundle), once [`BundleConfig::inject`] replaced those entries.
    pub replaced_missing_plan: Option<PathBuf>,
}

/// The OCI bundle's configuration file name.
pub const CONFIG_FILE: &str = "config.json";

impl BundleConfig {
    /// Reads the bundle's config.json, which must be JSON. It is not yet checked to be an OCI
    /// config: [`BundleConfig::typed`] does that, and every edit ends with it. A container
    /// that nothing selects hooks for is left to its runtime unread (`select`).
    pub fn load(bundle: &Path) -> Result<Self, InjectError> {
        let file = bundle.join(CONFIG_FILE);
        let bytes = std::fs::read(&file).map_err(|source| InjectError::Read {
            file: file.clone(),
            source,
        })?;
        let doc: Value =
            serde_json::from_slice(&bytes).map_err(|source| InjectError::Malformed {
                file: file.clone(),
                source,
            })?;
        Ok(BundleConfig {
            file,
            doc,
            private: false,
            replaced_missing_plan: None,
        })
    }

    /// A config.json document already read from `file`; refused unless it is an OCI config.
    pub fn from_doc(file: PathBuf, doc: Value) -> Result<Self, InjectError> {
        let config = BundleConfig {
            file,
            doc,
            private: false,
            replaced_missing_plan: None,
        };
        config.typed()?;
        Ok(config)
    }

    /// The typed view, for reads and validation.
    pub fn typed(&self) -> Result<oci_spec::runtime::Spec, InjectError> {
        use serde::Deserialize;
        oci_spec::runtime::Spec::deserialize(&self.doc).map_err(|source| InjectError::NotOci {
            file: self.file.clone(),
            source,
        })
    }

    /// Whether `annotations` has `key`, whatever its value.
    pub fn has_annotation(&self, key: &str) -> bool {
        self.doc
            .pointer("/annotations")
            .and_then(Value::as_object)
            .is_some_and(|annotations| annotations.contains_key(key))
    }

    fn bundle_dir(&self) -> &Path {
        self.file.parent().unwrap_or(Path::new("."))
    }

    /// The plan hookhost's entries already name (a bundle injected before), if any.
    pub fn injected_plan(&self) -> Result<Option<PlanFile>, InjectError> {
        let own = Stage::ALL
            .iter()
            .flat_map(|stage| self.entries(*stage))
            .find_map(own_call)
            .or_else(|| self.start_plan());
        let mut found = match own {
            Some(call) => Some(load_plan(&call, self.bundle_dir())?),
            None => None,
        };
        for stage in Stage::ALL {
            for legacy in self.entries(stage).iter().filter_map(legacy_plan) {
                let file = found.get_or_insert_with(|| PlanFile {
                    root: legacy.root.clone(),
                    events_max_size: None,
                    replay: None,
                    runtime_log: None,
                    cdi_spec_dirs: Vec::new(),
                    plan: ContainerPlan::default(),
                });
                for hook in legacy.hooks {
                    file.plan.push(stage, hook);
                }
            }
        }
        Ok(found)
    }

    /// Adds the plan's hooks to those already injected: writes the combined plan file, then
    /// points hookhost's entry of each stage with work at it (after the engine's own hooks).
    /// Injecting the same hooks again changes nothing. Entries naming a plan this bundle does
    /// not have (a config.json copied from another bundle) are replaced, and
    /// `replaced_missing_plan` says so. The caller saves config.json.
    pub fn inject(&mut self, plan: &ContainerPlan, call: &SelfCall) -> Result<(), InjectError> {
        let mut combined = match self.injected_plan() {
            Ok(Some(existing)) => existing.plan,
            Ok(None) => ContainerPlan::default(),
            Err(InjectError::Existing(PlanLoadError::Missing { file })) => {
                self.replaced_missing_plan = Some(file);
                ContainerPlan::default()
            }
            Err(e) => return Err(e),
        };
        combined.extend(plan.clone());
        combined.check()?;
        let file = PlanFile {
            root: call.root.clone(),
            events_max_size: call.events_max_size,
            replay: call.replay,
            runtime_log: call.runtime_log.clone(),
            cdi_spec_dirs: Vec::new(),
            plan: combined,
        };
        let (path, sha256) = write_plan(&file, self.bundle_dir())?;
        // Looked for once, when the first entry is written.
        let mut exe = None;
        let mut at_start = Vec::new();
        for stage in Stage::ALL {
            let hooks = file.plan.stages.get(&stage).map_or(&[][..], Vec::as_slice);
            if !stage.is_oci() && !call.at_start && !hooks.is_empty() {
                let names = hooks.iter().map(|h| h.name.clone()).collect();
                return Err(InjectError::NeedsWrapper { names });
            }
            if stage == Stage::StartContainer {
                let new = plan.stages.get(&stage).map_or(&[][..], Vec::as_slice);
                if !new.is_empty() {
                    self.private |= new.iter().any(|h| !h.spec.env.is_empty());
                    add_direct_entries(self.stage_list(stage)?, new);
                }
                continue;
            }
            self.remove_own_entries(stage);
            if hooks.is_empty() {
                continue;
            }
            if call.at_start && stage.runs_at_start() {
                at_start.push(stage);
                continue;
            }
            tracing::info!(file = %self.file.display(), %stage, hooks = hooks.len(), "injecting");
            let mut stage_call = StageCall::bundle_plan(stage, &sha256);
            if call.absolute_plan {
                stage_call.plan = path.clone();
            }
            let entry = with_timeout(
                json!({
                    "path": match &exe {
                        Some(exe) => exe,
                        None => exe.insert(entry_executable(call)?),
                    },
                    "args": stage_call.to_args(),
                }),
                outer_timeout(hooks),
            );
            self.stage_list(stage)?.push(entry);
        }
        if call.at_start {
            let calls = StartCalls {
                stages: at_start,
                sha256,
            };
            self.set_start_calls(&calls)?;
        }
        self.typed()?;
        Ok(())
    }

    /// The plan a [`START_ANNOTATION`] names when its file is in the bundle: a bundle whose
    /// only hooks run at `start` was injected before. One naming no plan of the bundle did not
    /// come from hookhost, and is replaced at injection.
    fn start_plan(&self) -> Option<StageCall> {
        let calls = self.start_calls()?;
        let call = calls.call(*calls.stages.first()?)?;
        self.bundle_dir().join(&call.plan).is_file().then_some(call)
    }

    /// The stages the wrapper runs at `start`, as the [`START_ANNOTATION`] names them.
    fn start_calls(&self) -> Option<StartCalls> {
        let value = self.doc.pointer("/annotations")?.get(START_ANNOTATION)?;
        StartCalls::decode(value.as_str()?)
    }

    /// Sets the [`START_ANNOTATION`] (one the container brought is replaced), or removes it
    /// when no stage runs at `start`.
    fn set_start_calls(&mut self, calls: &StartCalls) -> Result<(), InjectError> {
        if calls.stages.is_empty() {
            if let Some(annotations) = self
                .doc
                .get_mut("annotations")
                .and_then(Value::as_object_mut)
            {
                annotations.remove(START_ANNOTATION);
            }
            return Ok(());
        }
        self.child_object("annotations")?
            .insert(START_ANNOTATION.into(), calls.encode().into());
        Ok(())
    }

    /// The value of `name` in `process.env`, if set.
    pub fn process_env(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}=");
        self.doc
            .pointer("/process/env")?
            .as_array()?
            .iter()
            .find_map(|entry| entry.as_str()?.strip_prefix(&prefix))
    }

    /// Removes `NAME=…` from `process.env` and returns its value (the last one wins, as in a
    /// process environment).
    pub fn take_process_env(&mut self, name: &str) -> Option<String> {
        let env = self.doc.pointer_mut("/process/env")?.as_array_mut()?;
        let prefix = format!("{name}=");
        let mut value = None;
        env.retain(
            |entry| match entry.as_str().and_then(|s| s.strip_prefix(&prefix)) {
                Some(v) => {
                    value = Some(v.to_string());
                    false
                }
                None => true,
            },
        );
        value
    }

    /// Writes config.json back (atomically, keeping its mode; owner-only when it carries a
    /// hook's registered environment).
    pub fn save(&self) -> Result<(), InjectError> {
        let mut bytes = serde_json::to_vec_pretty(&self.doc).expect("a JSON value serialises");
        bytes.push(b'\n');
        let written = if self.private {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&self.file).map_or(0o600, |m| m.permissions().mode());
            fsutil::write_atomic(&self.file, &bytes, mode & 0o700)
        } else {
            fsutil::replace_atomic(&self.file, &bytes)
        };
        written.map_err(|source| InjectError::Write {
            file: self.file.clone(),
            source,
        })
    }

    /// The entries of one stage, if the document has that list.
    fn entries(&self, stage: Stage) -> &[Value] {
        self.doc
            .pointer(&format!("/hooks/{}", stage.as_str()))
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }

    fn remove_own_entries(&mut self, stage: Stage) {
        let pointer = format!("/hooks/{}", stage.as_str());
        if let Some(list) = self.doc.pointer_mut(&pointer).and_then(Value::as_array_mut) {
            list.retain(|entry| own_call(entry).is_none() && legacy_plan(entry).is_none());
        }
    }

    fn stage_list(&mut self, stage: Stage) -> Result<&mut Vec<Value>, InjectError> {
        let file = self.file.clone();
        let list = self
            .child_object("hooks")?
            .entry(stage.as_str())
            .or_insert_with(|| Value::Array(Vec::new()));
        list.as_array_mut()
            .ok_or_else(|| shape(file, "a `hooks` stage is not a list"))
    }

    /// The top-level object `key` (`hooks`, `annotations`), added when missing.
    fn child_object(&mut self, key: &str) -> Result<&mut Map<String, Value>, InjectError> {
        let file = self.file.clone();
        let root = self
            .doc
            .as_object_mut()
            .ok_or_else(|| shape(file.clone(), "the document is not an object"))?;
        root.entry(key)
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .ok_or_else(|| shape(file, &format!("`{key}` is not an object")))
    }
}

fn shape(file: PathBuf, reason: &str) -> InjectError {
    InjectError::Shape {
        file,
        reason: reason.into(),
    }
}

/// An OCI hook entry's `args`, when they are all strings.
fn entry_args(entry: &Value) -> Option<Vec<&str>> {
    entry
        .get("args")?
        .as_array()?
        .iter()
        .map(Value::as_str)
        .collect()
}

/// The stage call of one of hookhost's own entries, if `entry` is one.
pub fn own_call(entry: &Value) -> Option<StageCall> {
    StageCall::from_hook_args(&entry_args(entry)?)
}

/// The plan of an entry written by hookhost before plans left argv: its hooks are kept, and
/// the entry replaced, when the bundle is injected again.
fn legacy_plan(entry: &Value) -> Option<LegacyStagePlan> {
    let args = entry_args(entry)?;
    match args[..] {
        ["hookhost", _, _, _, _] => LegacyStagePlan::from_argv(&args),
        _ => None,
    }
}

/// The OCI timeout of hookhost's own entry: every hook's timeout and every shadow's budget
/// (rounded up to seconds) plus slack, capped so that it stays a valid positive `int` for every
/// runtime (`hook::oci_timeout_secs`); none when one of the hooks has none.
pub fn outer_timeout(hooks: &[PlannedHook]) -> Option<u64> {
    let timeouts: Option<Vec<u64>> = hooks.iter().map(PlannedHook::timeout).collect();
    let shadows = hooks.iter().flat_map(|h| &h.shadows);
    let budgets = shadows.map(|s| s.budget_ms.div_ceil(1000));
    Some(hookhost_hooks::hook::oci_timeout_secs(
        timeouts?.into_iter().chain(budgets),
        TIMEOUT_SLACK_SECS,
    ))
}

/// An OCI hook entry with `timeout` set, or without the key (no timeout).
fn with_timeout(mut entry: Value, timeout: Option<u64>) -> Value {
    if let Some(timeout) = timeout {
        entry["timeout"] = timeout.into();
    }
    entry
}

/// startContainer hooks run inside the container: add the native hooks themselves. A hook
/// without env gets no `env`, so that it inherits the container process's environment as the
/// runtime gives it (as runc does); it then has no `HOOKHOST_STAGE` either, since any `env`
/// would replace the inherited environment.
fn add_direct_entries(list: &mut Vec<Value>, hooks: &[PlannedHook]) {
    for hook in hooks {
        debug_assert_eq!(hook.spec.kind, HookKind::Native, "checked by the plan");
        let mut entry = json!({"path": hook.spec.path, "args": hook.spec.args});
        if !hook.spec.env.is_empty() {
            let mut env = hook.spec.env.clone();
            env.push(format!(
                "{}={}",
                hookhost_types::STAGE_ENV,
                Stage::StartContainer
            ));
            entry["env"] = env.into();
        }
        let entry = with_timeout(entry, hook.timeout());
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}

/// A throwaway bundle for `hookhost try`: a default (`runc spec`-like) config.json and an empty
/// rootfs in a temporary directory, removed when dropped. For hooks granted the bundle or the
/// rootfs when no bundle was given.
pub fn sample_bundle() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new().prefix("hookhost-try-").tempdir()?;
    std::fs::create_dir(dir.path().join("rootfs"))?;
    let spec = oci_spec::runtime::Spec::default();
    let mut bytes = serde_json::to_vec_pretty(&spec).expect("a spec serialises");
    bytes.push(b'\n');
    std::fs::write(dir.path().join(CONFIG_FILE), bytes)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn bundle(mode: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    fn inject(dir: &Path, stage: Stage, env: Vec<String>) -> u32 {
        let mut plan = ContainerPlan::default();
        let hook = PlannedHook::native("h".into(), "/bin/true".into(), vec![], env, Some(5));
        plan.push(stage, hook);
        let call = SelfCall {
            exe: "/usr/bin/hookhost".into(),
            root: dir.join("root"),
            events_max_size: None,
            replay: None,
            runtime_log: None,
            at_start: false,
            absolute_plan: false,
            check_exe: false,
        };
        let mut config = BundleConfig::load(dir).unwrap();
        config.inject(&plan, &call).unwrap();
        config.save().unwrap();
        let meta = std::fs::metadata(dir.join("config.json")).unwrap();
        meta.permissions().mode() & 0o777
    }

    /// A startContainer hook is run by the runtime itself, so its registered env is written
    /// into config.json: the file is then made owner-only. Other stages' env stays in the
    /// 0600 plan file, and config.json keeps its mode.
    #[test]
    fn config_json_with_a_start_container_env_becomes_owner_only() {
        let plain = bundle(0o644);
        assert_eq!(
            inject(plain.path(), Stage::CreateRuntime, vec!["T=s3cr3t".into()]),
            0o644
        );
        let config = std::fs::read_to_string(plain.path().join("config.json")).unwrap();
        assert!(!config.contains("s3cr3t"), "{config}");
        let inside = bundle(0o644);
        assert_eq!(
            inject(
                inside.path(),
                Stage::StartContainer,
                vec!["T=s3cr3t".into()]
            ),
            0o600
        );
        let without_env = bundle(0o644);
        assert_eq!(
            inject(without_env.path(), Stage::StartContainer, vec![]),
            0o644
        );
    }

    /// The stage uses a plan file only as injected: not through a symlink, not writable by
    /// others, and with the sha256 its entry names.
    #[test]
    fn a_plan_file_is_used_only_as_injected() {
        let dir = bundle(0o644);
        inject(dir.path(), Stage::Poststop, vec![]);
        let config = BundleConfig::load(dir.path()).unwrap();
        let call = own_call(&config.entries(Stage::Poststop)[0]).unwrap();
        let file = dir.path().join(&call.plan);
        assert!(load_plan(&call, dir.path()).is_ok());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o660)).unwrap();
        let err = load_plan(&call, dir.path()).unwrap_err();
        assert!(matches!(err, PlanLoadError::Untrusted(_)), "{err}");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();

        let moved = dir.path().join("elsewhere.json");
        std::fs::rename(&file, &moved).unwrap();
        std::os::unix::fs::symlink(&moved, &file).unwrap();
        let err = load_plan(&call, dir.path()).unwrap_err();
        assert!(matches!(err, PlanLoadError::Read { .. }), "{err}");
        std::fs::remove_file(&file).unwrap();

        let mut bytes = std::fs::read(&moved).unwrap();
        bytes.insert(1, b' ');
        std::fs::write(&file, &bytes).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = load_plan(&call, dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("not the one injected") && err.contains("inject"),
            "{err}"
        );

        let err = load_plan(&call, Path::new("")).unwrap_err();
        assert!(matches!(err, PlanLoadError::NoBundle { .. }), "{err}");
    }
}
