//! `hookhost stage STAGE`: what the runtime calls. Finds the container's plan file (named by the
//! stage call, beside the bundle's config.json), runs the container's hooks for one stage, in
//! order, with the runtime-spec's failure rules, and records each run in the audit trail.

use std::time::{Duration, Instant};

use chrono::Utc;
use thiserror::Error;

use hookhost_exec::{Exit, Outcome};
use hookhost_types::{Stage, StageCall, State, StateError};

use crate::bundle::{PlanLoadError, load_plan};
use crate::events::{self, Event, Failure};
use crate::plan::{LegacyStagePlan, PlanFile, PlannedHook};
use crate::replay::Record;
use crate::run::{self, ExecError, RunContext};
use hookhost_hooks::hook::OnFailure;
use hookhost_hooks::paths::Paths;

#[derive(Debug, Error)]
pub enum StageError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Plan(#[from] PlanLoadError),
    /// The config.json a precreate stage was given.
    #[error(transparent)]
    Config(#[from] crate::bundle::InjectError),
    /// A fatal stage whose runs cannot be recorded: refused rather than run unaudited.
    #[error(
        "container refused: the runs of its {stage} hooks cannot be recorded in hookhost's \
         audit trail (free space in, or fix the permissions of, the state directory, or set \
         \"root\" in hookhost's config file)"
    )]
    Unrecorded {
        stage: Stage,
        #[source]
        source: events::EventsError,
    },
    /// The CDI devices a precreate hook requested (`hookhost stage precreate`).
    #[error(transparent)]
    Cdi(#[from] hookhost_hooks::cdi::CdiError),
    /// A fatal stage whose WASM run cannot be recorded for replay: refused rather than run
    /// unrecorded.
    #[error(
        "container refused: the run of hook {hook} ({stage}) cannot be recorded for replay \
         (free space in, or fix the permissions of, the state directory, or turn records off \
         with \"replay\": {{\"enabled\": false}} in hookhost's config file)"
    )]
    Unreplayable {
        hook: String,
        stage: Stage,
        #[source]
        source: Box<crate::replay::ReplayError>,
    },
    #[error("hook {name} ({stage}): {reason}")]
    HookFailed {
        name: String,
        stage: Stage,
        reason: String,
    },
}

/// What happened at a stage that did not fail: non-fatal failures (poststop) and audit-trail
/// problems, for the caller to show as warnings.
#[derive(Debug, Default)]
pub struct StageReport {
    pub ran: usize,
    pub warnings: Vec<String>,
}

/// How the runtime named the stage's plan.
#[derive(Debug, Clone)]
pub enum PlanSource {
    /// A plan file (every entry hookhost writes now).
    File(StageCall),
    /// A plan in argv, written by an older hookhost into a container still running.
    Legacy(Stage, LegacyStagePlan),
}

impl PlanSource {
    /// The stage being run.
    pub fn stage(&self) -> Stage {
        match self {
            PlanSource::File(call) => call.stage,
            PlanSource::Legacy(stage, _) => *stage,
        }
    }
}

/// Runs the stage the runtime called with its state on stdin (`state_json`).
pub fn run_call(source: &PlanSource, state_json: &[u8]) -> Result<StageReport, StageError> {
    let state = State::parse(state_json)?;
    let plan = match source {
        PlanSource::File(call) => load_plan(call, &state.bundle)?,
        PlanSource::Legacy(stage, legacy) => legacy.clone().into_plan_file(*stage),
    };
    run(source.stage(), &plan, &state, state_json)
}

/// Runs `plan`'s hooks for `stage` with the runtime's state.
pub fn run(
    stage: Stage,
    plan: &PlanFile,
    state: &State,
    state_json: &[u8],
) -> Result<StageReport, StageError> {
    let paths = Paths::new(&plan.root);
    let ctx = RunContext {
        stage,
        state_json,
        state,
        root: &plan.root,
        output_limit: hookhost_exec::OUTPUT_LIMIT,
        deadline: None,
        generation: plan.plan.generation.as_ref().map(|g| g.id.as_str()),
    };
    let hooks = plan.plan.stages.get(&stage).map_or(&[][..], Vec::as_slice);
    let events_file = paths.events_file();
    let trail = Trail {
        file: &events_file,
        max_size: plan.events_max_size.unwrap_or(events::DEFAULT_MAX_SIZE),
        replay: crate::replay::Recording::new(&plan.root, plan.replay.unwrap_or_default()),
    };
    trail.check(stage, hooks)?;
    let mut report = StageReport::default();
    for hook in hooks {
        run_recorded(hook, &ctx, &trail, &mut report, |_| Ok(()), &|_, _| Ok(()))?;
    }
    // The runtime discards a succeeding hook's stderr: warnings also go to its log.
    if let Some(log) = &plan.runtime_log {
        for warning in &report.warnings {
            let _ = log.warn(&format!("hookhost: {warning}"));
        }
    }
    Ok(report)
}

/// Where a stage records its runs.
pub(crate) struct Trail<'a> {
    pub file: &'a std::path::Path,
    pub max_size: u64,
    /// Where WASM runs' replay records go.
    pub replay: crate::replay::Recording,
}

impl Trail<'_> {
    /// A fatal stage with hooks whose runs cannot be recorded is refused before any runs.
    pub fn check(&self, stage: Stage, hooks: &[PlannedHook]) -> Result<(), StageError> {
        if stage.is_fatal() && !hooks.is_empty() {
            events::check_recordable(self.file)
                .map_err(|source| StageError::Unrecorded { stage, source })?;
        }
        Ok(())
    }
}

/// Why a run that exited 0 is still a failure (a precreate hook's output), as the audit
/// trail and the metrics tell it.
pub(crate) struct Rejected {
    pub reason: String,
    pub kind: Failure,
    /// The grant that would have allowed the refused edit, when one would.
    pub needs: Option<String>,
}

/// A failed run, as its event records it.
struct Failed {
    reason: String,
    kind: Failure,
    /// It exited 0, but what it returned was refused.
    refused: bool,
    needs: Option<String>,
}

/// Runs one hook, checks a successful run with `check`, records the run in the audit trail
/// and applies the hook's failure policy: `Some` with what `check` made of a success, `None`
/// for a failure the container goes on without, and the refusal at a fatal stage.
///
/// Then runs the hook's shadows, if it has any, on the same input: `shadow_check` checks their
/// output as `check` did the hook's, without effect (see [`crate::shadow`]).
pub(crate) fn run_recorded<T: crate::shadow::Edits>(
    hook: &PlannedHook,
    ctx: &RunContext,
    trail: &Trail,
    report: &mut StageReport,
    check: impl FnOnce(&Outcome) -> Result<T, Rejected>,
    shadow_check: &dyn Fn(&PlannedHook, &Outcome) -> Result<T, Rejected>,
) -> Result<Option<T>, StageError> {
    let stage = ctx.stage;
    let started = Instant::now();
    let (result, given) = run::run_captured(hook, ctx, trail.replay.capture());
    let took = started.elapsed();
    tracing::debug!(container = %ctx.state.id, %stage, hook = %hook.name, ?took, ok = result.is_ok(), "hook ran");
    report.ran += 1;
    let (checked, failure) = match failure_reason(&result) {
        Some(reason) => {
            let kind = failure_kind(&result);
            let failed = Failed {
                reason,
                kind,
                refused: false,
                needs: None,
            };
            (None, Some(failed))
        }
        None => match check(result.as_ref().expect("a success has an outcome")) {
            Ok(value) => (Some(value), None),
            Err(Rejected {
                reason,
                kind,
                needs,
            }) => {
                let failed = Failed {
                    reason,
                    kind,
                    refused: true,
                    needs,
                };
                (None, Some(failed))
            }
        },
    };
    let event = event(hook, ctx, &result, took, &failure);
    match events::append(trail.file, &event, trail.max_size) {
        Err(source) if stage.is_fatal() => {
            return Err(StageError::Unrecorded { stage, source });
        }
        Err(e) => report.warnings.push(crate::error_chain(&e)),
        Ok(()) => {}
    }
    if let Some(given) = given {
        record_replay(trail, &event, ctx, &given, &result, report)?;
    }
    if !hook.shadows.is_empty() {
        let refused = failure.as_ref().is_some_and(|f| f.refused);
        let seen = crate::shadow::Seen {
            verdict: crate::shadow::verdict_of(&result, checked.is_some(), refused),
            edits: checked.as_ref().and_then(|c| c.edits()).map(|(_, d)| d),
        };
        crate::shadow::run_all(hook, ctx, &seen, &event, trail, report, shadow_check);
    }
    let Some(failed) = failure else {
        return Ok(checked);
    };
    let error = StageError::HookFailed {
        name: hook.name.clone(),
        stage,
        reason: failed.reason,
    };
    match hook.spec.failure_policy(stage) {
        OnFailure::Fail if stage.is_fatal() => return Err(error),
        OnFailure::Fail | OnFailure::Warn => report.warnings.push(error.to_string()),
        OnFailure::Ignore => {}
    }
    Ok(None)
}

/// Appends a WASM run's replay record beside its event (when records are on): a fatal stage
/// refuses a run it cannot record, as it does one whose event it cannot write; elsewhere that
/// is a warning.
fn record_replay(
    trail: &Trail,
    event: &Event,
    ctx: &RunContext,
    given: &run::WasmRun,
    result: &Result<Outcome, ExecError>,
    report: &mut StageReport,
) -> Result<(), StageError> {
    let settings = trail.replay.settings;
    if !settings.enabled {
        return Ok(());
    }
    let record = Record::new(
        event,
        ctx.state_json,
        given,
        result,
        settings.keep_env_values,
    );
    match trail.replay.append(&record) {
        Err(source) if ctx.stage.is_fatal() => Err(StageError::Unreplayable {
            hook: event.hook.clone(),
            stage: ctx.stage,
            source: Box::new(source),
        }),
        Err(e) => {
            report.warnings.push(crate::error_chain(&e));
            Ok(())
        }
        Ok(()) => Ok(()),
    }
}

/// `None` when the hook succeeded, else the reason with the hook's own output.
fn failure_reason(result: &Result<Outcome, ExecError>) -> Option<String> {
    match result {
        Ok(out) if out.success() => None,
        Ok(out) => {
            let output = out.output_summary();
            Some(if output.is_empty() {
                out.exit.to_string()
            } else {
                format!("{}: {output}", out.exit)
            })
        }
        Err(e) => Some(crate::error_chain(e)),
    }
}

fn event(
    hook: &PlannedHook,
    ctx: &RunContext,
    result: &Result<Outcome, ExecError>,
    took: Duration,
    failure: &Option<Failed>,
) -> Event {
    let exit = match result {
        Ok(Outcome {
            exit: Exit::Code(code),
            ..
        }) => Some(*code),
        _ => None,
    };
    let (pod, name) = events::kubernetes_names(&ctx.state.annotations);
    Event {
        id: events::new_id(),
        time: Utc::now(),
        pod,
        name,
        generation: ctx.generation.map(str::to_string),
        container: ctx.state.id.clone(),
        stage: ctx.stage,
        hook: hook.name.clone(),
        kind: hook.spec.kind,
        exit,
        duration_ms: took.as_secs_f64() * 1000.0,
        error: failure.as_ref().map(|f| f.reason.clone()),
        failure: failure.as_ref().map(|f| f.kind),
        fuel_used: result.as_ref().ok().and_then(|out| out.fuel_used),
        on_failure: failure
            .as_ref()
            .map(|_| hook.spec.failure_policy(ctx.stage)),
        verdict: failure
            .as_ref()
            .filter(|f| f.refused)
            .map(|_| events::Verdict::Refused),
        needs: failure.as_ref().and_then(|f| f.needs.clone()),
        stderr: result
            .as_ref()
            .ok()
            .and_then(|out| events::stderr_tail(&out.stderr)),
        cdi: None,
        shadow: None,
    }
}

/// What kind of failure a failed run was.
fn failure_kind(result: &Result<Outcome, ExecError>) -> Failure {
    use hookhost_exec::native::NativeError;
    use hookhost_exec::wasm::Stop;
    match result {
        Ok(Outcome {
            exit: Exit::Signal(_),
            ..
        }) => Failure::Signal,
        Ok(_) => Failure::Exit,
        Err(ExecError::Native(NativeError::Timeout { .. })) => Failure::Timeout,
        Err(ExecError::WasmStopped { stop, .. }) => match stop {
            Stop::OutOfFuel { .. } => Failure::Fuel,
            Stop::Timeout { .. } => Failure::Timeout,
            Stop::MemoryLimit { .. } => Failure::Memory,
            Stop::WriteLimit { .. } | Stop::FileLimit => Failure::Writes,
            Stop::Trap(_) => Failure::Trap,
        },
        Err(_) => Failure::Error,
    }
}
