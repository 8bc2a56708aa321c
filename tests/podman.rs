//! Podman 4.3 (Debian) with its own --root/--runroot/--tmpdir: hooks exported as hooks.d files
//! (native and WASM, single- and multi-stage) run for a `podman run`; annotations select hooks
//! through the runtime wrapper; `hookhost import hooks.d` registers existing hooks.d files.
//! Needs root, podman, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::engines::wait_for;
use common::podman::Podman;
use common::{Host, succeeded as ok, text};
use serde_json::json;

/// A WASM hook module (echoes its argv and stdin), compiled from the test fixtures.
fn wasm_module(dir: &Path) -> PathBuf {
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/wasm/echo.wat");
    let file = dir.join("echo.wasm");
    fs::write(&file, wat::parse_file(wat).unwrap()).unwrap();
    file
}

fn plan_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// The plan files the hooks.d files in `dir` name (`hookhost stage S --plan FILE …`).
fn named_plans(dir: &str) -> Vec<PathBuf> {
    let mut named: Vec<PathBuf> = plan_files(Path::new(dir))
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter_map(|p| {
            let doc: serde_json::Value = serde_json::from_slice(&fs::read(p).unwrap()).unwrap();
            let args = doc["hook"]["args"].as_array()?;
            (args.get(3)? == "--plan").then(|| PathBuf::from(args[4].as_str().unwrap()))
        })
        .collect();
    named.sort();
    named
}

#[test]
fn exported_native_and_wasm_hooks_run_under_podman() {
    let podman = Podman::new();
    let host = Host::new();
    let marker = host.dir.path().join("marker");
    let rec = host.script(
        "rec.sh",
        &format!("echo \"$* $(head -c 40)\" >> {}", marker.display()),
    );
    let rec = rec.to_str().unwrap();
    host.ok(&[
        "create",
        "--when-always",
        "--args",
        "rec,native",
        "native",
        rec,
    ]);
    let wasm = wasm_module(host.dir.path());
    host.ok(&[
        "create",
        "--when-command",
        "^echo$",
        "--type",
        "poststop",
        "wasm",
        wasm.to_str().unwrap(),
    ]);
    host.ok(&[
        "create",
        "--when-always",
        "--type",
        "prestart,poststop",
        "--args",
        "rec,multi",
        "multi",
        rec,
    ]);
    host.ok(&[
        "create",
        "--when-annotation",
        "team=^web$",
        "--args",
        "rec,web",
        "web",
        rec,
    ]);
    host.ok(&["create", "--args", "rec,plain", "plain", rec]);

    let hooksd = tempfile::tempdir().unwrap();
    let dir = hooksd.path().to_str().unwrap();
    let written = host.ok(&["export", "hooks.d", dir]);
    let mut files: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            ".hookhost",
            "multi@poststop.json",
            "multi@prestart.json",
            "native.json",
            "wasm.json",
            "web.json"
        ],
        "{written}"
    );
    // The plans the files name (with the hooks' registered env) are owner-only, in a directory
    // Podman does not read: exactly the ones the files name.
    let plans = Path::new(dir).join(".hookhost");
    assert_eq!(fs::metadata(&plans).unwrap().mode() & 0o777, 0o700);
    assert_eq!(plan_files(&plans), named_plans(dir));
    for plan in plan_files(&plans) {
        assert_eq!(
            fs::metadata(&plan).unwrap().mode() & 0o777,
            0o600,
            "{plan:?}"
        );
    }

    let (out, id) = podman.run(
        &["--runtime", "runc", "--hooks-dir", dir],
        &[],
        &["echo", "container-ran"],
    );
    assert_eq!(ok(&out).trim(), "container-ran");
    let recorded = fs::read_to_string(&marker).unwrap();
    let lines: Vec<&str> = recorded.lines().collect();
    assert_eq!(lines.len(), 3, "{recorded}");
    // Podman orders hooks by file name; each got the OCI state on stdin.
    assert!(lines[0].starts_with("multi {\"ociVersion\""), "{recorded}");
    assert!(lines[1].starts_with("native {\"ociVersion\""), "{recorded}");
    assert!(lines[2].starts_with("multi {\"ociVersion\""), "{recorded}");
    let events = |id: &str| host.ok(&["events", "--container", id]);
    wait_for("the poststop hooks", Duration::from_secs(30), || {
        events(&id).contains("poststop wasm (wasm) exit=0")
    });
    let events = events(&id);
    assert!(
        events.contains("prestart native (native) exit=0"),
        "{events}"
    );
    assert!(
        events.contains("poststop multi (native) exit=0"),
        "{events}"
    );
    assert!(!events.contains(" web "), "{events}");

    // A hook that is no longer global loses its file on the next export.
    host.ok(&["rm", "web"]);
    let again = host.ok(&["export", "hooks.d", dir]);
    assert!(
        again.contains("removed") && again.contains("web.json"),
        "{again}"
    );
    assert!(!hooksd.path().join("web.json").exists());
    // …and its plan file goes with it.
    assert_eq!(plan_files(&plans), named_plans(dir));
}

#[test]
fn podman_annotations_select_hooks_through_the_wrapper() {
    let podman = Podman::new();
    let host = Host::new();
    let marker = host.dir.path().join("marker");
    let rec = host.script("rec.sh", &format!("echo \"$*\" >> {}", marker.display()));
    host.ok(&["create", "--args", "rec", "named", rec.to_str().unwrap()]);
    // Podman splits --annotation values at commas: selections separated by spaces.
    let annotation = "io.hookhost.hooks=named:[one] named:[two]";
    let (out, _) = podman.run_through_the_wrapper(&host, &["--annotation", annotation], &["true"]);
    ok(&out);
    assert_eq!(fs::read_to_string(&marker).unwrap(), "one\ntwo\n");

    let nope = ["--annotation", "io.hookhost.hooks=nope"];
    let (out, _) = podman.run_through_the_wrapper(&host, &nope, &["true"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );
}

#[test]
fn import_registers_hooksd_files_by_name() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, doc: serde_json::Value| {
        fs::write(dir.path().join(name), doc.to_string()).unwrap();
    };
    write(
        "oci-systemd-hook.json",
        json!({"version": "1.0.0",
        "hook": {"path": "/bin/true", "args": ["true", "register"], "timeout": 7},
        "when": {"commands": [".*/init$", ".*/systemd$"]}, "stages": ["prestart", "poststop"]}),
    );
    write(
        "legacy.json",
        json!({"hook": "/bin/true", "stage": ["prestart"], "annotations": ["^gpu$"]}),
    );
    write(
        "or-ed.json",
        json!({"hook": "/bin/true", "stage": ["prestart"], "cmds": ["sh"], "annotations": ["x"]}),
    );
    write(
        "broken.json",
        json!({"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": true}, "stages": ["prestop"]}),
    );
    let out = host.run(&["import", "hooks.d", dir.path().to_str().unwrap()]);
    assert!(!out.status.success(), "problems make the exit non-zero");
    let mut imported: Vec<String> = text(&out.stdout).lines().map(String::from).collect();
    imported.sort();
    assert_eq!(imported, ["legacy", "oci-systemd-hook"]);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("broken.json") && stderr.contains("unknown stage \"prestop\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("or-ed.json") && stderr.contains("OR-ed"),
        "{stderr}"
    );

    let inspect: serde_json::Value =
        serde_json::from_str(&host.ok(&["inspect", "oci-systemd-hook"])).unwrap();
    let hook = &inspect[0];
    // A prestart file is registered where Podman runs it: createRuntime.
    assert_eq!(hook["Type"], "createRuntime,poststop");
    assert_eq!(hook["Args"], json!(["true", "register"]));
    assert_eq!(hook["Timeout"], 7);
    assert_eq!(
        hook["When"],
        json!({"commands": [".*/init$", ".*/systemd$"]})
    );

    // Files hookhost exported are not imported back.
    let exported = tempfile::tempdir().unwrap();
    host.ok(&["export", "hooks.d", exported.path().to_str().unwrap()]);
    let out = host.run(&["import", "hooks.d", exported.path().to_str().unwrap()]);
    assert!(
        text(&out.stderr).contains("written by `hookhost export`"),
        "{}",
        text(&out.stderr)
    );
    assert!(text(&out.stdout).is_empty());
}
