//! Today's runc and Podman — runc >= 1.2 and Podman >= 5 with conmon from Debian testing (forky),
//! chrooted in the root scripts/forky-root.sh builds (tests/common/forky.rs) — where they behave
//! otherwise than Debian 12's, or where only they can say how hookhost fares: what state a
//! poststart hook gets, every stage through `podman --runtime hookhost-runtime`, and what
//! Podman 5 shows of a refusing precreate hook. The engine test files also run whole on this
//! stack (`HOOKHOST_TEST_STACK=forky`, scripts/test.sh).
//! Needs root, the forky root and busybox-static (installed by scripts/setup.sh).

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use common::engines::wait_for;
use common::forky::Stack;
use common::podman::Podman;
use common::{Bundle, Host, Runc, detached, lines, succeeded as ok, text, unique};
use serde_json::{Value, json};

/// The first `MAJOR.MINOR` of `PROGRAM --version` on forky.
fn version(program: &str) -> (u32, u32) {
    let out = ok(&Stack::Forky
        .command(program)
        .arg("--version")
        .output()
        .unwrap());
    let word = out
        .split_whitespace()
        .find(|w| w.starts_with(|c: char| c.is_ascii_digit()) && w.contains('.'))
        .unwrap_or_else(|| panic!("no version in {out}"));
    let mut parts = word.split('.').map(|p| p.parse::<u32>().unwrap());
    (parts.next().unwrap(), parts.next().unwrap())
}

#[test]
fn the_forky_stack_is_todays_runc_and_podman() {
    assert!(version("runc") >= (1, 2), "runc {:?}", version("runc"));
    assert!(
        version("podman") >= (5, 0),
        "podman {:?}",
        version("podman")
    );
    Stack::Forky.require("conmon");
}

/// A hook script appending `LABEL RAN <the OCI state on stdin, on one line>` to `log`, RAN
/// `yes` when the container's command had run (it makes the file `ran`), else `no`.
fn state_recorder(host: &Host, label: &str, log: &Path, ran: &Path) -> String {
    let body = format!(
        "state=$(tr -d '\\n')\nran=no; [ -e {} ] && ran=yes\necho \"{label} $ran $state\" >> {}",
        ran.display(),
        log.display()
    );
    let script = host.script(&format!("{label}.sh"), &body);
    script.to_str().unwrap().to_string()
}

/// `(label, ran, status)` of each line a [`state_recorder`] wrote.
fn recorded(log: &Path) -> Vec<(String, String, String)> {
    lines(log)
        .iter()
        .map(|line| {
            let mut words = line.splitn(3, ' ');
            let (label, ran) = (words.next().unwrap(), words.next().unwrap());
            let state: Value = serde_json::from_str(words.next().unwrap()).unwrap();
            let status = state["status"].as_str().unwrap().to_string();
            (label.to_string(), ran.to_string(), status)
        })
        .collect()
}

fn triple(label: &str, ran: &str, status: &str) -> (String, String, String) {
    (label.into(), ran.into(), status.into())
}

/// A directory the container sees at /out, and the `podman run` flag that mounts it.
struct Out {
    dir: tempfile::TempDir,
    volume: String,
}

impl Out {
    fn new() -> Out {
        let dir = tempfile::tempdir().unwrap();
        let volume = format!("{}:/out", dir.path().display());
        Out { dir, volume }
    }

    fn ran(&self) -> std::path::PathBuf {
        self.dir.path().join("ran")
    }
}

/// `podman run RUN… busybox sh -c 'touch /out/ran'` through the wrapper.
fn through_the_wrapper(podman: &Podman, host: &Host, run: &[&str]) -> Output {
    let touch = ["sh", "-c", "touch /out/ran"];
    podman.run_through_the_wrapper(host, run, &touch).0
}

/// A runc container deleted (forced) when the test ends, however it ends.
struct Deleted<'a>(&'a Runc, String);

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let _ = self.0.cmd(&["delete", "--force", &self.1]).output();
    }
}

/// Issue 21's question: under Podman 5.8 with runc 1.3.6 a hooks.d poststart hook got
/// `"status": "created"`. That is runc's doing: runc 1.3 (as 1.1) runs the poststart hooks of
/// config.json during `runc create`, with the container created and its process not yet
/// released — not after `start`. hookhost injected without the wrapper leaves poststart to the
/// runtime, so its hook sees exactly that; through the wrapper it runs after start, `running`.
#[test]
fn runc_1_3_runs_poststart_hooks_during_create() {
    let host = Host::on(Stack::Forky);
    let runc = Runc::on(Stack::Forky);
    let log = host.dir.path().join("poststart.log");
    let bundle = Bundle::new("touch /ran; sleep 30");
    let rec = state_recorder(&host, "post", &log, &bundle.rootfs().join("ran"));
    host.ok(&["create", "--type", "poststart", "post", rec.as_str()]);
    host.inject(&bundle, &["post"]);
    let id = unique("create");
    let _container = Deleted(&runc, id.clone());
    let create = detached(&mut runc.cmd(&["create", "--bundle", bundle.path_str(), &id]));
    assert!(create.success());
    assert_eq!(recorded(&log), [triple("post", "no", "created")]);
    ok(&runc.cmd(&["start", &id]).output().unwrap());
    wait_for("the container's command", Duration::from_secs(30), || {
        bundle.rootfs().join("ran").exists()
    });
    assert_eq!(recorded(&log).len(), 1, "poststart ran again at start");
}

/// Podman 5 runs hooks.d files through runc 1.3, which runs a poststart file during create:
/// its hook gets `created`, before the container's command. The same recorder registered with
/// hookhost and run through `podman --runtime hookhost-runtime` gets every stage where the
/// spec puts it: createRuntime `creating`, startRuntime `created` at Podman's `start`,
/// poststart `running` after it (once), poststop `stopped`.
#[test]
fn podman_5_runs_every_stage_through_the_wrapper() {
    let podman = Podman::on(Stack::Forky);
    let host = Host::on(Stack::Forky);
    let log = host.dir.path().join("stages.log");
    let out = Out::new();
    let rec = state_recorder(&host, "hooksd", &log, &out.ran());
    let hooksd = tempfile::tempdir().unwrap();
    let file = json!({"version": "1.0.0", "hook": {"path": rec},
                      "when": {"always": true}, "stages": ["poststart"]});
    fs::write(hooksd.path().join("post.json"), file.to_string()).unwrap();
    let hooks_dir = hooksd.path().to_str().unwrap();
    let (run, _) = podman.run(
        &["--runtime", "runc", "--hooks-dir", hooks_dir],
        &["-v", &out.volume],
        &["sh", "-c", "touch /out/ran"],
    );
    ok(&run);
    assert_eq!(recorded(&log), [triple("hooksd", "no", "created")]);
    fs::remove_file(&log).unwrap();

    let out = Out::new();
    for stage in ["createRuntime", "startRuntime", "poststart", "poststop"] {
        let rec = state_recorder(&host, stage, &log, &out.ran());
        host.ok(&["create", "--type", stage, stage, rec.as_str()]);
    }
    let selection = "io.hookhost.hooks=createRuntime startRuntime poststart poststop";
    let run = ["--annotation", selection, "-v", &out.volume];
    ok(&through_the_wrapper(&podman, &host, &run));
    wait_for("the poststop hook", Duration::from_secs(30), || {
        lines(&log).len() == 4
    });
    // Whether the container's command ran before poststart is a race the spec allows: only
    // the stages before the process is released, and poststop after it, say.
    let stages: Vec<(String, String)> = recorded(&log)
        .into_iter()
        .map(|(label, ran, status)| {
            let ran = if label == "poststart" {
                "-".into()
            } else {
                ran
            };
            (format!("{label} {ran}"), status)
        })
        .collect();
    let want = [
        ("createRuntime no", "creating"),
        ("startRuntime no", "created"),
        ("poststart -", "running"),
        ("poststop yes", "stopped"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(stages, want);
}

/// What Podman 5 shows of a precreate hook that refuses the container: as 4.3, only the call
/// and its exit status (containers/common does not keep the hook's stderr); the reason is in
/// `hookhost events`. Through the wrapper Podman 5 shows hookhost's whole reason.
#[test]
fn podman_5_shows_a_refusing_precreate_hooks_call_the_wrapper_its_reason() {
    let podman = Podman::on(Stack::Forky);
    let host = Host::on(Stack::Forky);
    let deny = host.script("deny.sh", "echo 'policy says no: privileged' >&2; exit 3");
    let deny = deny.to_str().unwrap();
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--when-always",
        "deny",
        deny,
    ]);
    let hooksd = tempfile::tempdir().unwrap();
    let hooks_dir = hooksd.path().to_str().unwrap();
    host.ok(&["export", "hooks.d", hooks_dir]);
    let (out, _) = podman.run(
        &["--runtime", "runc", "--hooks-dir", hooks_dir],
        &[],
        &["sh", "-c", "true"],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hookhost stage precreate") && stderr.contains("exit status 1"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("policy says no"),
        "Podman 5 shows it now: {stderr}"
    );
    let events = host.ok(&["events"]);
    assert!(events.contains("policy says no: privileged"), "{events}");

    let out = through_the_wrapper(&podman, &host, &["-v", &Out::new().volume]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("hook deny (precreate): exit status 3")
            && stderr.contains("policy says no: privileged"),
        "{stderr}"
    );
}
