//! The plan file: how `hookhost stage` learns a container's hooks without carrying them in argv
//! (where the kernel caps one argument at 128 KiB and every user can read `/proc/PID/cmdline`)
//! or in config.json. Through the real runtime wrapper and runc.

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::engines::Setup;
use common::{Bundle, plan_files, succeeded as ok, text, unique, walk, wat_module};
use serde_json::json;

/// A native poststop hook registered `--when-always` that appends the container id to `log`.
fn global_audit(s: &Setup, log: &Path) {
    let script = s.host.script(
        "audit.sh",
        &format!(
            r#"sed -n 's/.*"id":"\([^"]*\)".*/\1/p' >> {}"#,
            log.display()
        ),
    );
    s.host.ok(&[
        "create",
        "--type",
        "poststop",
        "--when-always",
        "audit",
        script.to_str().unwrap(),
    ]);
}

fn events(s: &Setup, id: &str) -> String {
    s.host.ok(&["events", "--container", id])
}

/// A megabyte of extra arguments can neither push a stage's plan past what the kernel passes
/// nor make the global audit hook silently not run: a WASM hook takes them (no exec), and the
/// audit hook runs at poststop and is recorded.
#[test]
fn a_megabyte_of_extra_arguments_still_runs_the_global_audit_hook() {
    let s = Setup::new();
    let log = s.host.dir.path().join("audit.log");
    global_audit(&s, &log);
    let module = wat_module(s.host.dir.path(), "noop");
    s.host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "probe",
        module.to_str().unwrap(),
    ]);
    let big: Vec<String> = (0..8)
        .map(|i| format!("{i}{}", "A".repeat(131_072)))
        .collect();
    let selection = format!("probe:{}", json!(big));
    assert!(selection.len() > 1024 * 1024);
    let bundle = Bundle::new("echo ran");
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": selection}));
    let id = unique("mib");
    let out = s.run(&bundle, &id);
    assert_eq!(ok(&out).trim(), "ran");
    assert_eq!(fs::read_to_string(&log).unwrap().trim(), id);
    let events = events(&s, &id);
    assert!(
        events.contains("createRuntime probe (wasm) exit=0"),
        "{events}"
    );
    assert!(
        events.contains("poststop audit (native) exit=0"),
        "{events}"
    );
    for entry in bundle.config()["hooks"]["poststop"].as_array().unwrap() {
        let args = entry["args"].to_string();
        assert!(args.len() < 1024, "the plan is not in argv: {args}");
    }
}

/// A native hook cannot be exec'd with a megabyte of arguments: the container is refused at
/// create, with the reason, before anything runs; never discovered at a later stage.
#[test]
fn extra_arguments_too_large_to_exec_refuse_the_container_at_create() {
    let s = Setup::new();
    let log = s.host.dir.path().join("audit.log");
    global_audit(&s, &log);
    s.host
        .ok(&["create", "--type", "createRuntime", "native", "/bin/true"]);
    let bundle = Bundle::new("echo ran");
    let one_arg = format!("native:{}", json!(["A".repeat(200_000)]));
    let many_args = format!("native:{}", json!(vec!["A".repeat(100_000); 11]));
    for (selection, reason) in [(one_arg, "per argument"), (many_args, "total")] {
        bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": selection}));
        let before = fs::read(bundle.config_file()).unwrap();
        let id = unique("big");
        let out = s.run(&bundle, &id);
        assert!(!out.status.success());
        let err = text(&out.stderr);
        assert!(
            err.contains("container refused") && err.contains("\"native\"") && err.contains(reason),
            "{err}"
        );
        assert!(!text(&out.stdout).contains("ran"));
        assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    }
    assert!(!log.exists(), "nothing ran");
}

/// Creates and starts a container through the wrapper, as an engine does, without holding its
/// output pipes (a detached container keeps them open while it runs).
fn detached(s: &Setup, bundle: &Bundle, id: &str) {
    let errors = s.host.dir.path().join(format!("{id}.stderr"));
    for args in [
        &["create", "--bundle", bundle.path_str(), id][..],
        &["start", id],
    ] {
        let status = s
            .runtime(args)
            .stdout(Stdio::null())
            .stderr(fs::File::create(&errors).unwrap())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "{args:?}: {}",
            fs::read_to_string(&errors).unwrap()
        );
    }
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8], found: &mut Vec<PathBuf>) {
    let mut files = Vec::new();
    walk(dir, &mut files);
    found.extend(
        files
            .into_iter()
            .filter(|(_, bytes)| bytes.windows(needle.len()).any(|w| w == needle))
            .map(|(path, _)| path),
    );
}

/// A value registered with `--env` is in no process's argv and in no file other users can
/// read while the container runs, and the hook still gets it.
#[test]
fn a_registered_secret_is_in_no_cmdline_and_no_file_others_can_read() {
    let s = Setup::new();
    let secret = format!("s3cr3t-{}", unique("token"));
    let seen = s.host.dir.path().join("seen");
    let script = s.host.script(
        "uses-token.sh",
        &format!(r#"echo "$HOOKHOST_STAGE $API_TOKEN" >> {}"#, seen.display()),
    );
    let env = format!("API_TOKEN={secret}");
    for stage in ["createRuntime", "poststop"] {
        s.host.ok(&[
            "create",
            "--type",
            stage,
            "--env",
            &env,
            &format!("token-{stage}"),
            script.to_str().unwrap(),
        ]);
    }
    let bundle = Bundle::new("sleep 30");
    bundle.edit(|c| {
        c["annotations"] = json!({"io.hookhost.hooks": "token-createRuntime token-poststop"})
    });
    let id = unique("secret");
    detached(&s, &bundle, &id);

    let mut leaks = Vec::new();
    for proc in fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = fs::read(proc.path().join("cmdline"))
            && cmdline
                .windows(secret.len())
                .any(|w| w == secret.as_bytes())
        {
            leaks.push(proc.path().join("cmdline"));
        }
    }
    let mut files = Vec::new();
    let scanned = [
        bundle.path().to_path_buf(),
        s.host.root(),
        s.runc.root.path().to_path_buf(),
    ];
    for dir in &scanned {
        files_containing(dir, secret.as_bytes(), &mut files);
    }
    let readable: Vec<_> = files
        .iter()
        .filter(|f| fs::metadata(f).unwrap().mode() & 0o044 != 0)
        .collect();
    let _ = s.runc.cmd(&["delete", "--force", &id]).output();
    assert!(leaks.is_empty(), "secret in argv: {leaks:?}");
    assert!(
        readable.is_empty(),
        "secret readable by others: {readable:?}"
    );
    let plan: Vec<_> = files
        .iter()
        .filter(|f| f.starts_with(bundle.path()))
        .collect();
    assert_eq!(plan.len(), 1, "only the plan file holds it: {files:?}");
    assert_eq!(fs::metadata(plan[0]).unwrap().mode() & 0o777, 0o600);
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        format!("createRuntime {secret}\npoststop {secret}\n"),
        "the hook got its secret at both stages"
    );
}

/// A container keeps the hooks it was created with: its plan file is a snapshot, so removing
/// the hook afterwards does not stop its poststop from running it. The plan lives in the
/// bundle, named by its digest: injecting the same hooks again reuses it, and nothing of the
/// container is left in hookhost's state directory.
#[test]
fn the_plan_is_a_snapshot_kept_in_the_bundle_and_nowhere_else() {
    let s = Setup::new();
    let log = s.host.dir.path().join("audit.log");
    global_audit(&s, &log);
    let registry_before = listing(&s.host.root());
    let bundle = Bundle::new("sleep 30");
    let id = unique("snap");
    detached(&s, &bundle, &id);
    s.host.ok(&["rm", "audit"]);
    ok(&s.runtime(&["delete", "--force", &id]).output().unwrap());
    assert_eq!(fs::read_to_string(&log).unwrap().trim(), id);

    let plans = plan_files(bundle.path());
    assert_eq!(plans.len(), 1, "{plans:?}");
    let mut registry_after = listing(&s.host.root());
    registry_after.retain(|p| !p.ends_with("events.jsonl"));
    let mut expected = registry_before.clone();
    expected.retain(|p| !p.ends_with("events.jsonl") && !p.ends_with("global/audit.json"));
    assert_eq!(
        registry_after, expected,
        "no per-container state in the registry"
    );

    // Injected again with the same hooks: the same plan, no second file.
    let host = &s.host;
    let rec = host.script("rec.sh", "true");
    host.ok(&["create", "rec", rec.to_str().unwrap()]);
    host.inject(&bundle, &["rec"]);
    host.inject(&bundle, &["rec"]);
    assert_eq!(
        plan_files(bundle.path()).len(),
        2,
        "one more plan: the one with rec"
    );
}

fn listing(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    walk(dir, &mut all);
    let mut paths: Vec<PathBuf> = all.into_iter().map(|(path, _)| path).collect();
    paths.sort();
    paths
}

/// Containers created by an older hookhost carry their plan in argv (`hookhost stage STAGE
/// --plan JSON`). After an upgrade their stages still run with the new executable, and a
/// bundle injected again keeps those hooks, now in a plan file.
#[test]
fn entries_of_an_older_hookhost_still_run_and_are_carried_over() {
    let s = Setup::new();
    let seen = s.host.dir.path().join("seen");
    let script = s.host.script(
        "legacy.sh",
        &format!(r#"echo "$1 $HOOKHOST_STAGE" >> {}"#, seen.display()),
    );
    let legacy = json!({
        "root": s.host.root(),
        "hooks": [{"Name": "old", "Kind": "native", "Path": script, "Args": ["legacy", "old"],
                   "Env": [], "Timeout": 5}],
    });
    let bundle = Bundle::new("true");
    bundle.edit(|c| {
        c["hooks"] = json!({"poststop": [{
            "path": common::HOOKHOST,
            "args": ["hookhost", "stage", "poststop", "--plan", legacy.to_string()],
        }]})
    });
    let out = s.runc.run(&bundle, &unique("legacy"));
    ok(&out);
    assert_eq!(fs::read_to_string(&seen).unwrap(), "old poststop\n");

    s.host.ok(&[
        "create",
        "--type",
        "poststop",
        "--args",
        "legacy,new",
        "new",
        script.to_str().unwrap(),
    ]);
    s.host.inject(&bundle, &["new"]);
    let poststop = bundle.config()["hooks"]["poststop"].clone();
    assert_eq!(poststop.as_array().unwrap().len(), 1, "{poststop}");
    assert_eq!(poststop[0]["args"][5], "--sha256", "{poststop}");
    fs::remove_file(&seen).unwrap();
    ok(&s.runc.run(&bundle, &unique("upgraded")));
    assert_eq!(
        fs::read_to_string(&seen).unwrap(),
        "old poststop\nnew poststop\n"
    );
}

/// Trap 9: a config.json copied from a bundle hookhost injected names a plan file the new
/// bundle does not have. runc's hook says what happened and how to fix it; injecting the new
/// bundle replaces hookhost's entries (with a warning) and its container then runs its hooks.
#[test]
fn a_copied_config_json_is_explained_and_injected_again_cleanly() {
    let host = common::Host::new();
    let runc = common::Runc::new();
    let log = host.dir.path().join("ran.log");
    let script = host.script("mark.sh", &format!("echo ran >> {}", log.display()));
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "mark",
        script.to_str().unwrap(),
    ]);
    let first = Bundle::new("true");
    host.inject(&first, &["mark"]);
    let copy = Bundle::new("true");
    fs::copy(first.config_file(), copy.config_file()).unwrap();
    copy.edit(|c| c["root"]["path"] = copy.rootfs().to_str().unwrap().into());

    let out = runc.run(&copy, &unique("copied"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("is not in the bundle"), "{err}");
    assert!(err.contains("Inject this bundle again"), "{err}");
    assert!(!log.exists(), "no hook ran");

    let out = host
        .cmd()
        .args(["inject", "--bundle", copy.path_str(), "--add-hook", "mark"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("which this bundle does not have (copied from another bundle?)"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(plan_files(copy.path()).len(), 1);
    let out = runc.run(&copy, &unique("copied"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(&log).unwrap(),
        "ran\n",
        "the hook ran once"
    );
}
