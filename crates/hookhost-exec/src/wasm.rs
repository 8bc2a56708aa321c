//! WebAssembly hook execution with wasmtime.
//!
//! A WASM hook follows the same contract as a native one, as a WASI preview-1 command: argv is
//! the hook's args (`args[0]` is argv0), the environment holds only what was passed, stdin is the
//! OCI state, stdout and stderr are captured (bounded, never trapping the guest), and exit code 0
//! (or `proc_exit(0)`) is success. What does not depend on the run (the engine, the WASI
//! linker, each thread's executor) is set up once per process, so a stage of many hooks pays
//! for it once; every run gets a fresh `Store` with three limits:
//!
//! - **fuel**: a deterministic compute budget (`Trap::OutOfFuel`);
//! - **wall clock**: the whole call runs under `tokio::time::timeout`; running guest code yields
//!   to the executor every few fuel units so the timer can fire, and a guest blocked in a host
//!   call (an endless `poll_oneoff` sleep) is stopped the same way;
//! - **memory**: one budget per run for all linear memories, tables and the GC heap together
//!   (a store limiter counts every growth, initial sizes included, and remembers a refusal, so a
//!   guest that then aborts — Rust's allocation failure is an `unreachable` trap — is reported
//!   as having hit the memory limit);
//! - **writes**: one budget per run for the bytes written and the files created through the
//!   guest's writable directories (see `budget`).
//!
//! Compiling is bounded too, before any of this: a module is compiled only in a child process
//! under time and memory bounds ([`compile`]), at registration or when a run misses the cache.
//!
//! The guest sees no host environment, no network and no files but its preopened directories;
//! wasmtime-wasi's capability-based filesystem refuses `..`, absolute paths and symlinks that
//! lead out of a preopen.

mod budget;
mod cache;
pub mod compile;
mod engine;
mod pipe;
pub mod record;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
// They compile modules: with the compiler only.
#[cfg(all(test, feature = "compiler"))]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use thiserror::Error;
use wasmtime::{Engine, InstancePre, Linker, Module, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::limits::{WasmLimits, format_size};
use crate::native::NativeError;
pub use compile::{CompileLimits, CompileStop};
use pipe::BoundedPipe;
pub use record::{Capture, FileRead, Tape};

/// Fuel units between two yields of running guest code to the executor (a fraction of a
/// millisecond of guest work), which bounds how late the wall-clock timeout can fire.
const YIELD_INTERVAL: u64 = 100_000;

/// The WebAssembly binary magic, `\0asm`.
const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// A host directory made visible to the guest at `guest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    pub host: PathBuf,
    pub guest: String,
    pub writable: bool,
}

/// Everything one run needs. Borrowed, so the caller keeps ownership of the hook's data.
#[derive(Debug, Clone)]
pub struct WasmInvocation<'a> {
    /// The module blob in the registry.
    pub module_path: &'a Path,
    /// Registered sha256 (lower-case hex) of the blob. The cache is keyed by it, and the blob is
    /// checked against it whenever it has to be compiled.
    pub digest: &'a str,
    /// Directory of precompiled artifacts (created if missing).
    pub cache_dir: &'a Path,
    /// argv; `args[0]` is argv0.
    pub args: &'a [String],
    /// The guest's entire environment.
    pub env: &'a [(String, String)],
    /// Bytes on the guest's stdin (the OCI state).
    pub stdin: &'a [u8],
    pub preopens: &'a [Preopen],
    pub limits: &'a WasmLimits,
    /// Wall-clock bound on the whole run (the hook's `timeout`), compiling included.
    pub timeout: Duration,
    /// The bounds on compiling the module when its artifact is missing or stale.
    pub compile: CompileLimits,
    /// Bytes kept of stdout, and separately of stderr; the excess is discarded.
    pub output_limit: usize,
}

/// How a run that reached the end of the guest went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmOutcome {
    /// 0 when `_start` returned or the guest called `proc_exit(0)`.
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub fuel_used: u64,
    /// Whether stdout or stderr exceeded `output_limit` and was cut.
    pub truncated: bool,
}

/// Why hookhost stopped a guest before it finished.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    OutOfFuel {
        fuel: u64,
    },
    Timeout {
        timeout: Duration,
    },
    MemoryLimit {
        limit: u64,
    },
    /// It tried to write more than its write budget through its writable directories.
    WriteLimit {
        limit: u64,
    },
    /// It tried to create more than [`budget::MAX_FILES_CREATED`] files.
    FileLimit,
    /// Any other trap (unreachable, out-of-bounds access, stack overflow, …).
    Trap(String),
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Stop::OutOfFuel { fuel } => write!(f, "ran out of fuel ({fuel} units)"),
            Stop::Timeout { timeout } => {
                write!(f, "ran past its timeout of {}s", timeout.as_secs_f64())
            }
            Stop::MemoryLimit { limit } => {
                write!(f, "exceeded its memory limit of {}", format_size(*limit))
            }
            Stop::WriteLimit { limit } => {
                write!(f, "exceeded its write limit of {}", format_size(*limit))
            }
            Stop::FileLimit => write!(
                f,
                "exceeded its limit of {} files created",
                budget::MAX_FILES_CREATED
            ),
            Stop::Trap(msg) => write!(f, "trapped: {msg}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum WasmError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("not a WebAssembly module (no \\0asm magic)")]
    NotWasm,
    #[error("invalid WebAssembly module: {0}")]
    InvalidModule(String),
    #[error("not a WASI command module: {0}")]
    NotACommand(String),
    #[error("cannot write the compiled module to {path}: {source}")]
    WriteCache {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read module {path}: {source}")]
    ReadModule {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "module {path} does not match its registered digest: expected sha256 {expected}, found {actual}"
    )]
    DigestMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("invalid module digest {0:?}: expected 64 lower-case hex digits")]
    BadDigest(String),
    #[error("cannot give the guest {guest} (host {host}): {reason}")]
    Preopen {
        host: PathBuf,
        guest: String,
        reason: String,
    },
    #[error("cannot start the WebAssembly runtime: {0}")]
    Runtime(String),
    /// Compiling passed its time or memory bound (see [`compile`]).
    #[error("compiling the module {0}")]
    CompileBound(CompileStop),
    /// The compiler child could not be run.
    #[error("cannot run the compiler process")]
    CompilerProcess(#[source] NativeError),
    /// The compiler child failed for another reason than the module or a bound.
    #[error("the compiler process failed: {0}")]
    CompilerFailed(String),
    /// WASI passes C strings: a NUL would silently cut the value.
    #[error(
        "argument or environment value {value:?} holds a NUL byte, which a hook cannot receive"
    )]
    Nul { value: String },
    /// The module or the compile cache is writable by others.
    #[error(transparent)]
    Untrusted(#[from] crate::fs::Untrusted),
    /// The guest was stopped; whatever it wrote before is kept for the report.
    #[error("{stop}")]
    Stopped {
        stop: Stop,
        stdout: Vec<u8>,
        stderr: Vec<u8>,
        fuel_used: u64,
    },
}

/// Whether `bytes` start with the WebAssembly magic (how `create` tells a module from an
/// executable, whatever the file is called).
pub fn is_wasm(bytes: &[u8]) -> bool {
    bytes.starts_with(WASM_MAGIC)
}

/// Create-time: checks that `bytes` are a valid module and a WASI command (exports `_start`,
/// imports only WASI preview-1 functions hookhost provides), and stores the precompiled
/// artifact in `cache_dir`, so the first run is fast. Compiling is bounded by `limits`
/// ([`compile`]). Returns the module's sha256 (hex), its registry key.
pub fn precompile(
    bytes: &[u8],
    cache_dir: &Path,
    limits: &CompileLimits,
) -> Result<String, WasmError> {
    if !is_wasm(bytes) {
        return Err(WasmError::NotWasm);
    }
    let digest = crate::fs::sha256_hex(bytes);
    let module = cache::precompile(bytes, &digest, cache_dir, limits)?;
    check_command(&module)?;
    Ok(digest)
}

/// Makes sure `cache_dir` holds a verified artifact of the module at `module_path` for this
/// hookhost build, compiling it under `limits` when it does not; returns whether it compiled
/// (what `hookhost recompile` runs after an upgrade).
pub fn ensure_compiled(
    module_path: &Path,
    digest: &str,
    cache_dir: &Path,
    limits: &CompileLimits,
) -> Result<bool, WasmError> {
    cache::ensure(module_path, digest, cache_dir, limits)
}

/// Removes the artifacts of other hookhost builds (another wasmtime version, architecture or
/// engine settings) from `cache_dir`: no build of hookhost but theirs can load them. Returns
/// how many files went.
pub fn remove_foreign_artifacts(cache_dir: &Path) -> std::io::Result<usize> {
    cache::remove_foreign(cache_dir)
}

/// Runs the hook to completion or until a limit stops it. A module whose artifact is missing
/// or stale is compiled first, under `inv.compile`; the run gets what is left of its timeout.
pub fn run(inv: &WasmInvocation<'_>) -> Result<WasmOutcome, WasmError> {
    run_captured(inv, Capture::Off).0
}

/// [`run`], recording what the guest read besides its explicit inputs (clocks, random
/// numbers, granted files) or feeding back a recorded [`Tape`] ([`record`]). The tape is
/// returned when recording (also when the guest was stopped), and when replaying ran past it.
pub fn run_captured(
    inv: &WasmInvocation<'_>,
    capture: Capture,
) -> (Result<WasmOutcome, WasmError>, Option<Tape>) {
    let grants = inv
        .preopens
        .iter()
        .map(|p| record::Grant {
            host: p.host.clone(),
            guest: p.guest.clone(),
        })
        .collect();
    let recorder = record::Recorder::new(capture, grants);
    let mut tape = None;
    let result = run_with(inv, recorder, &mut tape);
    (result, tape)
}

fn run_with(
    inv: &WasmInvocation<'_>,
    recorder: record::Recorder,
    tape: &mut Option<Tape>,
) -> Result<WasmOutcome, WasmError> {
    let started = std::time::Instant::now();
    let engine = engine::runtime()?;
    let pre = instance_pre(inv)?;
    let left = inv.timeout.saturating_sub(started.elapsed());

    let stdout = BoundedPipe::new(inv.output_limit);
    let stderr = BoundedPipe::new(inv.output_limit);
    let wasi = wasi_context(inv, &stdout, &stderr)?;
    let mut store = new_store(engine, wasi, inv.limits, recorder)?;

    // A guest that timed out may leave blocking filesystem tasks behind: nobody waits for them
    // (the executor is never shut down), they end on their own.
    let result = executor()?.block_on(async {
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        tokio::time::timeout(left, call).await
    });

    let fuel_used = inv.limits.fuel - store.get_fuel().unwrap_or(0);
    let ending = classify(result, &store, inv);
    *tape = std::mem::take(&mut store.data_mut().recorder).finish();
    retire(store);
    let (stdout, out_cut) = stdout.take();
    let (stderr, err_cut) = stderr.take();
    match ending {
        Ok(exit_code) => Ok(WasmOutcome {
            exit_code,
            stdout,
            stderr,
            fuel_used,
            truncated: out_cut || err_cut,
        }),
        Err(stop) => Err(WasmError::Stopped {
            stop,
            stdout,
            stderr,
            fuel_used,
        }),
    }
}

/// Stores of finished runs whose teardown waits (see [`defer_teardown`]), and the memory and
/// table bytes they hold.
static RETIRED: Mutex<(Vec<Store<Host>>, usize)> = Mutex::new((Vec::new(), 0));
/// Whether finished runs' stores go to [`RETIRED`] instead of being torn down at once.
static DEFER_TEARDOWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The most stores kept waiting for their teardown in a process without a pool (with one,
/// half the pool); past it, a run's store is torn down at once.
pub const MAX_RETIRED: usize = 64;

/// The most memory and table bytes (as each run's memory limit counts them) the waiting
/// stores may hold together: a run holding more is torn down at once, so that deferring never
/// makes a process hold several hooks' memory limits where it held one before.
pub const MAX_RETIRED_BYTES: usize = 32 << 20;

/// From now on, a finished run's store (its instance, linear memory and stack: with the
/// pooling allocator, a slot to decommit; without, a reservation to unmap — most of a trivial
/// run's time) is not torn down when the run ends but kept until [`teardown_retired`], up to
/// [`MAX_RETIRED`] of them (half the pool in a pooled process) holding at most
/// [`MAX_RETIRED_BYTES`] together: what the run returns is
/// complete without it. The NRI plugin tears them down after answering the runtime; a one-shot
/// stage process never does, leaving them to its exit, which frees the whole address space at
/// once.
pub fn defer_teardown() {
    DEFER_TEARDOWN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Tears down the stores of the runs that ended since the last call (see [`defer_teardown`]).
pub fn teardown_retired() {
    let retired = std::mem::take(&mut *RETIRED.lock().unwrap_or_else(PoisonError::into_inner));
    drop(retired);
}

/// How many finished runs' stores wait for their teardown.
pub fn retired() -> usize {
    RETIRED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .0
        .len()
}

/// Ends a finished run's store: now, or later when teardown is deferred.
fn retire(store: Store<Host>) {
    if !DEFER_TEARDOWN.load(std::sync::atomic::Ordering::Relaxed) {
        return drop(store);
    }
    let bytes = store.data().memory.used;
    let mut retired = RETIRED.lock().unwrap_or_else(PoisonError::into_inner);
    let (stores, held) = &mut *retired;
    match stores.len() < engine::retired_limit() && *held + bytes <= MAX_RETIRED_BYTES {
        true => {
            stores.push(store);
            *held += bytes;
        }
        false => {
            drop(retired);
            drop(store);
        }
    }
}

/// Modules a long-lived process keeps loaded ([`keep_loaded`]), pre-linked with the WASI
/// functions, by cache directory and digest. A digest names the module's bytes, so an entry
/// never goes stale; what a run may do is decided per run (its store, limits and preopens).
type Resident = Mutex<HashMap<(PathBuf, String), InstancePre<Host>>>;
static RESIDENT: OnceLock<Resident> = OnceLock::new();

/// The most modules kept loaded; past it the set is emptied and fills again with what runs.
const MAX_RESIDENT: usize = 256;

/// For a long-lived process (the NRI plugin): from now on keep every module a run loads,
/// pre-linked (wasmtime's `InstancePre`), so that the next run of the same module only
/// instantiates it — no artifact read, checksum or linking. A one-shot process (a stage) does
/// not call this: it runs each module once.
pub fn keep_loaded() {
    engine::pool_instances();
    RESIDENT.get_or_init(Resident::default);
}

/// The module of `inv`, pre-linked: kept from an earlier run, or loaded (compiled when its
/// artifact is missing or stale) and then kept if this process keeps modules.
fn instance_pre(inv: &WasmInvocation<'_>) -> Result<InstancePre<Host>, WasmError> {
    let key = (inv.cache_dir.to_path_buf(), inv.digest.to_string());
    let resident = RESIDENT.get();
    let lock = |r: &'static Resident| r.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(pre) = resident.and_then(|r| lock(r).get(&key).cloned()) {
        return Ok(pre);
    }
    check_files(inv.module_path, inv.cache_dir)?;
    let module = cache::load_or_compile(inv.module_path, inv.digest, inv.cache_dir, &inv.compile)?;
    let pre = wasi_linker()?
        .instantiate_pre(&module)
        .map_err(|e| WasmError::NotACommand(format!("{e:#}")))?;
    if let Some(resident) = resident {
        let mut kept = lock(resident);
        if kept.len() >= MAX_RESIDENT {
            kept.clear();
        }
        kept.insert(key, pre.clone());
    }
    Ok(pre)
}

/// The module and the compile cache decide what code runs: refuse them when another user could
/// have written them (a missing one is reported by the load itself). Checked whenever they are
/// read; a module kept loaded is not read again, so it is not checked again.
fn check_files(module: &Path, cache_dir: &Path) -> Result<(), WasmError> {
    for path in [module, cache_dir] {
        if path.exists() {
            crate::fs::check_trusted_path(path)?;
        }
    }
    Ok(())
}

/// Store data: the WASI context, the memory limiter and the write budget.
struct Host {
    wasi: WasiP1Ctx,
    memory: MemoryGuard,
    budget: budget::WriteBudget,
    recorder: record::Recorder,
}

/// One memory budget for the whole instance: every linear memory (multi-memory is on, so a
/// module may declare many), the GC heap (wasmtime backs it with a linear memory, which grows
/// through the same hook) and every table (counted at [`TABLE_ELEMENT_BYTES`] per element) draw
/// from it, initial sizes included. A refused growth is recorded, so a trap that follows it (a
/// Rust guest aborts on allocation failure) is reported as the memory limit, not a crash.
struct MemoryGuard {
    limit: usize,
    used: usize,
    denied: bool,
}

/// What one table element is counted as: a pointer-sized reference, the largest element
/// wasmtime stores (funcref tables hold a pointer per element, GC references are smaller).
const TABLE_ELEMENT_BYTES: usize = 8;

/// At most this many memories, tables and instances per run (wasmtime's default is 10,000
/// each): a hook is one module, and each memory reserves address space even when empty.
const MAX_MEMORIES: usize = 100;
const MAX_TABLES: usize = 100;

impl MemoryGuard {
    /// Grants `growth` more bytes from the budget, or records the refusal.
    fn grow(&mut self, growth: usize) -> bool {
        match self.used.checked_add(growth) {
            Some(total) if total <= self.limit => {
                self.used = total;
                true
            }
            _ => {
                self.denied = true;
                false
            }
        }
    }
}

impl ResourceLimiter for MemoryGuard {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        Ok(self.grow(desired.saturating_sub(current)))
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|max| desired > max) {
            return Ok(false);
        }
        let growth = desired.saturating_sub(current);
        Ok(self.grow(growth.saturating_mul(TABLE_ELEMENT_BYTES)))
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }
}

/// The WASI preview-1 functions bound for the runtime engine, once per process: binding all
/// of them (~50 host functions) costs more than loading a small module, and every run and every
/// module needs the same set. Runs share it; each still gets its own `Store`. The writing
/// functions are wrapped by the write budget ([`budget`]).
fn wasi_linker() -> Result<&'static Linker<Host>, WasmError> {
    static LINKER: OnceLock<Result<Linker<Host>, String>> = OnceLock::new();
    let base = wasi_base()?;
    LINKER
        .get_or_init(|| {
            budget::shadow(base)
                .and_then(|mut linker| record::shadow(&mut linker).map(|()| linker))
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|reason| WasmError::Engine(reason.clone()))
}

/// wasmtime-wasi's own preview-1 functions, which the budget's wrappers call.
fn wasi_base() -> Result<&'static Linker<Host>, WasmError> {
    static LINKER: OnceLock<Result<Linker<Host>, String>> = OnceLock::new();
    let engine = engine::runtime()?;
    LINKER
        .get_or_init(|| {
            let mut linker = Linker::new(engine);
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |host: &mut Host| &mut host.wasi)
                .map(|()| linker)
                .map_err(|e| format!("{e:#}"))
        })
        .as_ref()
        .map_err(|reason| WasmError::Engine(reason.clone()))
}

/// The executor runs are driven on: one current-thread runtime per thread, built on first use
/// and then reused by every run on that thread. It is never dropped, because dropping a runtime
/// waits for its blocking tasks, such as a file read a timed-out guest left behind.
fn executor() -> Result<&'static tokio::runtime::Runtime, WasmError> {
    thread_local! {
        static EXECUTOR: Result<&'static tokio::runtime::Runtime, String> =
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map(|runtime| &*Box::leak(Box::new(runtime)))
                .map_err(|e| e.to_string());
    }
    EXECUTOR.with(|executor| executor.clone().map_err(WasmError::Runtime))
}

/// A command exports `_start: () -> ()` and imports nothing hookhost does not provide.
fn check_command(module: &Module) -> Result<(), WasmError> {
    let start = module
        .get_export("_start")
        .and_then(|export| export.func().cloned())
        .ok_or_else(|| WasmError::NotACommand("it exports no `_start` function".into()))?;
    if start.params().len() != 0 || start.results().len() != 0 {
        return Err(WasmError::NotACommand(
            "`_start` must take and return nothing".into(),
        ));
    }
    wasi_linker()?
        .instantiate_pre(module)
        .map(drop)
        .map_err(|e| WasmError::NotACommand(format!("{e:#}")))
}

fn wasi_context(
    inv: &WasmInvocation<'_>,
    stdout: &BoundedPipe,
    stderr: &BoundedPipe,
) -> Result<WasiP1Ctx, WasmError> {
    let strings = inv
        .args
        .iter()
        .chain(inv.env.iter().flat_map(|(k, v)| [k, v]));
    if let Some(bad) = strings.into_iter().find(|s| s.contains('\0')) {
        return Err(WasmError::Nul {
            value: bad.chars().take(40).collect(),
        });
    }
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(inv.args)
        .envs(inv.env)
        .stdin(MemoryInputPipe::new(inv.stdin.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone());
    for preopen in inv.preopens {
        let perms = if preopen.writable {
            FsPerms::ReadWrite
        } else {
            FsPerms::ReadOnly
        };
        builder
            .preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| WasmError::Preopen {
                host: preopen.host.clone(),
                guest: preopen.guest.clone(),
                reason: format!("{e:#}"),
            })?;
    }
    Ok(builder.build_p1())
}

fn new_store(
    engine: &Engine,
    wasi: WasiP1Ctx,
    limits: &WasmLimits,
    recorder: record::Recorder,
) -> Result<Store<Host>, WasmError> {
    let memory = MemoryGuard {
        limit: usize::try_from(limits.memory).unwrap_or(usize::MAX),
        used: 0,
        denied: false,
    };
    let budget = budget::WriteBudget::new(limits.writes);
    let mut store = Store::new(
        engine,
        Host {
            wasi,
            memory,
            budget,
            recorder,
        },
    );
    store.limiter(|host| &mut host.memory);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    // Running guest code yields to the executor regularly, so the outer tokio timeout can fire
    // without a ticker thread (which cost a thread start per run).
    store
        .fuel_async_yield_interval(Some(YIELD_INTERVAL))
        .map_err(|e| WasmError::Engine(format!("{e:#}")))?;
    Ok(store)
}

/// Maps the end of a run to an exit code or the reason the guest was stopped.
fn classify(
    result: Result<wasmtime::Result<()>, tokio::time::error::Elapsed>,
    store: &Store<Host>,
    inv: &WasmInvocation<'_>,
) -> Result<i32, Stop> {
    let timeout = Stop::Timeout {
        timeout: inv.timeout,
    };
    let error = match result {
        Err(_elapsed) => return Err(timeout),
        Ok(Ok(())) => return Ok(0),
        Ok(Err(error)) => error,
    };
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    match store.data().budget.exceeded {
        Some(budget::Exceeded::Bytes) => {
            return Err(Stop::WriteLimit {
                limit: inv.limits.writes,
            });
        }
        Some(budget::Exceeded::Files) => return Err(Stop::FileLimit),
        None => {}
    }
    if error.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return Err(Stop::OutOfFuel {
            fuel: inv.limits.fuel,
        });
    }
    if store.data().memory.denied {
        return Err(Stop::MemoryLimit {
            limit: inv.limits.memory,
        });
    }
    Err(Stop::Trap(format!("{error:#}")))
}
