//! The authoring loop, as a new hook author meets it: relative paths at `create`, `try` of a
//! hook granted the bundle without a bundle at hand, a rebuilt module (named, and registered
//! again with `update`), `create --replace`, and `try` of a file nothing registered.

mod common;

use common::{Host, text, wat_module};
use serde_json::Value;

#[test]
fn create_takes_a_relative_path_and_try_gives_a_sample_bundle() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    wat_module(dir.path(), "fs");
    let out = host
        .cmd()
        .current_dir(dir.path())
        .args([
            "create",
            "--type",
            "createRuntime",
            "--allow-bundle",
            "reader",
            "fs.wasm",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspect: Value = serde_json::from_str(&host.ok(&["inspect", "reader"])).unwrap();
    let stored = dir.path().join("fs.wasm");
    assert_eq!(
        inspect[0]["Path"],
        stored.to_str().unwrap(),
        "stored absolute"
    );

    // No --bundle: the hook reads the sample bundle's config.json at /bundle.
    let out = host.run(&["try", r#"reader:["read","config.json"]"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    said(&out, "\"ociVersion\"");
    assert!(
        text(&out.stderr).contains("sample bundle"),
        "{}",
        text(&out.stderr)
    );
}

/// `hookhost new NAME --stage STAGE [--sdk guest-sdk/]` in `dir`, then `cargo build --release`
/// (wasm32-wasip1, preset) and `cargo test-native` in the new crate, which must all succeed;
/// returns the crate's directory and the built module. Without `sdk` the crate must depend on
/// an SDK that resolves by default (the guest-sdk/ hookhost was built from).
fn new_hook_built_and_tested(
    host: &Host,
    dir: &std::path::Path,
    name: &str,
    stage: &str,
    sdk: bool,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let sdk_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-sdk");
    let mut new = host.cmd();
    new.current_dir(dir)
        .env_remove("HOOKHOST_GUEST_SDK")
        .args(["new", name, "--stage", stage]);
    if sdk {
        new.args(["--sdk", sdk_dir.to_str().unwrap()]);
    }
    let out = new.output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(
        said.contains("hookhost try "),
        "the next: lines try the file: {said}"
    );
    let manifest = std::fs::read_to_string(dir.join(name).join("Cargo.toml")).unwrap();
    let dependency = format!(
        "hookhost-guest = {{ path = {:?} }}",
        sdk_dir.to_str().unwrap()
    );
    assert!(manifest.contains(&dependency), "{manifest}");
    let config = std::fs::read_to_string(dir.join(name).join(".cargo/config.toml")).unwrap();
    assert!(
        config.contains(r#"["test", "--target", "host-tuple"]"#),
        "{config}"
    );
    assert!(!config.contains("x86_64"), "{config}");
    let krate = dir.join(name);
    let target = hooks_target(dir);
    for args in [&["build", "--release"][..], &["test-native"]] {
        let out = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .current_dir(&krate)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("HOOKHOST_BIN", common::HOOKHOST)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo {args:?}: {}",
            text(&out.stderr)
        );
    }
    let module = target.join(format!("wasm32-wasip1/release/{name}.wasm"));
    assert!(module.is_file(), "{} was not built", module.display());
    (krate, module)
}

/// The target directory the hook crates under `dir` build into: the tests' own when set (shared
/// by all hooks, as the README advises), else `dir/target`.
fn hooks_target(dir: &std::path::Path) -> std::path::PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("target"))
}

/// `cargo build --release` in `krate`, into the hooks' shared target directory.
fn cargo_build(krate: &std::path::Path) {
    let target = hooks_target(krate.parent().unwrap());
    let out = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .current_dir(krate)
        .args(["build", "--release"])
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo build: {}", text(&out.stderr));
}

/// Replaces `from` with `to` in the crate's src/main.rs (an edit of the author's).
fn edit_main(krate: &std::path::Path, from: &str, to: &str) {
    let file = krate.join("src/main.rs");
    let code = std::fs::read_to_string(&file).unwrap();
    assert!(code.contains(from), "{code}");
    std::fs::write(&file, code.replacen(from, to, 1)).unwrap();
}

/// The loop of the issue's "done when": `hookhost new` with the default SDK in an empty
/// directory outside the repository, a build, `try` of the file; three edit–build–try cycles,
/// one through the registry with a rebuild between two `try`s (warned, then `update`); the
/// SDK's log lines reach `try`'s output. Prints the time from `new` to the first passing
/// `try` (not asserted).
#[test]
fn a_new_hook_goes_through_three_edit_build_try_cycles() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let (krate, module) =
        new_hook_built_and_tested(&host, dir.path(), "probe", "createContainer", false);
    let module = module.to_str().unwrap();
    let try_file = |extra: &[&str]| {
        let out = host.run(&[&["try", module, "--type", "createContainer"][..], extra].concat());
        assert!(out.status.success(), "{}", text(&out.stderr));
        out
    };
    let out = try_file(&[]);
    eprintln!(
        "new -> first passing try: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    said(&out, "probe: container hookhost-try is");

    // Cycle 1: log through the SDK; try the file again.
    edit_main(
        &krate,
        "    eprintln!(",
        "    hookhost_guest::info!(\"cycle one\", id = hook.state.id);\n    eprintln!(",
    );
    cargo_build(&krate);
    let out = try_file(&[]);
    said(&out, r#"level=info msg="cycle one" id=hookhost-try"#);

    // Cycle 2: registered; a rebuild is named until `update` registers it.
    host.ok(&["create", "--type", "createContainer", "probe", module]);
    edit_main(&krate, "cycle one", "cycle two");
    cargo_build(&krate);
    let out = host.run(&["try", "probe"]);
    assert!(
        text(&out.stderr).contains("hookhost update probe"),
        "{}",
        text(&out.stderr)
    );
    said(&out, "cycle one");
    host.ok(&["update", "probe"]);
    said_without_warning(&host.run(&["try", "probe"]), "cycle two");

    // Cycle 3: the file again, with a grant.
    edit_main(&krate, "cycle two", "cycle three");
    cargo_build(&krate);
    let out = try_file(&["--allow-rootfs=rw"]);
    said(&out, "cycle three");

    // The same name again is refused, nothing overwritten; without an SDK to depend on,
    // `new` says how to give one instead of writing a dependency that cannot resolve.
    let again = host
        .cmd()
        .current_dir(dir.path())
        .args(["new", "probe"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
    let err = host
        .cmd()
        .current_dir(dir.path())
        .env("HOOKHOST_GUEST_SDK", "/nonexistent")
        .args(["new", "other"])
        .output()
        .unwrap();
    assert!(!err.status.success());
    assert!(
        text(&err.stderr).contains("not published"),
        "{}",
        text(&err.stderr)
    );
    assert!(!dir.path().join("other").exists());
}

/// `hookhost new --stage precreate`: a hook on the SDK's precreate API that builds for
/// wasm32-wasip1 and passes its own native tests (an edit that keeps the rest of the config, a
/// refusal), with the registration it needs in its header.
#[test]
fn a_new_precreate_hook_builds_and_passes_its_own_tests() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let (krate, module) = new_hook_built_and_tested(&host, dir.path(), "shaper", "precreate", true);
    let main = std::fs::read_to_string(krate.join("src/main.rs")).unwrap();
    assert!(main.contains("precreate(shape)"), "{main}");
    let create = "hookhost create --type precreate --may-adjust env=HELLO_FROM shaper \
                  target/wasm32-wasip1/release/shaper.wasm";
    assert!(main.contains(create), "{main}");
    // Registered as its header says (a relative path, from the crate), then tried: the diff
    // shows its one granted edit.
    // (The test builds into the shared target directory; put the module where the header's
    // relative path expects it.)
    let relative = krate.join("target/wasm32-wasip1/release/shaper.wasm");
    std::fs::create_dir_all(relative.parent().unwrap()).unwrap();
    std::fs::copy(&module, &relative).unwrap();
    let words: Vec<&str> = create.split_whitespace().skip(1).collect();
    let out = host
        .cmd()
        .current_dir(&krate)
        .args(&words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["try", "shaper"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);

    assert!(
        shown.contains(r#"+ env HELLO_FROM: "HELLO_FROM=shaper""#),
        "{shown}"
    );
    assert!(shown.contains("accepted"), "{shown}");

    // Trap 12: an edit outside the grant fails the crate's own native test, before any build.
    edit_main(
        &krate,
        "config.set_env(",
        "config.set_env(\"OTHER\", \"x\")?;\n    config.set_env(",
    );
    let out = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .current_dir(&krate)
        .arg("test-native")
        .env("CARGO_TARGET_DIR", hooks_target(dir.path()))
        .env("HOOKHOST_BIN", common::HOOKHOST)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the out-of-grant edit passed its test"
    );
    let said = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(said.contains("the_edit_is_within_its_grant"), "{said}");
    assert!(
        said.contains("[refused: needs --may-adjust env=OTHER]"),
        "{said}"
    );
}

/// Writes the WAT fixture `fixture`'s module to `file` (a "rebuild" of the module there).
fn build_as(fixture: &str, file: &std::path::Path) {
    let scratch = tempfile::tempdir().unwrap();
    let built = wat_module(scratch.path(), fixture);
    std::fs::copy(built, file).unwrap();
}

/// Trap 1: after a rebuild at the registered Path, `try`, `ls` and `inspect` say that the
/// registered (old) module is what runs, with the fix; `update NAME` registers the new build
/// and the next `try` runs it.
#[test]
fn a_rebuilt_module_is_named_until_update_registers_it() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("motd.wasm");
    build_as("noop", &module);
    host.ok(&[
        "create",
        "--type",
        "poststart",
        "motd",
        module.to_str().unwrap(),
    ]);
    assert!(!host.ok(&["try", "motd"]).contains("bye"));
    let quiet = host.run(&["ls"]);
    assert!(
        !text(&quiet.stderr).contains("Warning"),
        "{}",
        text(&quiet.stderr)
    );

    build_as("bye", &module); // cargo build, as the author does
    let warned = |out: &std::process::Output| {
        let err = text(&out.stderr);
        assert!(
            err.contains("has changed since it was registered")
                && err.contains("still run the registered module")
                && err.contains("`hookhost update motd`"),
            "{err}"
        );
    };
    let tried = host.run(&["try", "motd"]);
    assert!(tried.status.success(), "{}", text(&tried.stderr));
    assert!(!text(&tried.stdout).contains("bye"), "the old module ran");
    warned(&tried);
    warned(&host.run(&["ls"]));
    let inspected = host.run(&["inspect", "motd"]);
    warned(&inspected);
    let view: Value = serde_json::from_slice(&inspected.stdout).unwrap();
    assert_eq!(view[0]["Name"], "motd", "stdout stays the JSON document");

    let updated = host.ok(&["update", "motd"]);
    assert!(updated.starts_with("motd\n"), "{updated}");
    assert!(updated.contains("Digest:"), "{updated}");
    said_without_warning(&host.run(&["try", "motd"]), "bye");
}

/// The run printed `want` on stdout.
fn said(out: &std::process::Output, want: &str) {
    assert!(text(&out.stdout).contains(want), "{}", text(&out.stdout));
}

/// The run printed `want` and warned of nothing.
fn said_without_warning(out: &std::process::Output, want: &str) {
    said(out, want);
    assert!(
        !text(&out.stderr).contains("Warning"),
        "{}",
        text(&out.stderr)
    );
}

/// Trap 2: `update` keeps what it is not given; `create --replace` keeps nothing; both check
/// as `create` does and change nothing when refused.
#[test]
fn update_keeps_what_is_not_given_and_create_replace_keeps_nothing() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let module = wat_module(dir.path(), "noop");
    let path = module.to_str().unwrap();
    host.ok(&[
        "create",
        "--type",
        "poststart",
        "--timeout",
        "5",
        "--env",
        "A=1",
        "--allow-env",
        "HOME",
        "--fuel",
        "5000",
        "h",
        path,
    ]);
    let inspect = |host: &Host| -> Value {
        serde_json::from_str::<Value>(&host.ok(&["inspect", "h"])).unwrap()[0].clone()
    };
    let before = inspect(&host);

    let out = host.ok(&["update", "h", "--timeout", "9", "--memory", "32MiB"]);
    assert!(out.contains("Timeout: 5 -> 9"), "{out}");
    let after = inspect(&host);
    assert_eq!(after["Timeout"], 9);
    assert_eq!(after["Env"], before["Env"]);
    assert_eq!(after["Grants"], before["Grants"]);
    assert_eq!(after["Stages"], before["Stages"]);
    assert_eq!(after["Limits"]["fuel"], before["Limits"]["fuel"], "{after}");
    assert_eq!(after["Limits"]["memory"], 32 << 20, "{after}");
    assert_eq!(host.ok(&["update", "h"]), "h\n  (unchanged)\n");

    // Refused updates change nothing.
    let snapshot = host.snapshot();
    let err = host.fails(&["update", "h", "--timeout", "0"]);
    assert!(err.contains("invalid --timeout 0"), "{err}");
    let err = host.fails(&["update", "h", "--type", "startContainer"]);
    assert!(err.contains("startContainer"), "{err}");
    let err = host.fails(&["update", "nope"]);
    assert!(err.contains("no such hook: nope"), "{err}");
    assert!(
        host.snapshot() == snapshot,
        "a refused command changed the registry"
    );

    // create of a taken name still fails; --replace takes only what it is given.
    let err = host.fails(&["create", "h", path]);
    assert!(err.contains("already exists"), "{err}");
    let err = host.fails(&["create", "--replace", "--timeout", "0", "h", path]);
    assert!(err.contains("invalid --timeout 0"), "{err}");
    assert!(
        host.snapshot() == snapshot,
        "a refused command changed the registry"
    );
    assert_eq!(host.ok(&["create", "--replace", "h", path]), "h\n");
    let replaced = inspect(&host);
    assert_eq!(replaced["Timeout"], 30);
    assert_eq!(replaced["Env"], serde_json::json!([]));
    assert_eq!(replaced["Stages"], serde_json::json!(["prestart"]));
    assert_eq!(
        replaced["Grants"],
        serde_json::json!({"dirs": [], "bundle": null, "rootfs": null, "env": []})
    );
    // ... and creates a hook that was not there.
    assert_eq!(host.ok(&["create", "--replace", "fresh", path]), "fresh\n");
}

/// Trap 3: `try` of a file (a path with a `/`), defined on the command line with `create`'s
/// flags, runs it without registering anything; grant flags with a registered name are
/// refused with the reason.
#[test]
fn try_runs_a_file_that_nothing_registered() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    wat_module(dir.path(), "bye");
    wat_module(dir.path(), "fs");
    let try_in_dir = |args: &[&str]| {
        let cmd = host
            .cmd()
            .current_dir(dir.path())
            .arg("try")
            .args(args)
            .output();
        cmd.unwrap()
    };
    let out = try_in_dir(&["./bye.wasm", "--type", "poststart"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    said(&out, "bye");
    said(&out, "--- hook bye (poststart, wasm): exit status 0");

    // Granted the bundle: the sample bundle's config.json at /bundle; extra arguments too.
    let read = r#"./fs.wasm:["read","config.json"]"#;
    let out = try_in_dir(&[read, "--type", "createRuntime", "--allow-bundle"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    said(&out, "\"ociVersion\"");
    // Without the grant the module sees nothing (the same checks as a registered hook).
    let out = try_in_dir(&[read, "--type", "createRuntime"]);
    assert!(!out.status.success());

    // Nothing was registered, no module stored.
    assert_eq!(host.ok(&["ls", "-q"]), "");
    let modules = host.root().join("modules");
    let stored = std::fs::read_dir(&modules).map_or(0, |d| d.count());
    assert_eq!(stored, 0, "modules stored by try");

    // Bad definitions get create's errors; grants with a registered name are refused.
    let err = host.fails(&[
        "try",
        dir.path().join("bye.wasm").to_str().unwrap(),
        "--timeout",
        "0",
    ]);
    assert!(err.contains("invalid --timeout 0"), "{err}");
    host.ok(&[
        "create",
        "--type",
        "poststart",
        "bye",
        dir.path().join("bye.wasm").to_str().unwrap(),
    ]);
    let err = host.fails(&["try", "bye", "--allow-rootfs"]);
    assert!(err.contains("bye is a registered hook"), "{err}");
    assert!(err.contains("./hook.wasm"), "{err}");
}

/// Trap 10: `inspect` with no names (or `--all`) prints every hook, which `apply` takes back.
#[test]
fn inspect_without_names_prints_every_hook() {
    let host = Host::new();
    host.ok(common::SEED_CREATE);
    host.ok(&["create", "--type", "poststop", "other", "/bin/true"]);
    for args in [&["inspect"][..], &["inspect", "--all"]] {
        let all: Value = serde_json::from_str(&host.ok(args)).unwrap();
        let names: Vec<&str> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["myFirstHook", "other"], "{args:?}");
    }
    let err = host.fails(&["inspect", "--all", "other"]);
    assert!(err.contains("--all"), "{err}");
    let file = host.dir.path().join("hooks.json");
    std::fs::write(&file, host.ok(&["inspect"])).unwrap();
    assert!(
        host.ok(&["apply", "-f", file.to_str().unwrap()])
            .contains("no changes")
    );
}

/// Traps 6 and 7: a precreate hook's edit outside its grants. `try` shows what it tried to
/// change, marked refused with the grant that would allow it, and a summary line; through
/// `inject` the run is recorded as `refused` (not as a plain `exit=0`), with the missing
/// grant and the hook's stderr, and counted as refused by `stats` and `metrics`.
#[test]
fn a_refused_precreate_edit_is_shown_recorded_and_counted_as_refused() {
    let host = Host::new();
    let hook = host.python_precreate(
        "shaper",
        "sys.stderr.write(\"shaping the env\\n\")\nc[\"process\"][\"env\"].append(\"FOO=1\")",
    );
    host.ok(&["create", "--type", "precreate", "shaper", &hook]);
    let out = host.run(&["try", "shaper"]);
    assert!(!out.status.success());
    let shown = text(&out.stdout);
    assert!(shown.contains("--- changes (refused"), "{shown}");
    assert!(
        shown.contains(r#"+ env FOO: "FOO=1"   [refused: needs --may-adjust env=FOO]"#),
        "{shown}"
    );
    assert!(
        shown.contains("--- hook shaper (precreate, native): refused in"),
        "{shown}"
    );
    assert!(text(&out.stderr).contains("Error: hook shaper (precreate)"));

    let bundle = common::Bundle::new("true");
    let out = host
        .cmd()
        .args([
            "inject",
            "--bundle",
            bundle.path_str(),
            "--add-hook",
            "shaper",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the edit was refused");
    let line = host.ok(&[
        "events",
        "--hook",
        "shaper",
        "--stage",
        "precreate",
        "--failed",
    ]);
    assert!(
        line.contains("precreate shaper (native) refused exit=0"),
        "{line}"
    );
    assert!(line.contains(r#"needs="--may-adjust env=FOO""#), "{line}");
    assert!(line.contains(r#"stderr="shaping the env""#), "{line}");
    assert_eq!(host.ok(&["events", "--hook", "other"]), "");
    let json: Value = serde_json::from_str(
        host.ok(&["events", "--hook", "shaper", "--format", "json"])
            .trim(),
    )
    .unwrap();
    assert_eq!(json["verdict"], "refused");
    assert_eq!(json["needs"], "--may-adjust env=FOO");

    let stats: Value = serde_json::from_str(&host.ok(&["stats", "--format", "json"])).unwrap();
    assert_eq!(
        (stats[0]["Failures"].as_u64(), stats[0]["Refused"].as_u64()),
        (Some(1), Some(1))
    );
    let metrics = host.ok(&["metrics"]);
    assert!(
        metrics.contains(r#"stage="precreate",kind="native",result="refused"} 1"#),
        "{metrics}"
    );
}

/// Trap 7: `try --keep` keeps the sample bundle a createContainer hook wrote into.
#[test]
fn try_keep_keeps_the_sample_bundle() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let module = wat_module(dir.path(), "fs");
    let item = format!(r#"{}:["write","motd"]"#, module.display());
    let args = [
        "try",
        &item,
        "--type",
        "createContainer",
        "--allow-rootfs=rw",
    ];
    let out = host.run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("removed; --keep keeps it"),
        "{}",
        text(&out.stderr)
    );

    let out = host.run(&[&args[..], &["--keep"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    let kept = said
        .split("sample bundle at ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| panic!("{said}"));
    assert!(said.contains("kept"), "{said}");
    assert_eq!(
        std::fs::read_to_string(kept.join("rootfs/motd")).unwrap(),
        "pwned"
    );
    std::fs::remove_dir_all(kept).unwrap();
}
