//! Test support (feature `test-support`): a module in a temporary store and owned run
//! parameters, for tests here and in the crates above that run real modules.

use std::path::PathBuf;
use std::time::Duration;

use tempfile::TempDir;

use super::{CompileLimits, Preopen, WasmError, WasmInvocation, WasmOutcome, run};
use crate::limits::WasmLimits;

/// A module blob in a temporary "registry", with its digest and a cache dir.
pub struct Blob {
    /// Holds the module file and the cache.
    pub dir: TempDir,
    /// The module file.
    pub path: PathBuf,
    /// Its sha256.
    pub digest: String,
}

impl Blob {
    /// Assembles `wat` into a module file. From then on modules are compiled in the test
    /// process: a test executable cannot be re-executed as the compiler child.
    pub fn new(wat: &str) -> Blob {
        super::compile::compile_in_this_process();
        let bytes = wat::parse_str(wat).expect("fixture parses");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("module.wasm");
        std::fs::write(&path, &bytes).unwrap();
        let digest = crate::fs::sha256_hex(&bytes);
        Blob { dir, path, digest }
    }

    /// The blob's own compile cache.
    pub fn cache_dir(&self) -> PathBuf {
        self.dir.path().join("cache")
    }
}

/// Owned run parameters with test defaults (generous limits, 10 s timeout).
#[allow(missing_docs)]
pub struct Params {
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Vec<u8>,
    pub preopens: Vec<Preopen>,
    pub limits: WasmLimits,
    pub timeout: Duration,
    pub output_limit: usize,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            args: vec!["hook".into()],
            env: vec![],
            stdin: vec![],
            preopens: vec![],
            limits: WasmLimits::default(),
            timeout: Duration::from_secs(10),
            output_limit: 1 << 20,
        }
    }
}

/// Compiles `blob` into its cache (in the test process), so that a run's timeout is not spent
/// compiling: a large module takes seconds on a busy machine.
pub fn precompile_blob(blob: &Blob) {
    super::compile::compile_in_this_process();
    let limits = CompileLimits::default();
    super::ensure_compiled(&blob.path, &blob.digest, &blob.cache_dir(), &limits)
        .expect("the module compiles");
}

/// Runs `blob` with `p` (compiling in the test process, as [`Blob::new`] says).
pub fn run_blob(blob: &Blob, p: &Params) -> Result<WasmOutcome, WasmError> {
    super::compile::compile_in_this_process();
    let cache_dir = blob.cache_dir();
    run(&WasmInvocation {
        module_path: &blob.path,
        digest: &blob.digest,
        cache_dir: &cache_dir,
        args: &p.args,
        env: &p.env,
        stdin: &p.stdin,
        preopens: &p.preopens,
        limits: &p.limits,
        timeout: p.timeout,
        compile: CompileLimits::default(),
        output_limit: p.output_limit,
    })
}
