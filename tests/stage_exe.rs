//! hookhost's small executables (crates/hookhost-stage, built by scripts/build-stage.sh).
//!
//! The stage executable: named in config.json when it is installed beside hookhost, run by
//! real runc at every stage, and invisible otherwise — without it hookhost runs its stages
//! itself, what is not a stage call is hookhost's to answer, and a module without an artifact
//! is compiled by the hookhost beside it.
//!
//! The runtime wrapper `hookhost-runtime`: what `hookhost install docker` registers when it is
//! installed beside hookhost, a wrapper of runc that needs no hookhost to run (the engine tests
//! all run it: `common::engines::Wrapper`), with hookhost's own answers and errors, and the
//! hookhost beside it as its compiler. Needs root, runc and busybox-static.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{Bundle, Host, Runc, succeeded, text, unique};
use hookhost_types::RUNTIME_EXECUTABLE;

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
/// a bundle whose container prints what it wrote, `rec` injected.
fn recording(host: &Host) -> Bundle {
    let bundle = recording_bundle(host);
    host.inject(&bundle, &["rec"]);
    bundle
}

/// The same, `rec` selected by the bundle's annotation (for the runtime wrapper).
fn selecting_recording(host: &Host) -> Bundle {
    let bundle = recording_bundle(host);
    bundle.edit(|c| c["annotations"] = serde_json::json!({"io.hookhost.hooks": "rec"}));
    bundle
}

/// `rec` registered, and the bundle it writes into; nothing selected.
fn recording_bundle(host: &Host) -> Bundle {
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
    bundle
}

/// Asserts that `out` failed (`what`) and that its stderr names each of `names`.
fn failed_naming(out: &Output, what: &str, names: &[&str]) {
    assert!(!out.status.success(), "{what}: {}", text(&out.stdout));
    let stderr = text(&out.stderr);
    for name in names {
        assert!(stderr.contains(name), "{what}: {name:?} not in {stderr}");
    }
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
        common::output_of(
            Command::new(exe)
                .env("HOOKHOST_ROOT", host.root())
                .args(args),
        )
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
    let path = host.bin().display().to_string();
    failed_naming(&out, "no compiler", &["wasmnoop", &path]);
}

/// `hookhost install docker` registers the small runtime wrapper installed beside hookhost,
/// and links `hookhost-runtime` to hookhost only where there is none.
#[test]
fn install_docker_registers_the_runtime_wrapper_beside_hookhost() {
    let registered = |host: &Host| {
        let daemon_json = host.dir.path().join("daemon.json");
        host.ok(&[
            "install",
            "docker",
            "--daemon-json",
            daemon_json.to_str().unwrap(),
        ]);
        let doc: serde_json::Value =
            serde_json::from_slice(&fs::read(&daemon_json).unwrap()).unwrap();
        PathBuf::from(doc["runtimes"]["hookhost"]["path"].as_str().unwrap())
    };
    let host = Host::installed(true);
    let beside = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    assert_eq!(registered(&host), beside);
    assert!(
        !beside.is_symlink(),
        "the small wrapper is kept, not replaced"
    );
    assert_eq!(
        fs::read(&beside).unwrap(),
        fs::read(common::runtime_exe()).unwrap()
    );

    let host = Host::installed(false);
    let link = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    assert_eq!(registered(&host), link);
    assert_eq!(fs::read_link(&link).unwrap(), host.bin());
}

/// `hookhost-runtime ARGS…` as an engine runs it: the hooks come from the registry under
/// `host`'s root, and the real runtime is `runtime`.
fn wrapper_call(host: &Host, exe: &Path, runtime: &str, args: &[&str]) -> std::process::Output {
    let config = host.dir.path().join("wrapper.json");
    fs::write(&config, format!(r#"{{"runtime": "{runtime}"}}"#)).unwrap();
    common::output_of(
        Command::new(exe)
            .env("HOOKHOST_ROOT", host.root())
            .env("HOOKHOST_CONFIG", &config)
            .args(args),
    )
}

#[test]
fn the_runtime_wrapper_beside_hookhost_wraps_runc_without_it() {
    common::require("runc");
    let host = Host::installed(true);
    let wrapper = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    let bundle = selecting_recording(&host);
    let runc_root = tempfile::tempdir().unwrap();
    let run = || {
        let id = unique("small-wrapper");
        let root = runc_root.path().to_str().unwrap();
        let args = ["--root", root, "run", "--bundle", bundle.path_str(), &id];
        succeeded(&wrapper_call(&host, &wrapper, "runc", &args))
    };
    assert_eq!(run().trim(), "ran at createRuntime");
    assert_eq!(
        entries(&bundle),
        [(
            host.bin()
                .with_file_name("hookhost-stage")
                .display()
                .to_string(),
            "hookhost".to_string()
        )],
        "the wrapper names the stage executable too"
    );
    // The wrapper injects and runs runc itself: with hookhost gone, the hook still runs.
    fs::remove_file(host.bin()).unwrap();
    fs::remove_file(bundle.rootfs().join("marker")).unwrap();
    assert_eq!(run().trim(), "ran at createRuntime");
}

/// The small wrapper's answers and errors are hookhost's under that name, byte for byte.
#[test]
fn the_runtime_wrapper_answers_as_hookhost_does() {
    common::require("runc");
    let host = Host::installed(true);
    let small = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    let as_hookhost = host.dir.path().join("link").join(RUNTIME_EXECUTABLE);
    fs::create_dir(as_hookhost.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(host.bin(), &as_hookhost).unwrap();
    let log = host.dir.path().join("log.json");
    let log_args = ["--log", log.to_str().unwrap(), "--log-format", "json"];
    let runtime_is_self = small.to_str().unwrap().to_string();
    let runtime_is_hookhost = host.bin().to_str().unwrap().to_string();
    for (runtime, args) in [
        (runtime_is_hookhost.as_str(), &["state", "x"][..]),
        ("/bin/echo", &["--root", "/r", "state", "x"][..]),
        ("/does/not/exist", &["state", "x"]),
        ("runc", &["create", "--bundle", "/does/not/exist", "x"]),
        ("runc", &["run", "--bundle", "/tmp", "bad/id"]),
        (runtime_is_self.as_str(), &["state", "x"]),
        (
            "runc",
            &[&log_args[..], &["create", "--bundle", "/nope", "y"]].concat(),
        ),
    ] {
        // Self is the wrapper called: each executable as its own runtime.
        let resolve = |exe: &Path| match runtime == runtime_is_self {
            true => exe.to_str().unwrap().to_string(),
            false => runtime.to_string(),
        };
        let _ = fs::remove_file(&log);
        let ours = wrapper_call(&host, &small, &resolve(&small), args);
        let our_log = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        let full = wrapper_call(&host, &as_hookhost, &resolve(&as_hookhost), args);
        let full_log = fs::read_to_string(&log).unwrap_or_default();
        let mask = |s: String, exe: &Path| s.replace(exe.to_str().unwrap(), "WRAPPER");
        let (ours_err, full_err) = (
            mask(text(&ours.stderr), &small),
            mask(text(&full.stderr), &as_hookhost),
        );
        assert_eq!(
            (ours.status.code(), text(&ours.stdout), ours_err),
            (full.status.code(), text(&full.stdout), full_err),
            "hookhost-runtime {args:?} with runtime {runtime}"
        );
        // The log lines carry a time; their messages must match.
        let message = |log: &str| -> Vec<String> {
            log.lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["msg"].to_string())
                .collect()
        };
        assert_eq!(message(&our_log), message(&full_log), "{args:?}");
        if args.contains(&"--log") {
            assert!(!our_log.is_empty(), "{args:?}: nothing logged");
        }
    }
}

#[test]
fn a_precreate_module_without_an_artifact_is_compiled_by_the_hookhost_beside_the_wrapper() {
    let host = Host::installed(true);
    let wrapper = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    host.noop_precreate(false);
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = serde_json::json!({"io.hookhost.hooks": "noop"}));
    let compiled = artifacts(&host.root());
    assert_eq!(compiled.len(), 1, "{compiled:?}");
    let run = || {
        let args = [
            "run",
            "--bundle",
            bundle.path_str(),
            &unique("small-wrapper"),
        ];
        wrapper_call(&host, &wrapper, "/bin/true", &args)
    };
    fs::remove_file(&compiled[0]).unwrap();
    succeeded(&run());
    assert_eq!(
        artifacts(&host.root()),
        compiled,
        "compiled and cached again"
    );
    let events = host.ok(&["events"]);
    assert!(events.contains("precreate noop (wasm) exit=0"), "{events}");

    // No hookhost to compile with: the create fails and says why (fail closed).
    fs::remove_file(&compiled[0]).unwrap();
    fs::remove_file(host.bin()).unwrap();
    let path = host.bin().display().to_string();
    failed_naming(&run(), "no compiler", &["noop", &path]);
}

/// The small wrapper's entries name the hookhost beside it only when no stage executable is
/// usable, and only a hookhost that passes the trust check: else the create is refused with a
/// message that names it, and runc never sees the bundle.
#[test]
fn the_runtime_wrapper_refuses_a_create_it_has_no_stage_runner_for() {
    use std::os::unix::fs::PermissionsExt;
    common::require("runc");
    let host = Host::installed(true);
    let wrapper = host.bin().with_file_name(RUNTIME_EXECUTABLE);
    host.ok(&["create", "--type", "createRuntime", "t", "/bin/true"]);
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = serde_json::json!({"io.hookhost.hooks": "t"}));
    fs::remove_file(host.bin().with_file_name("hookhost-stage")).unwrap();
    let runc_root = tempfile::tempdir().unwrap();
    let root = runc_root.path().to_str().unwrap();
    let run = |id: &str| {
        let args = ["--root", root, "run", "--bundle", bundle.path_str(), id];
        wrapper_call(&host, &wrapper, "runc", &args)
    };
    succeeded(&run(&unique("small-wrapper")));
    assert_eq!(
        entries(&bundle),
        [(host.bin().display().to_string(), "hookhost".to_string())]
    );

    let refused = |why: &str| {
        let id = unique("small-wrapper");
        let path = host.bin().display().to_string();
        failed_naming(&run(&id), why, &["no stage runner for the entries", &path]);
        let state = Command::new("runc")
            .args(["--root", root, "state", &id])
            .output()
            .unwrap();
        assert!(!state.status.success(), "{why}: runc made the container");
    };
    fs::set_permissions(host.bin(), fs::Permissions::from_mode(0o757)).unwrap();
    refused("a hookhost others can write");
    fs::remove_file(host.bin()).unwrap();
    refused("no hookhost");
}

/// `hookhost` under the wrapper's name (the install where there is no musl target) still
/// wraps runc: the engine tests run the small wrapper, so this is its check with a container.
#[test]
fn hookhost_under_the_wrapper_name_still_wraps_runc() {
    common::require("runc");
    let host = Host::installed(false);
    let link = host.dir.path().join("link").join(RUNTIME_EXECUTABLE);
    fs::create_dir(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(host.bin(), &link).unwrap();
    let bundle = selecting_recording(&host);
    let runc_root = tempfile::tempdir().unwrap();
    let id = unique("glibc-wrapper");
    let root = runc_root.path().to_str().unwrap();
    let args = ["--root", root, "run", "--bundle", bundle.path_str(), &id];
    let out = succeeded(&wrapper_call(&host, &link, "runc", &args));
    assert_eq!(out.trim(), "ran at createRuntime");
    assert_eq!(
        entries(&bundle),
        [(host.bin().display().to_string(), "hookhost".to_string())]
    );
}
