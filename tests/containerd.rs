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

use common::engines::{Engines, Wrapper, busybox_tar, spawn_daemon, stop, today_bin, wait_for};
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

/// With CRI: still no opt plugin, and no NRI (its socket is host-wide).
const CRI_DISABLED_PLUGINS: &str =
    r#"["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]"#;

/// The image the CRI test's pods and containers run (imported, never pulled).
const CRI_IMAGE: &str = "hookhost.test/busybox:1";

impl Containerd {
    /// containerd without CRI.
    fn start(engines: Engines, hookhost_config: &Path) -> Containerd {
        // containerd 2 reads config version 3 (and still 2); 1.x knows up to 2.
        let version = match engines.major_version("containerd", 2) {
            1 => 2,
            _ => 3,
        };
        let head = format!("version = {version}\ndisabled_plugins = {DISABLED_PLUGINS}\n");
        Self::start_with(engines, hookhost_config, |_| head)
    }

    /// containerd 2 with CRI and a runtime handler `hookhost` running runc through `wrapper`
    /// (README: the containerd 2.x snippet), and the machine's `restrict_oom_score_adj`.
    fn start_cri(hookhost_config: &Path, wrapper: &Path) -> Containerd {
        Self::start_with(Engines::Today, hookhost_config, |dir| {
            let cri = "plugins.'io.containerd.cri.v1.runtime'";
            let handler = format!("{cri}.containerd.runtimes.hookhost");
            format!(
                "version = 3\ndisabled_plugins = {CRI_DISABLED_PLUGINS}\n\
                 [{cri}]\n  restrict_oom_score_adj = true\n\
                 [{handler}]\n  runtime_type = 'io.containerd.runc.v2'\n\
                 \x20 pod_annotations = ['io.hookhost.hooks', 'io.hookhost.sandbox-hooks']\n\
                 [{handler}.options]\n  BinaryName = {:?}\n\
                 [plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '{CRI_IMAGE}'\n\
                 [plugins.'io.containerd.grpc.v1.cri']\n  stream_server_address = '127.0.0.1'\n\
                 \x20 stream_server_port = '0'\n\
                 [plugins.'io.containerd.cri.v1.runtime'.cni]\n  conf_dir = {:?}\n",
                wrapper.display().to_string(),
                dir.join("cni").display().to_string(),
            )
        })
    }

    /// Starts containerd with `head(dir)` and its own root, state and sockets under `dir`.
    fn start_with(
        engines: Engines,
        hookhost_config: &Path,
        head: impl FnOnce(&Path) -> String,
    ) -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let p = |name: &str| dir.path().join(name).display().to_string();
        // Top-level keys first: TOML tables would swallow them.
        let config = format!(
            "root = {:?}\nstate = {:?}\n{}\
             [grpc]\n  address = {:?}\n[ttrpc]\n  address = {:?}\n",
            p("root"),
            p("state"),
            head(dir.path()),
            p("c.sock"),
            p("c.sock.ttrpc"),
        );
        fs::write(dir.path().join("config.toml"), config).unwrap();
        let mut containerd = Command::new(engines.require("containerd"));
        containerd
            .arg("--config")
            .arg(dir.path().join("config.toml"));
        let log = dir.path().join("containerd.log");
        let child = spawn_daemon(&mut containerd, engines, hookhost_config, &log);
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

/// A one-layer OCI image archive of the test rootfs (busybox) whose entrypoint sleeps, named
/// [`CRI_IMAGE`], for `ctr images import`: the pods' sandbox and app image.
fn oci_archive(dir: &Path) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let layout = dir.join("oci");
    fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let blob = |bytes: &[u8], media_type: &str| {
        let digest = hex::encode(Sha256::digest(bytes));
        fs::write(layout.join("blobs/sha256").join(&digest), bytes).unwrap();
        json!({"mediaType": media_type, "digest": format!("sha256:{digest}"), "size": bytes.len()})
    };
    let layer = blob(
        &fs::read(busybox_tar(dir)).unwrap(),
        "application/vnd.oci.image.layer.v1.tar",
    );
    let config = json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Entrypoint": ["sleep", "3600"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
    });
    let config = blob(
        config.to_string().as_bytes(),
        "application/vnd.oci.image.config.v1+json",
    );
    let manifest = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer]});
    let mut manifest = blob(
        manifest.to_string().as_bytes(),
        "application/vnd.oci.image.manifest.v1+json",
    );
    manifest["annotations"] = json!({"io.containerd.image.name": CRI_IMAGE});
    let index = json!({"schemaVersion": 2, "manifests": [manifest]});
    fs::write(layout.join("index.json"), index.to_string()).unwrap();
    fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let archive = dir.join("image.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .args(["oci-layout", "index.json", "blobs"])
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    archive
}

/// The CRI client of tests/cri/client.py, on the module scripts/engines.sh generated.
struct Cri<'a> {
    containerd: &'a Containerd,
}

impl Cri<'_> {
    fn call(&self, args: &[&str]) -> Output {
        let cri_dir = today_bin().parent().unwrap().join("cri");
        Command::new("/usr/bin/python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cri/client.py"))
            .arg(cri_dir)
            .arg(self.containerd.dir.path().join("c.sock"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// RunPodSandbox with `annotations` and the `hookhost` handler; the pod's JSON for create.
    fn run_pod(&self, annotations: &serde_json::Value) -> (Output, String) {
        let name = unique("pod");
        let log_dir = self.containerd.dir.path().join("pods").join(&name);
        fs::create_dir_all(&log_dir).unwrap();
        let pod = json!({"name": name, "annotations": annotations, "logDir": log_dir});
        let out = self.call(&[
            "run-pod",
            &name,
            "hookhost",
            &annotations.to_string(),
            log_dir.to_str().unwrap(),
        ]);
        (out, pod.to_string())
    }
}

fn stdout_ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Kubernetes through CRI on containerd 2: a pod with the `hookhost` runtime handler and an
/// `io.hookhost.hooks` annotation runs the hook for its app container only, and its sandbox
/// runs what `io.hookhost.sandbox-hooks` selects; an unknown name fails the CRI call with
/// hookhost's reason.
#[test]
fn cri_pods_on_containerd_2() {
    common::require("runc");
    let host = Host::new();
    let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
    let containerd = Containerd::start_cri(&wrapper.config(), &wrapper.path());
    let archive = oci_archive(containerd.dir.path());
    let import = containerd
        .ctr(&["-n", "k8s.io", "images", "import"])
        .arg(&archive)
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", text(&import.stderr));
    let log = host.dir.path().join("types");
    // "NAME TYPE": the hook's registered argument and the CRI container type of its state.
    let rec = host.script(
        "type.sh",
        &format!(
            "t=$(tr -d '\\n' | grep -o 'container-type\": *\"[a-z]*' | grep -o '[a-z]*$')\n\
             echo \"$1 $t\" >> {}",
            log.display()
        ),
    );
    host.ok(&["create", "--args", "rec,app", "app", rec.to_str().unwrap()]);
    host.ok(&[
        "create",
        "--args",
        "rec,pause",
        "pause",
        rec.to_str().unwrap(),
    ]);
    let cri = Cri {
        containerd: &containerd,
    };

    let (out, pod) = cri.run_pod(&json!({"io.hookhost.hooks": "app"}));
    let pod_id = stdout_ok(&out);
    let container = stdout_ok(&cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]));
    stdout_ok(&cri.call(&["start", &container]));
    let types = fs::read_to_string(&log).unwrap_or_default();
    stdout_ok(&cri.call(&["remove-pod", &pod_id]));
    assert_eq!(types, "app container\n", "the app container only");

    let _ = fs::remove_file(&log);
    let (out, pod) =
        cri.run_pod(&json!({"io.hookhost.hooks": "app", "io.hookhost.sandbox-hooks": "pause"}));
    let pod_id = stdout_ok(&out);
    let container = stdout_ok(&cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]));
    stdout_ok(&cri.call(&["start", &container]));
    let types = fs::read_to_string(&log).unwrap_or_default();
    stdout_ok(&cri.call(&["remove-pod", &pod_id]));
    assert_eq!(types, "pause sandbox\napp container\n");

    let (out, _) = cri.run_pod(&json!({"io.hookhost.sandbox-hooks": "nope"}));
    assert!(!out.status.success(), "the pod ran");
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("annotation io.hookhost.sandbox-hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );

    let (out, pod) = cri.run_pod(&json!({"io.hookhost.hooks": "nope"}));
    let pod_id = stdout_ok(&out);
    let container = cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]);
    let started = match container.status.success() {
        true => cri.call(&["start", &stdout_ok(&container)]),
        false => container,
    };
    let _ = cri.call(&["remove-pod", &pod_id]);
    assert!(!started.status.success(), "the app container started");
    let stderr = text(&started.stderr);
    assert!(
        stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );
}
