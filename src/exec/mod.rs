//! Running one hook: a native process or a WebAssembly module, under the same contract —
//! argv from `args`, env from `env` plus `HOOKHOST_STAGE`, the OCI state on stdin, output
//! captured (bounded), exit code 0 = success.

pub mod native;
pub mod output;
pub mod wasm;

use std::fmt;
use std::time::Duration;

/// How much of each of stdout and stderr is kept; the rest is read and discarded.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a hook ended when it was not stopped by hookhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => {
                let name = nix::sys::signal::Signal::try_from(*sig)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                write!(f, "killed by signal {sig} ({name})")
            }
        }
    }
}

/// What a finished hook left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr was longer than [`OUTPUT_LIMIT`] and cut.
    pub truncated: bool,
    pub duration: Duration,
    /// WASM hooks only: fuel units consumed.
    pub fuel_used: Option<u64>,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// The hook's output as a failure message shows it: stderr, else stdout, trimmed.
    pub fn output_summary(&self) -> String {
        let mut text = pick_output(&self.stdout, &self.stderr);
        if self.truncated {
            text.push_str(" […output truncated]");
        }
        text
    }
}

use thiserror::Error;

use std::time::Instant;

use crate::grants::rootfs_of_bundle;
use crate::hook::{HookKind, Stage};
use crate::paths::Paths;
use crate::plan::PlannedHook;
use crate::state::State;
use wasm::{WasmError, WasmInvocation};

/// Why a hook could not run to its end.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Native(#[from] native::NativeError),
    #[error("{0}")]
    Wasm(String),
    #[error(transparent)]
    Untrusted(#[from] crate::fsutil::Untrusted),
    #[error("cannot read pinned hook {path}: {source}")]
    ReadPinned {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "pinned hook {path} has changed since it was registered (sha256 {actual}, registered \
         {expected}); refusing to run it. If the change is intended, register it again with \
         `hookhost rm` and `hookhost create --pin`"
    )]
    PinMismatch {
        path: std::path::PathBuf,
        expected: String,
        actual: String,
    },
}

/// What a hook run can see of its container.
pub struct RunContext<'a> {
    pub stage: Stage,
    /// The state exactly as the runtime sent it, passed on unchanged.
    pub state_json: &'a [u8],
    pub state: &'a State,
    pub root: &'a std::path::Path,
}

/// Runs one hook to its end (or its limit).
pub fn run(hook: &PlannedHook, ctx: &RunContext) -> Result<Outcome, ExecError> {
    match hook.spec.kind {
        HookKind::Native => {
            if let Some(digest) = &hook.spec.digest {
                verify_pinned(&hook.spec.path, digest)?;
            }
            Ok(native::run(&hook.spec, ctx.stage, ctx.state_json)?)
        }
        HookKind::Wasm => wasm_hook(hook, ctx),
    }
}

/// A pinned native hook runs only while it is the file that was registered: unchanged, and
/// writable by nobody but root (so nobody else can change it between this check and the exec).
fn verify_pinned(path: &std::path::Path, digest: &str) -> Result<(), ExecError> {
    crate::fsutil::check_trusted_path(path)?;
    let bytes = std::fs::read(path).map_err(|source| ExecError::ReadPinned {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = crate::registry::sha256_hex(&bytes);
    if actual != digest {
        return Err(ExecError::PinMismatch {
            path: path.to_path_buf(),
            expected: digest.to_string(),
            actual,
        });
    }
    Ok(())
}

/// The module and the compile cache decide what code runs: refuse them when another user could
/// have written them (missing ones are reported by the WASM runner itself).
fn check_wasm_files(module: &std::path::Path, cache: &std::path::Path) -> Result<(), ExecError> {
    for path in [module, cache] {
        if path.exists() {
            crate::fsutil::check_trusted_path(path)?;
        }
    }
    Ok(())
}

/// Runs a WASM hook with the grants its registration fixed, resolved against this container.
fn wasm_hook(hook: &PlannedHook, ctx: &RunContext) -> Result<Outcome, ExecError> {
    let spec = &hook.spec;
    let digest = spec
        .digest
        .as_deref()
        .ok_or_else(|| ExecError::Wasm("no module digest recorded".into()))?;
    let grants = spec.grants.clone().unwrap_or_default();
    let limits = spec.limits.clone().unwrap_or_default();
    let bundle = (!ctx.state.bundle.as_os_str().is_empty()).then_some(ctx.state.bundle.as_path());
    let rootfs = match (grants.rootfs, bundle) {
        (Some(_), Some(bundle)) => {
            Some(rootfs_of_bundle(bundle).map_err(|e| ExecError::Wasm(e.to_string()))?)
        }
        _ => None,
    };
    let resolved = grants
        .resolve(bundle, rootfs.as_deref(), |name| std::env::var(name).ok())
        .map_err(|e| ExecError::Wasm(e.to_string()))?;
    let mut env: Vec<(String, String)> = spec.env.iter().map(|pair| split_env(pair)).collect();
    env.extend(resolved.env);
    env.push(("HOOKHOST_STAGE".into(), ctx.stage.as_str().into()));
    let paths = Paths::new(ctx.root);
    let module_path = paths.module_file(digest);
    let cache_dir = paths.cache_dir();
    check_wasm_files(&module_path, &cache_dir)?;
    let invocation = WasmInvocation {
        module_path: &module_path,
        digest,
        cache_dir: &cache_dir,
        args: &spec.args,
        env: &env,
        stdin: ctx.state_json,
        preopens: &resolved.preopens,
        limits: &limits,
        timeout: Duration::from_secs(spec.timeout),
        output_limit: OUTPUT_LIMIT,
    };
    let started = Instant::now();
    match wasm::run(&invocation) {
        Ok(out) => Ok(Outcome {
            exit: Exit::Code(out.exit_code),
            stdout: out.stdout,
            stderr: out.stderr,
            truncated: out.truncated,
            duration: started.elapsed(),
            fuel_used: Some(out.fuel_used),
        }),
        Err(WasmError::Stopped {
            stop,
            stderr,
            stdout,
            ..
        }) => {
            let output = pick_output(&stdout, &stderr);
            let message = if output.is_empty() {
                stop.to_string()
            } else {
                format!("{stop}: {output}")
            };
            Err(ExecError::Wasm(message))
        }
        Err(e) => Err(ExecError::Wasm(e.to_string())),
    }
}

/// What a failure message shows of a hook's output: stderr, else stdout, trimmed.
pub fn pick_output(stdout: &[u8], stderr: &[u8]) -> String {
    let has_text = |bytes: &[u8]| bytes.iter().any(|b| !b.is_ascii_whitespace());
    let pick = if has_text(stderr) { stderr } else { stdout };
    String::from_utf8_lossy(pick).trim().to_string()
}

/// `KEY=VALUE` into its parts (a missing `=` means an empty value).
pub fn split_env(pair: &str) -> (String, String) {
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    (key.to_string(), value.to_string())
}
