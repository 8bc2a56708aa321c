//! hookhost's two wasmtime engines and the fingerprint that keys the artifact cache.
//!
//! - The **compiler** engine (Cranelift) validates and precompiles modules: at `create`, and
//!   again only when a cached artifact is missing or refused.
//! - The **runtime** engine has no compiler (`Config::enable_compiler(false)`) and only loads
//!   precompiled artifacts. Every hook run uses it: building Cranelift's ISA (probing the host
//!   CPU, hashing its settings) is paid on every container start otherwise, although nothing is
//!   compiled then.
//!
//! Both are built from the same [`config`], so an artifact of the one loads in the other. When
//! it loads an artifact, wasmtime checks it against the runtime engine (wasmtime version,
//! settings, the host CPU's features) and refuses a mismatch, which the cache treats as a miss.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, ModuleVersionStrategy, PoolingAllocationConfig,
};

use super::WasmError;

/// Names the settings of [`config`] in the cache fingerprint: change it whenever `config`
/// changes, so artifacts of the old settings are not even looked at.
const SETTINGS: &str = "consume_fuel,no_native_unwind_info";

#[cfg(feature = "compiler")]
static COMPILER: OnceLock<Result<Engine, String>> = OnceLock::new();
static RUNTIME: OnceLock<Result<Engine, String>> = OnceLock::new();
static FINGERPRINT: OnceLock<String> = OnceLock::new();
/// Whether the runtime engine keeps instances' memories, tables and stacks in a pool.
static POOLED: AtomicBool = AtomicBool::new(false);

/// For a long-lived process, before its first run: the runtime engine takes each instance's
/// memories, tables and async stack from a pool reserved once, and gives them back reset,
/// instead of mapping a 4 GiB reservation and a fiber stack for every run and unmapping them
/// after (an `munmap` that interrupts every core to flush its TLB). A one-shot stage runs a
/// few instances and would pay for reserving the pool instead. Artifacts are the same either
/// way (wasmtime: "usage of the pooling allocator does not affect compiled code").
pub(crate) fn pool_instances() {
    POOLED.store(true, Ordering::Relaxed);
}

/// The pool of a long-lived process. Sized so that no module the on-demand engine runs is
/// refused for the pool's sake: the limiter ([`super::MemoryGuard`]) still decides how much
/// memory and how many table elements a run may have; the pool only bounds how many
/// instances live at once (the NRI plugin runs one at a time) and what one instance may hold.
fn pool() -> PoolingAllocationConfig {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(POOL_INSTANCES)
        .total_stacks(POOL_INSTANCES)
        .total_gc_heaps(POOL_INSTANCES)
        .max_memories_per_module(POOL_PER_MODULE)
        .total_memories(POOL_INSTANCES * POOL_PER_MODULE)
        .max_tables_per_module(POOL_PER_MODULE)
        .total_tables(POOL_INSTANCES * POOL_PER_MODULE)
        .table_elements(POOL_TABLE_ELEMENTS)
        .max_core_instance_size(POOL_INSTANCE_SIZE)
        // A table's first bytes are zeroed for the next instance instead of decommitted: a
        // Rust guest's table is one page, and zeroing it costs less than the `madvise` (a
        // system call, with its TLB flush) each run paid for it.
        .table_keep_resident(POOL_TABLE_RESIDENT);
    pool
}

/// Instances alive at once in a pooled process.
const POOL_INSTANCES: u32 = 16;

/// How many finished runs' stores may wait for their teardown ([`super::defer_teardown`]): in
/// a pooled process, half the pool, so that the waiting ones never take the slots a run needs.
pub(crate) fn retired_limit() -> usize {
    match POOLED.load(Ordering::Relaxed) {
        true => POOL_INSTANCES as usize / 2,
        false => super::MAX_RETIRED,
    }
}

/// Linear memories, and tables, one module may define.
const POOL_PER_MODULE: u32 = 8;
/// Elements one table may hold (each is a reserved pointer, virtual memory only).
const POOL_TABLE_ELEMENTS: usize = 1 << 20;
/// Bytes of each table zeroed rather than decommitted when its instance ends.
const POOL_TABLE_RESIDENT: usize = 16 << 10;
/// Bytes of one instance's `VMContext` (wasmtime's default is 1 MiB).
const POOL_INSTANCE_SIZE: usize = 16 << 20;

/// The configuration every hookhost engine uses.
fn config() -> Config {
    let mut config = Config::new();
    // Deterministic compute budget per run.
    config.consume_fuel(true);
    // No `.eh_frame` for the system's unwinder in artifacts. wasmtime captures its own
    // backtraces without it, and it only serves outside stack walkers (a profiler, a debugger);
    // registering it costs every module load, and with the LLVM unwinder of the stage
    // executable (musl) it parses every function's entry at once.
    config.native_unwind_info(false);
    // The wall-clock bound needs no epochs: guests yield to the async executor on fuel.
    // Linear memory is capped per store by the limiter; keep Wasmtime's other defaults, which
    // are the same as the `wasmtime run` CLI's.
    config
}

fn build(
    cell: &'static OnceLock<Result<Engine, String>>,
    compiler: bool,
) -> Result<&'static Engine, WasmError> {
    cell.get_or_init(|| {
        let mut config = config();
        // A build without the `compiler` feature has no compiler to turn off.
        #[cfg(feature = "compiler")]
        config.enable_compiler(compiler);
        if !compiler && POOLED.load(Ordering::Relaxed) {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool()));
        }
        Engine::new(&config).map_err(|e| format!("{e:#}"))
    })
    .as_ref()
    .map_err(|e| WasmError::Engine(e.clone()))
}

/// The engine that compiles modules into artifacts.
#[cfg(feature = "compiler")]
pub(crate) fn compiler() -> Result<&'static Engine, WasmError> {
    build(&COMPILER, true)
}

/// The engine that loads artifacts and runs hooks.
pub(crate) fn runtime() -> Result<&'static Engine, WasmError> {
    build(&RUNTIME, false)
}

/// 16 hex digits naming the wasmtime version, the target architecture and hookhost's engine
/// settings: part of every cache file name, so two hookhost builds never take each other's
/// artifacts for their own. Computed without building Cranelift.
pub(crate) fn fingerprint() -> &'static str {
    FINGERPRINT.get_or_init(|| {
        let mut hasher = Sha256Hasher(Sha256::new());
        ModuleVersionStrategy::WasmtimeVersion.hash(&mut hasher);
        std::env::consts::ARCH.hash(&mut hasher);
        SETTINGS.hash(&mut hasher);
        hex::encode(hasher.0.finalize())[..16].to_string()
    })
}

/// Feeds `Hash` output into sha256 so the fingerprint is stable across processes and Rust
/// versions (std's `DefaultHasher` promises neither).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        // Not used: the full digest is read from the inner state instead.
        0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}
