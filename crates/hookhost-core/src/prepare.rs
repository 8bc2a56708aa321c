//! Preparing a bundle for its container: select its hooks ([`crate::select`]), make sure their
//! runs can be recorded, write the plan file and hookhost's entries, save config.json. What
//! the runtime wrapper does when an engine creates a container, and `hookhost inject` by hand.

use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bundle::{BundleConfig, InjectError, SelfCall};
use crate::events;
use crate::hook::Stage;
use crate::paths::Paths;
use crate::select::{self, CommandLine, SelectError, Sources};
use hookhost_exec::fs as fsutil;

#[derive(Debug, Error)]
pub enum PrepareError {
    #[error(transparent)]
    Bundle(#[from] InjectError),
    #[error("container refused: {0}")]
    Refused(#[from] SelectError),
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
) -> Result<Injected, PrepareError> {
    let mut config = BundleConfig::load(bundle)?;
    let selected = select::select(&mut config, sources, command_line)?;
    let mut injected = Injected {
        warnings: selected.warnings,
        stages: selected.plan.names(),
        saved: false,
    };
    if !selected.plan.is_empty() {
        check_state_dir(&call.root)?;
        config.inject(&selected.plan, call)?;
    }
    if !selected.plan.is_empty() || selected.env_changed {
        config.save()?;
        injected.saved = true;
    }
    Ok(injected)
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
