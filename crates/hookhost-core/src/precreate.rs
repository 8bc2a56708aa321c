//! The precreate stage: hooks that shape the container before the runtime creates it.
//!
//! Podman's protocol (containers/common `RuntimeConfigFilter`), so existing precreate hooks work
//! unchanged: each hook gets the proposed config.json document on stdin and writes the whole,
//! possibly changed, document on stdout; the hooks are chained in selection order. hookhost
//! also takes an empty stdout as "unchanged", so a policy hook may just exit 0 or refuse.
//!
//! Unlike Podman, hookhost checks every result: it must be an OCI runtime config no larger
//! than [`MAX_CONFIG_BYTES`], each change must be within what the hook was registered with
//! (`--may-adjust`, [`hookhost_hooks::may_adjust`]), and a hook may not change what an earlier hook of the
//! same container set (unless it may adjust `all`). A hook that fails any of these is a failed
//! hook: its edit is not applied, and its failure policy decides (by default the container is
//! refused, naming the hook and the field).
//!
//! Run by the runtime wrapper and `hookhost inject` ([`crate::prepare`]) and by
//! `hookhost stage precreate` ([`run_call`]), which a hooks.d file exported for Podman names.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hookhost_exec::Outcome;
use hookhost_types::{Stage, StageCall, State};
use serde_json::Value;

use crate::bundle::{BundleConfig, load_plan};
use crate::cdi;
use crate::events::{self, Failure};
use crate::owners::Owners;
use crate::plan::{PlanFile, PlannedHook};
use crate::run::RunContext;
use crate::stage::{Rejected, StageError, StageReport, Trail, run_recorded};
use hookhost_hooks::diff::{self, Change};
use hookhost_hooks::may_adjust::{self, MayAdjust};
use hookhost_hooks::paths::Paths;

/// The largest config.json a precreate hook may return (and hookhost keeps of its stdout).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;

/// Where a chain of precreate hooks runs.
pub struct Precreate<'a> {
    /// The registry root: modules, and the audit trail the runs are recorded in.
    pub root: &'a Path,
    /// The config file's `eventsMaxSize`.
    pub events_max_size: u64,
    /// The config file's `replay` (or the defaults).
    pub replay: hookhost_hooks::config::ReplaySettings,
    /// The container's id when the caller knows it (the runtime wrapper does; Podman's
    /// protocol does not say), for the audit trail.
    pub container: &'a str,
    /// The bundle, for hooks granted `--allow-bundle` (none under Podman's protocol).
    pub bundle: Option<&'a Path>,
    /// When the chain must be done (the NRI plugin's budget): each hook runs at most until then.
    pub deadline: Option<std::time::Instant>,
    /// The registry generation the hooks were planned from.
    pub generation: Option<&'a str>,
}

/// A config after its precreate hooks.
#[derive(Debug)]
pub struct Edited {
    pub doc: Value,
    /// The hooks that changed something, with what they changed, in run order.
    pub changes: Vec<(String, Vec<Change>)>,
    pub report: StageReport,
}

impl Edited {
    pub fn changed(&self) -> bool {
        !self.changes.is_empty()
    }
}

/// Runs `hooks` in order, each on the document the one before returned; refused before any
/// runs when they could not be recorded (precreate is a fatal stage).
pub fn run_chain(doc: &Value, hooks: &[PlannedHook], at: &Precreate) -> Result<Edited, StageError> {
    let events_file = Paths::new(at.root).events_file();
    let trail = trail(&events_file, at);
    trail.check(Stage::Precreate, hooks)?;
    run_on(doc, hooks, at, &trail)
}

/// [`run_chain`] for a caller that has already checked that the runs can be recorded (the
/// pipeline checks the state directory once for every hook of a container).
pub(crate) fn run_checked(
    doc: &Value,
    hooks: &[PlannedHook],
    at: &Precreate,
) -> Result<Edited, StageError> {
    let events_file = Paths::new(at.root).events_file();
    run_on(doc, hooks, at, &trail(&events_file, at))
}

fn trail<'a>(events_file: &'a Path, at: &Precreate) -> Trail<'a> {
    Trail {
        file: events_file,
        max_size: at.events_max_size,
        replay: crate::replay::Recording::new(at.root, at.replay),
    }
}

fn run_on(
    doc: &Value,
    hooks: &[PlannedHook],
    at: &Precreate,
    trail: &Trail,
) -> Result<Edited, StageError> {
    // The config's annotations, so that the audit trail names a Kubernetes pod and container.
    let annotations = doc.get("annotations").and_then(Value::as_object);
    let state = State {
        id: at.container.to_string(),
        bundle: at.bundle.map(Path::to_path_buf).unwrap_or_default(),
        annotations: (annotations.into_iter().flatten())
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect(),
        ..State::default()
    };
    let mut edited = Edited {
        doc: doc.clone(),
        changes: Vec::new(),
        report: StageReport::default(),
    };
    refuse_writable_bundle(hooks)?;
    let on_disk = at.bundle.map(OnDisk::read).transpose()?;
    let mut owners = Owners::default();
    for hook in hooks {
        let input = serde_json::to_vec(&edited.doc).expect("a JSON value serialises");
        let ctx = RunContext {
            stage: Stage::Precreate,
            state_json: &input,
            state: &state,
            root: at.root,
            output_limit: MAX_CONFIG_BYTES,
            deadline: at.deadline,
            generation: at.generation,
        };
        let current = &edited.doc;
        // Shadows are checked against the owners as they were before the hook, and change them
        // not.
        let owners_before = owners.clone();
        let shadow_check = |shadow: &PlannedHook, out: &Outcome| {
            check_output(shadow, current, out, &mut owners_before.clone())
        };
        let checked = run_recorded(
            hook,
            &ctx,
            trail,
            &mut edited.report,
            |out| {
                on_disk.as_ref().map_or(Ok(()), OnDisk::unchanged)?;
                check_output(hook, current, out, &mut owners)
            },
            &shadow_check,
        );
        // Whatever a hook did to config.json on disk, the file is the proposed one again.
        on_disk.as_ref().map_or(Ok(()), OnDisk::restore)?;
        let checked = checked?;
        if let Some((doc, changes)) = checked {
            edited.doc = doc;
            if !changes.is_empty() {
                edited.changes.push((hook.name.clone(), changes));
            }
        }
    }
    Ok(edited)
}

/// config.json in the bundle as it was before the chain: a precreate hook changes the config
/// only through its output, which is checked against its grants. One that rewrites the file
/// itself (a native hook, or any hook with a writable grant over the bundle) is refused, and
/// the file restored, so that the runtime never reads an unchecked config.
struct OnDisk {
    file: std::path::PathBuf,
    bytes: Vec<u8>,
    mode: u32,
}

impl OnDisk {
    fn read(bundle: &Path) -> Result<OnDisk, StageError> {
        let file = bundle.join(crate::bundle::CONFIG_FILE);
        let read = |source| crate::bundle::InjectError::Read {
            file: file.clone(),
            source,
        };
        let mode = std::fs::metadata(&file).map_err(read)?.permissions().mode() & 0o7777;
        let bytes = std::fs::read(&file).map_err(read)?;
        Ok(OnDisk { file, bytes, mode })
    }

    fn changed(&self) -> bool {
        std::fs::read(&self.file).map_or(true, |now| now != self.bytes)
    }

    fn unchanged(&self) -> Result<(), Rejected> {
        match self.changed() {
            false => Ok(()),
            true => Err(Rejected {
                reason: format!(
                    "it rewrote config.json in the bundle itself ({}); a precreate hook changes \
                     the container only through the config it writes on stdout, within its \
                     --may-adjust grants, so the file was restored",
                    self.file.display()
                ),
                kind: Failure::Adjust,
                needs: None,
            }),
        }
    }

    fn restore(&self) -> Result<(), StageError> {
        if !self.changed() {
            return Ok(());
        }
        hookhost_exec::fs::write_atomic(&self.file, &self.bytes, self.mode).map_err(|source| {
            crate::bundle::InjectError::Write {
                file: self.file.clone(),
                source,
            }
            .into()
        })
    }
}

/// A precreate hook granted the bundle read-write could replace config.json (or the root
/// filesystem's path) after its output was checked: `create` refuses that grant, and a
/// registry entry that has it (made by an older hookhost) refuses the container.
fn refuse_writable_bundle(hooks: &[PlannedHook]) -> Result<(), StageError> {
    let Some(hook) = hooks.iter().find(|h| {
        h.spec
            .grants
            .as_ref()
            .and_then(|g| g.bundle)
            .is_some_and(hookhost_hooks::grants::Access::is_writable)
    }) else {
        return Ok(());
    };
    Err(StageError::HookFailed {
        name: hook.name.clone(),
        stage: Stage::Precreate,
        reason: hookhost_hooks::grants::PRECREATE_BUNDLE_RW.to_string(),
    })
}

/// What one successful run of `hook` on `before` returned (the edited document and its
/// changes), or why it is refused — without an audit trail (`hookhost try`).
pub fn check_one(
    hook: &PlannedHook,
    before: &Value,
    out: &Outcome,
) -> Result<(Value, Vec<Change>), String> {
    check_output(hook, before, out, &mut Owners::default()).map_err(|r| r.reason)
}

/// What a successful run returned: the new document and its changes, or why it is refused.
fn check_output(
    hook: &PlannedHook,
    before: &Value,
    out: &Outcome,
    owners: &mut Owners,
) -> Result<(Value, Vec<Change>), Rejected> {
    let output = |reason: String| Rejected {
        reason,
        kind: Failure::Output,
        needs: None,
    };
    if out.truncated {
        return Err(output(format!(
            "its output is larger than {MAX_CONFIG_BYTES} bytes"
        )));
    }
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return Ok((before.clone(), Vec::new()));
    }
    let after: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
        output(format!(
            "its output is not a JSON document ({e}); a precreate hook writes the whole \
             config.json on stdout, or nothing to leave it unchanged"
        ))
    })?;
    let not_oci = |reason: String| {
        output(format!(
            "its output is not a valid OCI runtime config: {reason}"
        ))
    };
    // serde would also read a struct from a JSON array.
    if !after.is_object() {
        return Err(not_oci("not an object".into()));
    }
    serde_json::from_value::<oci_spec::runtime::Spec>(after.clone())
        .map_err(|e| not_oci(e.to_string()))?;
    let changes = diff::diff(before, &after);
    check_grants(hook.spec.may_adjust.as_ref(), &changes, &after)?;
    let all = hook.spec.may_adjust.as_ref().is_some_and(MayAdjust::is_all);
    owners
        .record(&hook.name, &changes, all)
        .map_err(|c| Rejected {
            reason: format!(
                "it {change}, which precreate hook {earlier} set before it: conflicting edits \
                 refuse the container (register {later} with --may-adjust all to let it \
                 override others)",
                change = c.change,
                earlier = c.earlier,
                later = c.later,
            ),
            kind: Failure::Adjust,
            needs: Some("--may-adjust all".into()),
        })?;
    Ok((after, changes))
}

/// Every change must be one the hook may make.
fn check_grants(
    grants: Option<&MayAdjust>,
    changes: &[Change],
    after: &Value,
) -> Result<(), Rejected> {
    let Err(denied) = may_adjust::check(grants, changes, after) else {
        return Ok(());
    };
    let registered = match grants {
        Some(grants) => format!("it was registered with --may-adjust {grants}"),
        None => "it was registered without --may-adjust, so it may only accept or refuse the \
                 container"
            .to_string(),
    };
    let needs = denied
        .needed_grant()
        .map(|grant| format!("--may-adjust {grant}"));
    let reason = match &needs {
        Some(needed) => format!(
            "it {denied}, which it may not change: {registered} (allowing this change needs \
             {needed})"
        ),
        None => format!("it {denied}, which no grant allows ({registered})"),
    };
    Err(Rejected {
        reason,
        kind: Failure::Adjust,
        needs,
    })
}

/// `hookhost stage precreate --plan FILE --sha256 HEX`, as an exported hooks.d file names it
/// for Podman: the config.json document on stdin, the edited document returned for stdout.
pub fn run_call(
    call: &StageCall,
    config_json: &[u8],
) -> Result<(Vec<u8>, StageReport), StageError> {
    let plan: PlanFile = load_plan(call, Path::new(""))?;
    let doc: Value = serde_json::from_slice(config_json).map_err(|source| {
        crate::bundle::InjectError::Malformed {
            file: STDIN.into(),
            source,
        }
    })?;
    let config = BundleConfig::from_doc(STDIN.into(), doc)?;
    let hooks = plan
        .plan
        .stages
        .get(&Stage::Precreate)
        .map_or(&[][..], Vec::as_slice);
    let at = Precreate {
        root: &plan.root,
        events_max_size: plan.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
        replay: plan.replay.unwrap_or_default(),
        container: "",
        bundle: None,
        deadline: None,
        generation: plan.plan.generation.as_ref().map(|g| g.id.as_str()),
    };
    let mut edited = run_chain(&config.doc, hooks, &at)?;
    resolve_cdi(&mut edited, hooks, &plan)?;
    let mut bytes = serde_json::to_vec(&edited.doc).expect("a JSON value serialises");
    bytes.push(b'\n');
    Ok((bytes, edited.report))
}

/// The CDI devices the hooks of a stage call requested, resolved and applied as the runtime
/// wrapper does ([`crate::cdi`]): Podman resolves its own `--device` names before it runs
/// precreate hooks, and never the `cdi.k8s.io/` annotations (measured with 4.3 and 5.8), so
/// only those the hooks added are resolved here, each recorded in the audit trail — and so is
/// a refusal, since Podman discards this call's stderr.
fn resolve_cdi(
    edited: &mut Edited,
    hooks: &[PlannedHook],
    plan: &PlanFile,
) -> Result<(), StageError> {
    let kinds: Vec<_> = (hooks.iter())
        .map(|h| (h.name.clone(), h.spec.kind))
        .collect();
    let mut doc = edited.doc.clone();
    let resolved = cdi::apply(
        &mut doc,
        &plan.cdi_spec_dirs,
        cdi::Scope::HooksOnly,
        &edited.changes,
        &kinds,
    );
    let audit = cdi::Audit {
        root: &plan.root,
        max_size: plan.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
        container: "",
        doc: &edited.doc,
    };
    let brought = match resolved {
        Ok(brought) => brought,
        Err(e) => {
            // The container is refused either way; the reason is recorded when it can be.
            let _ = cdi::record_refusal(&audit, &edited.changes, &kinds, &e);
            return Err(e.into());
        }
    };
    if !brought.is_empty() {
        cdi::record(&audit, &brought).map_err(|source| StageError::Unrecorded {
            stage: Stage::Precreate,
            source,
        })?;
    }
    edited.doc = doc;
    Ok(())
}

/// How the config on stdin is named in errors.
const STDIN: &str = "<the config.json on stdin>";

#[cfg(test)]
mod tests;
