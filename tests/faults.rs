//! Fault tolerance with real processes: writers killed at random points, many concurrent
//! writers and readers, a read-only and a full registry filesystem, and hooks that misbehave
//! towards their pipes or die by signal.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Bundle, Host, Rng, Runc, Tmpfs, files, text, unique};
use serde_json::Value;

/// Every document in the hooks dir is a whole entry, and `ls` (which reads them all) succeeds
/// without warnings and shows no temp file.
fn assert_registry_whole(host: &Host, context: &str) -> Vec<String> {
    let out = host.run(&["ls", "--format", "json"]);
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "{context}: ls: {stderr}"
    );
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<String> = listed
        .iter()
        .map(|h| h["Name"].as_str().unwrap().to_string())
        .collect();
    for name in &names {
        assert!(!name.starts_with('.'), "{context}: ls shows {name}");
    }
    for entry in fs::read_dir(host.root().join("hooks")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let doc: Value = serde_json::from_slice(&fs::read(&path).unwrap())
                .unwrap_or_else(|e| panic!("{context}: {} is not whole: {e}", path.display()));
            assert!(
                doc["Path"].is_string() && doc["Created"].is_string(),
                "{context}"
            );
        }
    }
    names
}

#[test]
fn kill_9_of_create_and_rm_at_random_points_leaves_every_entry_whole() {
    let host = Host::new();
    host.ok(&["create", "seed", "/bin/true"]);
    let mut rng = Rng::seeded();
    let long_arg = "x".repeat(8192);
    let (mut killed, mut finished) = (0, 0);
    for i in 0..240 {
        let name = format!("h{}", rng.below(8));
        let mut cmd = host.cmd();
        if rng.below(3) == 0 {
            cmd.args(["rm", &name]);
        } else {
            // A large document makes the write itself a window worth hitting.
            cmd.args(["create", "--env", &format!("I={i}"), "--args"])
                .arg(format!("true,{long_arg}"))
                .args([name.as_str(), "/bin/true"]);
        }
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_micros(rng.below(6000)));
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let status = child.wait().unwrap();
        if status.code().is_some() {
            finished += 1;
        } else {
            killed += 1;
        }
        assert_registry_whole(&host, &format!("iteration {i}"));
    }
    eprintln!("killed {killed}, finished before the kill {finished}");
    assert!(
        killed >= 40,
        "too few kills landed ({killed}): the test proves little"
    );
    // The next writer sweeps temp files a killed writer left.
    host.ok(&["create", "after", "/bin/true"]);
    let leftovers: Vec<_> = fs::read_dir(host.root().join("hooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".json"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[derive(Default)]
struct Tally {
    created: i64,
    removed: i64,
}

#[test]
fn fifty_concurrent_writers_and_readers_agree_with_the_final_state() {
    let host = Arc::new(Host::new());
    let tallies: Arc<Mutex<BTreeMap<String, Tally>>> = Arc::default();
    let mut seed = Rng::seeded();
    let threads: Vec<_> = (0..50)
        .map(|t| {
            let host = Arc::clone(&host);
            let tallies = Arc::clone(&tallies);
            let mut rng = seed.split();
            std::thread::spawn(move || {
                for _ in 0..8 {
                    let name = format!("n{}", rng.below(12));
                    let op = rng.below(4);
                    let args: Vec<&str> = match op {
                        0 => vec!["create", "--env", "T=1", &name, "/bin/true"],
                        1 => vec!["rm", &name],
                        2 => vec!["ls"],
                        _ => vec!["inspect", &name],
                    };
                    let out = host.run(&args);
                    let stderr = text(&out.stderr);
                    let ctx = format!("thread {t}: {args:?}: {stderr}");
                    let mut tallies = tallies.lock().unwrap();
                    let tally = tallies.entry(name.clone()).or_default();
                    match (op, out.status.success()) {
                        (0, true) => tally.created += 1,
                        (1, true) => tally.removed += 1,
                        (0, false) => assert!(stderr.contains("already exists"), "{ctx}"),
                        (1 | 3, false) => assert!(stderr.contains("no such hook"), "{ctx}"),
                        (2, ok) => assert!(ok && stderr.is_empty(), "{ctx}"),
                        (_, true) => {
                            let view: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
                            assert_eq!(view[0]["Name"], name.as_str(), "{ctx}");
                        }
                        _ => unreachable!(),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let names = assert_registry_whole(&host, "after the storm");
    let tallies = tallies.lock().unwrap();
    for (name, tally) in tallies.iter() {
        let balance = tally.created - tally.removed;
        assert!(
            balance == 0 || balance == 1,
            "{name}: {} creates and {} removes succeeded",
            tally.created,
            tally.removed
        );
        assert_eq!(names.contains(name), balance == 1, "{name}");
    }
    assert_eq!(
        names.len(),
        tallies.values().filter(|t| t.created > t.removed).count()
    );
}

fn host_at(root: &Path) -> impl Fn(&[&str]) -> std::process::Output {
    let root = root.to_path_buf();
    move |args: &[&str]| {
        Command::new(common::HOOKHOST)
            .env("HOOKHOST_ROOT", &root)
            .args(args)
            .output()
            .unwrap()
    }
}

#[test]
fn a_read_only_registry_gives_a_clear_error_and_changes_nothing() {
    let fs_ = Tmpfs::new("size=4m,mode=0700");
    let root = fs_.path().join("registry");
    let run = host_at(&root);
    assert!(run(&["create", "kept", "/bin/true"]).status.success());
    fs_.remount("ro");
    let before = files(fs_.path());
    for args in [&["create", "new", "/bin/true"][..], &["rm", "kept"][..]] {
        let out = run(args);
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{args:?} succeeded on a read-only registry"
        );
        assert!(
            stderr.contains("Read-only file system"),
            "{args:?}: {stderr}"
        );
        assert!(
            stderr.contains(root.to_str().unwrap()),
            "names the path: {stderr}"
        );
    }
    assert_eq!(files(fs_.path()), before, "nothing changed");
    // Reading still works.
    let out = run(&["inspect", "kept"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["ls", "-q"]);
    assert_eq!(text(&out.stdout).trim(), "kept");
}

#[test]
fn a_full_disk_gives_a_clear_error_and_leaves_nothing_half_written() {
    let fs_ = Tmpfs::new("size=64k,mode=0700");
    let root = fs_.path().join("registry");
    let run = host_at(&root);
    assert!(run(&["create", "kept", "/bin/true"]).status.success());
    // Fill the filesystem to the last page.
    let fill = Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", fs_.path().join("fill").display()))
        .output()
        .unwrap();
    assert!(
        text(&fill.stderr).contains("No space left"),
        "{}",
        text(&fill.stderr)
    );
    let before = files(&root);
    let out = run(&["create", "--env", "BIG=1", "new", "/bin/true"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "create succeeded on a full disk");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(stderr.contains("new.json"), "names the entry: {stderr}");
    assert_eq!(files(&root), before, "no partial entry or temp file left");
    let out = run(&["ls", "-q"]);
    assert!(out.status.success() && text(&out.stderr).is_empty());
    assert_eq!(text(&out.stdout).trim(), "kept");
    // Once there is room again, the same create works.
    fs::remove_file(fs_.path().join("fill")).unwrap();
    let out = run(&["create", "--env", "BIG=1", "new", "/bin/true"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Registers a prestart (or `stage`) hook running `body`, injects it and runs the container.
fn run_with_hook(stage: &str, body: &str) -> (bool, String, String) {
    let runc = Runc::new();
    let host = Host::new();
    let script = host.script("hook.sh", body);
    host.ok(&["create", "--type", stage, "h", script.to_str().unwrap()]);
    let bundle = Bundle::new("echo container-ran");
    host.inject(&bundle, &["h"]);
    let out = runc.run(&bundle, &unique("misbehave"));
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_hook_that_closes_stdin_early_is_fine() {
    let (ok, stdout, stderr) = run_with_hook("prestart", "exec 0<&-; sleep 0.2; exit 0");
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "container-ran");
}

#[test]
fn megabytes_of_output_do_not_block_and_are_reported_bounded() {
    let (ok, stdout, stderr) =
        run_with_hook("prestart", "head -c 8000000 /dev/zero | tr '\\0' x; exit 0");
    assert!(ok, "{}", &stderr[..stderr.len().min(2000)]);
    assert_eq!(stdout.trim(), "container-ran");

    let (ok, stdout, stderr) =
        run_with_hook("prestart", "head -c 8000000 /dev/zero | tr '\\0' y; exit 4");
    assert!(!ok && !stdout.contains("container-ran"));
    assert!(
        stderr.contains("exit status 4"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.contains("output truncated"),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(
        stderr.len() < 1_000_000,
        "unbounded error: {} bytes",
        stderr.len()
    );
}

#[test]
fn a_hook_killed_by_a_signal_is_reported() {
    let (ok, stdout, stderr) = run_with_hook("prestart", "kill -KILL $$");
    assert!(!ok && !stdout.contains("container-ran"));
    assert!(stderr.contains("killed by signal 9 (SIGKILL)"), "{stderr}");
    // At poststop it is a warning: the container ran.
    let (ok, stdout, stderr) = run_with_hook("poststop", "kill -SEGV $$");
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "container-ran");
}
