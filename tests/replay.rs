//! Replay (issue 23): WASM hook runs in real runc containers (and real `hookhost stage` calls)
//! leave records keyed by their event id; `hookhost replay` runs them again in a scratch
//! sandbox — identically, clocks, random numbers and fuel included — or with a candidate
//! module, and reports what differs.

mod common;

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Bundle, Host, Runc, text, unique};
use serde_json::Value;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A probe hook: writes the wall clock and 8 random bytes it reads, then the content of the
/// file `input` under its first granted directory (when there is one), then `mark`. With
/// `write`, it also creates `out` there holding `mark`; with `refuse`, it exits 1 when its
/// stdin holds a `!`.
fn probe(dir: &Path, name: &str, mark: &str, write: bool, refuse: bool) -> PathBuf {
    assert_eq!(mark.len(), 4);
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 2)
  (data (i32.const 900) "input")
  (data (i32.const 910) "out")
  (data (i32.const 920) "{mark}")
  (func $write (param $fd i32) (param $ptr i32) (param $len i32)
    (i32.store (i32.const 32) (local.get $ptr))
    (i32.store (i32.const 36) (local.get $len))
    (drop (call $fd_write (local.get $fd) (i32.const 32) (i32.const 1) (i32.const 40))))
  ;; Reads what fd holds (up to 4096 bytes a time) into 16384; the bytes read.
  (func $read (param $fd i32) (result i32)
    (i32.store (i32.const 48) (i32.const 16384))
    (i32.store (i32.const 52) (i32.const 4096))
    (if (call $fd_read (local.get $fd) (i32.const 48) (i32.const 1) (i32.const 56))
      (then (return (i32.const 0))))
    (i32.load (i32.const 56)))
  (func (export "_start") (local $n i32) (local $i i32) (local $bang i32)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 104)))
    (drop (call $random (i32.const 112) (i32.const 8)))
    (call $write (i32.const 1) (i32.const 104) (i32.const 16))
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 900) (i32.const 5)
          (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
      (then
        (local.set $n (call $read (i32.load (i32.const 8))))
        (call $write (i32.const 1) (i32.const 16384) (local.get $n))))
    (if (i32.const {write})
      (then
        (if (i32.eqz (call $path_open (i32.const 3) (i32.const 1) (i32.const 910) (i32.const 3)
              (i32.const 9) (i64.const 64) (i64.const 0) (i32.const 0) (i32.const 12)))
          (then (call $write (i32.load (i32.const 12)) (i32.const 920) (i32.const 4))))))
    (block $eof
      (loop $more
        (local.set $n (call $read (i32.const 0)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $i (i32.const 0))
        (block $scanned
          (loop $scan
            (br_if $scanned (i32.ge_u (local.get $i) (local.get $n)))
            (if (i32.eq (i32.load8_u (i32.add (i32.const 16384) (local.get $i))) (i32.const 33))
              (then (local.set $bang (i32.const 1))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $scan)))
        (br $more)))
    (if (i32.and (i32.const {refuse}) (local.get $bang))
      (then (call $proc_exit (i32.const 1))))
    (call $write (i32.const 1) (i32.const 920) (i32.const 4))))"#,
        write = u8::from(write),
        refuse = u8::from(refuse),
    );
    let out = dir.join(format!("{name}.wasm"));
    fs::write(&out, wat::parse_str(&wat).unwrap()).unwrap();
    out
}

/// The events of `hook`, as `hookhost events --format json` shows them.
fn events(host: &Host, hook: &str) -> Vec<Value> {
    host.ok(&["events", "--hook", hook, "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The id of the only run of `hook`.
fn only_id(host: &Host, hook: &str) -> String {
    let runs = events(host, hook);
    assert_eq!(runs.len(), 1, "{runs:?}");
    runs[0]["id"].as_str().unwrap().to_string()
}

/// Registers `module` as createRuntime hook `name` (with `grant`, a `--allow-dir` value) and
/// runs one real runc container with it, which must start.
fn run_once(host: &Host, runc: &Runc, name: &str, module: &Path, grant: Option<&str>) -> Bundle {
    let mut create = vec!["create", "--type", "createRuntime"];
    if let Some(grant) = grant {
        create.extend(["--allow-dir", grant]);
    }
    create.extend([name, s(module)]);
    host.ok(&create);
    run_again(host, runc, name)
}

/// Runs one more real runc container with hook `name`, which must start; its bundle.
fn run_again(host: &Host, runc: &Runc, name: &str) -> Bundle {
    let bundle = Bundle::new("true");
    host.inject(&bundle, &[name]);
    let out = runc.run(&bundle, &unique(name));
    assert!(out.status.success(), "{}", text(&out.stderr));
    bundle
}

/// A directory `data` under `work` holding the file `input` with `content`.
fn data_dir(work: &Path, content: &str) -> PathBuf {
    let data = work.join("data");
    fs::create_dir(&data).unwrap();
    fs::write(data.join("input"), content).unwrap();
    data
}

/// A hook reading the clock, random numbers and a granted file runs in a real runc
/// container; its event has an id (JSON and text), and `replay ID` is identical — fuel
/// included — even after the granted file changed; a changed module reports the difference.
#[test]
fn a_recorded_run_replays_identically_and_a_changed_module_differs() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let data = data_dir(work.path(), "granted-1\n");
    let v1 = probe(work.path(), "v1", "v1v1", false, false);
    let v2 = probe(work.path(), "v2", "v2v2", false, false);
    let grant = format!("{}:/data:ro", data.display());
    run_once(&host, &runc, "probe", &v1, Some(&grant));

    let id = only_id(&host, "probe");
    assert_eq!(id.len(), 21, "{id}");
    let line = host.ok(&["events", "--hook", "probe"]);
    assert!(line.contains(&format!(" id={id}")), "{line}");

    fs::write(data.join("input"), "changed since\n").unwrap();
    let replayed = host.ok(&["replay", &id]);
    assert!(
        replayed.contains("\nidentical (exit, output and fuel "),
        "{replayed}"
    );
    assert!(!replayed.contains("not exactly replayable"), "{replayed}");
    assert_eq!(
        fs::read_to_string(data.join("input")).unwrap(),
        "changed since\n"
    );

    let candidate = host.run(&["replay", &id, "--with", s(&v2), "--fail-on-difference"]);
    assert!(!candidate.status.success());
    let said = text(&candidate.stdout);
    assert!(said.contains("different:\n  stdout differs"), "{said}");
    let by_path_same = host.ok(&["replay", &id, "--with", s(&v1)]);
    assert!(by_path_same.contains("identical"), "{by_path_same}");
}

/// Two runs of the same clock- and random-reading hook print different bytes; each replays
/// to exactly its own.
#[test]
fn a_hook_reading_the_clock_and_random_numbers_replays_identically() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let module = probe(work.path(), "clock", "tick", false, false);
    run_once(&host, &runc, "clock", &module, None);
    run_again(&host, &runc, "clock");
    let runs = events(&host, "clock");
    assert_eq!(runs.len(), 2);
    let records = fs::read_to_string(host.root().join("replay/records.jsonl")).unwrap();
    let outputs: Vec<Value> = records
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["ending"]["stdout"].clone())
        .collect();
    assert_eq!(outputs.len(), 2);
    assert_ne!(outputs[0], outputs[1], "the clock and random bytes differ");
    for run in &runs {
        let id = run["id"].as_str().unwrap();
        let replayed = host.ok(&["replay", id]);
        assert!(replayed.contains("identical"), "{replayed}");
    }
}

/// A hook with a writable grant writes a file in a real container; after the file is
/// removed, `replay` runs it again (saying why it is not exactly replayable) and the real
/// directory stays as it was.
#[test]
fn a_writable_grants_files_are_untouched_by_replay() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let data = data_dir(work.path(), "rw\n");
    let module = probe(work.path(), "writer", "wrot", true, false);
    let grant = format!("{}:/data:rw", data.display());
    run_once(&host, &runc, "writer", &module, Some(&grant));
    assert_eq!(fs::read_to_string(data.join("out")).unwrap(), "wrot");
    fs::remove_file(data.join("out")).unwrap();
    let before = common::files(&data);

    let replayed = host.ok(&["replay", &only_id(&host, "writer")]);
    assert!(replayed.contains("identical"), "{replayed}");
    assert!(
        replayed.contains("not exactly replayable: /data is a writable grant"),
        "{replayed}"
    );
    assert_eq!(
        common::files(&data),
        before,
        "the real directory is untouched"
    );
}

/// An unknown event id, and a record that does not parse, are errors naming the event.
#[test]
fn a_corrupt_or_missing_record_is_a_clear_error_naming_the_event() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let missing = host.fails(&["replay", "00000000000000000000f"]);
    assert!(
        missing.contains("no replay record of event 00000000000000000000f"),
        "{missing}"
    );

    let module = probe(work.path(), "p", "corr", false, false);
    run_once(&host, &runc, "p", &module, None);
    let id = only_id(&host, "p");
    let file = host.root().join("replay/records.jsonl");
    let line = fs::read_to_string(&file).unwrap();
    fs::write(&file, &line[..line.len() / 2]).unwrap();
    let corrupt = host.fails(&["replay", &id]);
    assert!(
        corrupt.contains(&format!("the replay record of event {id} is corrupt")),
        "{corrupt}"
    );
}

/// Runs the stage hookhost injected into `bundle` for `stage`, as the runtime does, with a
/// state whose annotation `mark` is `value`.
fn call_stage(bundle: &Bundle, stage: &str, id: &str, value: &str) {
    let config = bundle.config();
    let entry = config["hooks"][stage]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let args: Vec<String> = entry["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let state = serde_json::json!({
        "ociVersion": "1.0.2", "id": id, "status": "creating", "pid": 1,
        "bundle": bundle.path_str(), "annotations": {"mark": value},
    });
    let mut child = Command::new(entry["path"].as_str().unwrap())
        .arg0(&args[0])
        .args(&args[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(state.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
}

use std::os::unix::process::CommandExt;

/// 100 runs of a policy through `hookhost stage` (as runc calls it) and one real runc
/// container: `replay --hook --since --with` a stricter candidate lists exactly the runs whose
/// verdict changed, and `--fail-on-difference` makes that the exit status; the same module
/// agrees everywhere.
#[test]
fn replay_since_with_lists_exactly_the_runs_whose_verdict_changed() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let lenient = probe(work.path(), "lenient", "pass", false, false);
    let strict = probe(work.path(), "strict", "pass", false, true);
    let bundle = run_once(&host, &runc, "policy", &lenient, None);
    let mut changed = Vec::new();
    for i in 0..100 {
        let id = format!("c{i:03}");
        let value = if i % 7 == 3 { "!" } else { "." };
        if value == "!" {
            changed.push(id.clone());
        }
        call_stage(&bundle, "createRuntime", &id, value);
    }
    assert_eq!(events(&host, "policy").len(), 101);

    let args = [
        "replay",
        "--hook",
        "policy",
        "--since",
        "1h",
        "--with",
        s(&strict),
    ];
    let mut all = args.to_vec();
    all.extend(["--show", "100"]);
    let said = host.ok(&all);
    assert!(
        said.starts_with(&format!(
            "hook policy: 101 recorded runs, {} agree, {} differ\n",
            101 - changed.len(),
            changed.len()
        )),
        "{said}"
    );
    let listed: Vec<String> = said
        .lines()
        .skip(2)
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .inspect(|cols| assert_eq!(cols[2..4], ["allowed", "refused"], "{cols:?}"))
        .map(|cols| cols[1].to_string())
        .collect();
    assert_eq!(listed, changed);

    let mut failing = args.to_vec();
    failing.push("--fail-on-difference");
    assert!(!host.run(&failing).status.success());
    // The candidate from a real OCI registry, as a rollout would name it.
    let registry = common::oci::Registry::start();
    registry.oras_push("policy:v2", &strict);
    let reference = registry.oci("policy:v2");
    let pulled = host.ok(&["replay", "--hook", "policy", "--with", &reference]);
    assert!(
        pulled.starts_with(&format!(
            "hook policy: 101 recorded runs, {} agree",
            101 - changed.len()
        )),
        "{pulled}"
    );
    let same = host.ok(&[
        "replay",
        "--hook",
        "policy",
        "--since",
        "1h",
        "--with",
        "policy",
        "--fail-on-difference",
    ]);
    assert!(
        same.starts_with("hook policy: 101 recorded runs, 101 agree, 0 differ"),
        "{same}"
    );
}

/// With `"replay": {"enabled": false}` in the config, runs leave events but no records.
#[test]
fn records_can_be_turned_off() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("config.json");
    fs::write(&config, r#"{"replay": {"enabled": false}}"#).unwrap();
    let module = probe(work.path(), "off", "off!", false, false);
    host.ok(&["create", "--type", "createRuntime", "off", s(&module)]);
    let bundle = Bundle::new("true");
    host.ok(&[
        "--config",
        s(&config),
        "inject",
        "--bundle",
        bundle.path_str(),
        "--add-hook",
        "off",
    ]);
    assert!(runc.run(&bundle, &unique("off")).status.success());
    let id = only_id(&host, "off");
    assert!(!host.root().join("replay/records.jsonl").exists());
    let err = host.fails(&["replay", &id]);
    assert!(
        err.contains(&format!("no replay record of event {id}")),
        "{err}"
    );
}

/// `hookhost try --replay ID` gives a hook a recorded run's input: the recorded hook by
/// default, or a file defined on the command line, which then decides on that input.
#[test]
fn try_replay_gives_a_hook_the_recorded_input() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let lenient = probe(work.path(), "lenient", "pass", false, false);
    let strict = probe(work.path(), "strict", "pass", false, true);
    let bundle = run_once(&host, &runc, "gate", &lenient, None);
    call_stage(&bundle, "createRuntime", "flagged", "!");
    let runs = events(&host, "gate");
    let flagged = runs.iter().find(|e| e["container"] == "flagged").unwrap();
    let id = flagged["id"].as_str().unwrap();

    let recorded = host.ok(&["try", "--replay", id]);
    assert!(recorded.contains("pass"), "{recorded}");
    let out = host.run(&["try", s(&strict), "--type", "createRuntime", "--replay", id]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let missing = host.fails(&["try", "--replay", "nope"]);
    assert!(
        missing.contains("no replay record of event nope"),
        "{missing}"
    );
}

/// A run that cannot be recorded for replay (the records' directory is a file) refuses the
/// container at a fatal stage, saying why and how to turn records off.
#[test]
fn a_run_that_cannot_be_recorded_refuses_the_container() {
    let host = Host::new();
    let runc = Runc::new();
    let work = tempfile::tempdir().unwrap();
    let module = probe(work.path(), "closed", "shut", false, false);
    host.ok(&["create", "--type", "createRuntime", "closed", s(&module)]);
    fs::write(host.root().join("replay"), "not a directory").unwrap();
    let bundle = Bundle::new("echo ran");
    host.inject(&bundle, &["closed"]);
    let out = runc.run(&bundle, &unique("closed"));
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("ran"));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("the run of hook closed (createRuntime) cannot be recorded for replay"),
        "{stderr}"
    );
    assert!(stderr.contains("turn records off"), "{stderr}");
}

/// A real precreate WASM hook (the gpu-env example, a Rust guest) shapes a container's
/// config.json through `inject`; its run replays identically, and a candidate that edits
/// nothing (the noop example) is reported with the edits before and after.
#[test]
fn a_precreate_run_replays_identically_and_a_candidate_shows_its_edits() {
    let host = Host::new();
    let driver = tempfile::tempdir().unwrap();
    let grants = "env=GPU_*,mounts=/opt/gpu/**:from={driver}/**,devices=/dev/gpu*";
    host.gpu_env("gpu", grants, driver.path(), &[]);
    let bundle = Bundle::new("true");
    host.inject(&bundle, &["gpu"]);
    let env = bundle.config()["process"]["env"].to_string();
    assert!(env.contains("GPU_VISIBLE"), "{env}");

    let id = only_id(&host, "gpu");
    let replayed = host.ok(&["replay", &id]);
    assert!(
        replayed.contains("\nidentical (exit, output and fuel "),
        "{replayed}"
    );
    let noop = common::example_wasm("noop");
    let said = host.ok(&["replay", "--hook", "gpu", "--with", s(&noop)]);
    let mut lines = said.lines();
    assert_eq!(
        lines.next(),
        Some("hook gpu: 1 recorded runs, 0 agree, 1 differ"),
        "{said}"
    );
    let row: Vec<&str> = lines.nth(1).unwrap().split('\t').collect();
    assert_eq!(row[2..4], ["allowed", "allowed"], "{said}");
    assert!(row[4].contains("GPU_VISIBLE"), "edits before: {said}");
    assert_eq!(row[5], "-", "edits after: {said}");

    // A candidate that adds an environment variable outside the hook's grants (env=GPU_*)
    // exits 0, and is refused as the container's chain would refuse it.
    let mut config = bundle.config();
    config["process"]["env"] = serde_json::json!(["EVIL=1"]);
    let work = tempfile::tempdir().unwrap();
    let evil = printer(work.path(), "evil", &config.to_string());
    let said = host.ok(&["replay", "--hook", "gpu", "--with", s(&evil), "--show", "1"]);
    let row: Vec<&str> = said.lines().nth(2).unwrap().split('\t').collect();
    assert_eq!(row[2..4], ["allowed", "refused"], "{said}");
    assert!(row[5].contains("EVIL=1"), "{said}");
}

/// A WASI command that prints `text` and exits 0.
fn printer(dir: &Path, name: &str, text: &str) -> PathBuf {
    let escaped: String = text.bytes().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{escaped}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = text.len()
    );
    let out = dir.join(format!("{name}.wasm"));
    fs::write(&out, wat::parse_str(&wat).unwrap()).unwrap();
    out
}
