//! A long-lived process that defers each run's teardown (`wasm::defer_teardown`, the NRI
//! plugin: it answers the runtime first and tears the run down after). Its own test executable,
//! since deferring is process-wide.

use hookhost_exec::wasm::testing::{Blob, Params, run_blob};
use hookhost_exec::wasm::{self};

/// One test, since the waiting stores are process-wide and the checks count them.
#[test]
fn deferred_teardowns_are_bounded_by_slots_and_memory() {
    wasm::keep_loaded();
    wasm::defer_teardown();
    deferred_teardowns_wait_without_taking_the_slots_runs_need();
    deferred_teardowns_hold_a_bounded_amount_of_memory();
}

/// A run's outcome is whole before its teardown; the stores that wait never take the pool's
/// slots from the runs that follow (more runs than the pool has slots, none refused); and
/// `teardown_retired` ends them.
fn deferred_teardowns_wait_without_taking_the_slots_runs_need() {
    let echo = Blob::new(include_str!("../../../tests/fixtures/wasm/echo.wat"));
    for i in 0..40 {
        let params = Params {
            stdin: format!("run {i}").into_bytes(),
            ..Params::default()
        };
        let out = run_blob(&echo, &params).expect("a run finds a free slot");
        assert_eq!(out.stdout, format!("hook\0run {i}").into_bytes());
        let waiting = wasm::retired();
        assert!(waiting >= 1, "run {i}'s store was torn down at once");
        assert!(
            waiting <= 8,
            "{waiting} stores wait: more than half the pool"
        );
    }
    wasm::teardown_retired();
    assert_eq!(wasm::retired(), 0);
    // The slots came back: as many runs again.
    for _ in 0..40 {
        run_blob(&echo, &Params::default()).expect("a run finds a free slot");
        wasm::teardown_retired();
    }
}

/// Waiting stores never hold more than `MAX_RETIRED_BYTES` of memory together: a run holding
/// more than what is left is torn down at once, whatever its own limit allows.
fn deferred_teardowns_hold_a_bounded_amount_of_memory() {
    let page = 64 << 10;
    let pages = (wasm::MAX_RETIRED_BYTES / 2 + page) / page;
    let big = Blob::new(&format!(
        r#"(module (memory (export "memory") {pages}) (func (export "_start")))"#
    ));
    let mut params = Params::default();
    params.limits.memory = (4 * wasm::MAX_RETIRED_BYTES) as u64;
    wasm::teardown_retired();
    run_blob(&big, &params).expect("runs");
    assert_eq!(wasm::retired(), 1, "the first waits");
    run_blob(&big, &params).expect("runs");
    assert_eq!(
        wasm::retired(),
        1,
        "a second would hold more than the bound together"
    );
    wasm::teardown_retired();
}
