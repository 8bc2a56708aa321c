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

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine, ModuleVersionStrategy};

use super::WasmError;

/// Names the settings of [`config`] in the cache fingerprint: change it whenever `config`
/// changes, so artifacts of the old settings are not even looked at.
const SETTINGS: &str = "consume_fuel";

static COMPILER: OnceLock<Result<Engine, String>> = OnceLock::new();
static RUNTIME: OnceLock<Result<Engine, String>> = OnceLock::new();
static FINGERPRINT: OnceLock<String> = OnceLock::new();

/// The configuration every hookhost engine uses.
fn config() -> Config {
    let mut config = Config::new();
    // Deterministic compute budget per run.
    config.consume_fuel(true);
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
        config.enable_compiler(compiler);
        Engine::new(&config).map_err(|e| format!("{e:#}"))
    })
    .as_ref()
    .map_err(|e| WasmError::Engine(e.clone()))
}

/// The engine that compiles modules into artifacts.
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
