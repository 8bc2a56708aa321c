//! A long-lived process that keeps modules loaded (`wasm::keep_loaded`, the NRI plugin): the
//! second run of a module comes from memory — it runs with its module file and compiled artifact
//! gone — and each run still gets its own limits, input and output. Its own test executable,
//! since keeping modules is process-wide.

use std::time::Duration;

use hookhost_exec::wasm::testing::{Blob, Params, run_blob};
use hookhost_exec::wasm::{self, Stop, WasmError};

#[test]
fn a_kept_module_runs_from_memory_with_each_runs_own_limits() {
    wasm::keep_loaded();
    let echo = Blob::new(include_str!("../../../tests/fixtures/wasm/echo.wat"));
    let first = Params {
        stdin: b"one".to_vec(),
        ..Params::default()
    };
    assert_eq!(run_blob(&echo, &first).unwrap().stdout, b"hook\0one");
    std::fs::remove_file(&echo.path).unwrap();
    std::fs::remove_dir_all(echo.cache_dir()).unwrap();
    let second = Params {
        stdin: b"two".to_vec(),
        ..Params::default()
    };
    assert_eq!(run_blob(&echo, &second).unwrap().stdout, b"hook\0two");

    // The kept module still runs under the limits of each run.
    let spin = Blob::new(include_str!("../../../tests/fixtures/wasm/spin.wat"));
    let fuel = |fuel| {
        let mut p = Params {
            timeout: Duration::from_secs(30),
            ..Params::default()
        };
        p.limits.fuel = fuel;
        run_blob(&spin, &p).unwrap_err()
    };
    for limit in [1_000, 50_000] {
        match fuel(limit) {
            WasmError::Stopped {
                stop: Stop::OutOfFuel { fuel },
                ..
            } => assert_eq!(fuel, limit),
            other => panic!("expected out of fuel, got {other}"),
        }
    }
}

/// A process that keeps modules loaded takes instances from wasmtime's pool: the memory limit
/// still holds there, every instance goes back to the pool (more runs than the pool has
/// slots), and a module the one-shot engine runs — several memories, a large table — is not
/// refused for the pool's sake.
#[test]
fn the_pool_keeps_each_runs_limits_and_refuses_nothing_a_stage_runs() {
    wasm::keep_loaded();
    let grow = Blob::new(include_str!("../../../tests/fixtures/wasm/grow.wat"));
    for _ in 0..3 {
        match run_blob(&grow, &Params::default()).unwrap_err() {
            WasmError::Stopped {
                stop: Stop::MemoryLimit { limit },
                ..
            } => assert_eq!(limit, Params::default().limits.memory),
            other => panic!("expected the memory limit, got {other}"),
        }
    }
    let big = Blob::new(
        r#"(module
             (memory (export "memory") 1) (memory 2) (memory 3)
             (table 200000 funcref)
             (func (export "_start")))"#,
    );
    for _ in 0..40 {
        run_blob(&big, &Params::default()).expect("runs as it does in a stage");
    }
}
