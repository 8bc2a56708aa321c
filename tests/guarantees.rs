//! What hookhost promises a host under attack, each proved against real runc and wasmtime:
//! native hooks that end with their run (and die with hookhost), one memory budget per WASM
//! hook, a write budget, an audit trail that fails closed and stays bounded, trust checks on
//! the config file, and hook output that cannot drive a terminal.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::engines::{Setup, wait_for};
use common::{Bundle, Host, Runc, Tmpfs, text, unique, wat_module};
use hookhost_exec::native::{survivors, survivors_after};

/// How long a killed process may take to be gone (`SIGKILL` is delivered asynchronously).
const KILLED: Duration = Duration::from_secs(2);
use serde_json::json;

/// Registers `script` as a native hook `name` (via `sh -c`), at `stage`, timeout 5 s.
fn native_hook(host: &Host, name: &str, stage: &str, script: &str) {
    host.ok(&[
        "create",
        "--type",
        stage,
        "--timeout",
        "5",
        "--args",
        &format!("sh,-c,{script}"),
        name,
        "/bin/sh",
    ]);
}

/// The pgid a hook wrote to `file` (its first act).
fn pgid_in(file: &Path) -> i32 {
    fs::read_to_string(file).unwrap().trim().parse().unwrap()
}

fn record_pgid(file: &Path) -> String {
    format!("cut -d' ' -f5 /proc/$$/stat > {}; ", file.display())
}

/// The three native cases of the issue, through `hookhost try`: each returns long before the
/// 5 s timeout, keeps the output, and leaves nothing of the hook's process group alive.
#[test]
fn native_hooks_end_with_their_process_in_try() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("sleep 1000 & echo started; exit 0", true, "started"),
        (
            "echo failing-reason >&2; sleep 1003 & exit 7",
            false,
            "failing-reason",
        ),
        (
            "sleep 1001 >/dev/null 2>&1 & echo detached; exit 0",
            true,
            "detached",
        ),
    ];
    for (i, (script, ok, said)) in cases.into_iter().enumerate() {
        let pgid_file = dir.path().join(format!("pgid{i}"));
        let name = format!("bg{i}");
        native_hook(
            &host,
            &name,
            "poststop",
            &(record_pgid(&pgid_file) + script),
        );
        let started = Instant::now();
        let out = host.run(&["try", &name]);
        let took = started.elapsed();
        assert_eq!(out.status.success(), ok, "{script}: {}", text(&out.stderr));
        assert!(took < Duration::from_secs(3), "{script}: waited {took:?}");
        let shown = text(&out.stdout) + &text(&out.stderr);
        assert!(shown.contains(said), "{script}: {shown}");
        assert!(!shown.contains("truncated"), "{script}: {shown}");
        assert_eq!(
            survivors_after(pgid_in(&pgid_file), KILLED),
            Vec::<i32>::new(),
            "{script}"
        );
    }
}

/// The same in a real `runc run`: the background child neither delays the container nor
/// outlives the stage.
#[test]
fn native_hooks_end_with_their_process_in_runc() {
    let host = Host::new();
    let runc = Runc::new();
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let script = record_pgid(&pgid_file) + "sleep 1000 & echo started; exit 0";
    native_hook(&host, "bg", "createRuntime", &script);
    let bundle = Bundle::new("echo ran");
    host.inject(&bundle, &["bg"]);
    let started = Instant::now();
    let out = runc.run(&bundle, &unique("bg"));
    let took = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "ran\n");
    assert!(took < Duration::from_secs(3), "waited {took:?}");
    assert_eq!(
        survivors_after(pgid_in(&pgid_file), KILLED),
        Vec::<i32>::new()
    );
}

/// A `kill -9` of hookhost (what a runtime's own hook timeout does) while its hook sleeps:
/// the hook's whole process group dies with it.
#[test]
fn a_killed_hookhost_takes_its_hook_with_it() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let script = record_pgid(&pgid_file) + "sleep 1004 & sleep 1004";
    native_hook(&host, "sleeper", "poststop", &script);
    let mut child = host
        .cmd()
        .args(["try", "sleeper"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("the hook to start", Duration::from_secs(10), || {
        fs::read_to_string(&pgid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let pgid = pgid_in(&pgid_file);
    wait_for("guard, sh and sleep to run", Duration::from_secs(5), || {
        survivors(pgid).len() >= 3
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_for("the hook's group to die", Duration::from_secs(5), || {
        survivors(pgid).is_empty()
    });
}

/// Fills the file system of `dir` until less than the 256 KiB hookhost needs are free.
fn fill(dir: &Path) {
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", dir.join("filler").display()))
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "dd must hit the end of the file system"
    );
    let _ = fs::remove_file(dir.join("small"));
    let stat = nix::sys::statvfs::statvfs(dir).unwrap();
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    assert!(free < 256 * 1024, "{free} bytes still free");
}

/// A state directory on a full file system: the wrapper refuses the container before
/// anything runs, saying why and how to fix it, and config.json is left as it was.
#[test]
fn a_full_state_directory_refuses_the_container_in_the_wrapper() {
    let setup = Setup::new();
    fs::create_dir_all(setup.host.root()).unwrap();
    let _tmpfs = Tmpfs::at(&setup.host.root(), "size=8m,mode=0700");
    let bundle = Bundle::new("echo ran");
    setup.recorder("rec", &bundle, &["--type", "prestart"]);
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "rec"}));
    let before = fs::read(bundle.config_file()).unwrap();
    fill(&setup.host.root());
    let out = setup.run(&bundle, &unique("full"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("container refused"), "{err}");
    assert!(
        err.contains("bytes hookhost keeps for its audit trail"),
        "{err}"
    );
    assert!(
        err.contains("set \"root\" in hookhost's config file"),
        "{err}"
    );
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    assert!(!bundle.rootfs().join("marker").exists());
}

/// The file system fills up after the hooks were injected: a fatal stage refuses to run
/// hooks it cannot record (the hook never runs, the container never starts); poststop only
/// warns.
#[test]
fn a_fatal_stage_that_cannot_record_refuses_the_container() {
    let host = Host::new();
    let runc = Runc::new();
    fs::create_dir_all(host.root()).unwrap();
    let _tmpfs = Tmpfs::at(&host.root(), "size=8m,mode=0700");
    let bundle = Bundle::new("echo ran");
    let marker = bundle.rootfs().join("marker");
    let script = format!("echo $HOOKHOST_STAGE >> {}", marker.display());
    native_hook(&host, "pre", "createRuntime", &script);
    native_hook(&host, "post", "poststop", &script);
    host.inject(&bundle, &["pre", "post"]);
    fill(&host.root());
    let out = runc.run(&bundle, &unique("unrecorded"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("the runs of its createRuntime hooks cannot be recorded"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("ran"));
    // runc runs poststop hooks when a create fails; only the fatal stage's hook must not run.
    let ran = fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        !ran.contains("createRuntime"),
        "the hook ran unrecorded: {ran}"
    );
}

/// A config file others can write is refused — it names the runtime and the hooks run as
/// root — with the registry's chmod advice, by the wrapper as by the CLI.
#[test]
fn a_config_file_others_can_write_is_refused() {
    let setup = Setup::new();
    let config = setup.wrapper.config();
    fs::set_permissions(&config, fs::Permissions::from_mode(0o666)).unwrap();
    let bundle = Bundle::new("echo ran");
    let out = setup.run(&bundle, &unique("cfg"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("chmod go-w"), "{err}");
    assert!(!text(&out.stdout).contains("ran"));
    let out = setup
        .host
        .cmd()
        .arg("--config")
        .arg(&config)
        .arg("ls")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not trusted"),
        "{}",
        text(&out.stderr)
    );
}

/// `HOOKHOST_HOOKS` in the container's environment (the image's `ENV` or `docker run -e`)
/// selects hooks by default; with `"selectFromEnv": false` it is ignored, left in place,
/// and the wrapper's log says so.
#[test]
fn env_selection_follows_the_config() {
    for allowed in [true, false] {
        let setup = Setup::with_config(json!({"selectFromEnv": allowed, "logLevel": "warn"}));
        let bundle = Bundle::new("echo HOOKS=$HOOKHOST_HOOKS");
        setup.recorder("rec", &bundle, &["--type", "prestart"]);
        bundle.edit(|c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push("HOOKHOST_HOOKS=rec".into())
        });
        let out = setup.run(&bundle, &unique("env"));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let ran = bundle.rootfs().join("marker").exists();
        assert_eq!(ran, allowed);
        let seen = text(&out.stdout);
        if allowed {
            assert_eq!(seen, "HOOKS=\n", "consumed");
        } else {
            assert_eq!(seen, "HOOKS=rec\n", "left alone");
            let log = fs::read_to_string(setup.log()).unwrap();
            assert!(log.contains("selectFromEnv"), "{log}");
        }
    }
}

/// A hook that writes terminal escape sequences: they reach runc's error and `try`'s output
/// escaped, never raw.
#[test]
fn hook_output_cannot_drive_a_terminal() {
    let host = Host::new();
    let runc = Runc::new();
    let script = r#"printf 'evil\033]0;owned\007\033[2J' >&2; exit 1"#;
    native_hook(&host, "esc", "createRuntime", script);
    let bundle = Bundle::new("true");
    host.inject(&bundle, &["esc"]);
    let out = runc.run(&bundle, &unique("esc"));
    assert!(!out.status.success());
    let all = [out.stderr.clone(), host.run(&["try", "esc"]).stdout].concat();
    assert!(
        !all.contains(&0x1b) && !all.contains(&0x07),
        "{}",
        text(&all)
    );
    let shown = text(&all);
    assert!(
        shown.contains(r"evil\u{1b}]0;owned\u{7}\u{1b}[2J"),
        "{shown}"
    );
}

/// WASI passes C strings: a NUL in a WASM hook's argument is refused, as for native hooks.
#[test]
fn a_nul_in_a_wasm_argument_is_refused() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let module = wat_module(dir.path(), "echo");
    host.ok(&["create", "probe", module.to_str().unwrap()]);
    let out = host.run(&["try", r#"probe:["a\u0000b"]"#]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("NUL"), "{err}");
    assert!(!text(&out.stdout).contains("a\0"), "{}", text(&out.stdout));
}

/// Runs `hookhost ARGS` and returns its output and peak RSS in bytes (`wait4`'s rusage of
/// exactly this child, which also reaps it).
#[allow(clippy::zombie_processes)]
fn run_measured(host: &Host, args: &[&str]) -> (std::process::Output, u64) {
    let child = host
        .cmd()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let mut out = std::process::Output {
        status: std::os::unix::process::ExitStatusExt::from_raw(0),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    let (mut so, mut se) = (child.stdout.unwrap(), child.stderr.unwrap());
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        se.read_to_end(&mut buf).unwrap();
        buf
    });
    so.read_to_end(&mut out.stdout).unwrap();
    out.stderr = reader.join().unwrap();
    let mut status = 0;
    // SAFETY: plain wait4 on our own child, with zeroed out-parameters.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid);
    out.status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (out, usage.ru_maxrss as u64 * 1024)
}

/// The issue's two memory attacks under `--memory 64MiB`: sixteen 64 MiB memories, and a
/// table grown by 50 M entries. Each is stopped with the memory error, and the whole stage
/// process stays under 128 MB at its peak.
#[test]
fn memory_attacks_stay_within_one_budget() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let memories: String = (0..16)
        .map(|i| format!("(memory $m{i} 1024)"))
        .collect::<Vec<_>>()
        .join(" ");
    let touch: String = (0..16)
        .map(|i| {
            format!(
                "(local.set $p (i32.const 0)) (loop $t{i} (i32.store8 $m{i} (local.get $p) \
                 (i32.const 1)) (local.set $p (i32.add (local.get $p) (i32.const 4096))) \
                 (br_if $t{i} (i32.lt_u (local.get $p) (i32.const 67108864))))"
            )
        })
        .collect();
    let many = format!(r#"(module {memories} (func (export "_start") (local $p i32) {touch}))"#);
    let table = r#"(module (table $t 1 funcref)
      (func (export "_start")
        (if (i32.eq (table.grow $t (ref.null func) (i32.const 50000000)) (i32.const -1))
          (then unreachable))))"#;
    for (name, wat) in [("memories", many.as_str()), ("table", table)] {
        let module = dir.path().join(format!("{name}.wasm"));
        fs::write(&module, wat::parse_str(wat).unwrap()).unwrap();
        host.ok(&[
            "create",
            "--memory",
            "64MiB",
            name,
            module.to_str().unwrap(),
        ]);
        let (out, rss) = run_measured(&host, &["try", name]);
        assert!(!out.status.success(), "{name}");
        let err = text(&out.stderr);
        assert!(
            err.contains("exceeded its memory limit of 64 MiB"),
            "{name}: {err}"
        );
        assert!(rss < 128 << 20, "{name}: peak RSS {} MB", rss >> 20);
    }
}

/// A hook with a writable directory writing 1 GiB stops at its write limit; the host file
/// system keeps no more than the limit.
#[test]
fn a_writable_grant_has_a_write_budget() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let module = wat_module(dir.path(), "fill");
    host.ok(&[
        "create",
        "--allow-dir",
        &format!("{}:/out:rw", out_dir.display()),
        "--write-limit",
        "1MiB",
        "filler",
        module.to_str().unwrap(),
    ]);
    let inspect = host.ok(&["inspect", "filler"]);
    assert!(inspect.contains("1048576"), "{inspect}");
    let out = host.run(&["try", "filler"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("exceeded its write limit of 1 MiB"), "{err}");
    let size = fs::metadata(out_dir.join("big")).unwrap().len();
    assert!(size <= 1 << 20, "{size} bytes reached the disk");
}

/// `--leave-helpers` is runc's behaviour, asked for at registration: what the hook left
/// running stays; inspect shows it; a WASM module cannot ask for it.
#[test]
fn leave_helpers_is_a_registration_choice() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let pgid_file = dir.path().join("pgid");
    let script = record_pgid(&pgid_file) + "sleep 1005 >/dev/null 2>&1 & exit 0";
    host.ok(&[
        "create",
        "--type",
        "poststop",
        "--leave-helpers",
        "--args",
        &format!("sh,-c,{script}"),
        "helper",
        "/bin/sh",
    ]);
    assert!(
        host.ok(&["inspect", "helper"])
            .contains("\"LeaveHelpers\": true")
    );
    host.ok(&["try", "helper"]);
    let pgid = pgid_in(&pgid_file);
    let left = survivors(pgid);
    assert_eq!(left.len(), 1, "the helper stays: {left:?}");
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::SIGKILL).unwrap();
    let module = wat_module(dir.path(), "echo");
    let err = host.fails(&["create", "--leave-helpers", "w", module.to_str().unwrap()]);
    assert!(
        err.contains("--leave-helpers applies to native hooks only"),
        "{err}"
    );
}
