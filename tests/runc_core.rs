//! The core against real runc: the seed workflow, stage order and failure rules, timeouts,
//! snapshots. Needs root, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{Bundle, Host, Runc, detached, text, unique};
use serde_json::Value;

/// The seed's workflow word for word: `ls /tmp/a /tmp/b /tmp/c` runs before the container's
/// command. ls fails when a path is missing, so the container only starts if all three
/// arguments reached it; with /tmp/c missing, runc reports ls's own complaint.
#[test]
fn seed_workflow_runs_ls_with_registered_and_added_args() {
    let host = Host::new();
    let runc = Runc::new();
    for dir in ["/tmp/a", "/tmp/b", "/tmp/c"] {
        fs::create_dir_all(dir).unwrap();
    }
    host.ok(common::SEED_CREATE);

    let bundle = Bundle::new("echo container-ran");
    host.inject(&bundle, &[r#"myFirstHook:["/tmp/b","/tmp/c"]"#]);
    let id = unique("seed");
    let out = runc.run(&bundle, &id);
    assert!(
        out.status.success(),
        "runc run failed: {}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "container-ran");
    let events = host.ok(&["events", "--container", &id]);
    assert!(
        events.contains("prestart myFirstHook (native) exit=0"),
        "{events}"
    );

    // Same hook, an argument that does not exist: ls fails, runc says why, no container.
    let bundle = Bundle::new("echo container-ran");
    host.inject(
        &bundle,
        &[r#"myFirstHook:["/tmp/b","/tmp/no-such-dir-for-hookhost"]"#],
    );
    let out = runc.run(&bundle, &unique("seed"));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("hook myFirstHook (prestart)"), "{stderr}");
    assert!(stderr.contains("/tmp/no-such-dir-for-hookhost"), "{stderr}");
    assert!(!text(&out.stdout).contains("container-ran"));
}

/// The same flags on a recording script show argv, env and ordering: the hook writes a marker
/// into the rootfs and the container's command prints it.
#[test]
fn hook_gets_args_env_and_runs_before_the_command() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let script = host.script(
        "record.sh",
        &format!(
            r#"echo "args=$* platform=$platform stage=$HOOKHOST_STAGE" > {}"#,
            marker.display()
        ),
    );
    host.ok(&[
        "create",
        "--type",
        "prestart",
        "--env",
        r#"["platform=linux"]"#,
        "--timeout",
        "5",
        "--args",
        r#"["ls", "/tmp/a"]"#,
        "rec",
        script.to_str().unwrap(),
    ]);
    host.inject(&bundle, &[r#"rec:["/tmp/b","/tmp/c"]"#]);
    let out = runc.run(&bundle, &unique("order"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    // args[0] ("ls") became argv0 (a script sees its own path as $0), the rest are its arguments.
    assert_eq!(
        text(&out.stdout).trim(),
        "args=/tmp/a /tmp/b /tmp/c platform=linux stage=prestart"
    );
}

/// All six stages fire, each with the state's status for that stage, in the order runc runs
/// them.
#[test]
fn all_six_stages_fire_in_order_with_their_status() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("echo running");
    let log = bundle.rootfs().join("stages.log");
    let record = r#"{ printf '%s ' "$HOOKHOST_STAGE"; cat; echo; } >> "$LOG""#;
    host.ok(&[
        "create",
        "--type",
        "prestart,createRuntime,createContainer,poststart,poststop",
        "--env",
        &format!("LOG={}", log.display()),
        "--args",
        &format!("sh,-c,{record}"),
        "outside",
        "/bin/sh",
    ]);
    // startContainer runs inside the container: /bin/sh and /stages.log are the container's.
    host.ok(&[
        "create",
        "--type",
        "startContainer",
        "--env",
        "LOG=/stages.log",
        "--args",
        &format!("sh,-c,{record}"),
        "inside",
        "/bin/sh",
    ]);
    host.inject(&bundle, &["outside", "inside"]);
    let id = unique("stages");
    let out = runc.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let lines = fs::read_to_string(&log).unwrap();
    let seen: Vec<(String, String)> = lines
        .lines()
        .map(|line| {
            let (stage, state) = line.split_once(' ').unwrap();
            let state: Value = serde_json::from_str(state).unwrap();
            assert_eq!(state["id"], id.as_str());
            (
                stage.to_string(),
                state["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // runc runs the poststart hooks of config.json during `create`, with the container
    // created and its process not yet released, so before the startContainer hooks it runs at
    // `start` (runc 1.1.5, and 1.3.6 with HOOKHOST_TEST_STACK=forky; the runtime wrapper runs
    // poststart after start instead: tests/start.rs).
    let want = [
        ("prestart", "creating"),
        ("createRuntime", "creating"),
        ("createContainer", "creating"),
        ("poststart", "created"),
        ("startContainer", "created"),
        ("poststop", "stopped"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(seen, want);
}

#[test]
fn failing_fatal_hook_stops_the_container_with_its_stderr() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("touch /ran");
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--args",
        "sh,-c,echo policy says no >&2; exit 3",
        "deny",
        "/bin/sh",
    ]);
    host.inject(&bundle, &["deny"]);
    let out = runc.run(&bundle, &unique("deny"));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook deny (createRuntime): exit status 3: policy says no"),
        "{stderr}"
    );
    assert!(
        !bundle.rootfs().join("ran").exists(),
        "the container command must not run"
    );
}

#[test]
fn failing_poststop_hook_only_warns_and_later_ones_still_run() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("true");
    let after = bundle.path().join("after");
    host.ok(&[
        "create",
        "--type",
        "poststop",
        "--args",
        "sh,-c,exit 1",
        "fails",
        "/bin/sh",
    ]);
    host.ok(&[
        "create",
        "--type",
        "poststop",
        "--args",
        &format!("sh,-c,touch {}", after.display()),
        "after",
        "/bin/sh",
    ]);
    host.inject(&bundle, &["fails", "after"]);
    let id = unique("post");
    let out = runc.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        after.exists(),
        "the poststop hook after the failing one must run"
    );
    let events = host.ok(&["events", "--container", &id, "--format", "json"]);
    let runs: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["hook"], "fails");
    assert_eq!(runs[0]["exit"], 1);
    assert_eq!(runs[1]["hook"], "after");
    assert_eq!(runs[1]["exit"], 0);
}

/// runc would kill only the hook's pid; hookhost kills its whole process group.
#[test]
fn timeout_kills_the_whole_process_group_on_time() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("touch /ran");
    let secs = 4000 + (std::process::id() % 1000);
    let script = format!("sleep {secs} & sleep {secs}");
    host.ok(&[
        "create",
        "--type",
        "prestart",
        "--timeout",
        "1",
        "--args",
        &format!("sh,-c,{script}"),
        "sleepy",
        "/bin/sh",
    ]);
    host.inject(&bundle, &["sleepy"]);
    let started = Instant::now();
    let out = runc.run(&bundle, &unique("timeout"));
    let took = started.elapsed();
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook sleepy (prestart): ran past its timeout of 1s"),
        "{stderr}"
    );
    assert!(
        took < Duration::from_millis(1500) + runc_overhead(),
        "took {took:?}"
    );
    assert!(!bundle.rootfs().join("ran").exists());
    let left = std::process::Command::new("pgrep")
        .args(["-f", &format!("sleep {secs}")])
        .output()
        .unwrap();
    assert!(
        text(&left.stdout).trim().is_empty(),
        "sleepers survived: {}",
        text(&left.stdout)
    );
}

/// runc's own create and teardown time, measured, so the bound above is about the hook.
fn runc_overhead() -> Duration {
    let runc = Runc::new();
    let bundle = Bundle::new("true");
    let started = Instant::now();
    let out = runc.run(&bundle, &unique("baseline"));
    assert!(out.status.success());
    started.elapsed()
}

/// A created container keeps its hooks: removing the hook later changes nothing for it.
#[test]
fn hook_removed_after_create_still_runs_at_poststop() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("true");
    let done = bundle.path().join("poststop-ran");
    host.ok(&[
        "create",
        "--type",
        "poststop",
        "--args",
        &format!("sh,-c,touch {}", done.display()),
        "cleanup",
        "/bin/sh",
    ]);
    host.inject(&bundle, &["cleanup"]);
    let id = unique("snap");
    // The container's init keeps runc's stdio: don't wait for those pipes to close.
    let create = detached(&mut runc.cmd(&["create", "--bundle", bundle.path_str(), &id]));
    assert!(create.success(), "runc create failed");
    host.ok(&["rm", "cleanup"]);
    assert!(runc.cmd(&["start", &id]).status().unwrap().success());
    wait_stopped(&runc, &id);
    let delete = runc.cmd(&["delete", &id]).output().unwrap();
    assert!(delete.status.success(), "{}", text(&delete.stderr));
    assert!(done.exists(), "the removed hook still ran at poststop");
}

fn wait_stopped(runc: &Runc, id: &str) {
    for _ in 0..100 {
        let state = runc.cmd(&["state", id]).output().unwrap();
        if text(&state.stdout).contains("\"stopped\"") {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("container {id} did not stop");
}

/// Injecting the same hooks twice leaves one entry and runs the hook once.
#[test]
fn injecting_twice_runs_hooks_once() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("cat /count");
    let count = bundle.rootfs().join("count");
    host.ok(&[
        "create",
        "--args",
        &format!("sh,-c,echo x >> {}", count.display()),
        "once",
        "/bin/sh",
    ]);
    for _ in 0..2 {
        host.inject(&bundle, &["once"]);
    }
    assert_eq!(
        bundle.config()["hooks"]["prestart"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let out = runc.run(&bundle, &unique("twice"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "x\n");
}

/// `hookhost events --follow` prints runs as they happen.
#[test]
fn events_follow_shows_new_runs_as_they_happen() {
    use std::io::{BufRead, BufReader};
    let host = Host::new();
    let runc = Runc::new();
    host.ok(&[
        "create",
        "--type",
        "prestart,poststop",
        "watched",
        "/bin/true",
    ]);
    let mut follower = host
        .cmd()
        .args(["events", "--follow", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let bundle = Bundle::new("true");
    host.inject(&bundle, &["watched"]);
    let id = unique("follow");
    assert!(runc.run(&bundle, &id).status.success());
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    follower.kill().unwrap();
    let _ = follower.wait();
    assert_eq!(
        (first["stage"].as_str(), first["container"].as_str()),
        (Some("prestart"), Some(id.as_str()))
    );
    assert_eq!(second["stage"], "poststop");
}
