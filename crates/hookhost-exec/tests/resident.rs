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
