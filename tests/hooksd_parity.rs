//! hooks.d files mean under hookhost what they mean under Podman and CRI-O: each test takes a
//! case of containers/common's `pkg/hooks` tests (or runc's behaviour a hooks.d file relies
//! on), writes it as real hooks.d files, and runs a container through the runtime wrapper on
//! real runc; the peer cases (tests/common/hooksd_cases.rs) also run, the same files, under
//! Podman itself, and the files `hookhost export` writes for the same cases too (`--hooks-dir`).
//! Runc and Podman are Debian 12's (1.1.5, 4.3), or today's with HOOKHOST_TEST_STACK=forky.
//! Needs root, runc, podman and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::engines::Setup;
use common::forky::Stack;
use common::hooksd_cases::{self, Case, doc};
use common::podman::Podman;
use common::{Bundle, Host, lines, plan_files, succeeded as ok, text, unique};
use serde_json::{Value, json};
use tempfile::TempDir;

/// A hooks.d directory and a wrapper reading it; `extra` is added to the config file.
fn setup(extra: Value) -> (Setup, TempDir) {
    let hooksd = tempfile::tempdir().unwrap();
    let mut config = json!({"hooksDirs": [hooksd.path()]});
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    (Setup::with_config(config), hooksd)
}

fn write(dir: &Path, name: &str, doc: &Value) -> PathBuf {
    let file = dir.join(name);
    fs::write(&file, doc.to_string()).unwrap();
    file
}

/// A host script appending "LABEL STAGE" to `log` for each call (`args: [rec, LABEL]`).
fn recorder(host: &Host, log: &Path) -> String {
    let script = host.script(
        "rec.sh",
        &format!(r#"echo "$1 $HOOKHOST_STAGE" >> {}"#, log.display()),
    );
    script.to_str().unwrap().to_string()
}

/// `create` through the wrapper, which must fail; returns its stderr. No container is left.
fn refused(s: &Setup, bundle: &Bundle) -> String {
    let id = unique("refused");
    let stderr = tempfile::NamedTempFile::new().unwrap();
    let status = s
        .runtime(&["create", "--bundle", bundle.path_str(), &id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr.reopen().unwrap())
        .status()
        .unwrap();
    let _ = s.runc.cmd(&["delete", "--force", &id]).output();
    assert!(!status.success(), "the container was created");
    fs::read_to_string(stderr.path()).unwrap()
}

/// containers/common hooks_test.go `TestBadNew` (`{"version": "-1"}` makes `New` fail, so
/// Podman refuses the container) and read_test.go `TestHookExecutableDoesNotExit` (a hook
/// path that does not exist is an error of `ReadDir`): the container is refused, naming the file
/// and the way out; `hooksDirsSkipInvalid` turns it into a warning. A missing hook path alone
/// in its directory is the one error `New` ignores (the file is dropped, with a warning here);
/// beside another bad file it refuses too — under Podman as through the wrapper.
#[test]
fn an_invalid_file_refuses_the_container_as_podman_does() {
    let (s, hooksd) = setup(json!({}));
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let rec = recorder(&s.host, &marker);
    let good = doc(
        json!({"path": rec, "args": ["rec", "good"]}),
        json!({"always": true}),
        &["prestart"],
    );
    write(hooksd.path(), "good.json", &good);
    let missing = doc(
        json!({"path": "/does/not/exist"}),
        json!({"always": true}),
        &["prestart"],
    );
    let bad_version = json!({"version": "-1"});
    let a = write(hooksd.path(), "a.json", &bad_version);
    let stderr = refused(&s, &bundle);
    let want = format!(
        "invalid hooks.d file {}: unrecognized hook version \"-1\"",
        a.display()
    );
    assert!(stderr.contains(&want), "{want} not in {stderr}");
    assert!(
        stderr.contains("\"hooksDirsSkipInvalid\": true"),
        "{stderr}"
    );
    assert!(!marker.exists(), "a hook ran for a refused container");

    let b = write(hooksd.path(), "b.json", &missing);
    let stderr = refused(&s, &bundle);
    for want in [
        format!(
            "invalid hooks.d file {}: unrecognized hook version",
            a.display()
        ),
        format!(
            "invalid hooks.d file {}: hook path \"/does/not/exist\" is unusable",
            b.display()
        ),
    ] {
        assert!(stderr.contains(&want), "{want} not in {stderr}");
    }
    assert!(!marker.exists(), "a hook ran for a refused container");
    let podman = Podman::new();
    let global = [
        "--runtime",
        "runc",
        "--hooks-dir",
        hooksd.path().to_str().unwrap(),
    ];
    let (out, _) = podman.run(&global, &[], &["true"]);
    assert!(
        !out.status.success(),
        "Podman ran it: {}",
        text(&out.stderr)
    );

    fs::remove_file(&a).unwrap();
    assert_eq!(
        ok(&s.run(&bundle, &unique("dropped"))).trim(),
        "good createRuntime"
    );
    let log = fs::read_to_string(s.log()).unwrap();
    assert!(
        log.contains("hooks.d file ignored, as Podman ignores it") && log.contains("b.json"),
        "{log}"
    );
    let (out, _) = podman.run(&global, &[], &["true"]);
    ok(&out);
    fs::remove_file(&b).unwrap();
    fs::remove_file(&marker).unwrap();

    // The administrator's choice: skip invalid files with a warning.
    write(hooksd.path(), "a.json", &bad_version);
    s.wrapper
        .set_config(&json!({"runtime": "runc", "root": s.host.root(),
        "hooksDirs": [hooksd.path()], "hooksDirsSkipInvalid": true}));
    assert_eq!(
        ok(&s.run(&bundle, &unique("skip"))).trim(),
        "good createRuntime"
    );
    let log = fs::read_to_string(s.log()).unwrap();
    assert!(
        log.contains("hooks.d file skipped") && log.contains("a.json"),
        "{log}"
    );
}

/// Issue #10: a hooks.d directory or file another user could write (or owned by another user)
/// decides what runs as root, as the registry does: refused like an invalid file, with the
/// chmod/chown that fixes it.
#[test]
fn hooksd_dirs_and_files_others_could_write_are_refused_with_the_advice() {
    let (s, hooksd) = setup(json!({}));
    let bundle = Bundle::new("true");
    let file = write(
        hooksd.path(),
        "t.json",
        &doc(
            json!({"path": "/bin/true"}),
            json!({"always": true}),
            &["prestart"],
        ),
    );
    let mode = |path: &Path, mode: u32| {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    };
    mode(hooksd.path(), 0o777);
    let stderr = refused(&s, &bundle);
    let fix = format!("chmod go-w {}", hooksd.path().display());
    assert!(
        stderr.contains("writable by its group and other users"),
        "{stderr}"
    );
    assert!(stderr.contains(&fix), "{fix} not in {stderr}");
    mode(hooksd.path(), 0o755);

    mode(&file, 0o666);
    let stderr = refused(&s, &bundle);
    let fix = format!("chmod go-w {}", file.display());
    assert!(stderr.contains(&fix), "{fix} not in {stderr}");
    mode(&file, 0o644);

    std::os::unix::fs::chown(&file, Some(1000), None).unwrap();
    let stderr = refused(&s, &bundle);
    let fix = format!("chown root {}", file.display());
    assert!(stderr.contains("owned by uid 1000"), "{stderr}");
    assert!(stderr.contains(&fix), "{fix} not in {stderr}");
    std::os::unix::fs::chown(&file, Some(0), None).unwrap();
    ok(&s.run(&bundle, &unique("trusted")));
}

/// containers/common hooks_test.go `TestGoodNew` copies each file's `timeout` into the OCI
/// hook as given, and leaves it unset when the file has none: runc then never kills the hook.
/// hookhost's own entry gets no timeout either, and its runner none for that hook.
#[test]
fn a_hook_without_timeout_has_none() {
    let (s, hooksd) = setup(json!({}));
    let bundle = Bundle::new("cat /marker");
    let rec = recorder(&s.host, &bundle.rootfs().join("marker"));
    let hook = |label: &str| json!({"path": rec, "args": ["rec", label]});
    let mut bounded = hook("bounded");
    bounded["timeout"] = 7.into();
    let always = json!({"always": true});
    write(
        hooksd.path(),
        "10-none.json",
        &doc(hook("none"), always.clone(), &["createRuntime"]),
    );
    write(
        hooksd.path(),
        "20-seven.json",
        &doc(bounded, always, &["createContainer"]),
    );
    let out = ok(&s.run(&bundle, &unique("timeouts")));
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        ["none createRuntime", "bounded createContainer"]
    );

    let config = bundle.config();
    let create_runtime = &config["hooks"]["createRuntime"][0];
    assert!(create_runtime.get("timeout").is_none(), "{create_runtime}");
    assert_eq!(config["hooks"]["createContainer"][0]["timeout"], 7 + 5);
    let [plan] = &plan_files(bundle.path())[..] else {
        panic!("one plan file expected")
    };
    let plan: Value = serde_json::from_slice(&fs::read(plan).unwrap()).unwrap();
    let none = &plan["stages"]["createRuntime"][0];
    assert_eq!(none["Name"], "10-none");
    assert_eq!(none["NoTimeout"], true, "{none}");
    let seven = &plan["stages"]["createContainer"][0];
    assert_eq!(
        (seven["Timeout"].as_u64(), seven.get("NoTimeout")),
        (Some(7), None)
    );
}

/// The same, run: a hook without `timeout` outlives hookhost's own default of 30 s (it is
/// not killed; its exit, not a time, is what is checked).
#[test]
fn a_hook_without_timeout_runs_past_the_registry_default() {
    let (s, hooksd) = setup(json!({}));
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let body = format!("sleep 31; echo slow-done >> {}", marker.display());
    let hook = json!({"path": "/bin/sh", "args": ["sh", "-c", body]});
    write(
        hooksd.path(),
        "slow.json",
        &doc(hook, json!({"always": true}), &["createRuntime"]),
    );
    assert_eq!(ok(&s.run(&bundle, &unique("slow"))).trim(), "slow-done");
}

/// containers/common hooks_test.go `TestGoodNew`: files are ordered by lower-cased name
/// (`01-my-hook` before `01-UPPERCASE`), and — since containers/common moved prestart to
/// createRuntime (2024; containers/common#2540) — a prestart file is injected at
/// createRuntime, in one list with the createRuntime files, so file order decides between
/// them (runc would run every prestart hook before every createRuntime hook).
#[test]
fn prestart_files_run_at_create_runtime_in_file_order() {
    let (s, hooksd) = setup(json!({}));
    let bundle = Bundle::new("true");
    let log = s.host.dir.path().join("ran.log");
    let rec = recorder(&s.host, &log);
    let files = [
        (
            "01-my-hook.json",
            &["prestart", "poststart", "poststop"][..],
            1,
        ),
        ("01-UPPERCASE.json", &["createRuntime"][..], 2),
        ("02-another-hook.json", &["prestart"][..], 3),
    ];
    for (name, stages, timeout) in files {
        let label = name.trim_end_matches(".json");
        let hook = json!({"path": rec, "args": ["rec", label], "timeout": timeout});
        write(
            hooksd.path(),
            name,
            &doc(hook, json!({"always": true}), stages),
        );
    }
    ok(&s.run(&bundle, &unique("order")));
    assert_eq!(
        lines(&log),
        [
            "01-my-hook createRuntime",
            "01-UPPERCASE createRuntime",
            "02-another-hook createRuntime",
            "01-my-hook poststart",
            "01-my-hook poststop",
        ]
    );
    let hooks = &bundle.config()["hooks"];
    assert!(hooks.get("prestart").is_none(), "{hooks}");
    assert_eq!(hooks["createRuntime"].as_array().unwrap().len(), 1);
    assert_eq!(hooks["createRuntime"][0]["timeout"], 1 + 2 + 3 + 5);
}

/// Writes the files of `case` into `dir`.
fn write_case(dir: &Path, case: &Case) {
    assert!(case.lower.is_empty(), "{}: use case_dirs", case.mirrors);
    for (name, doc) in &case.files {
        write(dir, name, doc);
    }
}

/// The case's hooks.d directories in increasing precedence: its lower files, then its files.
fn case_dirs(case: &Case) -> [TempDir; 2] {
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    for (dir, files) in dirs.iter().zip([&case.lower, &case.files]) {
        for (name, doc) in files {
            write(dir.path(), name, doc);
        }
    }
    dirs
}

/// Runs the case `make` gives (for a recorder) through the wrapper: its files in fresh
/// hooks.d directories, a container (`sh`) with its annotations; exactly its hooks run, in order.
fn through_the_wrapper(make: fn(&str) -> Case) {
    let s = Setup::new();
    let log = s.host.dir.path().join("ran.log");
    let case = make(&recorder(&s.host, &log));
    let dirs = case_dirs(&case);
    s.wrapper
        .set_config(&json!({"runtime": "runc", "root": s.host.root(),
        "hooksDirs": [dirs[0].path(), dirs[1].path()]}));
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = case.annotations.clone());
    ok(&s.run(&bundle, &unique("case")));
    let want: Vec<String> = case
        .ran
        .iter()
        .map(|label| format!("{label} createRuntime"))
        .collect();
    assert_eq!(lines(&log), want, "{}", case.mirrors);
}

/// containers/common `when_test.go`: AND-ed conditions, any command, every annotation pair,
/// unanchored regexes, a file without conditions that never runs.
#[test]
fn when_conditions_hold_as_in_containers_common() {
    through_the_wrapper(hooksd_cases::when_conditions);
}

/// containers/common `when.go` compiles conditions with Go's `regexp` (RE2): each file
/// matches, or not, as under Podman (hooksd_cases::go_regexp).
#[test]
fn go_regexp_syntax_matches_as_in_go() {
    through_the_wrapper(hooksd_cases::go_regexp);
}

/// Issue #21: what containers/common drops without refusing the container (a file whose hook
/// path does not exist, alone in its directory; `"stages": []`) the wrapper drops too, and a
/// lower-precedence file of the same name as the dropped one runs (hooksd_cases::dropped_files;
/// the same files run under Podman in `peer_cases_run_the_same_hooks_under_podman`).
#[test]
fn files_podman_drops_are_dropped_not_refused() {
    through_the_wrapper(hooksd_cases::dropped_files);
}

/// The peer cases, the same files, under Podman itself (`--hooks-dir`, runc): the reference
/// runs the hooks the wrapper runs, in the same order — Podman 4.3's older containers/common
/// where the case says it differs.
#[test]
fn peer_cases_run_the_same_hooks_under_podman() {
    let podman = Podman::new();
    let host = Host::new();
    let log = host.dir.path().join("ran.log");
    let rec = recorder(&host, &log);
    let cases = [
        hooksd_cases::when_conditions(&rec),
        hooksd_cases::go_regexp(&rec),
        hooksd_cases::file_order(&rec),
        hooksd_cases::any_name(&rec),
        hooksd_cases::dropped_files(&rec),
    ];
    for case in cases {
        let dirs = case_dirs(&case);
        let annotations: Vec<String> = case
            .annotations
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| format!("{key}={}", value.as_str().unwrap()))
            .collect();
        let run: Vec<&str> = annotations
            .iter()
            .flat_map(|a| ["--annotation", a.as_str()])
            .collect();
        let global = [
            "--runtime",
            "runc",
            "--hooks-dir",
            dirs[0].path().to_str().unwrap(),
            "--hooks-dir",
            dirs[1].path().to_str().unwrap(),
        ];
        let (out, _) = podman.run(&global, &run, &["sh", "-c", "true"]);
        ok(&out);
        let want = match (podman.stack, &case.podman_4_3_ran) {
            (Stack::Debian12, Some(ran)) => ran,
            _ => &case.ran,
        };
        let ran: Vec<String> = lines(&log).iter().map(|l| l.trim().to_string()).collect();
        assert_eq!(
            &ran, want,
            "{} under Podman ({:?})",
            case.mirrors, podman.stack
        );
        fs::remove_file(&log).unwrap();
    }
}

/// containers/common `when.go` checks `commands` only when the spec has a process
/// (`config.Process != nil`): without one they are ignored and the other conditions decide.
/// runc refuses a spec without a process, so this looks at what the wrapper injected before
/// runc said so; with a process, the same file does not match.
#[test]
fn commands_are_ignored_when_the_container_has_no_process() {
    let (s, hooksd) = setup(json!({}));
    let when = json!({"always": true, "commands": ["^nomatch$"]});
    write(
        hooksd.path(),
        "cmd.json",
        &doc(json!({"path": "/bin/true"}), when, &["createRuntime"]),
    );
    let with_process = Bundle::new("true");
    ok(&s.run(&with_process, &unique("process")));
    assert!(
        with_process
            .config()
            .get("hooks")
            .is_none_or(|h| h.get("createRuntime").is_none())
    );

    let without = Bundle::new("true");
    without.edit(|c| {
        c.as_object_mut().unwrap().remove("process");
    });
    let stderr = refused(&s, &without);
    assert!(
        stderr.contains("process property must not be empty"),
        "{stderr}"
    );
    let [plan] = &plan_files(without.path())[..] else {
        panic!("one plan file expected")
    };
    let plan: Value = serde_json::from_slice(&fs::read(plan).unwrap()).unwrap();
    assert_eq!(plan["stages"]["createRuntime"][0]["Name"], "cmd");
}

/// containers/common reads every `*.json` file whatever its name (read.go), ordered by
/// lower-cased name (hooks_test.go `TestGoodNew`). `hookhost import` registers each, mapping a
/// name hookhost cannot store (and saying so), and the registry runs global hooks in that same
/// order: the container gets them as the wrapper reading the directory gives them.
#[test]
fn import_keeps_the_hooksd_order_and_every_name() {
    let (s, hooksd) = setup(json!({}));
    let log = s.host.dir.path().join("ran.log");
    let case = hooksd_cases::any_name(&recorder(&s.host, &log));
    write_case(hooksd.path(), &case);
    let want: Vec<String> = case
        .ran
        .iter()
        .map(|n| format!("{n} createRuntime"))
        .collect();
    ok(&s.run(&Bundle::new("true"), &unique("read")));
    assert_eq!(lines(&log), want, "read as hooks.d");

    let out = s
        .host
        .run(&["import", "hooks.d", hooksd.path().to_str().unwrap()]);
    let imported = ok(&out);
    assert_eq!(
        imported.lines().collect::<Vec<_>>(),
        [
            "01-my-hook",
            "01-UPPERCASE",
            "02-another-hook",
            "my_hook",
            "unicode-_"
        ]
    );
    let stderr = text(&out.stderr);
    for (file, name) in [("my hook.json", "my_hook"), ("unicode-é.json", "unicode-_")] {
        let note = format!(
            "{} registered as {name}",
            hooksd.path().join(file).display()
        );
        assert!(stderr.contains(&note), "{note} not in {stderr}");
    }
    fs::remove_file(&log).unwrap();
    s.wrapper
        .set_config(&json!({"runtime": "runc", "root": s.host.root()}));
    ok(&s.run(&Bundle::new("true"), &unique("imported")));
    assert_eq!(lines(&log), want, "imported into the registry");
}

/// runc runs a hook without `env` with the environment of the process it runs in: at
/// startContainer, the container process's (checked on runc 1.1.5 here; runc's hooks.bats
/// relies on it). A hooks.d startContainer file without env is injected without env, so it
/// inherits it; a hook with env gets exactly its env and `HOOKHOST_STAGE`.
#[test]
fn a_start_container_hook_without_env_inherits_the_process_environment() {
    let (s, hooksd) = setup(json!({}));
    let inherit = json!({"path": "/bin/sh", "args": ["sh", "-c", "env > /inherit.env"]});
    write(
        hooksd.path(),
        "inherit.json",
        &doc(inherit, json!({"always": true}), &["startContainer"]),
    );
    let own = json!({"path": "/bin/sh", "args": ["sh", "-c", "env > /own.env"], "env": ["OWN=1"]});
    write(
        hooksd.path(),
        "own.json",
        &doc(own, json!({"always": true}), &["startContainer"]),
    );
    let bundle = Bundle::new("cat /inherit.env; echo ---; cat /own.env");
    bundle.edit(|c| {
        let env = c["process"]["env"].as_array_mut().unwrap();
        env.push("FROM_PROCESS=yes".into());
    });
    let out = ok(&s.run(&bundle, &unique("env")));
    let (inherited, own) = out.split_once("---").unwrap();
    assert!(inherited.contains("FROM_PROCESS=yes"), "{inherited}");
    assert!(!inherited.contains("HOOKHOST_STAGE"), "{inherited}");
    assert!(
        own.contains("OWN=1") && own.contains("HOOKHOST_STAGE=startContainer"),
        "{own}"
    );
    assert!(!own.contains("FROM_PROCESS"), "{own}");
    let entries = &bundle.config()["hooks"]["startContainer"];
    assert!(entries[0].get("env").is_none(), "{entries}");
}

/// The same cases as files `hookhost export hooks.d` writes, run by Podman (4.3, or 5 on forky): Go regexp
/// conditions registered with `--when-*` match as in Go, and a native startContainer hook
/// registered without env inherits the container's environment there too.
#[test]
fn exported_cases_keep_working_under_podman() {
    let podman = Podman::new();
    let host = Host::new();
    let log = host.dir.path().join("ran.log");
    let rec = recorder(&host, &log);
    let register = |name: &str, when: &[&str]| {
        let mut args = vec!["create", "--type", "createRuntime", "--args"];
        let rec_args = format!("rec,{name}");
        args.push(&rec_args);
        args.extend_from_slice(when);
        args.extend([name, rec.as_str()]);
        host.ok(&args);
    };
    register(
        "quoted",
        &["--when-annotation", r"io.example/gpu=^\Q1.5\E$"],
    );
    register("octal", &["--when-command", r"^\163h$"]);
    register("brace", &["--when-annotation", "tag=^v{x}$"]);
    register("ascii", &["--when-annotation", r"num=^\d$"]);
    host.ok(&[
        "create",
        "--type",
        "startContainer",
        "--when-always",
        "--args",
        "sh,-c,env > /inherit.env",
        "inherit",
        "/bin/sh",
    ]);
    let hooksd = tempfile::tempdir().unwrap();
    let dir = hooksd.path().to_str().unwrap();
    host.ok(&["export", "hooks.d", dir]);
    let annotations = ["io.example/gpu=1.5", "tag=v{x}", "num=\u{663}"];
    let mut run = vec!["--env", "FROM_PROCESS=yes"];
    for a in &annotations {
        run.extend(["--annotation", a]);
    }
    let (out, _) = podman.run(
        &["--runtime", "runc", "--hooks-dir", dir],
        &run,
        &["sh", "-c", "cat /inherit.env"],
    );
    let env = ok(&out);
    assert!(env.contains("FROM_PROCESS=yes"), "{env}");
    assert_eq!(
        lines(&log),
        [
            "brace createRuntime",
            "octal createRuntime",
            "quoted createRuntime"
        ]
    );
}
