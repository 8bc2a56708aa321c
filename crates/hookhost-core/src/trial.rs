//! `hookhost try`: one hook run outside any container — the authoring loop. The hook gets what
//! a runtime would give it (a sample OCI state, or a sample bundle's config.json for a
//! precreate hook, or what the caller gives); what it did comes back for the CLI to show.
//! Nothing is recorded in the audit trail.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use thiserror::Error;

use crate::bundle::{self, BundleConfig, InjectError};
use crate::plan::{PlannedHook, split_top_level};
use crate::precreate::{self, MAX_CONFIG_BYTES};
use crate::run::{self, ExecError, RunContext};
use crate::select::{self, Origin, SelectError, Sources};
use hookhost_exec::Outcome;
use hookhost_hooks::diff::Change;
use hookhost_hooks::hook::Stage;
use hookhost_types::{State, StateError};

/// The container id a tried hook sees.
pub const TRY_ID: &str = "hookhost-try";

#[derive(Debug, Error)]
pub enum TrialError {
    #[error("give exactly one hook to try: NAME[:JSON-ARGS] or /abs/program[:JSON-ARGS]")]
    NotOne,
    #[error("the hook has no stage")]
    NoStage,
    #[error(
        "a precreate hook gets config.json, not the OCI state: give --bundle DIR (its \
         config.json) or nothing for a sample one"
    )]
    StateForPrecreate,
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Config(#[from] InjectError),
    #[error("cannot make a sample bundle")]
    Sample(#[source] std::io::Error),
    #[error("cannot resolve the bundle directory {}", .0.display())]
    Bundle(PathBuf, #[source] std::io::Error),
}

/// What to try.
#[derive(Debug, Default)]
pub struct Request<'a> {
    /// `NAME[:JSON-ARGS]` or `/abs/program[:JSON-ARGS]`.
    pub hook: &'a str,
    /// The stage to run it as (default: its first).
    pub stage: Option<Stage>,
    /// The OCI state JSON to give it (default: a sample state).
    pub state: Option<Vec<u8>>,
    /// The bundle whose config.json (precreate) or directory (grants) it sees.
    pub bundle: Option<&'a Path>,
}

/// A tried hook, and what it did.
#[derive(Debug)]
pub struct Tried {
    pub hook: PlannedHook,
    pub stage: Stage,
    /// The sample bundle the hook was given (none was given but it needed one); removed when
    /// this is dropped.
    pub sample: Option<TempDir>,
    pub verdict: Verdict,
}

/// What a tried hook did.
#[derive(Debug)]
pub enum Verdict {
    /// It ran (or could not run) at an OCI stage; or it refused at precreate (its stdout,
    /// the config it was given back, is dropped).
    Ran(Result<Outcome, ExecError>),
    /// A precreate hook's result within its grants: what it changed.
    Accepted {
        out: Outcome,
        before: Value,
        after: Value,
        changes: Vec<Change>,
    },
    /// A precreate hook's result that would refuse the container, and why.
    Rejected { out: Outcome, reason: String },
}

/// Runs one hook, registered or inline, as `request` says.
pub fn try_hook(sources: &Sources, request: &Request) -> Result<Tried, TrialError> {
    if split_top_level(request.hook).len() != 1 {
        return Err(TrialError::NotOne);
    }
    let plan = select::items(Origin::CommandLine, request.hook, sources)?;
    let (first, hooks) = plan.stages.iter().next().ok_or(TrialError::NoStage)?;
    let stage = request.stage.unwrap_or(*first);
    let hook = hooks[0].clone();
    if stage == Stage::Precreate {
        return try_precreate(hook, request, sources.root);
    }
    let needs_sample = request.bundle.is_none()
        && request.state.is_none()
        && (hook.spec.grants.as_ref()).is_some_and(|g| g.bundle.is_some() || g.rootfs.is_some());
    let sample = match needs_sample {
        true => Some(bundle::sample_bundle().map_err(TrialError::Sample)?),
        false => None,
    };
    let bundle = request
        .bundle
        .or(sample.as_ref().map(TempDir::path))
        .unwrap_or(Path::new("."));
    let state_json = match &request.state {
        Some(given) => given.clone(),
        None => sample_state(stage, bundle)?,
    };
    let state = State::parse(&state_json)?;
    let ctx = RunContext {
        stage,
        state_json: &state_json,
        state: &state,
        root: sources.root,
        output_limit: hookhost_exec::OUTPUT_LIMIT,
        generation: None,
    };
    let verdict = Verdict::Ran(run::run(&hook, &ctx));
    Ok(Tried {
        hook,
        stage,
        sample,
        verdict,
    })
}

fn sample_state(stage: Stage, bundle: &Path) -> Result<Vec<u8>, TrialError> {
    let bundle =
        std::path::absolute(bundle).map_err(|e| TrialError::Bundle(bundle.to_path_buf(), e))?;
    let state = State::sample(TRY_ID, stage.status(), bundle, std::process::id());
    Ok(serde_json::to_vec(&state).expect("a state serialises"))
}

/// Runs a precreate hook on the config.json of the bundle (or of a sample bundle) and checks
/// its result as the container's precreate chain would.
fn try_precreate(hook: PlannedHook, request: &Request, root: &Path) -> Result<Tried, TrialError> {
    if request.state.is_some() {
        return Err(TrialError::StateForPrecreate);
    }
    let sample = match request.bundle {
        Some(_) => None,
        None => Some(bundle::sample_bundle().map_err(TrialError::Sample)?),
    };
    let given = request.bundle.or(sample.as_ref().map(TempDir::path));
    let given = given.expect("a bundle was given or made");
    let dir = std::path::absolute(given).map_err(|e| TrialError::Bundle(given.to_path_buf(), e))?;
    let config = BundleConfig::load(&dir)?;
    let input = serde_json::to_vec(&config.doc).expect("a JSON value serialises");
    let state = State {
        id: TRY_ID.into(),
        bundle: dir,
        ..State::default()
    };
    let ctx = RunContext {
        stage: Stage::Precreate,
        state_json: &input,
        state: &state,
        root,
        output_limit: MAX_CONFIG_BYTES,
        generation: None,
    };
    let verdict = match run::run(&hook, &ctx) {
        // A refusal: its stderr and status, not the config it was given back.
        Ok(out) if !out.success() => Verdict::Ran(Ok(Outcome {
            stdout: Vec::new(),
            ..out
        })),
        Ok(out) => match precreate::check_one(&hook, &config.doc, &out) {
            Ok((after, changes)) => Verdict::Accepted {
                out,
                before: config.doc,
                after,
                changes,
            },
            Err(reason) => Verdict::Rejected { out, reason },
        },
        Err(e) => Verdict::Ran(Err(e)),
    };
    Ok(Tried {
        hook,
        stage: Stage::Precreate,
        sample,
        verdict,
    })
}
