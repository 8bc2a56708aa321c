//! The runtime wrapper under containerd 1.6 (Debian 12) and containerd >= 2
//! (scripts/engines.sh), each started by this test with its own root, state and sockets: `ctr run --runc-binary hookhost-runtime --annotation io.hookhost.hooks=…`
//! runs the selected hooks, and a refused selection shows the wrapper's message in ctr's error
//! (the shim reads it from the runtime's --log file).
//! Needs root, containerd, ctr, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::engines::{Engines, Wrapper, stop, wait_for};
use common::{Bundle, Host, text, unique};
use serde_json::json;
use tempfile::TempDir;

/// A containerd of our own; stopped in Drop.
struct Containerd {
    dir: TempDir,
    child: Child,
    engines: Engines,
}

/// Plugins the test does without: CRI (both generations' names), and the opt plugin, which
/// would create /opt/containerd outside the test's directory.
const DISABLED_PLUGINS: &str = r#"["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime",
    "io.containerd.cri.v1.images", "io.containerd.internal.v1.opt"]"#;

impl Containerd {
    fn start(engines: Engines, hookhost_config: &Path) -> Containerd {
        // containerd 2 reads config version 3 (and still 2); 1.x knows up to 2.
        let version = match engines.major_version("containerd", 2) {
            1 => 2,
            _ => 3,
        };
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        let config = format!(
            "version = {version}\nroot = {:?}\nstate = {:?}\n\
             disabled_plugins = {DISABLED_PLUGINS}\n\
             [grpc]\n  address = {:?}\n[ttrpc]\n  address = {:?}\n",
            p("root"),
            p("state"),
            p("c.sock"),
            p("c.sock.ttrpc"),
        );
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let log = fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new(engines.require("containerd"))
            .arg("--config")
            .arg(dir.path().join("config.toml"))
            .env("HOOKHOST_CONFIG", hookhost_config)
            .env("PATH", engines.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start containerd");
        let daemon = Containerd {
            dir,
            child,
            engines,
        };
        wait_for("containerd to answer", Duration::from_secs(60), || {
            daemon.ctr(&["version"]).output().unwrap().status.success()
        });
        daemon
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.engines.require("ctr"));
        cmd.env("PATH", self.engines.path())
            .arg("--address")
            .arg(self.dir.path().join("c.sock"))
            .args(args)
            .stdin(Stdio::null());
        cmd
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `ctr run --runc-binary W --annotation A --rm --rootfs R ID /bin/echo ran`.
fn ctr_run(c: &Containerd, wrapper: &Path, rootfs: &Path, annotation: &str) -> Output {
    let id = unique("ctr");
    c.ctr(&["run", "--runc-binary", wrapper.to_str().unwrap()])
        .args(["--annotation", annotation, "--rm", "--rootfs"])
        .arg(rootfs)
        .args([id.as_str(), "/bin/echo", "ran"])
        .output()
        .unwrap()
}

#[test]
fn ctr_run_through_the_wrapper_on_containerd_1_6() {
    ctr_run_through_the_wrapper(Engines::Debian12);
}

#[test]
fn ctr_run_through_the_wrapper_on_containerd_2() {
    ctr_run_through_the_wrapper(Engines::Today);
}

fn ctr_run_through_the_wrapper(engines: Engines) {
    common::require("runc");
    let host = Host::new();
    let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
    let containerd = Containerd::start(engines, &wrapper.config());
    let bundle = Bundle::new("true");
    let marker = host.dir.path().join("marker");
    let rec = host.script("rec.sh", &format!("echo \"$*\" >> {}", marker.display()));
    host.ok(&[
        "create",
        "--args",
        "rec,registered",
        "named",
        rec.to_str().unwrap(),
    ]);

    let out = ctr_run(
        &containerd,
        &wrapper.path(),
        &bundle.rootfs(),
        r#"io.hookhost.hooks=named:["added"]"#,
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "ran");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "registered added\n");

    let out = ctr_run(
        &containerd,
        &wrapper.path(),
        &bundle.rootfs(),
        "io.hookhost.hooks=nope",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );
}
