//! Compiling a module, bounded in time and memory.
//!
//! Cranelift cannot be interrupted, and what it costs depends on the module's shape, not its
//! size: a 140 KB module of 20,000 nested loops took 65 s and 245 MB (quadratic). Fuel,
//! the hook's timeout and its memory limit bound only the guest's run, so hookhost compiles in
//! a **child process**: the running executable itself (`/proc/self/exe`, the very build that
//! will load the artifact, even when an upgrade has replaced the file since; for the stage
//! executable, which has no compiler, the trusted `hookhost` installed beside it, whose
//! artifact wasmtime refuses at load if its version or settings differ) re-executed with
//! [`CHILD_COMMAND`] and an empty environment. Before reading anything the child sets its own
//! `RLIMIT_DATA` (heap and every private writable mapping, not the executable's text) to the
//! memory bound and `RLIMIT_CPU` to the CPU-time bound; then it reads the module on stdin,
//! validates and compiles it, and writes the artifact on stdout. The parent runs it as a
//! native hook (its own process group, owned by a guard that kills it if hookhost dies),
//! kills it at the wall-clock bound, checks that it wrote an artifact, and stores and loads it
//! itself.
//!
//! The child is started only when the cache has no artifact: at `create`, `pull`, `apply`,
//! `import` and `recompile` under the registration bounds ([`CompileLimits::registration`],
//! from hookhost's config file), and at a stage under bounds the caller derives from the hook
//! (hookhost-core: its timeout on the wall clock, and at least the default memory bound).
//! The registration bound is CPU time, which does not depend on how busy the node is (on a
//! loaded node here a 2 MB module took 9.9 s on the wall clock for 3.5 s of CPU), so the same
//! module is accepted or refused on every node; the wall clock only backs it up.
//!
//! A program that links this crate and compiles modules must answer [`CHILD_COMMAND`] in its
//! `main` with [`serve_child`]; tests, whose executable cannot, call
//! [`compile_in_this_process`] instead (no bound).

use std::io::Read;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::resource::{Resource, setrlimit};
use nix::sys::signal::Signal;

use super::WasmError;
use crate::limits::format_size;
use crate::native::{self, NativeCommand, NativeError};
use crate::{Exit, Outcome};

/// The hidden first argument that makes hookhost's executable a compiler child:
/// `hookhost __compile-wasm MEMORY_BYTES CPU_SECONDS`, module on stdin, artifact on stdout.
pub const CHILD_COMMAND: &str = "__compile-wasm";

/// The child's exit status for a module that is not valid (its stderr says why).
pub const INVALID_MODULE_EXIT: u8 = 65;

/// How every artifact begins: wasmtime writes ELF files.
const ARTIFACT_MAGIC: &[u8] = b"\x7fELF";

/// The executable the child re-executes: this very process's image.
const SELF_EXE: &str = "/proc/self/exe";

/// Default registration bound on compile time: 10 s of CPU time.
pub const DEFAULT_COMPILE_CPU_SECS: u64 = 10;

/// Default registration bound on compile memory: 512 MiB.
pub const DEFAULT_COMPILE_MEMORY: u64 = 512 << 20;

/// How much longer than its CPU-time bound a compiler may take on the wall clock (a busy node
/// starves it), and at least how long.
const WALL_PER_CPU: u32 = 6;
const MIN_WALL: Duration = Duration::from_secs(60);

/// Bounds on one compilation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileLimits {
    /// CPU time (all the compiler's threads together, `RLIMIT_CPU`), in whole seconds; `None`
    /// for the wall clock alone.
    pub cpu_secs: Option<u64>,
    /// Wall-clock time; the child is killed with its process group when it runs past it.
    pub wall: Duration,
    /// The child's `RLIMIT_DATA`, in bytes.
    pub memory: u64,
}

impl CompileLimits {
    /// The registration bounds: `cpu_secs` of CPU time, which does not depend on how busy the
    /// node is, and a wall-clock backstop of six times that (at least a minute).
    pub fn registration(cpu_secs: u64, memory: u64) -> Self {
        let cpu = Duration::from_secs(cpu_secs);
        CompileLimits {
            cpu_secs: Some(cpu_secs),
            wall: cpu.saturating_mul(WALL_PER_CPU).max(MIN_WALL),
            memory,
        }
    }
}

impl Default for CompileLimits {
    fn default() -> Self {
        CompileLimits::registration(DEFAULT_COMPILE_CPU_SECS, DEFAULT_COMPILE_MEMORY)
    }
}

/// Which bound a compilation passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompileStop {
    /// It used more CPU time than its bound (seconds) and was killed.
    CpuTime(u64),
    /// It ran past its wall-clock bound and was killed.
    Timeout(Duration),
    /// It needed more memory than its bound.
    Memory(u64),
}

impl std::fmt::Display for CompileStop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CompileStop::CpuTime(secs) => write!(
                f,
                "used more than its bound of {secs}s of CPU time and was stopped"
            ),
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

/// The file name of the executable, beside this process's own, that is re-executed as the
/// compiler child instead of this process's image.
static COMPILER_BESIDE: OnceLock<&'static str> = OnceLock::new();

/// Compile with the executable named `file_name` in this executable's directory (which must
/// answer [`CHILD_COMMAND`]) instead of re-executing this process's image: for an executable
/// built without the `compiler` feature, installed beside the hookhost that has it. Where it
/// is is looked up only when a module must be compiled. wasmtime refuses an artifact of
/// another version when it is loaded, and the cache takes that for a miss. The first call wins.
pub fn use_compiler_beside(file_name: &'static str) {
    let _ = COMPILER_BESIDE.set(file_name);
}

/// The executable the compiler child runs: this process's image, or the one beside it,
/// which must pass the trust check every hook file passes (its artifact is loaded as code).
fn compiler_executable() -> Result<PathBuf, WasmError> {
    let Some(name) = COMPILER_BESIDE.get() else {
        return Ok(PathBuf::from(SELF_EXE));
    };
    let exe = std::env::current_exe()
        .map(|me| me.with_file_name(name))
        .map_err(|e| {
            WasmError::CompilerFailed(format!("cannot find this executable's directory: {e}"))
        })?;
    crate::fs::check_trusted_path(&exe).map_err(|e| {
        WasmError::CompilerFailed(format!("the compiler {} is not used: {e}", exe.display()))
    })?;
    Ok(exe)
}

/// Validates and compiles `bytes` under `limits`; returns the artifact.
pub(crate) fn compile(bytes: &[u8], limits: &CompileLimits) -> Result<Vec<u8>, WasmError> {
    if IN_THIS_PROCESS.load(Ordering::Relaxed) {
        return compile_here(bytes);
    }
    let args = [
        "hookhost".to_string(),
        CHILD_COMMAND.to_string(),
        limits.memory.to_string(),
        limits.cpu_secs.unwrap_or(0).to_string(),
    ];
    let exe = compiler_executable()?;
    let child = NativeCommand {
        path: &exe,
        args: &args,
        env: &[],
        timeout: limits.wall,
        leave_helpers: false,
        // The artifact is built in the child's memory: it cannot be larger.
        output_limit: usize::try_from(limits.memory).unwrap_or(usize::MAX),
    };
    match native::run(&child, bytes) {
        Ok(outcome) => artifact(outcome, limits),
        Err(NativeError::Timeout { .. }) => {
            Err(WasmError::CompileBound(CompileStop::Timeout(limits.wall)))
        }
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
        Exit::Signal(signal) if signal == Signal::SIGXCPU as i32 => Err(WasmError::CompileBound(
            CompileStop::CpuTime(limits.cpu_secs.unwrap_or(0)),
        )),
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

#[cfg(feature = "compiler")]
fn compile_here(bytes: &[u8]) -> Result<Vec<u8>, WasmError> {
    use super::engine;
    use wasmtime::Module;
    let compiler = engine::compiler()?;
    Module::validate(compiler, bytes).map_err(|e| WasmError::InvalidModule(format!("{e:#}")))?;
    compiler
        .precompile_module(bytes)
        .map_err(|e| WasmError::InvalidModule(format!("{e:#}")))
}

/// A build without Cranelift compiles nothing itself: its modules are compiled by the child
/// named by [`use_compiler_beside`].
#[cfg(not(feature = "compiler"))]
fn compile_here(_bytes: &[u8]) -> Result<Vec<u8>, WasmError> {
    Err(WasmError::CompilerFailed(
        "this executable was built without a compiler (the `compiler` feature)".to_string(),
    ))
}

/// The compiler child (`hookhost __compile-wasm MEMORY_BYTES CPU_SECONDS`, 0 seconds for no
/// CPU bound): limits its own memory and CPU time, reads the module from `stdin` and returns
/// the artifact for the caller to write on stdout. On error the caller ends as
/// [`child_failure`] says.
pub fn serve_child(args: &[String], mut stdin: impl Read) -> Result<Vec<u8>, WasmError> {
    let (memory, cpu_secs) = match args {
        [memory, cpu] => (memory.parse().ok(), cpu.parse::<u64>().ok()),
        _ => (None, None),
    };
    let (Some(memory), Some(cpu_secs)) = (memory, cpu_secs) else {
        return Err(WasmError::CompilerFailed(format!(
            "usage: {CHILD_COMMAND} MEMORY_BYTES CPU_SECONDS"
        )));
    };
    limit(Resource::RLIMIT_DATA, memory, memory)?;
    if cpu_secs > 0 {
        // SIGXCPU at the bound; SIGKILL a second later should it be caught.
        limit(Resource::RLIMIT_CPU, cpu_secs, cpu_secs.saturating_add(1))?;
    }
    // A crash of the compiler leaves no core file behind.
    limit(Resource::RLIMIT_CORE, 0, 0)?;
    let mut bytes = Vec::new();
    stdin
        .read_to_end(&mut bytes)
        .map_err(|e| WasmError::CompilerFailed(format!("cannot read the module: {e}")))?;
    compile_here(&bytes)
}

fn limit(resource: Resource, soft: u64, hard: u64) -> Result<(), WasmError> {
    setrlimit(resource, soft, hard)
        .map_err(|e| WasmError::CompilerFailed(format!("cannot limit {resource:?}: {e}")))
}

/// How a failed compiler child ends: its exit status, and what it writes on stderr (for an
/// invalid module the reason alone, which the parent reports as [`WasmError::InvalidModule`]).
pub fn child_failure(error: &WasmError) -> (u8, String) {
    match error {
        WasmError::InvalidModule(reason) => (INVALID_MODULE_EXIT, reason.clone()),
        other => (1, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(exit: Exit, stdout: &[u8], stderr: &str) -> Result<Vec<u8>, WasmError> {
        let outcome = Outcome {
            exit,
            stdout: stdout.to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            truncated: false,
            duration: Duration::ZERO,
            fuel_used: None,
        };
        artifact(outcome, &CompileLimits::registration(3, 8 << 20))
    }

    /// How the parent reads the child's end: every way it can end names its cause.
    #[test]
    fn the_childs_end_is_read_as_artifact_fault_or_bound() {
        assert_eq!(
            ended(Exit::Code(0), b"\x7fELF...", "").unwrap(),
            b"\x7fELF..."
        );
        let cases = [
            (Exit::Code(0), "", "it wrote no artifact"),
            (
                Exit::Code(65),
                "type mismatch",
                "invalid WebAssembly module: type mismatch",
            ),
            (
                Exit::Signal(Signal::SIGXCPU as i32),
                "",
                "compiling the module used more than its bound of 3s of CPU time",
            ),
            (
                Exit::Signal(6),
                "memory allocation of 2401200 bytes failed",
                "compiling the module needed more than its memory bound of 8 MiB",
            ),
            (
                Exit::Code(101),
                "unhandled out-of-memory error: out of memory (failed to allocate 4097 bytes)",
                "needed more than its memory bound of 8 MiB",
            ),
            (
                Exit::Code(101),
                "ThreadPoolBuildError { kind: IOError(Os { code: 11, message: \
                 \"Resource temporarily unavailable\" }) }",
                "needed more than its memory bound of 8 MiB",
            ),
            (
                Exit::Code(101),
                "\x1b[2Jsomething else",
                "the compiler process failed: exit status 101: \\u{1b}[2Jsomething else",
            ),
        ];
        for (exit, stderr, want) in cases {
            let err = ended(exit, b"", stderr).unwrap_err().to_string();
            assert!(err.contains(want), "{exit}: {err}");
        }
    }

    #[test]
    fn the_child_refuses_bad_arguments() {
        let err = serve_child(&["lots".into()], &b""[..]).unwrap_err();
        assert!(err.to_string().contains("usage: __compile-wasm"), "{err}");
        assert_eq!(child_failure(&err).0, 1);
        let invalid = WasmError::InvalidModule("bad".into());
        assert_eq!(child_failure(&invalid), (INVALID_MODULE_EXIT, "bad".into()));
    }
}
