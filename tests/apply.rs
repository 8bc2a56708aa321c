//! `hookhost apply -f FILE`: the file is what `hookhost inspect` prints; applying it to another
//! registry gives the same hooks, idempotently, with --prune and --dry-run; a bad file changes
//! nothing.

mod common;

use std::fs;

use common::{Host, text, wat_module};
use serde_json::Value;

/// A native pinned hook, a WASM hook with limits and grants, and a global hook.
fn populate(host: &Host, dir: &std::path::Path) {
    let script = host.script("rec.sh", "echo rec");
    host.ok(&[
        "create",
        "--type",
        "prestart,poststop",
        "--env",
        "A=1",
        "--timeout",
        "7",
        "--pin",
        "--args",
        "rec,x",
        "rec",
        script.to_str().unwrap(),
    ]);
    let module = wat_module(dir, "echo");
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--fuel",
        "5000",
        "--memory",
        "2MiB",
        "--write-limit",
        "1MiB",
        "--allow-bundle",
        "--allow-env",
        "HOME",
        "probe",
        module.to_str().unwrap(),
    ]);
    host.ok(&[
        "create",
        "--when-annotation",
        "tier=gold",
        "--type",
        "poststart",
        "gold",
        "/bin/true",
    ]);
}

/// `inspect` of every hook, without `Created` and the registry's `Generation`.
fn inspected(host: &Host) -> Vec<Value> {
    let names = host.ok(&["ls", "-q"]);
    let mut args = vec!["inspect"];
    args.extend(names.lines());
    let mut all: Vec<Value> = serde_json::from_str(&host.ok(&args)).unwrap();
    for hook in &mut all {
        let hook = hook.as_object_mut().unwrap();
        hook.remove("Created");
        hook.remove("Generation");
    }
    all
}

fn apply(host: &Host, file: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["apply", "-f", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    host.ok(&args)
}

#[test]
fn inspect_output_applied_elsewhere_gives_the_same_hooks_idempotently() {
    let (a, b) = (Host::new(), Host::new());
    let dir = tempfile::tempdir().unwrap();
    populate(&a, dir.path());
    let names: Vec<String> = a.ok(&["ls", "-q"]).lines().map(String::from).collect();
    let mut args = vec!["inspect"];
    args.extend(names.iter().map(String::as_str));
    let file = dir.path().join("hooks.json");
    fs::write(&file, a.ok(&args)).unwrap();

    let first = apply(&b, &file, &[]);
    for name in &names {
        assert!(first.contains(&format!("created {name}")), "{first}");
    }
    assert_eq!(inspected(&a), inspected(&b));
    // A second run changes nothing, and says so.
    let before = b.snapshot();
    let second = apply(&b, &file, &[]);
    assert!(second.contains("no changes"), "{second}");
    assert!(
        second
            .lines()
            .all(|l| l.starts_with("unchanged ") || l == "no changes")
    );
    assert!(
        b.snapshot() == before,
        "the second run changed the registry"
    );
}

#[test]
fn updates_prune_and_dry_run() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    populate(&host, dir.path());
    host.ok(&["create", "extra", "/bin/true"]);
    let mut hooks: Vec<Value> =
        serde_json::from_str(&host.ok(&["inspect", "rec", "probe", "gold"])).unwrap();
    hooks[2]["Timeout"] = 9.into();
    let file = dir.path().join("hooks.json");
    fs::write(&file, serde_json::to_vec(&hooks).unwrap()).unwrap();

    let before = host.snapshot();
    let dry = apply(&host, &file, &["--prune", "--dry-run"]);
    assert!(dry.contains("would update gold: Timeout: 30 -> 9"), "{dry}");
    assert!(dry.contains("would remove extra"), "{dry}");
    assert!(
        dry.contains("unchanged rec") && dry.contains("unchanged probe"),
        "{dry}"
    );
    assert!(host.snapshot() == before, "--dry-run changed the registry");

    let done = apply(&host, &file, &["--prune"]);
    assert!(
        done.contains("updated gold") && done.contains("removed extra"),
        "{done}"
    );
    assert_eq!(host.ok(&["ls", "-q"]), "gold\nprobe\nrec\n");
    let gold: Value = serde_json::from_str(&host.ok(&["inspect", "gold"])).unwrap();
    assert_eq!(gold[0]["Timeout"], 9);
    assert!(gold[0]["When"].is_object(), "still global: {gold}");
}

/// Each bad file is one line naming the problem, and nothing is applied.
#[test]
fn a_bad_file_is_one_line_naming_the_field_and_changes_nothing() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    host.ok(&["create", "kept", "/bin/true"]);
    let module = wat_module(dir.path(), "echo");
    let module = module.to_str().unwrap();
    let good = r#"{"Name":"new","Path":"/bin/true"}"#;
    let broken = dir.path().join("broken.wasm");
    fs::write(&broken, b"\0asm\x01\0\0\0garbage").unwrap();
    let broken = broken.to_str().unwrap();
    let cases = [
        (
            format!("[{good},{{\"Name\":\"x\",\"Path\":\"/bin/true\",\"Timout\":5}}]"),
            "unknown field `Timout`",
        ),
        (
            format!("[{good},{{\"Name\":\"x\"}}]"),
            "missing field `Path`",
        ),
        (
            format!("[{good},{{\"Name\":\"x\",\"Path\":\"/bin/true\",\"Timeout\":0}}]"),
            "entry 1 (x): invalid Timeout 0: a hook timeout must be",
        ),
        (
            format!(
                "[{good},{{\"Name\":\"x\",\"Path\":\"{module}\",\"Digest\":\"{}\"}}]",
                "0".repeat(64)
            ),
            "Digest is 0000",
        ),
        (
            format!("[{good},{{\"Name\":\"x\",\"Path\":\"/bin/true\",\"Kind\":\"wasm\"}}]"),
            "Kind is wasm",
        ),
        (
            format!(
                "[{good},{{\"Name\":\"x\",\"Path\":\"/bin/true\",\"Type\":\"poststop\",\"Stages\":[\"prestart\"]}}]"
            ),
            "does not match Stages",
        ),
        (format!("[{good},{good}]"), "hook new is listed twice"),
        (
            format!("[{good},{{\"Name\":\"x\",\"Path\":\"{broken}\"}}]"),
            "cannot register the module",
        ),
        ("{\"Name\":\"x\"}".to_string(), "not a JSON array of hooks"),
    ];
    let before = host.snapshot();
    for (i, (body, want)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad{i}.json"));
        fs::write(&file, body).unwrap();
        let err = host.fails(&["apply", "-f", file.to_str().unwrap()]);
        assert!(err.contains(want), "{body}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(host.snapshot() == before, "{body}: the registry changed");
    }
    assert!(text(&host.run(&["ls", "-q"]).stdout).contains("kept"));
}

/// A corrupt entry cannot be carried into the next generation: apply refuses, naming the entry
/// and the fix, and changes nothing; with --prune it is left out.
#[test]
fn an_unreadable_entry_is_refused_or_pruned_never_carried_over() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hooks.json");
    fs::write(&file, r#"[{"Name":"good","Path":"/bin/true"}]"#).unwrap();
    apply(&host, &file, &[]);
    fs::write(host.root().join("hooks/bad.json"), "{not json").unwrap();
    fs::write(&file, r#"[{"Name":"good","Path":"/bin/true","Timeout":9}]"#).unwrap();
    let before = host.snapshot();
    let err = host.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(
        err.contains("bad.json") && err.contains("--prune") && err.contains("hookhost rm"),
        "{err}"
    );
    assert!(host.snapshot() == before, "the registry changed");
    let done = apply(&host, &file, &["--prune"]);
    assert!(
        done.contains("removed bad") && done.contains("updated good"),
        "{done}"
    );
    assert_eq!(host.ok(&["ls", "-q"]), "good\n");
}
