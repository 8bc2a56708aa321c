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
                let name = nix::sys::signal::Signal::try_from(*sig).map(|s| s.as_str()).unwrap_or("?");
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
        let pick = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &self.stderr } else { &self.stdout };
        let mut text = String::from_utf8_lossy(pick).trim().to_string();
        if self.truncated {
            text.push_str(" […output truncated]");
        }
        text
    }
}

use thiserror::Error;

use crate::hook::{HookKind, Stage};
use crate::plan::PlannedHook;
use crate::state::State;

/// Why a hook could not run to its end.
#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Native(#[from] native::NativeError),
    #[error("{0}")]
    Wasm(String),
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
        HookKind::Native => Ok(native::run(&hook.spec, ctx.stage, ctx.state_json)?),
        HookKind::Wasm => wasm_hook(hook, ctx),
    }
}

fn wasm_hook(_hook: &PlannedHook, _ctx: &RunContext) -> Result<Outcome, ExecError> {
    Err(ExecError::Wasm("WASM hooks are not wired in yet".into()))
}
