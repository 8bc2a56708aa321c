//! Running one planned hook against one container: resolves what the executor needs (a pinned
//! binary checked, a WASM hook's grants resolved against this container, its module and cache
//! checked for trust, the stage variable added) and hands it to `hookhost-exec`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hookhost_exec::fs::{self as hfs, Untrusted};
use hookhost_exec::limits::WasmLimits;
use hookhost_exec::native::{self, NativeCommand, NativeError};
use hookhost_exec::wasm::{
    self, Capture, CompileLimits, CompileStop, Preopen, Stop, Tape, WasmError, WasmInvocation,
};
use hookhost_exec::{Exit, Outcome, pick_output, split_env};
use hookhost_types::{STAGE_ENV, Stage, State};
use thiserror::Error;

use crate::plan::PlannedHook;
use hookhost_hooks::grants::{GrantError, rootfs_of_bundle};
use hookhost_hooks::hook::HookKind;
use hookhost_hooks::paths::Paths;

#[cfg(test)]
mod tests_examples;
#[cfg(test)]
mod tests_grants;

/// Why a hook could not run to its end.
#[derive(Debug, Error)]
pub enum ExecError {
    /// The native process could not run or was stopped.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// The WASM guest was stopped by a limit or a trap.
    #[error("{stop}{output}")]
    WasmStopped {
        /// What stopped it.
        stop: Stop,
        /// `: ` and what it wrote, or nothing.
        output: String,
    },
    /// The WASM hook could not be loaded or set up.
    #[error(transparent)]
    Wasm(WasmError),
    /// The module had to be compiled here (its artifact was missing or stale), and that passed
    /// the hook's own limits.
    #[error(
        "its compiled artifact is missing or stale (after a hookhost upgrade, or a cleared \
         cache), and compiling it here, bounded by the hook's timeout, {stop}; run `hookhost \
         recompile`, as a package's upgrade step should"
    )]
    CompileAtStage {
        /// The bound it passed.
        stop: CompileStop,
    },
    /// A WASM hook planned without its module's digest.
    #[error("no module digest recorded")]
    NoDigest,
    /// A grant could not be resolved against this container.
    #[error(transparent)]
    Grant(#[from] GrantError),
    /// A file that decides what runs is writable by others.
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    /// A pinned binary could not be read.
    #[error("cannot read pinned hook {}", path.display())]
    ReadPinned {
        /// The binary.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A pinned binary changed since it was registered.
    #[error(
        "pinned hook {} has changed since it was registered (sha256 {actual}, registered \
         {expected}); refusing to run it. If the change is intended, register it again with \
         `hookhost rm` and `hookhost create --pin`", path.display()
    )]
    PinMismatch {
        /// The binary.
        path: PathBuf,
        /// The registered sha256.
        expected: String,
        /// What it is now.
        actual: String,
    },
}

impl From<WasmError> for ExecError {
    fn from(error: WasmError) -> Self {
        match error {
            WasmError::Stopped {
                stop,
                stdout,
                stderr,
                ..
            } => {
                let output = pick_output(&stdout, &stderr);
                let output = if output.is_empty() {
                    output
                } else {
                    format!(": {output}")
                };
                ExecError::WasmStopped { stop, output }
            }
            WasmError::CompileBound(stop) => ExecError::CompileAtStage { stop },
            WasmError::Untrusted(untrusted) => ExecError::Untrusted(untrusted),
            other => ExecError::Wasm(other),
        }
    }
}

/// What a hook run can see of its container.
pub struct RunContext<'a> {
    /// The stage being run.
    pub stage: Stage,
    /// What the hook gets on stdin: the state exactly as the runtime sent it, passed on
    /// unchanged (at precreate: the proposed config.json).
    pub state_json: &'a [u8],
    /// The same, parsed.
    pub state: &'a State,
    /// The registry root: WASM modules and their compile cache.
    pub root: &'a Path,
    /// How much of the hook's stdout and stderr is kept.
    pub output_limit: usize,
    /// When the caller must have an answer (the NRI plugin's budget): a hook's time limit is
    /// its timeout or the time left, whichever is shorter.
    pub deadline: Option<Instant>,
    /// The registry generation the hook was planned from, for the audit trail.
    pub generation: Option<&'a str>,
}

/// Runs one hook to its end (or its limit).
pub fn run(hook: &PlannedHook, ctx: &RunContext) -> Result<Outcome, ExecError> {
    run_captured(hook, ctx, Capture::Off).0
}

/// What a WASM run was given, and what it read besides (its replay record's inputs).
#[derive(Debug, Clone)]
pub struct WasmRun {
    /// The module's sha256.
    pub digest: String,
    pub args: Vec<String>,
    /// The guest's entire environment.
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub limits: WasmLimits,
    pub timeout: Duration,
    /// How much of its stdout and of its stderr was kept.
    pub output_limit: usize,
    /// What it read besides (recording only).
    pub tape: Option<Tape>,
    /// The fuel it had used when a limit or a trap stopped it.
    pub stopped_fuel: Option<u64>,
}

/// [`run`], with a WASM hook's run captured as `capture` says (native hooks: never), and
/// what the WASM run was given once it was set up.
pub fn run_captured(
    hook: &PlannedHook,
    ctx: &RunContext,
    capture: Capture,
) -> (Result<Outcome, ExecError>, Option<WasmRun>) {
    match hook.spec.kind {
        HookKind::Native => (native_hook(hook, ctx), None),
        HookKind::Wasm => {
            let mut given = None;
            let result = wasm_hook(hook, ctx, capture, &mut given);
            (result, given)
        }
    }
}

fn native_hook(hook: &PlannedHook, ctx: &RunContext) -> Result<Outcome, ExecError> {
    let spec = &hook.spec;
    if let Some(digest) = &spec.digest {
        verify_pinned(&spec.path, digest)?;
    }
    let mut env = spec.env.clone();
    env.push(format!("{STAGE_ENV}={}", ctx.stage));
    let command = NativeCommand {
        path: &spec.path,
        args: &spec.args,
        env: &env,
        timeout: run_timeout(hook, ctx),
        leave_helpers: spec.leave_helpers,
        output_limit: ctx.output_limit,
    };
    Ok(native::run(&command, ctx.state_json)?)
}

/// A hook's time limit: its timeout (without one — a hooks.d hook without one — none), cut
/// to the time left before the caller's deadline.
fn run_timeout(hook: &PlannedHook, ctx: &RunContext) -> Duration {
    let own = hook.timeout().map_or(Duration::MAX, Duration::from_secs);
    match ctx.deadline {
        Some(deadline) => own.min(deadline.saturating_duration_since(Instant::now())),
        None => own,
    }
}

/// The bounds on compiling a module at a stage (its artifact missing or stale): the hook's own
/// timeout on the wall clock, which the compile and the run share (the registration default
/// when the hook has none); and the hook's memory limit but never less than the registration
/// default: compiling takes more than running (the 1.6 MB gpu-env example runs in 64 MiB and
/// needs ~150 MB to compile).
fn stage_compile_limits(
    hook: &PlannedHook,
    ctx: &RunContext,
    limits: &WasmLimits,
) -> CompileLimits {
    let defaults = CompileLimits::default();
    let memory = limits.memory.max(defaults.memory);
    let left = run_timeout(hook, ctx);
    match hook.timeout() {
        Some(_) => CompileLimits {
            cpu_secs: None,
            wall: left,
            memory,
        },
        None => CompileLimits {
            memory,
            wall: defaults.wall.min(left),
            ..defaults
        },
    }
}

/// A pinned native hook runs only while it is the file that was registered: unchanged, and
/// writable by nobody but root (so nobody else can change it between this check and the exec).
fn verify_pinned(path: &Path, digest: &str) -> Result<(), ExecError> {
    hfs::check_trusted_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| ExecError::ReadPinned {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = hfs::sha256_hex(&bytes);
    if actual != digest {
        return Err(ExecError::PinMismatch {
            path: path.to_path_buf(),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Runs a WASM hook with the grants its registration fixed, resolved against this container;
/// `given` gets what it was given once that is known.
fn wasm_hook(
    hook: &PlannedHook,
    ctx: &RunContext,
    capture: Capture,
    given: &mut Option<WasmRun>,
) -> Result<Outcome, ExecError> {
    let spec = &hook.spec;
    let digest = spec.digest.as_deref().ok_or(ExecError::NoDigest)?;
    let grants = spec.grants.clone().unwrap_or_default();
    let limits = spec.limits.clone().unwrap_or_default();
    let bundle = (!ctx.state.bundle.as_os_str().is_empty()).then_some(ctx.state.bundle.as_path());
    let rootfs = match (grants.rootfs, bundle) {
        (Some(_), Some(bundle)) => Some(rootfs_of_bundle(bundle)?),
        _ => None,
    };
    let resolved = grants.resolve(bundle, rootfs.as_deref(), |name| std::env::var(name).ok())?;
    let mut env: Vec<(String, String)> = spec.env.iter().map(|pair| split_env(pair)).collect();
    env.extend(resolved.env);
    env.push((STAGE_ENV.into(), ctx.stage.as_str().into()));
    let paths = Paths::new(ctx.root);
    let module_path = paths.module_file(digest);
    let cache_dir = paths.cache_dir();
    let invocation = WasmInvocation {
        module_path: &module_path,
        digest,
        cache_dir: &cache_dir,
        args: &spec.args,
        env: &env,
        stdin: ctx.state_json,
        preopens: &resolved.preopens,
        limits: &limits,
        timeout: run_timeout(hook, ctx),
        compile: stage_compile_limits(hook, ctx, &limits),
        output_limit: ctx.output_limit,
    };
    let started = Instant::now();
    let timeout = invocation.timeout;
    let (result, tape) = wasm::run_captured(&invocation, capture);
    *given = Some(WasmRun {
        digest: digest.to_string(),
        args: spec.args.clone(),
        env,
        preopens: resolved.preopens.clone(),
        limits: limits.clone(),
        timeout,
        output_limit: ctx.output_limit,
        tape,
        stopped_fuel: match &result {
            Err(WasmError::Stopped { fuel_used, .. }) => Some(*fuel_used),
            _ => None,
        },
    });
    let out = result?;
    Ok(Outcome {
        exit: Exit::Code(out.exit_code),
        stdout: out.stdout,
        stderr: out.stderr,
        truncated: out.truncated,
        duration: started.elapsed(),
        fuel_used: Some(out.fuel_used),
    })
}
