//! Runs, limits and the cache, with real wasmtime and small WAT modules from
//! `tests/fixtures/wasm`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::testing::{Blob, Params, run_blob};
use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!("../../../../tests/fixtures/wasm/", $name, ".wat"))
    };
}

/// Runs and expects the guest to be stopped; returns the message and the elapsed time.
fn stopped(wat: &str, p: &Params) -> (Stop, String, Duration) {
    let blob = Blob::new(wat);
    // Compile first so the timed part is the run, not Cranelift.
    precompile(
        &std::fs::read(&blob.path).unwrap(),
        &blob.cache_dir(),
        &CompileLimits::default(),
    )
    .unwrap();
    let started = Instant::now();
    let err = run_blob(&blob, p).expect_err("the guest must be stopped");
    let elapsed = started.elapsed();
    match err {
        WasmError::Stopped { ref stop, .. } => (stop.clone(), err.to_string(), elapsed),
        other => panic!("expected a stop, got {other}"),
    }
}

#[test]
fn magic_identifies_wasm() {
    assert!(is_wasm(b"\0asm\x01\0\0\0"));
    assert!(!is_wasm(b"\x7fELF"));
    assert!(!is_wasm(b"\0as"));
}

#[test]
fn exit_codes() {
    let out = run_blob(&Blob::new(fixture!("exit3")), &Params::default()).unwrap();
    assert_eq!(out.exit_code, 3);
    let out = run_blob(&Blob::new(fixture!("noop")), &Params::default()).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(
        out.fuel_used > 0 && out.fuel_used < 100,
        "{}",
        out.fuel_used
    );
}

#[test]
fn proc_exit_zero_is_success() {
    let out = run_blob(&Blob::new(fixture!("bye")), &Params::default()).unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout, b"bye\n");
}

#[test]
fn argv_env_and_stdin_are_passed() {
    let p = Params {
        args: vec!["argv0".into(), "a b".into(), "c".into()],
        env: vec![
            ("K".into(), "V".into()),
            ("HOOKHOST_STAGE".into(), "poststop".into()),
        ],
        stdin: br#"{"id":"c1"}"#.to_vec(),
        ..Params::default()
    };
    let out = run_blob(&Blob::new(fixture!("echo")), &p).unwrap();
    assert_eq!(out.exit_code, 0);
    assert_eq!(out.stdout, b"argv0\0a b\0c\0{\"id\":\"c1\"}");
    // Exactly the passed environment: nothing inherited from the host.
    assert_eq!(out.stderr, b"K=V\0HOOKHOST_STAGE=poststop\0");
}

#[test]
fn output_is_bounded_without_trapping() {
    let p = Params {
        output_limit: 1000,
        ..Params::default()
    };
    let out = run_blob(&Blob::new(fixture!("flood")), &p).unwrap();
    assert_eq!(out.exit_code, 0, "writes past the bound must still succeed");
    assert_eq!(out.stdout, vec![b'x'; 1000]);
    assert_eq!(out.stderr.len(), 1000);
    assert!(out.truncated);
}

#[test]
fn spinning_guest_stops_at_the_timeout() {
    let p = Params {
        limits: WasmLimits {
            fuel: u64::MAX / 2,
            ..WasmLimits::default()
        },
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    let (stop, message, elapsed) = stopped(fixture!("spin"), &p);
    assert!(matches!(stop, Stop::Timeout { .. }), "{stop:?}");
    assert_eq!(message, "ran past its timeout of 1s");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn sleeping_guest_stops_at_the_timeout() {
    let p = Params {
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    let (stop, message, elapsed) = stopped(fixture!("sleep"), &p);
    assert!(matches!(stop, Stop::Timeout { .. }), "{stop:?}");
    assert_eq!(message, "ran past its timeout of 1s");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

/// Runs on one thread share its executor: a guest stopped while asleep in a host call leaves
/// nothing behind that delays or breaks the next run, and the next timeout still fires.
#[test]
fn runs_after_a_timeout_on_the_same_thread_are_unaffected() {
    let p = Params {
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    let (stop, _, _) = stopped(fixture!("sleep"), &p);
    assert!(matches!(stop, Stop::Timeout { .. }), "{stop:?}");
    let bye = Blob::new(fixture!("bye"));
    precompile(
        &std::fs::read(&bye.path).unwrap(),
        &bye.cache_dir(),
        &CompileLimits::default(),
    )
    .unwrap();
    let started = Instant::now();
    let out = run_blob(&bye, &Params::default()).unwrap();
    assert_eq!((out.exit_code, &out.stdout[..]), (0, &b"bye\n"[..]));
    assert!(started.elapsed() < Duration::from_millis(500));
    let (stop, _, elapsed) = stopped(fixture!("sleep"), &p);
    assert!(matches!(stop, Stop::Timeout { .. }), "{stop:?}");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn allocating_guest_hits_the_memory_limit() {
    let p = Params {
        limits: WasmLimits {
            memory: 64 << 20,
            ..WasmLimits::default()
        },
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    let (stop, message, elapsed) = stopped(fixture!("grow"), &p);
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
    assert_eq!(message, "exceeded its memory limit of 64 MiB");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn initial_memory_over_the_limit_is_the_memory_limit() {
    let p = Params {
        limits: WasmLimits {
            memory: 64 * 1024,
            ..WasmLimits::default()
        },
        ..Params::default()
    };
    let wat = r#"(module (memory (export "memory") 2) (func (export "_start")))"#;
    let (stop, message, _) = stopped(wat, &p);
    assert_eq!(stop, Stop::MemoryLimit { limit: 65536 });
    assert_eq!(message, "exceeded its memory limit of 64 KiB");
}

#[test]
fn too_little_fuel() {
    let p = Params {
        limits: WasmLimits {
            fuel: 10_000,
            ..WasmLimits::default()
        },
        timeout: Duration::from_secs(1),
        ..Params::default()
    };
    let (stop, message, elapsed) = stopped(fixture!("spin"), &p);
    assert_eq!(stop, Stop::OutOfFuel { fuel: 10_000 });
    assert_eq!(message, "ran out of fuel (10000 units)");
    assert!(elapsed < Duration::from_millis(1500), "{elapsed:?}");
}

#[test]
fn other_traps_are_reported_with_output() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
      (memory (export "memory") 1) (data (i32.const 64) "partial")
      (func (export "_start")
        (i32.store (i32.const 0) (i32.const 64)) (i32.store (i32.const 4) (i32.const 7))
        (drop (call $w (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
        unreachable))"#;
    let err = run_blob(&Blob::new(wat), &Params::default()).unwrap_err();
    let WasmError::Stopped { stop, stderr, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        matches!(stop, Stop::Trap(msg) if msg.contains("unreachable")),
        "{stop:?}"
    );
    assert_eq!(stderr, b"partial");
}

#[test]
fn broken_modules_are_refused_at_create_time() {
    let cache = tempfile::tempdir().unwrap();
    assert!(matches!(
        precompile(b"#!/bin/sh", cache.path(), &CompileLimits::default()),
        Err(WasmError::NotWasm)
    ));
    let truncated = &wat::parse_str(fixture!("echo")).unwrap()[..40];
    let err = precompile(truncated, cache.path(), &CompileLimits::default()).unwrap_err();
    assert!(matches!(err, WasmError::InvalidModule(_)), "{err}");
    let no_start = wat::parse_str("(module (func (export \"main\")))").unwrap();
    let err = precompile(&no_start, cache.path(), &CompileLimits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "not a WASI command module: it exports no `_start` function"
    );
    let foreign =
        wat::parse_str(r#"(module (import "env" "evil" (func)) (func (export "_start")))"#)
            .unwrap();
    let err = precompile(&foreign, cache.path(), &CompileLimits::default()).unwrap_err();
    assert!(
        matches!(err, WasmError::NotACommand(ref m) if m.contains("evil")),
        "{err}"
    );
    assert!(
        precompile(
            &wat::parse_str(fixture!("echo")).unwrap(),
            cache.path(),
            &CompileLimits::default()
        )
        .is_ok()
    );
}

fn cache_entry(blob: &Blob) -> (PathBuf, PathBuf) {
    cache::entry_paths(&blob.cache_dir(), &blob.digest)
}

fn runs_ok(blob: &Blob) {
    let out = run_blob(blob, &Params::default()).unwrap();
    assert_eq!(out.stdout, b"bye\n");
}

#[test]
fn cache_is_written_and_deleted_entries_are_rebuilt() {
    let blob = Blob::new(fixture!("bye"));
    runs_ok(&blob);
    let (cwasm, sum) = cache_entry(&blob);
    assert!(cwasm.is_file() && sum.is_file());
    std::fs::remove_file(&cwasm).unwrap();
    runs_ok(&blob);
    assert!(cwasm.is_file(), "the artifact is written again");
}

/// `ensure_compiled` compiles once, then finds the artifact; artifacts of other builds go.
#[test]
fn ensure_compiled_fills_the_cache_once_and_other_builds_artifacts_go() {
    let blob = Blob::new(fixture!("bye"));
    let cache = blob.cache_dir();
    let limits = CompileLimits::default();
    assert!(ensure_compiled(&blob.path, &blob.digest, &cache, &limits).unwrap());
    assert!(!ensure_compiled(&blob.path, &blob.digest, &cache, &limits).unwrap());
    let foreign = cache.join(format!("{}-0123456789abcdef.cwasm", blob.digest));
    std::fs::write(&foreign, b"an older build's").unwrap();
    std::fs::write(cache.join("x-0123456789abcdef.cwasm.sum"), b"").unwrap();
    assert_eq!(remove_foreign_artifacts(&cache).unwrap(), 2);
    assert!(!foreign.exists());
    let (cwasm, sum) = cache_entry(&blob);
    assert!(cwasm.is_file() && sum.is_file(), "this build's entry stays");
}

fn inode(path: &std::path::Path) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

#[test]
fn corrupt_cache_entries_are_recompiled() {
    let blob = Blob::new(fixture!("bye"));
    runs_ok(&blob);
    let (cwasm, sum) = cache_entry(&blob);
    let good = std::fs::read(&cwasm).unwrap();
    // Flipped bytes in the middle, written in place: the identity changed, the hash differs.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0xff);
    std::fs::write(&cwasm, &bad).unwrap();
    runs_ok(&blob);
    assert_eq!(std::fs::read(&cwasm).unwrap(), good, "rewritten");
    // Garbage whose sha256 the sidecar records: refused by wasmtime, recompiled.
    std::fs::write(&cwasm, b"garbage").unwrap();
    std::fs::write(
        &sum,
        format!("{}\n0 0 7 0 0\n", crate::fs::sha256_hex(b"garbage")),
    )
    .unwrap();
    runs_ok(&blob);
    assert_eq!(std::fs::read(&cwasm).unwrap(), good, "rewritten");
    // A damaged sidecar alone.
    std::fs::write(&sum, "0000").unwrap();
    runs_ok(&blob);
    assert!(
        std::fs::read_to_string(&sum)
            .unwrap()
            .starts_with(&crate::fs::sha256_hex(&good))
    );
}

#[test]
fn a_copied_but_intact_artifact_is_trusted_by_its_hash() {
    let blob = Blob::new(fixture!("bye"));
    runs_ok(&blob);
    let (cwasm, _) = cache_entry(&blob);
    let copy = cwasm.with_extension("copy");
    std::fs::copy(&cwasm, &copy).unwrap();
    std::fs::rename(&copy, &cwasm).unwrap();
    let copied = inode(&cwasm);
    runs_ok(&blob);
    assert_eq!(inode(&cwasm), copied, "used as is, not recompiled");
}

#[test]
fn blob_must_match_its_digest() {
    let blob = Blob::new(fixture!("bye"));
    std::fs::write(&blob.path, wat::parse_str(fixture!("exit3")).unwrap()).unwrap();
    let err = run_blob(&blob, &Params::default()).unwrap_err();
    assert!(matches!(err, WasmError::DigestMismatch { .. }), "{err}");
    let bad = Blob {
        digest: "../../etc/passwd".into(),
        ..Blob::new(fixture!("bye"))
    };
    let err = run_blob(&bad, &Params::default()).unwrap_err();
    assert!(matches!(err, WasmError::BadDigest(_)), "{err}");
}

#[test]
fn precompile_returns_the_digest_and_fills_the_cache() {
    let blob = Blob::new(fixture!("bye"));
    let digest = precompile(
        &std::fs::read(&blob.path).unwrap(),
        &blob.cache_dir(),
        &CompileLimits::default(),
    )
    .unwrap();
    assert_eq!(digest, blob.digest);
    assert!(cache_entry(&blob).0.is_file());
    // Served from the cache: the blob is not needed any more.
    std::fs::remove_file(&blob.path).unwrap();
    runs_ok(&blob);
}

#[test]
fn hooks_run_on_an_engine_without_a_compiler() {
    // Building Cranelift at every container start is what this split avoids.
    let bytes = wat::parse_str(fixture!("echo")).unwrap();
    let err = engine::runtime().unwrap().precompile_module(&bytes);
    assert!(err.is_err(), "the runtime engine compiled a module");
    assert!(
        engine::compiler()
            .unwrap()
            .precompile_module(&bytes)
            .is_ok()
    );
}

/// Artifacts carry no `.eh_frame` for the system's unwinder: registering it was paid at every
/// module load (with the stage executable's LLVM unwinder, by parsing every entry at once).
#[test]
fn artifacts_carry_no_native_unwind_info() {
    let bytes = wat::parse_str(fixture!("echo")).unwrap();
    let artifact = engine::compiler()
        .unwrap()
        .precompile_module(&bytes)
        .unwrap();
    let named = |name: &[u8]| artifact.windows(name.len()).any(|w| w == name);
    assert!(
        named(b".text"),
        "the artifact's section names are where looked for"
    );
    assert!(!named(b".eh_frame"), "the artifact has unwind info");
}

fn limited(memory: u64) -> Params {
    Params {
        limits: WasmLimits {
            memory,
            ..WasmLimits::default()
        },
        timeout: Duration::from_secs(5),
        ..Params::default()
    }
}

/// Multi-memory is on: sixteen memories of 64 MiB each draw from one budget, so the second
/// one is already refused under `--memory 64MiB` (it used to be 64 MiB per memory: 1 GiB).
#[test]
fn all_memories_share_one_budget() {
    let memories: String = (0..16).map(|i| format!("(memory $m{i} 1024)")).collect();
    let wat = format!(r#"(module {memories} (func (export "_start")))"#);
    let (stop, message, _) = stopped(&wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
    assert_eq!(message, "exceeded its memory limit of 64 MiB");
    // Under the budget, several memories are fine.
    let wat = r#"(module (memory 16) (memory 16) (func (export "_start")))"#;
    run_blob(&Blob::new(wat), &limited(2 << 20)).expect("2 x 1 MiB fits in 2 MiB");
}

/// Growth of a second memory at run time counts against what the first already holds.
#[test]
fn growth_of_any_memory_draws_from_the_budget() {
    let wat = r#"(module
      (memory $a 512) (memory $b 0)
      (func (export "_start")
        (if (i32.eq (memory.grow $b (i32.const 600)) (i32.const -1)) (then unreachable))))"#;
    let (stop, _, _) = stopped(wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
}

/// Tables count at a pointer per element: 50 M elements (400 MB) are refused under 64 MiB.
#[test]
fn tables_draw_from_the_memory_budget() {
    let wat = r#"(module
      (table $t 1 funcref)
      (func (export "_start")
        (if (i32.eq (table.grow $t (ref.null func) (i32.const 50000000)) (i32.const -1))
          (then unreachable))))"#;
    let (stop, message, _) = stopped(wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
    assert_eq!(message, "exceeded its memory limit of 64 MiB");
    // A table's initial size counts too.
    let wat = r#"(module (table 10000000 funcref) (func (export "_start")))"#;
    let (stop, _, _) = stopped(wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
}

/// memory64 growth is bounded by the same budget.
#[test]
fn memory64_growth_is_bounded() {
    let wat = r#"(module
      (memory i64 1)
      (func (export "_start")
        (loop $more
          (if (i64.eq (memory.grow (i64.const 16)) (i64.const -1)) (then unreachable))
          (br $more))))"#;
    let (stop, _, _) = stopped(wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 });
}

/// Shared memories are outside any per-store limiter in wasmtime: they are refused at
/// `create` (the threads proposal is not enabled), never run.
#[test]
fn shared_memories_are_refused_at_create() {
    let bytes = wat::parse_str(r#"(module (memory 1 2 shared) (func (export "_start")))"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let err = precompile(&bytes, dir.path(), &CompileLimits::default()).unwrap_err();
    assert!(matches!(err, WasmError::InvalidModule(_)), "{err}");
}

/// WASI hands the guest C strings: an argument with a NUL is refused, never cut.
#[test]
fn a_nul_in_an_argument_is_refused() {
    let p = Params {
        args: vec!["hook".into(), "a\0b".into()],
        ..Params::default()
    };
    let err = run_blob(&Blob::new(fixture!("echo")), &p).unwrap_err();
    assert!(matches!(err, WasmError::Nul { .. }), "{err}");
    assert!(
        err.to_string().contains("\"a\\0b\" holds a NUL byte"),
        "{err}"
    );
}

fn writable(dir: &std::path::Path, writes: u64) -> Params {
    Params {
        preopens: vec![Preopen {
            host: dir.to_path_buf(),
            guest: "/out".into(),
            writable: true,
        }],
        limits: WasmLimits {
            writes,
            ..WasmLimits::default()
        },
        timeout: Duration::from_secs(30),
        ..Params::default()
    }
}

/// A hook with a writable directory writing 1 GiB is stopped at its write limit, and the host
/// file keeps no more than the limit.
#[test]
fn writes_stop_at_the_write_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (stop, message, _) = stopped(fixture!("fill"), &writable(dir.path(), 1 << 20));
    assert_eq!(stop, Stop::WriteLimit { limit: 1 << 20 });
    assert_eq!(message, "exceeded its write limit of 1 MiB");
    let size = std::fs::metadata(dir.path().join("big")).unwrap().len();
    assert!(size <= 1 << 20, "{size} bytes reached the disk");
    assert!(size >= (1 << 20) - 65536, "{size}: the budget was used");
}

/// A write that starts past the end of a file grows it by the hole it leaves, sparse or not:
/// one byte at offset 2^40 (by `fd_pwrite`, or by `fd_seek` then `fd_write`) would make a
/// 1 TiB file, and is stopped under a 1 MiB write limit before anything reaches the disk.
#[test]
fn a_write_far_past_the_end_counts_the_hole() {
    for how in [&[][..], &["seek"][..]] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = writable(dir.path(), 1 << 20);
        p.args.extend(how.iter().map(|s| s.to_string()));
        let (stop, message, _) = stopped(fixture!("sparse"), &p);
        assert_eq!(stop, Stop::WriteLimit { limit: 1 << 20 }, "{how:?}");
        assert_eq!(message, "exceeded its write limit of 1 MiB");
        let size = std::fs::metadata(dir.path().join("sparse")).unwrap().len();
        assert_eq!(size, 0, "{how:?}: a {size}-byte file reached the disk");
    }
}

/// A hole that fits the budget is fine: one byte at offset 4096 counts 4097 bytes.
#[test]
fn a_small_hole_within_the_write_limit_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = writable(dir.path(), 8192);
    p.args.extend(["small".into(), "hole".into()]);
    let out = run_blob(&Blob::new(fixture!("sparse")), &p).unwrap();
    assert_eq!(out.exit_code, 0);
    let size = std::fs::metadata(dir.path().join("sparse")).unwrap().len();
    assert_eq!(size, 4097);
    // The same write under a budget smaller than the file it makes is stopped.
    let (stop, _, _) = stopped(fixture!("sparse"), &{
        let mut p = writable(dir.path(), 4096);
        p.args.extend(["small".into(), "hole".into()]);
        p
    });
    assert_eq!(stop, Stop::WriteLimit { limit: 4096 });
}

/// Files created count too: 2000 files against the cap of 1000.
#[test]
fn creating_files_stops_at_the_file_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = writable(dir.path(), 1 << 20);
    p.args.push("files".into());
    let (stop, message, _) = stopped(fixture!("fill"), &p);
    assert_eq!(stop, Stop::FileLimit);
    assert_eq!(message, "exceeded its limit of 1000 files created");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1000);
}

/// Output to stdout is not the write budget's: it is captured and bounded on its own.
#[test]
fn stdout_is_not_counted_as_writes() {
    let mut p = writable(std::path::Path::new("/tmp"), 1);
    p.output_limit = 1000;
    let out = run_blob(&Blob::new(fixture!("flood")), &p).unwrap();
    assert_eq!(out.exit_code, 0);
    assert!(out.truncated);
}

/// A file may not be moved onto stdout or stderr, whose writes the budget does not count.
#[test]
fn files_cannot_be_renumbered_onto_stdio() {
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "path_open"
        (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_renumber" (func $renumber (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1) (data (i32.const 100) "f")
      (func (export "_start")
        (drop (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 1)
          (i32.const 1) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 8)))
        (call $exit (call $renumber (i32.load (i32.const 8)) (i32.const 1)))))"#;
    let dir = tempfile::tempdir().unwrap();
    let out = run_blob(&Blob::new(wat), &writable(dir.path(), 1 << 20)).unwrap();
    assert_eq!(out.exit_code, 8, "errno badf");
}

/// The GC heap draws from the same budget: a 200 MB array under a 64 MiB budget is refused.
#[test]
fn the_gc_heap_draws_from_the_budget() {
    let wat = r#"(module
      (type $bytes (array (mut i8)))
      (global $keep (mut (ref null $bytes)) (ref.null $bytes))
      (func (export "_start")
        (global.set $keep (array.new_default $bytes (i32.const 200000000)))))"#;
    let (stop, message, _) = stopped(wat, &limited(64 << 20));
    assert_eq!(stop, Stop::MemoryLimit { limit: 64 << 20 }, "{message}");
}
