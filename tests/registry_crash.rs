//! Crash safety of the registry's global hooks, with the real binary: `create --when-always`
//! killed with SIGKILL at random moments, a full filesystem, and an old registry that cannot be
//! upgraded. Whatever happens, a hook that `inspect` shows as global (it has `When`) is one
//! the runtime wrapper injects, or the wrapper refuses containers; temp files never pile up.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::engines::Wrapper;
use common::{Host, Rng, Tmpfs, files, text};
use hookhost_hooks::registry::Registry;
use serde_json::{Value, json};

/// `hookhost` with `HOOKHOST_ROOT=root`.
fn hookhost(root: &Path, args: &[&str]) -> std::process::Output {
    Command::new(common::HOOKHOST)
        .env("HOOKHOST_ROOT", root)
        .env_remove("HOOKHOST_LOG")
        .args(args)
        .output()
        .unwrap()
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = hookhost(root, args);
    assert!(
        out.status.success(),
        "hookhost {args:?}: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// The hooks `hookhost inspect` shows with a `When` key, of all those `hookhost ls` lists.
fn inspected_global(root: &Path) -> BTreeSet<String> {
    let listed = ok(root, &["ls", "-q"]);
    let names: Vec<&str> = listed.lines().collect();
    if names.is_empty() {
        return BTreeSet::new();
    }
    let mut args = vec!["inspect"];
    args.extend(&names);
    let views: Vec<Value> = serde_json::from_str(&ok(root, &args)).unwrap();
    assert_eq!(views.len(), names.len(), "inspect shows every listed hook");
    views
        .iter()
        .filter(|v| v.get("When").is_some())
        .map(|v| v["Name"].as_str().unwrap().to_string())
        .collect()
}

/// The global hooks as the library gives them to the runtime wrapper.
fn api_global(root: &Path) -> BTreeSet<String> {
    let registry = Registry::open(root).unwrap();
    let (hooks, errors) = registry.global_hooks().unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    hooks.into_iter().map(|h| h.name).collect()
}

/// A bundle whose config.json is just enough for the wrapper to select hooks.
fn bundle(dir: &Path) -> PathBuf {
    let bundle = dir.join(format!("bundle-{}", common::unique("b")));
    fs::create_dir_all(bundle.join("rootfs")).unwrap();
    let config = json!({
        "ociVersion": "1.2.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["sh"], "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": "rootfs"},
    });
    fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    bundle
}

/// `hookhost-runtime create --bundle B ID` with `/bin/true` as the real runtime: the wrapper
/// selects and injects exactly as for a real container. Returns the names of the prestart
/// hooks it injected, or its error.
fn wrapper_global(root: &Path, scratch: &Path) -> Result<BTreeSet<String>, String> {
    let wrapper = Wrapper::new(&json!({"runtime": "/bin/true", "root": root}));
    let bundle = bundle(scratch);
    let out = wrapper
        .cmd(&["create", "--bundle", bundle.to_str().unwrap(), "c1"])
        .output()
        .unwrap();
    if !out.status.success() {
        return Err(text(&out.stderr));
    }
    let config: Value = serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap())
        .expect("config.json stays whole");
    let Some(prestart) = config.pointer("/hooks/prestart").and_then(Value::as_array) else {
        return Ok(BTreeSet::new());
    };
    let calls: Vec<_> = prestart
        .iter()
        .filter_map(hookhost_core::bundle::own_call)
        .collect();
    assert_eq!(calls.len(), 1, "{prestart:?}");
    let plan = hookhost_core::bundle::load_plan(&calls[0], &bundle).unwrap();
    Ok(plan.plan.stages[&calls[0].stage]
        .iter()
        .map(|h| h.name.clone())
        .collect())
}

/// `inspect`, the library and the wrapper all agree on the global hooks; returns them. On a
/// file system too full to record hook runs the wrapper refuses the container instead (so no
/// container can miss a global hook); that refusal, and only that one, is accepted.
fn assert_global_agrees(root: &Path, scratch: &Path, context: &str) -> BTreeSet<String> {
    let inspected = inspected_global(root);
    assert_eq!(
        api_global(root),
        inspected,
        "{context}: Registry::global_hooks() against what inspect shows with When"
    );
    let injected = match wrapper_global(root, scratch) {
        Ok(injected) => injected,
        Err(e) if e.contains("hookhost keeps for its audit trail") => return inspected,
        Err(e) => panic!("{context}: {e}"),
    };
    assert_eq!(
        injected, inspected,
        "{context}: what the wrapper injects against what inspect shows with When"
    );
    inspected
}

/// Every `.tmp-*` file anywhere under `dir`.
fn temps(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                found.push(entry.path());
            }
        }
    }
    found
}

#[test]
fn kill_9_of_global_creates_never_leaves_a_global_hook_containers_miss() {
    let host = Host::new();
    let root = host.root();
    let long_arg = "x".repeat(8192);
    let create = |name: &str| {
        let mut cmd = host.cmd();
        cmd.args(["create", "--when-always", "--args"])
            .arg(format!("true,{long_arg}"))
            .args([name, "/bin/true"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    };
    // Kills land at random moments of a whole create, however fast this machine runs one.
    let mut took: Vec<Duration> = (0..5)
        .map(|i| {
            let start = Instant::now();
            assert!(create(&format!("seed{i}")).status().unwrap().success());
            start.elapsed()
        })
        .collect();
    took.sort();
    let window = took[2].as_micros().max(1000) as u64;
    let mut rng = Rng::seeded();
    let (mut killed, mut finished) = (0, 0);
    for i in 0..100 {
        let name = format!("g{i:03}");
        let mut child = create(&name).spawn().unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(window)));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        match child.wait().unwrap().code() {
            Some(_) => finished += 1,
            None => killed += 1,
        }
    }
    eprintln!(
        "a create takes {window} µs; killed {killed}, finished before the kill {finished}, \
         temp files left {}",
        temps(&root).len()
    );
    assert!(
        killed >= 20,
        "too few kills landed ({killed}): the test proves little"
    );
    let global = assert_global_agrees(&root, host.dir.path(), "after 100 kills");
    assert!(global.contains("seed0"), "{global:?}");
    // The next write sweeps what killed writers left, in every directory.
    host.ok(&["create", "after", "/bin/true"]);
    assert_eq!(temps(&root), Vec::<PathBuf>::new());
    assert_global_agrees(&root, host.dir.path(), "after the next write");
}

/// Fills the filesystem of `dir` to the last page with `dir/NAME`.
fn fill(dir: &Path, name: &str) -> PathBuf {
    let file = dir.join(name);
    let out = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", file.display()))
        .output()
        .unwrap();
    assert!(
        text(&out.stderr).contains("No space left"),
        "{}",
        text(&out.stderr)
    );
    file
}

#[test]
fn a_full_disk_never_leaves_a_global_hook_containers_miss() {
    let scratch = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::new("size=256k,mode=0700");
    let root = tmpfs.path().join("registry");
    ok(&root, &["create", "plain", "/bin/true"]);
    ok(&root, &["create", "--when-always", "global", "/bin/true"]);
    // Room for exactly one more page: a hook document fits, a second file does not.
    let filler = fill(tmpfs.path(), "fill");
    let len = fs::metadata(&filler).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(len - 4096)
        .unwrap();
    let out = hookhost(&root, &["create", "--when-always", "one-page", "/bin/true"]);
    let stderr = text(&out.stderr);
    if !out.status.success() {
        assert!(stderr.contains("No space left on device"), "{stderr}");
    }
    let global = assert_global_agrees(&root, scratch.path(), "one page free");
    assert_eq!(
        global.contains("one-page"),
        out.status.success(),
        "{stderr}"
    );
    assert_eq!(temps(&root), Vec::<PathBuf>::new());

    // No room at all: a clear error, and nothing half-written.
    let filler2 = fill(tmpfs.path(), "fill2");
    let before = files(&root);
    let out = hookhost(&root, &["create", "--when-always", "full", "/bin/true"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "create succeeded on a full disk");
    assert!(
        stderr.contains("No space left on device") && stderr.contains("full.json"),
        "names the problem and the entry: {stderr}"
    );
    assert_eq!(files(&root), before, "no partial entry or temp file left");
    let err = text(&hookhost(&root, &["inspect", "full"]).stderr);
    assert!(err.contains("no such hook"), "{err}");
    let global = assert_global_agrees(&root, scratch.path(), "disk full");
    assert!(!global.contains("full"));

    // Once there is room again, the same create works and is global everywhere.
    fs::remove_file(filler).unwrap();
    fs::remove_file(filler2).unwrap();
    ok(&root, &["create", "--when-always", "full", "/bin/true"]);
    let global = assert_global_agrees(&root, scratch.path(), "room again");
    assert!(global.contains("full") && global.contains("global"));
}

#[test]
fn an_old_registry_is_upgraded_or_its_global_hooks_are_refused() {
    let scratch = tempfile::tempdir().unwrap();
    let tmpfs = Tmpfs::new("size=1m,mode=0700");
    let root = tmpfs.path().join("registry");
    ok(&root, &["create", "--when-always", "a", "/bin/true"]);
    ok(&root, &["create", "--when-always", "b", "/bin/true"]);
    ok(&root, &["create", "plain", "/bin/true"]);
    // The old layout: every entry in hooks/, and an index that misses `b`, as a create killed
    // between its two writes left it.
    let global_dir = root.join("global");
    if global_dir.is_dir() {
        for entry in fs::read_dir(&global_dir).unwrap() {
            let entry = entry.unwrap();
            fs::rename(entry.path(), root.join("hooks").join(entry.file_name())).unwrap();
        }
        fs::remove_dir(&global_dir).unwrap();
    }
    fs::write(root.join("global.json"), r#"["a"]"#).unwrap();
    let both: BTreeSet<String> = ["a".to_string(), "b".to_string()].into();

    // Read-only, it cannot be upgraded: hooks can still be read, but containers are refused
    // rather than silently given a partial set of global hooks.
    tmpfs.remount("ro");
    assert_eq!(inspected_global(&root), both);
    let err = Registry::open(&root)
        .unwrap()
        .global_hooks()
        .expect_err("the global hooks of an old registry are refused");
    assert!(err.to_string().contains("old layout"), "{err}");
    let err = wrapper_global(&root, scratch.path()).expect_err("the wrapper must refuse");
    assert!(
        err.contains("old layout") && err.contains("hookhost ls") && err.contains("Read-only"),
        "names the problem, its cause and the fix: {err}"
    );

    // Any command that can take the writers' lock upgrades it.
    tmpfs.remount("rw");
    ok(&root, &["ls"]);
    assert!(!root.join("global.json").exists());
    assert_eq!(
        assert_global_agrees(&root, scratch.path(), "upgraded"),
        both
    );
    assert_eq!(temps(&root), Vec::<PathBuf>::new());
}
