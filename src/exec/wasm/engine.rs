//! The one process-wide wasmtime `Engine` and its compatibility fingerprint.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine};

use super::WasmError;

struct Shared {
    engine: Engine,
    /// Hex sha256 of `Engine::precompile_compatibility_hash`, part of every cache key.
    compat: String,
}

static SHARED: OnceLock<Result<Shared, String>> = OnceLock::new();

/// The configuration every hookhost engine uses. Precompiled artifacts are only valid for an
/// engine with the same settings, which the compatibility hash captures.
fn config() -> Config {
    let mut config = Config::new();
    // Deterministic compute budget per run.
    config.consume_fuel(true);
    // The wall-clock bound needs no epochs: guests yield to the async executor on fuel.
    // Linear memory is capped per store by the limiter; keep Wasmtime's other defaults, which
    // are the same as the `wasmtime run` CLI's.
    config
}

fn shared() -> Result<&'static Shared, WasmError> {
    SHARED
        .get_or_init(|| {
            let engine = Engine::new(&config()).map_err(|e| format!("{e:#}"))?;
            let compat = compatibility_fingerprint(&engine);
            Ok(Shared { engine, compat })
        })
        .as_ref()
        .map_err(|e| WasmError::Engine(e.clone()))
}

/// The process-wide engine.
pub(crate) fn engine() -> Result<&'static Engine, WasmError> {
    Ok(&shared()?.engine)
}

/// A stable hex string for the engine's compatibility hash (wasmtime version and settings).
pub(crate) fn compat_fingerprint() -> Result<&'static str, WasmError> {
    Ok(&shared()?.compat)
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

fn compatibility_fingerprint(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())[..16].to_string()
}
