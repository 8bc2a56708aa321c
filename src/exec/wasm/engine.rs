//! The one process-wide wasmtime `Engine`, its compatibility fingerprint, and the epoch ticker.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::{Config, Engine};

use super::WasmError;

/// How often the epoch advances while a guest runs. Each tick lets a running guest yield to the
/// async executor (so the wall-clock timer can fire) and check its deadline: the timeout is
/// enforced to within about one tick.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

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
    // Wall-clock interruption of guest code; a ticker thread advances the epoch.
    config.epoch_interruption(true);
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

/// Advances the engine's epoch every `EPOCH_TICK` until dropped.
///
/// One ticker per run rather than a process-wide thread so that no idle thread outlives the
/// runs; several concurrent tickers only make ticks more frequent, which is harmless because
/// the deadline is checked against the clock, not counted in ticks.
pub(crate) struct EpochTicker {
    stop: Option<Sender<()>>,
    handle: Option<thread::JoinHandle<()>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> Result<Self, WasmError> {
        let engine = engine.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::Builder::new()
            .name("hookhost-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EPOCH_TICK) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| WasmError::Engine(format!("cannot start the epoch ticker: {e}")))?;
        Ok(EpochTicker {
            stop: Some(stop),
            handle: Some(handle),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread at once; joining keeps no thread behind.
        drop(self.stop.take());
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
