//! Compiling a module, bounded in time and memory.
//!
//! Cranelift cannot be interrupted, and what it costs depends on the module's shape, not its
//! size: a 140 KB module of 20,000 nested loops took 65 s and 245 MB (quadratic). Fuel,
//! the hook's timeout and its memory limit bound only the guest's run, so hookhost compiles in
//! a **child process**: the running executable itself (`/proc/self/exe`, the very build that
//! will load the artifact, even when an upgrade has replaced the file since) re-executed with
//! [`CHILD_COMMAND`]. The child sets its own `RLIMIT_DATA` (heap and every private writable
//! mapping) to the memory bound before reading anything, reads the module on stdin, validates
//! and compiles it, and writes the artifact on stdout. The parent runs it as a native hook
//! (its own process group, owned by a guard that kills it if hookhost dies), kills it at the
//! time bound, and stores and loads the artifact itself.
//!
//! The child is started only when the cache has no artifact: at `create`, `pull`, `apply`
//! and `recompile` under the registration bounds ([`CompileLimits`], from hookhost's config
//! file), and at a stage under bounds the caller derives from the hook (hookhost-core: its
//! timeout, and at least the default memory bound).
//!
//! A program that links this crate and compiles modules must answer [`CHILD_COMMAND`] in its
//! `main` with [`serve_child`]; tests, whose executable cannot, call
//! [`compile_in_this_process`] instead (no bound).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use wasmtime::Module;

use super::{WasmError, engine};
use crate::limits::format_size;
use crate::native::{self, NativeCommand, NativeError};
use crate::{Exit, Outcome};

/// The hidden first argument that makes hookhost's executable a compiler child:
/// `hookhost __compile-wasm MEMORY_BYTES`, module on stdin, artifact on stdout.
pub const CHILD_COMMAND: &str = "__compile-wasm";

/// The child's exit status for a module that is not valid (its stderr says why).
pub const INVALID_MODULE_EXIT: u8 = 65;

/// How every artifact begins: wasmtime writes ELF files.
const ARTIFACT_MAGIC: &[u8] = b"\x7fELF";

/// The executable the child re-executes: this very process's image.
const SELF_EXE: &str = "/proc/self/exe";

/// Default registration bound on compile time: 10 s.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(10);

/// Default registration bound on compile memory: 512 MiB.
pub const DEFAULT_COMPILE_MEMORY: u64 = 512 << 20;

/// Bounds on one compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// Wall-clock time; the child is killed when it runs past it.
    pub timeout: Duration,
    /// The child's `RLIMIT_DATA`, in bytes.
    pub memory: u64,
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits {
            timeout: DEFAULT_COMPILE_TIMEOUT,
            memory: DEFAULT_COMPILE_MEMORY,
        }
    }
}

/// Which bound a compilation passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileStop {
    /// It ran past its time bound and was killed.
    Timeout(Duration),
    /// It needed more memory than its bound.
    Memory(u64),
}

impl std::fmt::Display for CompileStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileStop::Timeout(limit) => write!(
                f,
                "ran past its time bound of {}s and was stopped",
                limit.as_secs_f64()
            ),
            CompileStop::Memory(limit) => write!(
                f,
                "needed more than its memory bound of {} and was stopped",
                format_size(*limit)
            ),
        }
    }
}

static IN_THIS_PROCESS: AtomicBool = AtomicBool::new(cfg!(test));

/// Compile in this process from now on, with no bound: for test executables, which cannot
/// be re-executed as the compiler child.
pub fn compile_in_this_process() {
    IN_THIS_PROCESS.store(true, Ordering::Relaxed);
}

/// Validates and compiles `bytes` under `limits`; returns the artifact.
pub(crate) fn compile(bytes: &[u8], limits: &CompileLimits) -> Result<Vec<u8>, WasmError> {
    if IN_THIS_PROCESS.load(Ordering::Relaxed) {
        return compile_here(bytes);
    }
    let memory = limits.memory.to_string();
    let args = ["hookhost".to_string(), CHILD_COMMAND.to_string(), memory];
    let child = NativeCommand {
        path: Path::new(SELF_EXE),
        args: &args,
        env: &[],
        timeout: limits.timeout,
        leave_helpers: false,
        // The artifact is built in the child's memory: it cannot be larger.
        output_limit: usize::try_from(limits.memory).unwrap_or(usize::MAX),
    };
    match native::run(&child, bytes) {
        Ok(outcome) => artifact(outcome, limits),
        Err(NativeError::Timeout { .. }) => Err(WasmError::CompileBound(CompileStop::Timeout(
            limits.timeout,
        ))),
        Err(other) => Err(WasmError::CompilerProcess(other)),
    }
}

/// What the child's end says: the artifact, the module's fault, or the bound it passed.
fn artifact(outcome: Outcome, limits: &CompileLimits) -> Result<Vec<u8>, WasmError> {
    let said = crate::pick_output(b"", &outcome.stderr);
    match outcome.exit {
        Exit::Code(0) if !outcome.truncated && outcome.stdout.starts_with(ARTIFACT_MAGIC) => {
            Ok(outcome.stdout)
        }
        Exit::Code(0) => Err(WasmError::CompilerFailed(format!(
            "it wrote no artifact: the executable must answer `{CHILD_COMMAND}`"
        ))),
        Exit::Code(code) if code == i32::from(INVALID_MODULE_EXIT) => {
            Err(WasmError::InvalidModule(said))
        }
        _ if ran_out_of_memory(&said) => {
            Err(WasmError::CompileBound(CompileStop::Memory(limits.memory)))
        }
        exit => Err(WasmError::CompilerFailed(format!("{exit}: {said}"))),
    }
}

/// Whether the child's last words are those of a failed allocation: under `RLIMIT_DATA` the
/// heap, an `mmap` or a new thread's stack is refused.
fn ran_out_of_memory(stderr: &str) -> bool {
    // Rust's allocation failure, Cranelift's, a refused `mmap`, a thread stack refused.
    [
        "memory allocation of",
        "out of memory",
        "Cannot allocate memory",
        "Resource temporarily unavailable",
    ]
    .iter()
    .any(|sign| stderr.contains(sign))
}

fn compile_here(bytes: &[u8]) -> Result<Vec<u8>, WasmError> {
    let compiler = engine::compiler()?;
    Module::validate(compiler, bytes).map_err(|e| WasmError::InvalidModule(format!("{e:#}")))?;
    compiler
        .precompile_module(bytes)
        .map_err(|e| WasmError::InvalidModule(format!("{e:#}")))
}

/// The compiler child (`hookhost __compile-wasm MEMORY_BYTES`): limits its own memory, reads
/// the module from `stdin` and returns the artifact for the caller to write on stdout. On
/// error the caller ends as [`child_failure`] says.
pub fn serve_child(args: &[String], mut stdin: impl Read) -> Result<Vec<u8>, WasmError> {
    let memory: u64 = match args {
        [memory] => memory.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| WasmError::CompilerFailed(format!("usage: {CHILD_COMMAND} MEMORY_BYTES")))?;
    let limit = |resource, value| {
        setrlimit(resource, value, value)
            .map_err(|e| WasmError::CompilerFailed(format!("cannot limit {resource:?}: {e}")))
    };
    limit(Resource::RLIMIT_DATA, memory)?;
    // A crash of the compiler leaves no core file behind.
    limit(Resource::RLIMIT_CORE, 0)?;
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| WasmError::CompilerFailed(format!("cannot read the module: {e}")))?;
    compile_here(&bytes)
}

/// How a failed compiler child ends: its exit status, and what it writes on stderr (for an
/// invalid module the reason alone, which the parent reports as [`WasmError::InvalidModule`]).
pub fn child_failure(error: &WasmError) -> (u8, String) {
    match error {
        WasmError::InvalidModule(reason) => (INVALID_MODULE_EXIT, reason.clone()),
        other => (1, other.to_string()),
    }
}
