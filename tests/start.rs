//! Hooks at the engine's `start` call, through the runtime wrapper in front of runc (Debian 12's
//! 1.1.5; runc >= 1.2 with HOOKHOST_TEST_STACK=forky), called as engines call it: `create`, a pause, then `start`. poststart hooks run after
//! `start` (runc runs its own poststart hooks during `create`), once; startRuntime hooks
//! run before the container's process is released, with the container `created`, and a
//! failing one keeps the process from ever running.
//! Needs root, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::engines::{Setup, log_lines, wait_for};
use common::{Bundle, detached, lines, succeeded as ok, text, unique};
use serde_json::{Value, json};

/// A container created (not started) through the wrapper, deleted in Drop.
struct Created<'a> {
    s: &'a Setup,
    id: String,
}

impl<'a> Created<'a> {
    /// `create` through the wrapper, detached (the container's stdio is not ours to hold).
    fn new(s: &'a Setup, bundle: &Bundle, selection: &str) -> Created<'a> {
        bundle.edit(|c| c["annotations"]["io.hookhost.hooks"] = selection.into());
        let id = unique("start");
        let status = detached(&mut s.runtime(&["create", "--bundle", bundle.path_str(), &id]));
        assert!(status.success(), "create failed: {:?}", log_lines(&s.log()));
        Created { s, id }
    }

    /// What runc says the container's status is.
    fn status(&self) -> String {
        let state = ok(&self.s.runc.cmd(&["state", &self.id]).output().unwrap());
        let state: Value = serde_json::from_str(&state).unwrap();
        state["status"].as_str().unwrap().to_string()
    }

    fn start(&self) -> Output {
        self.s.runtime(&["start", &self.id]).output().unwrap()
    }
}

impl Drop for Created<'_> {
    fn drop(&mut self) {
        let _ = self.s.runc.cmd(&["delete", "--force", &self.id]).output();
    }
}

/// A hook script appending `NAME <status runc reports for the container>` to `log` (the id
/// comes from the OCI state on stdin).
fn status_recorder(s: &Setup, name: &str, stage: &str, log: &Path) {
    let root = s.runc.root.path().display();
    let body = format!(
        "id=$(tr -d '\\n' | sed -n 's/.*\"id\": *\"\\([^\"]*\\)\".*/\\1/p')\n\
         status=$(runc --root {root} state \"$id\" | grep -o '\"status\": \"[a-z]*\"')\n\
         echo \"{name} $status\" >> {}",
        log.display()
    );
    s.host.script_hook(name, stage, &body);
}

#[test]
fn poststart_runs_after_start_and_once() {
    let s = Setup::new();
    let log = s.host.dir.path().join("poststart.log");
    status_recorder(&s, "post", "poststart", &log);
    let bundle = Bundle::new("sleep 30");
    let c = Created::new(&s, &bundle, "post");
    // The pause an engine makes between create and start: nothing ran yet.
    assert_eq!(c.status(), "created");
    assert_eq!(
        lines(&log),
        Vec::<String>::new(),
        "poststart ran during create"
    );
    ok(&c.start());
    assert_eq!(lines(&log), ["post \"status\": \"running\""]);
    let events = s.host.ok(&["events", "--container", &c.id]);
    assert_eq!(
        events.matches("poststart post (native) exit=0").count(),
        1,
        "{events}"
    );
    // Injected once: no poststart entry of hookhost's for runc to run as well.
    assert!(
        bundle.config()["hooks"]
            .get("poststart")
            .is_none_or(|l| l.as_array().unwrap().is_empty())
    );
}

/// A container with poststart hooks alone is found in runc's state file, and the `running`
/// state its hooks get is built from that file: its start does not ask the runtime for its
/// state (each ask is a runc run), and the hook gets what `runc state` reports.
#[test]
fn a_poststart_only_start_never_asks_the_runtime_for_its_state() {
    let calls = tempfile::NamedTempFile::new().unwrap();
    let s = Setup::new();
    let logging_runc = s.host.script(
        "logging-runc",
        &format!(
            "echo \"$*\" >> {}\nexec runc \"$@\"",
            calls.path().display()
        ),
    );
    s.wrapper
        .set_config(&json!({"runtime": logging_runc, "root": s.host.root()}));
    let got = s.host.dir.path().join("poststart.json");
    s.host
        .script_hook("post", "poststart", &format!("cat > {}", got.display()));
    let bundle = Bundle::new("sleep 30");
    bundle.edit(|c| c["annotations"] = json!({"org.example/team": "gpu=yes"}));
    let c = Created::new(&s, &bundle, "post");
    fs::write(calls.path(), "").unwrap();
    ok(&c.start());
    let asked: Vec<String> = lines(calls.path())
        .into_iter()
        .filter(|call| call.contains(" state "))
        .collect();
    assert_eq!(asked, Vec::<String>::new());
    let hook: Value = serde_json::from_slice(&fs::read(&got).unwrap()).unwrap();
    let runc: Value =
        serde_json::from_str(&ok(&s.runc.cmd(&["state", &c.id]).output().unwrap())).unwrap();
    for key in ["ociVersion", "id", "status", "pid", "bundle", "annotations"] {
        assert_eq!(hook[key], runc[key], "{key}: {hook} vs {runc}");
    }
    assert_eq!(hook["status"], "running");
    assert_eq!(hook["annotations"]["org.example/team"], "gpu=yes");
}

/// What runc does by itself (the behaviour the wrapper corrects): a poststart hook injected
/// without the wrapper runs during `runc create`, before the container's process is released —
/// on runc 1.1.5 and, measured too, on runc 1.3.6 (HOOKHOST_TEST_STACK=forky; tests/forky.rs).
#[test]
fn without_the_wrapper_the_runtime_runs_poststart_during_create() {
    let s = Setup::new();
    let log = s.host.dir.path().join("poststart.log");
    status_recorder(&s, "post", "poststart", &log);
    let bundle = Bundle::new("sleep 30");
    s.host.inject(&bundle, &["post"]);
    let id = unique("plain");
    let status = detached(&mut s.runc.cmd(&["create", "--bundle", bundle.path_str(), &id]));
    let during_create = lines(&log);
    let _ = s.runc.cmd(&["delete", "--force", &id]).output();
    assert!(status.success());
    let version = ok(&s.runc.cmd(&["--version"]).output().unwrap());
    assert_eq!(during_create, ["post \"status\": \"created\""], "{version}");
}

#[test]
fn start_runtime_runs_before_the_process_with_the_created_state() {
    let s = Setup::new();
    let log = s.host.dir.path().join("start.log");
    status_recorder(&s, "pre", "startRuntime", &log);
    s.host.script_hook(
        "marker",
        "startRuntime",
        "state=$(cat); echo \"$state\" > \"$(echo \"$state\" | tr -d '\\n' | sed -n 's/.*\"bundle\": *\"\\([^\"]*\\)\".*/\\1/p')/rootfs/marker\"",
    );
    let bundle = Bundle::new("cat /marker > /seen");
    let c = Created::new(&s, &bundle, "pre marker");
    assert_eq!(
        lines(&log),
        Vec::<String>::new(),
        "startRuntime ran during create"
    );
    assert!(!bundle.rootfs().join("marker").exists());
    ok(&c.start());
    assert_eq!(lines(&log), ["pre \"status\": \"created\""]);
    let seen = bundle.rootfs().join("seen");
    wait_for("the container's command", Duration::from_secs(30), || {
        seen.metadata().is_ok_and(|m| m.len() > 0)
    });
    let state: Value = serde_json::from_str(&fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(state["status"], "created");
    assert_eq!(state["id"], c.id.as_str());
    assert!(state["pid"].as_i64().unwrap() > 0, "{state}");
    let events = s.host.ok(&["events", "--container", &c.id]);
    assert_eq!(events.matches("startRuntime").count(), 2, "{events}");
}

#[test]
fn a_failing_start_runtime_hook_keeps_the_process_from_running() {
    let s = Setup::new();
    s.host.script_hook(
        "deny",
        "startRuntime",
        "echo 'no network for you' >&2; exit 3",
    );
    let bundle = Bundle::new("touch /ran");
    let c = Created::new(&s, &bundle, "deny");
    let out = c.start();
    assert!(!out.status.success(), "start succeeded");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook deny (startRuntime): exit status 3"),
        "{stderr}"
    );
    assert!(stderr.contains("no network for you"), "{stderr}");
    let last = log_lines(&s.log()).pop().unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"].as_str().unwrap().contains("no network for you"),
        "{last}"
    );
    assert!(stderr.contains("the container was killed"), "{stderr}");
    // Killed (SIGKILL to its init, which runc then reports stopped), as runc kills a container
    // whose hook fails at start: nothing is left waiting.
    wait_for(
        "the refused container to stop",
        Duration::from_secs(30),
        || c.status() == "stopped",
    );
    assert!(!bundle.rootfs().join("ran").exists(), "the command ran");
}

/// A failing poststart hook is fatal (runtime-spec >= 1.3, runc): run by the wrapper after the
/// runtime's `start`, it kills the container and fails `start` with the hook's message.
#[test]
fn a_failing_poststart_hook_kills_the_container_and_fails_start() {
    let s = Setup::new();
    s.host
        .script_hook("deny", "poststart", "echo 'not on my watch' >&2; exit 4");
    let bundle = Bundle::new("sleep 30");
    let c = Created::new(&s, &bundle, "deny");
    let out = c.start();
    assert!(!out.status.success(), "start succeeded");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook deny (poststart): exit status 4"),
        "{stderr}"
    );
    assert!(stderr.contains("not on my watch"), "{stderr}");
    wait_for(
        "the container to be killed",
        Duration::from_secs(30),
        || c.status() == "stopped",
    );
}

#[test]
fn start_runtime_hooks_need_create_and_start_through_the_wrapper() {
    let s = Setup::new();
    s.host
        .ok(&["create", "--type", "startRuntime", "needs", "/bin/true"]);
    let bundle = Bundle::new("true");
    let before = fs::read(bundle.config_file()).unwrap();
    let err = s.host.fails(&[
        "inject",
        "--bundle",
        bundle.path_str(),
        "--add-hook",
        "needs",
    ]);
    assert!(
        err.contains("startRuntime hooks (needs) run only through hookhost's runtime wrapper"),
        "{err}"
    );
    assert!(err.contains("docker run --runtime hookhost"), "{err}");
    assert_eq!(
        fs::read(bundle.config_file()).unwrap(),
        before,
        "config.json changed"
    );

    // `run` creates and starts in one call: refused, with the same reason.
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "needs"}));
    let out = s.run(&bundle, &unique("run"));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("startRuntime hooks (needs)"),
        "{}",
        text(&out.stderr)
    );
}

/// A container that brought its own `io.hookhost.start` annotation does not get to name
/// stages: the wrapper sets (or removes) it at create.
#[test]
fn a_start_annotation_from_the_container_is_replaced() {
    let s = Setup::new();
    s.host
        .ok(&["create", "--type", "prestart", "plain", "/bin/true"]);
    let bundle = Bundle::new("sleep 30");
    bundle.edit(|c| {
        c["annotations"] = json!({"io.hookhost.start": format!("poststart {}", "a".repeat(64))})
    });
    let c = Created::new(&s, &bundle, "plain");
    assert!(
        bundle.config()["annotations"]
            .get("io.hookhost.start")
            .is_none()
    );
    ok(&c.start());
    assert_eq!(c.status(), "running");
}
