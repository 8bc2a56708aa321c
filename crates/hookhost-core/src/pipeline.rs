//! The container pipeline every front end calls: *select → precreate chain (grants, conflicts)
//! → plan*, on a container description ([`Container`] and its config document). The runtime
//! wrapper and `hookhost inject` describe a container by its bundle ([`crate::prepare`] then
//! writes the plan and hookhost's entries into it); the NRI plugin by the pod and container
//! the runtime sends (it turns the result into an adjustment).
//!
//! Precreate hooks are selected from the config as proposed; the other stages from the config
//! as the precreate hooks left it, so a precreate hook granted `annotations=io.hookhost.hooks`
//! can select hooks for the container. A precreate hook selected only by such an edit does not
//! run (the precreate stage is over): that is a warning. The selection variables in
//! `process.env` are read once, before the precreate hooks run.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bundle::{BundleConfig, InjectError};
use crate::events;
use crate::plan::{ContainerPlan, PlannedHook};
use crate::precreate::{self, Precreate};
use crate::select::{self, CommandLine, SelectError, Sources};
use crate::stage::StageError;
use hookhost_exec::fs as fsutil;
use hookhost_hooks::diff::Change;
use hookhost_hooks::hook::Stage;
use hookhost_hooks::paths::Paths;
use hookhost_types::HookKind;

#[derive(Debug, Error)]
pub enum PrepareError {
    #[error(transparent)]
    Bundle(#[from] InjectError),
    #[error("container refused: {0}")]
    Refused(#[from] SelectError),
    #[error("container refused: {0}")]
    Precreate(#[from] StageError),
    #[error("container refused: {0}")]
    Cdi(#[from] hookhost_hooks::cdi::CdiError),
    #[error("container refused: its CDI devices could not be recorded in the audit trail")]
    CdiAudit(#[source] events::EventsError),
    #[error(
        "container refused: hookhost's state directory {} is not usable, so its hooks \
         could not record their runs: {reason}. Make it writable for the user the runtime runs \
         as, or set \"root\" in hookhost's config file", root.display()
    )]
    StateDir { root: PathBuf, reason: String },
}

/// The container being prepared, as the front end knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Container<'a> {
    /// Its id, when known (the runtime's command line names it), for the audit trail.
    pub id: Option<&'a str>,
    /// Its bundle, when there is one (hooks granted `--allow-bundle` see it; precreate hooks
    /// may not rewrite its config.json).
    pub bundle: Option<&'a Path>,
    /// When the front end must have its answer (the NRI plugin's budget within the runtime's
    /// request timeout): precreate hooks run at most until then. None: each its own timeout.
    pub deadline: Option<std::time::Instant>,
}

/// Where the pipeline records runs.
#[derive(Debug, Clone, Copy)]
pub struct Trail<'a> {
    /// The registry root (modules, and the audit trail).
    pub root: &'a Path,
    /// The config file's `eventsMaxSize`, if set.
    pub events_max_size: Option<u64>,
    /// The config file's `replay`, if set.
    pub replay: Option<hookhost_hooks::config::ReplaySettings>,
}

/// What the pipeline decided for a container.
#[derive(Debug, Default)]
pub struct Planned {
    /// The hooks of the OCI stages (precreate ones have run), to inject.
    pub plan: ContainerPlan,
    /// Hook names per stage, in run order, precreate first.
    pub stages: Vec<(Stage, Vec<String>)>,
    /// Problems that did not stop the container (skipped hooks.d files, corrupt entries).
    pub warnings: Vec<String>,
    /// What each precreate hook changed, in run order.
    pub adjusted: Vec<(String, Vec<Change>)>,
    /// Whether the config document changed (precreate edits, selection variables taken).
    pub config_changed: bool,
    /// Whether precreate hooks ran (the config must then be written as checked).
    pub precreate_ran: bool,
    /// The precreate hooks that ran, with their kinds (for the audit of what they requested).
    pub precreate_kinds: Vec<(String, HookKind)>,
}

/// Runs the pipeline on `config` (edited in place by precreate hooks and selection).
///
/// A container without hooks costs a read of the registry's `global/` (see
/// [`select::select`]), and the state directory is not checked, since no hook of it will run
/// or record a run. With hooks, the state directory must be able to record their runs before
/// the container may start (fail closed).
pub fn plan(
    config: &mut BundleConfig,
    sources: &Sources,
    command_line: &CommandLine,
    trail: Trail,
    container: Container,
) -> Result<Planned, PrepareError> {
    let mut selected = select::select(config, sources, command_line)?;
    let precreate = selected
        .plan
        .stages
        .remove(&Stage::Precreate)
        .unwrap_or_default();
    let mut planned = Planned::default();
    // Every hook of the container (precreate hooks, and those they may select) records its
    // runs: checked once, before any runs.
    if !precreate.is_empty() || !selected.plan.is_empty() {
        check_state_dir(trail.root)?;
    }
    if !precreate.is_empty() {
        let at = Precreate {
            root: trail.root,
            events_max_size: trail.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
            replay: trail.replay.unwrap_or_default(),
            container: container.id.unwrap_or_default(),
            bundle: container.bundle,
            deadline: container.deadline,
            generation: selected.plan.generation.as_ref().map(|g| g.id.as_str()),
        };
        // The state directory was checked above, for these hooks too.
        let edited = precreate::run_checked(&config.doc, &precreate, &at)?;
        planned
            .warnings
            .extend(edited.report.warnings.iter().cloned());
        planned.stages.push((
            Stage::Precreate,
            precreate.iter().map(|h| h.name.clone()).collect(),
        ));
        planned.precreate_ran = true;
        planned.precreate_kinds = (precreate.iter())
            .map(|h| (h.name.clone(), h.spec.kind))
            .collect();
        if edited.changed() {
            // Each hook's output was checked as an OCI config (precreate::run_chain).
            config.doc = edited.doc;
            selected = reselect(config, sources, command_line, &selected, &precreate)?;
            selected.env_changed = true;
        }
        planned.adjusted = edited.changes;
    }
    planned
        .warnings
        .extend(std::mem::take(&mut selected.warnings));
    planned.stages.extend(selected.plan.names());
    planned.config_changed = selected.env_changed;
    planned.plan = selected.plan;
    Ok(planned)
}

/// The other stages' hooks, selected from the config the precreate hooks edited.
fn reselect(
    config: &mut BundleConfig,
    sources: &Sources,
    command_line: &CommandLine,
    first: &select::Selected,
    ran: &[PlannedHook],
) -> Result<select::Selected, PrepareError> {
    let mut again = select::select_again(config, sources, command_line, &first.env)?;
    let late = again
        .plan
        .stages
        .remove(&Stage::Precreate)
        .unwrap_or_default();
    for hook in late.iter().filter(|h| !ran.contains(h)) {
        again.warnings.push(format!(
            "precreate hook {} was selected by a precreate hook's edit and did not run: \
             precreate hooks are selected from the config as proposed",
            hook.name
        ));
    }
    again.warnings.retain(|w| !first.warnings.contains(w));
    let mut warnings = first.warnings.clone();
    warnings.append(&mut again.warnings);
    again.warnings = warnings;
    Ok(again)
}

/// Every hook run is recorded in `ROOT/events.jsonl`; a container whose hooks could not be
/// recorded is refused rather than started unaudited. A missing root is created (0700), as
/// `hookhost create` would; one that cannot be created or written is the refusal.
pub(crate) fn check_state_dir(root: &Path) -> Result<(), PrepareError> {
    let refuse = |reason: String| PrepareError::StateDir {
        root: root.to_path_buf(),
        reason,
    };
    let file = Paths::new(root).events_file();
    // The root is made when the events file cannot be opened for want of it (not checked
    // for every container).
    match events::check_recordable(&file) {
        Err(events::EventsError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            fsutil::create_dir_all(root, 0o700)
                .map_err(|e| refuse(format!("cannot create it: {e}")))?;
            events::check_recordable(&file)
        }
        checked => checked,
    }
    .map_err(|e| refuse(crate::error_chain(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// The state directory is made (0700, parents too) when missing, checked when present,
    /// and one that cannot be made is the refusal, naming it.
    #[test]
    fn the_state_dir_is_made_when_missing_and_refused_when_it_cannot_be() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a/b/root");
        check_state_dir(&root).unwrap();
        let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o700);
        assert!(Paths::new(&root).events_file().is_file());
        check_state_dir(&root).unwrap();

        let file = dir.path().join("plain-file");
        std::fs::write(&file, "").unwrap();
        let refused = check_state_dir(&file.join("root")).unwrap_err().to_string();
        assert!(refused.contains("plain-file/root"), "{refused}");
    }
}
