//! Preparing a bundle for its container: the [`pipeline`](crate::pipeline) on the bundle's
//! config.json, then its CDI devices resolved and applied ([`crate::cdi`]), then the plan file
//! and hookhost's entries written into the bundle and config.json saved. What the runtime wrapper does when an engine creates a container, and
//! `hookhost inject` by hand.

use std::path::Path;

use crate::bundle::{BundleConfig, SelfCall};
use crate::cdi::{self, Audit, Brought};
use crate::events;
use crate::pipeline::{self, Trail};
use crate::select::{CommandLine, Sources};
use hookhost_hooks::diff::Change;
use hookhost_hooks::hook::Stage;

pub use crate::pipeline::{Container, PrepareError};

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
    /// The CDI devices applied, in order.
    pub cdi: Vec<Brought>,
}

/// Selects, applies CDI devices and injects; config.json is only written when something changed
/// (or precreate hooks ran: then it is always the document they were checked on), atomically,
/// and never when selection or a CDI device fails. `container.bundle` is set to `bundle`.
/// The CDI devices are applied before hookhost's entries, so that their hooks run before
/// hookhost's as they do when the engine applies them.
pub fn prepare(
    bundle: &Path,
    sources: &Sources,
    command_line: &CommandLine,
    call: &SelfCall,
    container: Container,
) -> Result<Injected, PrepareError> {
    let mut config = BundleConfig::load(bundle)?;
    let trail = Trail {
        root: &call.root,
        events_max_size: call.events_max_size,
        replay: call.replay,
    };
    let container = Container {
        bundle: Some(bundle),
        ..container
    };
    let mut planned = pipeline::plan(&mut config, sources, command_line, trail, container)?;
    let brought = cdi::apply(
        &mut config.doc,
        sources.cdi_spec_dirs,
        cdi::Scope::All,
        &planned.adjusted,
        &planned.precreate_kinds,
    )?;
    if !brought.is_empty() {
        pipeline::check_state_dir(&call.root)?;
        let audit = Audit {
            root: &call.root,
            max_size: call.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
            container: container.id.unwrap_or_default(),
            doc: &config.doc,
        };
        cdi::record(&audit, &brought).map_err(PrepareError::CdiAudit)?;
    }
    if !planned.plan.is_empty() {
        config.inject(&planned.plan, call)?;
    }
    if let Some(file) = &config.replaced_missing_plan {
        planned.warnings.push(format!(
            "config.json named hookhost's plan file {}, which this bundle does not have (copied \
             from another bundle?): hookhost's entries were replaced with this bundle's own",
            file.display()
        ));
    }
    let saved = !planned.plan.is_empty()
        || planned.config_changed
        || planned.precreate_ran
        || !brought.is_empty();
    if saved {
        config.save()?;
    }
    Ok(Injected {
        stages: planned.stages,
        warnings: planned.warnings,
        saved,
        adjusted: planned.adjusted,
        cdi: brought,
    })
}
