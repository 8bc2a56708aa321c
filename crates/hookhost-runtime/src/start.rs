//! The engine's `start` call. A container whose hooks include startRuntime or poststart
//! ([`Stage::runs_at_start`]) was created with the [`START_ANNOTATION`]; for it the wrapper
//! runs startRuntime with the container `created` (after the engine set up its networks: Docker
//! 28 does that between create and start), then the runtime's `start` as a child, then poststart
//! with the container `running` — after start, once, on runc 1.1 as on newer runtimes. A
//! failing hook of either stage kills the container and fails `start`, as runc does for its own
//! hooks, so the engine cleans it up as after any failed start.
//!
//! Every other `start` goes straight to the runtime. Deciding that costs one read of the
//! runtime's state file (runc: `ROOT/ID/state.json`, which keeps the annotations as labels)
//! and a search for the annotation's name; a runtime whose state is kept elsewhere is asked
//! with `RUNTIME state ID`, so no container's start hooks are ever skipped. The runtime is
//! asked for the `created` state only for startRuntime hooks: a container with poststart hooks
//! alone is found in the state file's labels, and the `running` state its hooks get is built
//! from the same file as `runc state` builds it (each ask is a runc run, ~6 ms); a runtime
//! without that file is asked.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use thiserror::Error;

use hookhost_core::stage::{self, PlanSource, StageError};
use hookhost_types::{START_ANNOTATION, Stage, StageCall, StartCalls, State, StateError};

use super::argv::RuncCall;

/// runc's default `--root` for root.
const RUNC_DEFAULT_ROOT: &str = "/run/runc";

#[derive(Debug, Error)]
pub enum StartError {
    #[error("cannot run `{runtime} {command}` for container {id}")]
    Spawn {
        runtime: PathBuf,
        command: &'static str,
        id: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{runtime} state {id}` failed ({status}): {stderr}")]
    StateFailed {
        runtime: PathBuf,
        id: String,
        status: ExitStatus,
        stderr: String,
    },
    #[error("the runtime's state of container {id} is not an OCI state")]
    BadState {
        id: String,
        #[source]
        source: StateError,
    },
    #[error(
        "container {id} has a malformed {START_ANNOTATION} annotation {value:?}; only \
         hookhost's runtime wrapper sets it: create the container through the wrapper again"
    )]
    BadAnnotation { id: String, value: String },
    #[error("{0}; the container was killed")]
    Killed(#[source] StageError),
}

/// What a `start` call needs from the wrapper.
#[derive(Debug)]
pub enum Start {
    /// No hooks at start: exec the runtime.
    PassThrough,
    /// The hooks ran around the runtime's `start`, which exited with this status.
    Ran {
        status: ExitStatus,
        warnings: Vec<String>,
    },
}

/// Handles `call` (a `start`) with the real `runtime` and the original `args`.
pub fn start(call: &RuncCall, runtime: &Path, args: &[OsString]) -> Result<Start, StartError> {
    // An id runc refuses cannot name a container it made: runc says so itself.
    let Some(id) = call.id.as_deref().filter(|id| super::argv::is_valid_id(id)) else {
        return Ok(Start::PassThrough);
    };
    let state_file = runc_state_file(call, id);
    if state_file
        .as_deref()
        .is_some_and(|bytes| !contains(bytes, format!("\"{START_ANNOTATION}=").as_bytes()))
    {
        return Ok(Start::PassThrough);
    }
    let runtime = Runtime {
        path: runtime,
        globals: &args[..call.globals.min(args.len())],
        id,
    };
    let filed = state_file.as_deref().and_then(|f| state_from_file(f, id));
    let mut warnings = Vec::new();
    let Some(calls) = runtime.before_start(filed.as_ref(), &mut warnings)? else {
        return Ok(Start::PassThrough);
    };
    let status = Command::new(runtime.path)
        .args(args)
        .status()
        .map_err(|source| runtime.spawn_error("start", source))?;
    if let (true, Some(call)) = (status.success(), calls.call(Stage::Poststart)) {
        let running = match filed {
            Some(state) => running_json(state),
            None => runtime.state()?.0,
        };
        warnings.extend(runtime.run_or_kill(call, &running)?);
    }
    Ok(Start::Ran { status, warnings })
}

/// runc's state file of the container (`ROOT/ID/state.json`), when there is one; `id` is one
/// runc accepts, so a single name under the root.
fn runc_state_file(call: &RuncCall, id: &str) -> Option<Vec<u8>> {
    let root = call
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(RUNC_DEFAULT_ROOT));
    std::fs::read(root.join(id).join("state.json")).ok()
}

/// The container's OCI state as `runc state` builds it from runc's state file (the init's
/// pid, the bundle and the annotations from the labels, `KEY=VALUE`), without a status; `None`
/// when the file does not read that way (then the runtime is asked).
fn state_from_file(state_file: &[u8], id: &str) -> Option<State> {
    let file: serde_json::Value = serde_json::from_slice(state_file).ok()?;
    let mut bundle = None;
    let mut annotations = std::collections::BTreeMap::new();
    for label in file.pointer("/config/labels")?.as_array()? {
        let (key, value) = label.as_str()?.split_once('=')?;
        match (key, &bundle) {
            ("bundle", None) => bundle = Some(PathBuf::from(value)),
            _ => {
                annotations.insert(key.to_string(), value.to_string());
            }
        }
    }
    Some(State {
        oci_version: file.pointer("/config/version")?.as_str()?.to_string(),
        id: id.to_string(),
        status: String::new(),
        pid: Some(file.get("init_process_pid")?.as_i64()?),
        bundle: bundle?,
        annotations,
        extra: serde_json::Map::new(),
    })
}

/// The stages the container's [`START_ANNOTATION`] names, if it has one that decodes.
fn start_calls_of(state: &State) -> Option<StartCalls> {
    StartCalls::decode(state.annotation(START_ANNOTATION)?)
}

/// The state poststart hooks get: the container `running` (its runtime just started it).
fn running_json(state: State) -> Vec<u8> {
    let running = State {
        status: Stage::Poststart.status().to_string(),
        ..state
    };
    serde_json::to_vec(&running).expect("a state serialises")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The real runtime, called with the engine's global flags.
struct Runtime<'a> {
    path: &'a Path,
    globals: &'a [OsString],
    id: &'a str,
}

impl Runtime<'_> {
    fn command(&self, command: &str) -> Command {
        let mut cmd = Command::new(self.path);
        cmd.args(self.globals).arg(command);
        cmd
    }

    fn spawn_error(&self, command: &'static str, source: std::io::Error) -> StartError {
        StartError::Spawn {
            runtime: self.path.to_path_buf(),
            command,
            id: self.id.to_string(),
            source,
        }
    }

    /// `RUNTIME state ID`: the OCI state as JSON, and parsed.
    fn state(&self) -> Result<(Vec<u8>, State), StartError> {
        let out = self
            .command("state")
            .arg(self.id)
            .output()
            .map_err(|source| self.spawn_error("state", source))?;
        if !out.status.success() {
            return Err(StartError::StateFailed {
                runtime: self.path.to_path_buf(),
                id: self.id.to_string(),
                status: out.status,
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        let state = State::parse(&out.stdout).map_err(|source| StartError::BadState {
            id: self.id.to_string(),
            source,
        })?;
        Ok((out.stdout, state))
    }

    /// The state and the stages to run at start, when the container has any.
    fn start_calls(&self) -> Result<Option<(Vec<u8>, StartCalls)>, StartError> {
        let (json, state) = self.state()?;
        let Some(value) = state.annotation(START_ANNOTATION) else {
            return Ok(None);
        };
        let calls = StartCalls::decode(value).ok_or_else(|| StartError::BadAnnotation {
            id: self.id.to_string(),
            value: value.to_string(),
        })?;
        Ok(Some((json, calls)))
    }

    /// The stages to run at start, once startRuntime ran (with the `created` state the runtime
    /// reports). Poststart alone is found in runc's state file (`filed`) without asking the
    /// runtime.
    fn before_start(
        &self,
        filed: Option<&State>,
        warnings: &mut Vec<String>,
    ) -> Result<Option<StartCalls>, StartError> {
        let labelled = filed
            .and_then(start_calls_of)
            .filter(|calls| calls.call(Stage::StartRuntime).is_none());
        if labelled.is_some() {
            return Ok(labelled);
        }
        let Some((created, calls)) = self.start_calls()? else {
            return Ok(None);
        };
        if let Some(call) = calls.call(Stage::StartRuntime) {
            warnings.extend(self.run_or_kill(call, &created)?);
        }
        Ok(Some(calls))
    }

    /// Runs a stage with the container's `state_json`; a failure kills the container, as runc
    /// does when a hook of its own fails at start (the engine then deletes it as usual).
    fn run_or_kill(&self, call: StageCall, state_json: &[u8]) -> Result<Vec<String>, StartError> {
        match stage::run_call(&PlanSource::File(call), state_json) {
            Ok(report) => Ok(report.warnings),
            Err(e) => {
                self.kill();
                Err(StartError::Killed(e))
            }
        }
    }

    /// Kills the container (SIGKILL to its init).
    fn kill(&self) {
        let _ = self
            .command("kill")
            .args([self.id, "KILL"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
