//! Preparing a bundle for its container: select its hooks ([`crate::select`]), make sure their
//! runs can be recorded, run its precreate hooks ([`crate::precreate`]) and select the other
//! stages' hooks again from the config they edited, write the plan file and hookhost's entries,
//! save config.json. What the runtime wrapper does when an engine creates a container, and
//! `hookhost inject` by hand.
//!
//! Precreate hooks are selected from the config as proposed; the other stages from the config
//! as the precreate hooks left it, so a precreate hook granted `annotations=io.hookhost.hooks`
//! can select hooks for the container. A precreate hook selected only by such an edit does not
//! run (the precreate stage is over): that is a warning. The selection variables in
//! `process.env` are read once, before the precreate hooks run.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bundle::{BundleConfig, InjectError, SelfCall};
use crate::events;
use crate::plan::PlannedHook;
use crate::precreate::{self, Precreate};
use crate::select::{self, CommandLine, SelectError, Sources};
use crate::stage::StageError;
use hookhost_exec::fs as fsutil;
use hookhost_hooks::diff::Change;
use hookhost_hooks::hook::Stage;
use hookhost_hooks::paths::Paths;

#[derive(Debug, Error)]
pub enum PrepareError {
    #[error(transparent)]
    Bundle(#[from] InjectError),
    #[error("container refused: {0}")]
    Refused(#[from] SelectError),
    #[error("container refused: {0}")]
    Precreate(#[from] StageError),
    #[error(
        "container refused: hookhost's state directory {} is not usable, so its hooks \
         could not record their runs: {reason}. Make it writable for the user the runtime runs \
         as, or set \"root\" in hookhost's config file", root.display()
    )]
    StateDir { root: PathBuf, reason: String },
}

/// What was injected, for the caller's report.
#[derive(Debug, Default)]
pub struct Injected {
    /// Hook names per stage, in run order (of this selection).
    pub stages: Vec<(Stage, Vec<String>)>,
    /// Problems that did not stop the container (skipped hooks.d files, corrupt entries).
    pub warnings: Vec<String>,
    /// Whether config.json was rewritten.
    pub saved: bool,
    /// What each precreate hook changed, in run order.
    pub adjusted: Vec<(String, Vec<Change>)>,
}

/// The container being prepared, as the caller knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Container<'a> {
    /// Its id, when known (the runtime's command line names it), for the audit trail.
    pub id: Option<&'a str>,
}

/// Selects and injects; config.json is only written when something changed, atomically, and
/// never when selection fails.
///
/// A container without hooks costs a read of its config.json and of the registry's `global/`
/// (see [`select::select`]): nothing is written, and the state directory is not checked,
/// since no hook of it will run or record a run. With hooks, the state directory must be able
/// to record their runs before the container may start (fail closed).
pub fn prepare(
    bundle: &Path,
    sources: &Sources,
    command_line: &CommandLine,
    call: &SelfCall,
    container: Container,
) -> Result<Injected, PrepareError> {
    let mut config = BundleConfig::load(bundle)?;
    let mut selected = select::select(&mut config, sources, command_line)?;
    let precreate = selected
        .plan
        .stages
        .remove(&Stage::Precreate)
        .unwrap_or_default();
    let mut injected = Injected::default();
    // Every hook of the container (precreate hooks, and those they may select) records its
    // runs: checked once, before any runs.
    if !precreate.is_empty() || !selected.plan.is_empty() {
        check_state_dir(&call.root)?;
    }
    if !precreate.is_empty() {
        let at = Precreate {
            root: &call.root,
            events_max_size: call.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
            container: container.id.unwrap_or_default(),
            bundle: Some(bundle),
        };
        let edited = precreate::run_chain(&config.doc, &precreate, &at)?;
        injected
            .warnings
            .extend(edited.report.warnings.iter().cloned());
        injected.stages.push((
            Stage::Precreate,
            precreate.iter().map(|h| h.name.clone()).collect(),
        ));
        if edited.changed() {
            // Each hook's output was checked as an OCI config (precreate::run_chain).
            config.doc = edited.doc;
            selected = reselect(&mut config, sources, command_line, &selected, &precreate)?;
            selected.env_changed = true;
        }
        injected.adjusted = edited.changes;
    }
    injected
        .warnings
        .extend(std::mem::take(&mut selected.warnings));
    injected.stages.extend(selected.plan.names());
    if !selected.plan.is_empty() {
        config.inject(&selected.plan, call)?;
    }
    // After precreate hooks, config.json is always the checked document, whatever a hook did
    // to the file (precreate::run_chain also refuses a hook that rewrote it).
    if !selected.plan.is_empty() || selected.env_changed || !precreate.is_empty() {
        config.save()?;
        injected.saved = true;
    }
    Ok(injected)
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
fn check_state_dir(root: &Path) -> Result<(), PrepareError> {
    let refuse = |reason: String| PrepareError::StateDir {
        root: root.to_path_buf(),
        reason,
    };
    fsutil::create_dir_all(root, 0o700).map_err(|e| refuse(format!("cannot create it: {e}")))?;
    events::check_recordable(&Paths::new(root).events_file())
        .map_err(|e| refuse(crate::error_chain(&e)))
}
