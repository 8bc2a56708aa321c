//! The stage executable (crates/hookhost-stage, built by scripts/build-stage.sh): named in
//! config.json when it is installed beside hookhost, run by real runc at every stage, and
//! invisible otherwise — without it hookhost runs its stages itself, what is not a stage call
//! is hookhost's to answer, and a module without an artifact is compiled by the hookhost beside
//! it. Needs root, runc and busybox-static.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Bundle, Host, Runc, succeeded, text, unique};

/// Each stage entry's `path` and `args[0]` in the bundle's config.json.
fn entries(bundle: &Bundle) -> Vec<(String, String)> {
    let config = bundle.config();
    let mut found = Vec::new();
    for list in config["hooks"].as_object().unwrap().values() {
        for entry in list.as_array().unwrap() {
            let args = entry["args"].as_array().unwrap();
            found.push((
                entry["path"].as_str().unwrap().to_string(),
                args[0].as_str().unwrap().to_string(),
            ));
        }
    }
    found
}

/// A native createRuntime hook `rec` that writes its stage into the container's rootfs, and
/// a bundle whose container prints what it wrote.
fn recording(host: &Host) -> Bundle {
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let script = host.script(
        "rec.sh",
        &format!("echo \"ran at $HOOKHOST_STAGE\" > {}", marker.display()),
    );
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "rec",
        script.to_str().unwrap(),
    ]);
    host.inject(&bundle, &["rec"]);
    bundle
}

fn run_ok(runc: &Runc, bundle: &Bundle) -> String {
    let id = unique("stage-exe");
    succeeded(&runc.run(bundle, &id))
}

#[test]
fn containers_run_the_stage_executable_installed_beside_hookhost() {
    common::require("runc");
    let host = Host::installed(true);
    let runc = Runc::new();
    let bundle = recording(&host);
    let beside = host.bin().with_file_name("hookhost-stage");
    assert_eq!(
        entries(&bundle),
        [(beside.display().to_string(), "hookhost".to_string())],
        "the entry names the stage executable, its argv0 still hookhost"
    );
    assert_eq!(run_ok(&runc, &bundle).trim(), "ran at createRuntime");
    let events = host.ok(&["events"]);
    assert!(
        events.contains("createRuntime rec (native) exit=0"),
        "{events}"
    );

    // Injected again (as the wrapper does at every create): hookhost's entry is replaced, not
    // doubled, although it names another executable than the hookhost that injects.
    host.inject(&bundle, &["rec"]);
    assert_eq!(entries(&bundle).len(), 1, "{:?}", entries(&bundle));

    // The stage executable runs the stage itself: with hookhost gone, the hook still runs.
    fs::remove_file(host.bin()).unwrap();
    fs::remove_file(bundle.rootfs().join("marker")).unwrap();
    assert_eq!(run_ok(&runc, &bundle).trim(), "ran at createRuntime");
}

/// A stage executable that is not executable, or that others could have written, is not
/// named: containers run what root runs.
#[test]
fn an_unusable_stage_executable_is_not_named() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::installed(true);
    let beside = host.bin().with_file_name("hookhost-stage");
    let named_with = |mode: u32| {
        fs::set_permissions(&beside, fs::Permissions::from_mode(mode)).unwrap();
        let bundle = Bundle::new("true");
        host.inject(&bundle, &["/bin/true"]);
        entries(&bundle)[0].0.clone()
    };
    assert_eq!(named_with(0o644), host.bin().display().to_string());
    assert_eq!(named_with(0o757), host.bin().display().to_string());
    assert_eq!(named_with(0o755), beside.display().to_string());
}

#[test]
fn without_the_stage_executable_hookhost_runs_its_stages_itself() {
    common::require("runc");
    let host = Host::installed(false);
    let runc = Runc::new();
    let bundle = recording(&host);
    assert_eq!(
        entries(&bundle),
        [(host.bin().display().to_string(), "hookhost".to_string())]
    );
    assert_eq!(run_ok(&runc, &bundle).trim(), "ran at createRuntime");
}

#[test]
fn what_is_not_a_stage_call_is_answered_by_hookhost_beside_it() {
    let host = Host::installed(true);
    let stage = host.bin().with_file_name("hookhost-stage");
    let run = |exe: &Path, args: &[&str]| {
        Command::new(exe)
            .env("HOOKHOST_ROOT", host.root())
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &["--version"][..],
        &["ls"],
        &["stage", "bogus", "--plan", "x"],
        &[
            "stage",
            "createRuntime",
            "--plan",
            "p.json",
            "--sha256",
            "short",
        ],
    ] {
        let (ours, full) = (run(&stage, args), run(host.bin(), args));
        assert_eq!(
            (ours.status.code(), text(&ours.stdout), text(&ours.stderr)),
            (full.status.code(), text(&full.stdout), text(&full.stderr)),
            "hookhost-stage {args:?}"
        );
    }
    // And a clear error when that hookhost is gone.
    fs::remove_file(host.bin()).unwrap();
    let out = run(&stage, &["ls"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot execute {}", host.bin().display())),
        "{stderr}"
    );
}

/// Every cached artifact under the registry root.
fn artifacts(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    common::walk(root, &mut files);
    files
        .into_iter()
        .map(|(path, _)| path)
        .filter(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

#[test]
fn a_module_without_an_artifact_is_compiled_by_the_hookhost_beside_it() {
    common::require("runc");
    let host = Host::installed(true);
    let runc = Runc::new();
    let module = common::example_wasm("noop");
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "wasmnoop",
        module.to_str().unwrap(),
    ]);
    let bundle = Bundle::new("echo container-ran");
    host.inject(&bundle, &["wasmnoop"]);
    let compiled = artifacts(&host.root());
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    for artifact in &compiled {
        fs::remove_file(artifact).unwrap();
    }
    assert_eq!(run_ok(&runc, &bundle).trim(), "container-ran");
    assert_eq!(
        artifacts(&host.root()),
        compiled,
        "compiled and cached again"
    );
    let events = host.ok(&["events"]);
    assert!(
        events.contains("createRuntime wasmnoop (wasm) exit=0"),
        "{events}"
    );

    // No hookhost to compile with: the stage fails and says why (fail closed).
    for artifact in &compiled {
        fs::remove_file(artifact).unwrap();
    }
    fs::remove_file(host.bin()).unwrap();
    let out = runc.run(&bundle, &unique("stage-exe"));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("wasmnoop"), "{stderr}");
    assert!(
        stderr.contains(&host.bin().display().to_string()),
        "{stderr}"
    );
}
