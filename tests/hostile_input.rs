//! Hostile input at hookhost's edges (issue 19, items 6 and 7), through the real CLI, the
//! runtime wrapper on real runc, and Podman/CRI-O hooks.d files:
//! - a container id cannot forge the audit trail: ids runc would refuse are refused by the
//!   wrapper before any hook runs, and every field of every text view of the trail is escaped;
//! - a hook that can never run (a NUL in an argument, more arguments than a program can be
//!   given) is refused when it is registered, by `create`, `import hooks.d` and `apply` (the
//!   `oci://` path is in tests/oci.rs).

mod common;

use std::fs;
use std::process::Stdio;

use common::engines::{Setup, log_lines};
use common::{Bundle, Host, text, unique, wat_module};
use serde_json::{Value, json};

/// A line an attacker would like `hookhost events` to show.
const FORGED: &str = "2026-01-01T00:00:00.000Z innocent prestart audit (native) exit=0 1.0ms";

/// Container ids runc refuses: a forged line after a newline, terminal escapes (clear the
/// screen, set the window title), a path, and the names runc cannot use as a directory.
fn hostile_ids() -> Vec<String> {
    vec![
        format!("x\n{FORGED}"),
        "x\x1b[2J".to_string(),
        format!("y\x1b]0;owned\x07\r\n{FORGED}\x1b[2J"),
        "../escape".to_string(),
        "a b".to_string(),
        "é".to_string(),
        ".".to_string(),
        "..".to_string(),
        String::new(),
    ]
}

/// `hookhost events` as text, as a person reads it.
fn events_text(host: &Host) -> String {
    host.ok(&["events"])
}

/// Every line of a text view is one record: no terminal control byte, and none forged.
fn assert_no_forgery(shown: &str) {
    assert!(
        !shown.chars().any(|c| c.is_control() && c != '\n'),
        "a control character reached the terminal: {shown:?}"
    );
    for line in shown.lines() {
        assert!(!line.starts_with("2026-01-01"), "a forged line: {shown}");
    }
}

/// Through the wrapper on real runc, a precreate hook selected: an id runc would refuse is
/// refused before any hook runs, with the reason in `--log` (runc's error line) and on stderr,
/// written escaped; no run is recorded, so `hookhost events` shows no forged line; the same
/// container under a valid id runs and is recorded once.
#[test]
fn a_container_id_runc_would_refuse_is_refused_before_any_hook_runs() {
    let s = Setup::new();
    let marker = s.host.dir.path().join("ran");
    let hook = s.host.script(
        "pass.sh",
        &format!("echo ran >> {}\nexec cat", marker.display()),
    );
    s.host.ok(&[
        "create",
        "--type",
        "precreate",
        "pass",
        hook.to_str().unwrap(),
    ]);
    let bundle = Bundle::new("echo container ran");
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "pass"}));
    let before = fs::read(bundle.config_file()).unwrap();
    for id in hostile_ids() {
        for command in ["run", "create"] {
            let stderr = tempfile::NamedTempFile::new().unwrap();
            let status = s
                .runtime(&[command, "--bundle", bundle.path_str(), &id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.reopen().unwrap())
                .status()
                .unwrap();
            assert!(!status.success(), "{id:?}: {command} succeeded");
            let err = fs::read_to_string(stderr.path()).unwrap();
            assert!(err.contains("invalid container id"), "{id:?}: {err}");
            assert!(err.contains("'+', '-' and '.'"), "{id:?}: {err}");
            assert_no_forgery(&err);
            let last = log_lines(&s.log()).pop().expect("an error line in --log");
            assert_eq!(last["level"], "error", "{last}");
            let msg = last["msg"].as_str().unwrap();
            assert!(msg.contains("invalid container id"), "{msg}");
            assert_no_forgery(msg);
        }
    }
    assert!(!marker.exists(), "a hook ran for a refused id");
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    let shown = events_text(&s.host);
    assert_eq!(shown, "", "runs were recorded: {shown}");

    let id = unique("fine+id_1.0");
    let out = s.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "container ran\n");
    let shown = events_text(&s.host);
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert!(
        shown.contains(&format!(" {id} precreate pass (native) exit=0 ")),
        "{shown}"
    );
}

/// One event with hostile text in every field a hook or a runtime can influence: a trail
/// written before ids were checked, or by a runtime that checks none.
fn hostile_event() -> Value {
    json!({
        "time": "2026-12-04T10:00:00Z",
        "container": format!("c\n{FORGED}\x1b[2J"),
        "stage": "prestart",
        "hook": "inline:/tmp/\x1b]0;owned\x07\nx",
        "kind": "native",
        "exit": 1,
        "duration_ms": 1.0,
        "error": format!("boom\r\n{FORGED}\u{9b}2J"),
        "failure": "exit",
        "on_failure": "warn"
    })
}

/// A trail holding hostile text (written by an older hookhost, or recorded from a runtime
/// that checks no ids): `events`, `stats` and `metrics` show every field escaped, one line
/// per record, with nothing that drives a terminal; the JSON views keep the exact text.
#[test]
fn every_text_view_of_the_trail_escapes_every_field() {
    let host = Host::new();
    host.ok(&["ls"]);
    let event = hostile_event();
    let line = format!("{}\n", serde_json::to_string(&event).unwrap());
    fs::write(host.root().join("events.jsonl"), line).unwrap();

    let shown = events_text(&host);
    assert_eq!(shown.lines().count(), 1, "{shown}");
    assert_no_forgery(&shown);
    assert!(
        shown.contains(r#""c\n2026-01-01T00:00:00.000Z innocent"#),
        "{shown}"
    );
    assert!(shown.contains(r#"\u{1b}[2J""#), "{shown}");
    assert!(
        shown.contains(r#""inline:/tmp/\u{1b}]0;owned\u{7}\nx""#),
        "{shown}"
    );
    assert!(shown.contains(r#"error="boom\r\n2026"#), "{shown}");
    assert!(shown.contains(r#"\u{9b}2J""#), "{shown}");

    let json = host.ok(&["events", "--format", "json"]);
    let back: Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(back["container"], event["container"]);

    let container = event["container"].as_str().unwrap();
    let filtered = host.ok(&["events", "--container", container]);
    assert_eq!(filtered, shown);

    for view in [&["stats"][..], &["metrics"][..]] {
        let shown = host.ok(view);
        assert_no_forgery(&shown);
        assert!(shown.contains(r"inline:/tmp/\"), "{view:?}: {shown}");
    }
}

/// A hooks.d directory holding one global hook built by `hook`.
fn hooksd_with(hook: Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let file = json!({
        "version": "1.0.0",
        "hook": hook,
        "when": {"always": true},
        "stages": ["prestart"]
    });
    fs::write(
        dir.path().join("bad.json"),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();
    dir
}

/// 20 MB of arguments, in pieces a kernel would each accept.
fn twenty_megabytes() -> Vec<String> {
    vec!["A".repeat(100_000); 200]
}

/// What each kind of hook that can never run is refused with.
fn cases() -> Vec<(&'static str, Vec<String>, Vec<String>, &'static str)> {
    vec![
        ("nul-arg", vec!["true".into(), "a\0b".into()], vec![], "NUL"),
        ("nul-env", vec![], vec!["A=x\0y".into()], "NUL"),
        ("huge-args", twenty_megabytes(), vec![], "total"),
        (
            "one-long-arg",
            vec!["A".repeat(200_000)],
            vec![],
            "per argument",
        ),
    ]
}

/// The registry is left as it was: nothing registered, nothing stored.
fn assert_unchanged(host: &Host, before: &[(std::path::PathBuf, Vec<u8>)], what: &str) {
    assert_eq!(host.snapshot(), before, "{what} changed the registry");
    assert_eq!(host.ok(&["ls", "-q"]), "", "{what} registered a hook");
}

/// `import hooks.d` and `apply` refuse a global hook that could never run (a NUL in an
/// argument or variable, 20 MB of arguments, one argument longer than the kernel passes)
/// naming it and the reason, and register nothing; otherwise it would refuse every container
/// on the node.
#[test]
fn import_and_apply_refuse_a_hook_that_can_never_run() {
    for (name, args, env, reason) in cases() {
        let host = Host::new();
        host.ok(&["ls"]);
        let before = host.snapshot();
        let dir = hooksd_with(json!({"path": "/bin/true", "args": args, "env": env}));
        let err = host.fails(&["import", "hooks.d", dir.path().to_str().unwrap()]);
        assert!(err.contains("bad.json"), "{name}: {err}");
        assert!(err.contains("could never run"), "{name}: {err}");
        assert!(err.contains(reason), "{name}: {err}");
        assert!(
            err.len() < 4096,
            "{name}: the whole argument is echoed: {}",
            err.len()
        );
        assert_unchanged(&host, &before, "import hooks.d");

        let file = host.dir.path().join("hooks.json");
        let entry = json!([{"Name": name, "Path": "/bin/true", "Args": args, "Env": env,
            "When": {"always": true}}]);
        fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
        let err = host.fails(&["apply", "-f", file.to_str().unwrap()]);
        assert!(err.contains(&format!("hook {name}")), "{name}: {err}");
        assert!(err.contains("could never run"), "{name}: {err}");
        assert!(err.contains(reason), "{name}: {err}");
        assert_unchanged(&host, &before, "apply");
    }
}

/// `create` refuses the same, whether the arguments come as a JSON list (which may hold a
/// NUL) or as many flags (as much as a command line can carry: over the 1 MiB bound).
#[test]
fn create_refuses_a_hook_that_can_never_run() {
    let host = Host::new();
    host.ok(&["ls"]);
    let before = host.snapshot();
    let nul_arg = json!(["true", "a\0b"]).to_string();
    let nul_env = json!(["A=x\0y"]).to_string();
    let piece = "A".repeat(120_000);
    let mut many = Vec::new();
    for _ in 0..10 {
        many.extend(["--args", piece.as_str()]);
    }
    let cases: [(Vec<&str>, &str); 3] = [
        (vec!["--args", &nul_arg], "NUL"),
        (vec!["--env", &nul_env], "NUL"),
        (many, "total"),
    ];
    for (flags, reason) in cases {
        let mut args = vec!["create"];
        args.extend(flags);
        args.extend(["--when-always", "never", "/bin/true"]);
        let err = host.fails(&args);
        assert!(err.contains("could never run"), "{err}");
        assert!(err.contains(reason), "{err}");
        assert_unchanged(&host, &before, "create");
    }
    // startContainer runs inside the container, where hookhost cannot run a module.
    let dir = tempfile::tempdir().unwrap();
    let module = wat_module(dir.path(), "echo");
    let module = module.to_str().unwrap();
    let err = host.fails(&["create", "--type", "startContainer", "probe", module]);
    assert!(err.contains("hook probe could never run"), "{err}");
    assert!(err.contains("register it at createContainer"), "{err}");
    assert_unchanged(&host, &before, "create");
}
