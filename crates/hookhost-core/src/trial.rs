//! `hookhost try`: one hook run outside any container — the authoring loop. The hook gets what
//! a runtime would give it (a sample OCI state, or a sample bundle's config.json for a
//! precreate hook, or what the caller gives); what it did comes back for the CLI to show.
//! Nothing is recorded in the audit trail.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tempfile::TempDir;
use thiserror::Error;

use crate::bundle::{self, BundleConfig, InjectError};
use crate::cdi;
use crate::plan::{PlannedHook, split_top_level};
use crate::precreate::{self, MAX_CONFIG_BYTES};
use crate::run::{self, ExecError, RunContext};
use crate::select::{self, Origin, SelectError, Sources};
use hookhost_exec::Outcome;
use hookhost_exec::wasm::CompileLimits;
use hookhost_hooks::cdi::Applied;
use hookhost_hooks::define::{DefineError, Definition};
use hookhost_hooks::diff::Change;
use hookhost_hooks::hook::Stage;
use hookhost_hooks::may_adjust;
use hookhost_hooks::registry::{Registry, RegistryError};
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
    #[error("cannot make a scratch registry to try {}", .0.display())]
    Scratch(PathBuf, #[source] std::io::Error),
    #[error("the config.json given is not JSON")]
    GivenConfig(#[source] serde_json::Error),
    #[error(transparent)]
    Define(#[from] DefineError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// A hook defined from a file for one try (`hookhost try ./hook.wasm --type STAGE …`): built
/// with every check `create` makes, but in a scratch registry (a temporary root, removed when
/// this is dropped), so that the edit–build–try loop writes nothing to the real registry.
#[derive(Debug)]
pub struct Scratch {
    pub registry: Registry,
    /// The name the hook has there: the file's stem, made a valid hook name.
    pub name: String,
    dir: TempDir,
}

impl Scratch {
    /// Builds `def` (its name is replaced by one made from its path) in a new scratch
    /// registry, compiling a module under `limits`.
    pub fn build(mut def: Definition, limits: CompileLimits) -> Result<Scratch, TrialError> {
        def.name = name_of_file(&def.path);
        let dir = tempfile::Builder::new()
            .prefix("hookhost-try-")
            .tempdir()
            .map_err(|e| TrialError::Scratch(def.path.clone(), e))?;
        let registry = Registry::open(dir.path())?.with_compile_limits(limits);
        let hook = hookhost_hooks::define::build(def, &registry)?;
        registry.create(&hook)?;
        Ok(Scratch {
            registry,
            name: hook.name,
            dir,
        })
    }

    /// The scratch registry's root (its modules and compile cache).
    pub fn root(&self) -> &Path {
        self.dir.path()
    }
}

/// A valid hook name made from a file's stem (`hello-world` for `./hello-world.wasm`):
/// characters a name may not hold become `-`; `hook` when nothing is left.
pub fn name_of_file(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default();
    let name: String = stem
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                true => c,
                false => '-',
            },
        )
        .skip_while(|c| !c.is_ascii_alphanumeric())
        .take(128)
        .collect();
    match name.is_empty() {
        true => "hook".into(),
        false => name,
    }
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
    /// A precreate hook's config.json, given rather than read from a bundle (a recorded run's
    /// input: `hookhost try --replay`).
    pub config: Option<Vec<u8>>,
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
    /// A precreate hook's result within its grants: what it changed, and the CDI devices its
    /// request would bring (each with its spec file and edits), resolved from the spec
    /// directories as the runtime wrapper would.
    Accepted {
        out: Outcome,
        before: Value,
        after: Value,
        changes: Vec<Change>,
        cdi: Vec<Applied>,
    },
    /// A precreate hook's result that would refuse the container, and why; with what it
    /// tried to change when its output was a JSON document (each change refused or not).
    Rejected {
        out: Outcome,
        reason: String,
        before: Value,
        after: Value,
        attempted: Vec<Attempted>,
    },
}

/// One change a refused precreate hook tried to make.
#[derive(Debug, Clone)]
pub struct Attempted {
    pub change: Change,
    /// Outside the hook's grants.
    pub refused: bool,
    /// The grant that would allow it (`--may-adjust env=FOO`), when one would.
    pub needs: Option<String>,
}

/// What a refused hook's output changed, each change checked alone against its grants.
fn attempted(hook: &PlannedHook, before: &Value, out: &Outcome) -> (Value, Vec<Attempted>) {
    let after = serde_json::from_slice::<Value>(&out.stdout)
        .ok()
        .filter(Value::is_object);
    let Some(after) = after else {
        return (before.clone(), Vec::new());
    };
    let grants = hook.spec.may_adjust.as_ref();
    let changes = hookhost_hooks::diff::diff(before, &after)
        .into_iter()
        .map(|change| {
            let denied = may_adjust::check(grants, std::slice::from_ref(&change), &after).err();
            Attempted {
                refused: denied.is_some(),
                needs: denied
                    .and_then(|d| d.needed_grant())
                    .map(|grant| format!("--may-adjust {grant}")),
                change,
            }
        })
        .collect();
    (after, changes)
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
        return try_precreate(hook, request, sources);
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
        deadline: None,
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
fn try_precreate(
    hook: PlannedHook,
    request: &Request,
    sources: &Sources,
) -> Result<Tried, TrialError> {
    if request.state.is_some() {
        return Err(TrialError::StateForPrecreate);
    }
    if let Some(given) = &request.config {
        let doc = serde_json::from_slice(given).map_err(TrialError::GivenConfig)?;
        let config = BundleConfig::from_doc(PathBuf::from("config.json"), doc)?;
        return run_precreate(hook, config, PathBuf::new(), None, sources);
    }
    let sample = match request.bundle {
        Some(_) => None,
        None => Some(bundle::sample_bundle().map_err(TrialError::Sample)?),
    };
    let given = request.bundle.or(sample.as_ref().map(TempDir::path));
    let given = given.expect("a bundle was given or made");
    let dir = std::path::absolute(given).map_err(|e| TrialError::Bundle(given.to_path_buf(), e))?;
    let config = BundleConfig::load(&dir)?;
    run_precreate(hook, config, dir, sample, sources)
}

/// Runs a precreate hook on `config` (of the bundle `dir`) and checks its result.
fn run_precreate(
    hook: PlannedHook,
    config: BundleConfig,
    dir: PathBuf,
    sample: Option<TempDir>,
    sources: &Sources,
) -> Result<Tried, TrialError> {
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
        root: sources.root,
        output_limit: MAX_CONFIG_BYTES,
        deadline: None,
        generation: None,
    };
    let verdict = match run::run(&hook, &ctx) {
        // A refusal: its stderr and status, not the config it was given back.
        Ok(out) if !out.success() => Verdict::Ran(Ok(Outcome {
            stdout: Vec::new(),
            ..out
        })),
        Ok(out) => match precreate::check_one(&hook, &config.doc, &out) {
            Ok((after, changes)) => {
                let edited = (config.doc, after, changes);
                with_cdi(&hook, out, edited, sources.cdi_spec_dirs)
            }
            Err(reason) => {
                let (after, attempted) = attempted(&hook, &config.doc, &out);
                Verdict::Rejected {
                    out,
                    reason,
                    before: config.doc,
                    after,
                    attempted,
                }
            }
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

/// The verdict on a precreate hook's result within its grants (`before` → `after`): accepted,
/// with the CDI devices the hook's request brings; or, when their resolution fails (an
/// unknown device, a bad spec file), the refusal the container would get.
fn with_cdi(
    hook: &PlannedHook,
    out: Outcome,
    (before, after, changes): (Value, Value, Vec<Change>),
    dirs: &[PathBuf],
) -> Verdict {
    let adjusted = [(hook.name.clone(), changes.clone())];
    let kinds = [(hook.name.clone(), hook.spec.kind)];
    let mut resolved = after.clone();
    match cdi::apply(
        &mut resolved,
        dirs,
        cdi::Scope::HooksOnly,
        &adjusted,
        &kinds,
    ) {
        Ok(brought) => Verdict::Accepted {
            out,
            before,
            after,
            changes,
            cdi: brought.into_iter().map(|b| b.applied).collect(),
        },
        Err(e) => Verdict::Rejected {
            out,
            reason: crate::error_chain(&e),
            before,
            after,
            attempted: (changes.into_iter())
                .map(|change| Attempted {
                    change,
                    refused: false,
                    needs: None,
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tried_file_is_named_by_its_stem() {
        for (path, name) in [
            ("./target/wasm32-wasip1/release/motd.wasm", "motd"),
            ("/x/hello world.wasm", "hello-world"),
            ("/x/.hidden.wasm", "hidden"),
            ("/x/_.wasm", "hook"),
            ("/usr/libexec/oci-hook", "oci-hook"),
        ] {
            assert_eq!(name_of_file(Path::new(path)), name, "{path}");
            hookhost_hooks::hook::validate_name(&name_of_file(Path::new(path))).unwrap();
        }
    }
}
