//! Benchmarks (not tests): the cost of hookhost on a container's path.
//!
//! `scripts/build-stage.sh release && scripts/cargo-static.sh bench --bench stage` (the shipped,
//! static build, with the stage executable beside hookhost; plain `cargo bench` measures a
//! dynamically linked one) runs each stage as the runtime does, the executable its config.json
//! entry names, and prints median wall-clock times of fresh processes, A and B
//! interleaved in the same run so that machine noise hits both alike, and their ratio:
//!
//! 1. `hookhost stage` with one trivial precompiled WASM hook vs exec of `/bin/true`;
//! 2. the same stage with the WASM hook vs the equivalent native hook (`/bin/true`), and (2b)
//!    that native stage vs exec of `/bin/true` and (2c) vs static busybox's `env /bin/true`, a
//!    program that only execs another; (2d) a native stage's process structure alone, in C
//!    (`support/stage_floor.c`: the guard, the hook spawned into its group with pipes for its
//!    stdio, the group killed, both reaped), vs exec of `/bin/true`, and (2e) the native stage
//!    vs that: what hookhost's own work adds to the least its structure costs;
//! 3. a stage of ten different trivial WASM hooks vs ten execs of `/bin/true` (what a runtime
//!    pays for ten native hooks): what each further WASM hook of a stage costs;
//! 4. registry size: `hookhost stage` and `hookhost inspect` with 10,000 hooks registered vs
//!    1, and `hookhost ls` of 10,000 hooks;
//! 5. a hook as users write it (`examples/sdk-minimal`: the guest SDK reads and parses the
//!    state; ~180 KB of WASM against the noop's few bytes): its stage vs exec of `/bin/true`
//!    and vs the noop's stage, and ten distinct such modules in one stage vs ten execs;
//! 6. a shadow hook's cost: a stage of a WASM hook with a shadow vs the same hook followed by
//!    a second, ordinary WASM hook (at most one extra WASM run on the stage: ratio ≤ ~1);
//! 7. the stage with one WASM hook with its replay record written vs with records turned off
//!    (`"replay": {"enabled": false}`): what recording costs (issue 23's target: ≤ 5%).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;
mod support;
use support::median;

const HOOKHOST: &str = env!("CARGO_BIN_EXE_hookhost");

/// Full runs under `cargo bench`; a quick smoke run under `cargo test --all-targets`, so the
/// benchmark cannot rot without taking CI's time.
fn scale() -> (usize, usize) {
    if std::env::args().any(|a| a == "--bench") {
        (300, 10_000)
    } else {
        (3, 100)
    }
}
const STATE: &[u8] =
    br#"{"ociVersion":"1.0.2","id":"bench","status":"creating","pid":1,"bundle":"/tmp"}"#;

/// Spawns `cmd` with the state on stdin and waits; panics if it fails.
fn run_once(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(STATE);
    let status = child.wait().unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

/// The samples of `a` and `b`, measured alternately after a warm-up.
fn compare(
    rounds: usize,
    mut a: impl FnMut() -> Duration,
    mut b: impl FnMut() -> Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    for _ in 0..10 {
        a();
        b();
    }
    (0..rounds).map(|_| (a(), b())).unzip()
}

/// Prints the medians of the two sides, their ratio and spread, each side named.
fn report(what: &str, a: (&str, Vec<Duration>), b: (&str, Vec<Duration>)) {
    support::report(&format!("{what} ({} vs {})", a.0, b.0), a.1, b.1);
}

fn hookhost(root: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(HOOKHOST);
    cmd.env("HOOKHOST_ROOT", root).args(args);
    cmd
}

fn create(root: &Path, args: &[&str]) {
    let out = hookhost(root, args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The stage call hookhost writes into config.json for registered hooks injected together
/// (its executable, then the arguments after argv0), its plan file made absolute: the bundle lives beside the registry root.
fn plan_for(root: &Path, names: &[&str]) -> Vec<String> {
    plan_with(root, names, &[])
}

/// [`plan_for`], injected with hookhost's `global` flags first (`--config FILE`).
fn plan_with(root: &Path, names: &[&str], global: &[&str]) -> Vec<String> {
    let configured = if global.is_empty() { "" } else { "-configured" };
    let bundle = root.with_file_name(format!("bundle-{}{configured}", names.join("-")));
    std::fs::create_dir_all(&bundle).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"}}"#,
    )
    .unwrap();
    let mut inject = global.to_vec();
    inject.extend(["inject", "--bundle", bundle.to_str().unwrap()]);
    for name in names {
        inject.extend(["--add-hook", name]);
    }
    create(root, &inject);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(bundle.join("config.json")).unwrap()).unwrap();
    let entry = config["hooks"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()[0]
        .clone();
    let mut args: Vec<String> = serde_json::from_value(entry["args"].clone()).unwrap();
    args[4] = bundle.join(&args[4]).to_string_lossy().into_owned();
    // The executable in place of argv0, which is hookhost's name whatever runs.
    args[0] = entry["path"].as_str().unwrap().to_string();
    args
}

/// What the runtime executes for a stage entry [`plan_with`] read: its executable (the stage
/// executable beside hookhost, if there is one) with argv0 `hookhost`.
fn stage(root: &Path, call: &[String]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(&call[0]);
    cmd.arg0(hookhost_types::HOOKHOST_EXECUTABLE)
        .args(&call[1..])
        .env("HOOKHOST_ROOT", root);
    cmd
}

/// `support/stage_floor.c` built as a static program in `dir`: with musl's C compiler where
/// there is one (as the stage executable is linked), else the system's.
fn stage_floor(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/support/stage_floor.c");
    let exe = dir.join("stage_floor");
    for compiler in ["musl-gcc", "cc"] {
        let built = Command::new(compiler)
            .args(["-O2", "-static", "-o"])
            .arg(&exe)
            .arg(&source)
            .status();
        if built.is_ok_and(|s| s.success()) {
            println!("2d's C program built with {compiler}");
            return exe;
        }
    }
    panic!("cannot build {}: needs musl-gcc or cc", source.display());
}

fn main() {
    support::as_read_from_disk(Path::new(HOOKHOST));
    // What the shipped build's containers run at each stage (scripts/build-stage.sh puts it
    // there): the figures are of it, so a full run refuses to measure without it.
    let stage_exe = Path::new(HOOKHOST).with_file_name("hookhost-stage");
    let has_stage_exe = stage_exe.is_file();
    assert!(
        has_stage_exe || scale().0 < 300,
        "{} is missing: `scripts/build-stage.sh release` builds it",
        stage_exe.display()
    );
    if has_stage_exe {
        support::as_read_from_disk(&stage_exe);
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let wasm = dir.path().join("noop.wasm");
    let noop = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wasm/noop.wat");
    std::fs::write(&wasm, wat::parse_file(noop).unwrap()).unwrap();
    create(
        &root,
        &[
            "create",
            "--type",
            "createRuntime",
            "wasm",
            wasm.to_str().unwrap(),
        ],
    );
    create(
        &root,
        &["create", "--type", "createRuntime", "native", "/bin/true"],
    );
    let wasm_plan = plan_for(&root, &["wasm"]);
    let native_plan = plan_for(&root, &["native"]);
    let ten_plan = ten_wasm_hooks(dir.path(), &root);

    let (rounds, hooks) = scale();
    println!(
        "hookhost under test: {HOOKHOST} ({}, read back from disk)",
        support::linkage(Path::new(HOOKHOST))
    );
    match has_stage_exe {
        true => println!(
            "stages run: {} ({}, read back from disk)",
            stage_exe.display(),
            support::linkage(&stage_exe)
        ),
        false => println!("stages run: `hookhost stage` (no hookhost-stage beside it)"),
    }
    let (w, t) = compare(
        rounds,
        || run_once(&mut stage(&root, &wasm_plan)),
        || run_once(&mut Command::new("/bin/true")),
    );
    report(
        "1. stage with a WASM hook vs exec /bin/true",
        ("wasm stage", w),
        ("/bin/true", t),
    );
    let (w, n) = compare(
        rounds,
        || run_once(&mut stage(&root, &wasm_plan)),
        || run_once(&mut stage(&root, &native_plan)),
    );
    report(
        "2. stage: WASM hook vs native hook",
        ("wasm", w),
        ("native", n),
    );
    let (n, t) = compare(
        rounds,
        || run_once(&mut stage(&root, &native_plan)),
        || run_once(&mut Command::new("/bin/true")),
    );
    report(
        "2b. stage with a native hook (/bin/true) vs exec /bin/true",
        ("native stage", n),
        ("/bin/true", t),
    );
    // A native stage is two execs, hookhost's and the hook's: no program that runs another
    // costs less than one that only execs it.
    let (n, f) = compare(
        rounds,
        || run_once(&mut stage(&root, &native_plan)),
        || run_once(Command::new("/bin/busybox").args(["env", "/bin/true"])),
    );
    report(
        "2c. stage with a native hook vs static busybox `env /bin/true` (the exec floor)",
        ("native stage", n),
        ("busybox env", f),
    );
    let floor = stage_floor(dir.path());
    let (f, t) = compare(
        rounds,
        || run_once(Command::new(&floor).arg("/bin/true")),
        || run_once(&mut Command::new("/bin/true")),
    );
    report(
        "2d. a native stage's process structure in C (guard, hook in its group, stdio pipes) vs exec /bin/true",
        ("C structure", f),
        ("/bin/true", t),
    );
    let (n, f) = compare(
        rounds,
        || run_once(&mut stage(&root, &native_plan)),
        || run_once(Command::new(&floor).arg("/bin/true")),
    );
    report(
        "2e. stage with a native hook vs that C structure",
        ("native stage", n),
        ("C structure", f),
    );
    let (w, t) = compare(
        rounds,
        || run_once(&mut stage(&root, &ten_plan)),
        ten_execs_of_true,
    );
    report(
        "3. stage with ten different WASM hooks vs ten execs of /bin/true",
        ("wasm stage", w),
        ("10 x /bin/true", t),
    );
    shadow_cost(dir.path(), rounds);
    registry_scale(dir.path(), rounds, hooks);
    let config = dir.path().join("no-replay.json");
    std::fs::write(&config, r#"{"replay": {"enabled": false}}"#).unwrap();
    let unrecorded = plan_with(&root, &["wasm"], &["--config", config.to_str().unwrap()]);
    let (on, off) = compare(
        rounds,
        || run_once(&mut stage(&root, &wasm_plan)),
        || run_once(&mut stage(&root, &unrecorded)),
    );
    report(
        "7. stage with a WASM hook: replay record written vs records off",
        ("recorded", on),
        ("off", off),
    );
    assert!(
        root.join("replay/records.jsonl").exists(),
        "the recorded stage wrote records"
    );
    sdk_hooks(dir.path(), &root, rounds, &wasm_plan);
}

/// Case 5, the SDK hook: one in a stage, and ten distinct copies in one stage (a custom section
/// of its own gives each its own digest, artifact and compiled code).
fn sdk_hooks(dir: &Path, root: &Path, rounds: usize, noop_plan: &[String]) {
    let module = std::fs::read(common::example_wasm("sdk-minimal")).unwrap();
    let names: Vec<String> = (0..TEN).map(|i| format!("sdk{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, distinct(&module, i)).unwrap();
        let path = path.to_str().unwrap();
        create(root, &["create", "--type", "createRuntime", name, path]);
    }
    let one = plan_for(root, &["sdk0"]);
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let ten = plan_for(root, &names);
    let (w, t) = compare(
        rounds,
        || run_once(&mut stage(root, &one)),
        || run_once(&mut Command::new("/bin/true")),
    );
    report(
        "5a. stage with the SDK hook vs exec /bin/true",
        ("sdk stage", w),
        ("/bin/true", t),
    );
    let (w, n) = compare(
        rounds,
        || run_once(&mut stage(root, &one)),
        || run_once(&mut stage(root, noop_plan)),
    );
    report(
        "5b. stage: the SDK hook vs the noop",
        ("sdk", w),
        ("noop", n),
    );
    let (w, t) = compare(
        rounds,
        || run_once(&mut stage(root, &ten)),
        ten_execs_of_true,
    );
    report(
        "5c. stage with ten different SDK hooks vs ten execs of /bin/true",
        ("sdk stage", w),
        ("10 x /bin/true", t),
    );
}

/// `module` with a custom section naming copy `i` appended: the same code, another digest.
fn distinct(module: &[u8], i: usize) -> Vec<u8> {
    let name = b"hookhost-bench";
    let payload = i.to_le_bytes();
    let size = 1 + name.len() + payload.len();
    let mut out = module.to_vec();
    out.extend([0u8, u8::try_from(size).unwrap()]);
    out.push(u8::try_from(name.len()).unwrap());
    out.extend(name);
    out.extend(payload);
    out
}

/// A distinct trivial module (its own digest and compiled code), registered as `name` at
/// createRuntime with `extra` flags.
fn distinct_wasm(dir: &Path, root: &Path, name: &str, extra: &[&str]) {
    let wat = format!(
        r#"(module (memory (export "memory") 1) (func (export "_start")) (global (export "{name}") i32 (i32.const 0)))"#
    );
    let wasm = dir.join(format!("{name}.wasm"));
    std::fs::write(&wasm, wat::parse_str(wat).unwrap()).unwrap();
    let mut args = vec!["create"];
    args.extend(extra);
    args.extend([name, wasm.to_str().unwrap()]);
    create(root, &args);
}

/// 6: a hook with a shadow against the hook and a second hook, in one registry.
fn shadow_cost(dir: &Path, rounds: usize) {
    let root = dir.join("shadowed");
    let at = ["--type", "createRuntime"];
    distinct_wasm(dir, &root, "enforced", &at);
    distinct_wasm(dir, &root, "second", &at);
    distinct_wasm(dir, &root, "candidate", &["--shadow-of", "enforced"]);
    let shadowed = plan_for(&root, &["enforced"]);
    let two = plan_for(&root, &["enforced", "second"]);
    let (s, t) = compare(
        rounds,
        || run_once(&mut stage(&root, &shadowed)),
        || run_once(&mut stage(&root, &two)),
    );
    report(
        "6. stage: a WASM hook with a shadow vs the hook and a second WASM hook",
        ("with shadow", s),
        ("two hooks", t),
    );
}

const TEN: usize = 10;

/// What a runtime pays for ten native hooks: ten execs of `/bin/true`.
fn ten_execs_of_true() -> Duration {
    (0..TEN)
        .map(|_| run_once(&mut Command::new("/bin/true")))
        .sum()
}

/// Registers ten trivial WASM hooks, `w0`…`w9`, each a distinct module (an export of its own
/// gives each its own digest, cache entry and compiled code), and returns the stage call of a
/// bundle that runs all ten.
fn ten_wasm_hooks(dir: &Path, root: &Path) -> Vec<String> {
    let names: Vec<String> = (0..TEN).map(|i| format!("w{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let wat = format!(
            r#"(module (memory (export "memory") 1) (func (export "_start")) (global (export "bench{i}") i32 (i32.const {i})))"#
        );
        let wasm = dir.join(format!("{name}.wasm"));
        std::fs::write(&wasm, wat::parse_str(wat).unwrap()).unwrap();
        create(
            root,
            &[
                "create",
                "--type",
                "createRuntime",
                name,
                wasm.to_str().unwrap(),
            ],
        );
    }
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    plan_for(root, &names)
}

/// Registry of 10,000 hooks against a registry of 1, same hook run.
fn registry_scale(dir: &Path, rounds: usize, hooks: usize) {
    let small = dir.join("small");
    let large = dir.join("large");
    create(
        &small,
        &["create", "--type", "createRuntime", "h00000", "/bin/true"],
    );
    create(
        &large,
        &["create", "--type", "createRuntime", "h00000", "/bin/true"],
    );
    fill(&large, hooks);
    let (small_plan, large_plan) = (plan_for(&small, &["h00000"]), plan_for(&large, &["h00000"]));
    let (l, s) = compare(
        rounds,
        || run_once(&mut stage(&large, &large_plan)),
        || run_once(&mut stage(&small, &small_plan)),
    );
    report(
        &format!("4a. stage, registry of {hooks} vs 1"),
        ("large", l),
        ("1", s),
    );
    let (l, s) = compare(
        rounds.div_ceil(3),
        || run_once(&mut hookhost(&large, &["inspect", "h00000"])),
        || run_once(&mut hookhost(&small, &["inspect", "h00000"])),
    );
    report(
        &format!("4b. inspect, registry of {hooks} vs 1"),
        ("large", l),
        ("1", s),
    );
    let ls: Vec<Duration> = (0..15)
        .map(|_| run_once(&mut hookhost(&large, &["ls"])))
        .collect();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (low, high) = support::quartiles(&ls);
    println!(
        "4c. ls of {hooks} hooks: {:.1} ms (median of 15, quartiles {:.1}–{:.1} ms)",
        ms(median(ls)),
        ms(low),
        ms(high)
    );
}

/// Registers `n` hooks by writing what `hookhost create` writes (the CLI is exercised above;
/// 10,000 process starts would only slow the benchmark down).
fn fill(root: &Path, n: usize) {
    let template = std::fs::read_to_string(root.join("hooks/h00000.json")).unwrap();
    for i in 1..n {
        let name = format!("h{i:05}");
        std::fs::write(
            root.join(format!("hooks/{name}.json")),
            template.replace("h00000", &name),
        )
        .unwrap();
    }
}
