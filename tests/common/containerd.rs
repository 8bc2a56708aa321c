//! A containerd of the test's own (its root, state, sockets and, with NRI, NRI socket under a
//! temp dir), with or without CRI, restartable; the busybox OCI image its CRI pods run; and the
//! CRI client of tests/cri/client.py.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

use super::engines::{Engines, busybox_tar, spawn_daemon, stop, today_bin, wait_for};
use super::{text, unique};
use serde_json::json;

/// A containerd of our own; stopped in Drop.
pub struct Containerd {
    pub dir: TempDir,
    child: Child,
    engines: Engines,
    /// `HOOKHOST_CONFIG` for the runtimes it starts (kept for restarts).
    hookhost_config: PathBuf,
}

/// Plugins the test does without: CRI (both generations' names), and the opt plugin, which
/// would create /opt/containerd outside the test's directory.
const DISABLED_PLUGINS: &str = r#"["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime",
    "io.containerd.cri.v1.images", "io.containerd.internal.v1.opt"]"#;

/// With CRI: still no opt plugin, and no NRI unless asked for (its default socket is host-wide).
const CRI_DISABLED_PLUGINS: &str =
    r#"["io.containerd.internal.v1.opt", "io.containerd.nri.v1.nri"]"#;

/// With CRI and NRI (on the test's own socket, plugin and config dirs): no opt plugin.
const NRI_DISABLED_PLUGINS: &str = r#"["io.containerd.internal.v1.opt"]"#;

/// NRI's request timeout in the tests' containerd: 2 s by default, raised so that a plugin's
/// python hooks fit in its budget on a loaded machine (a plugin that misses it is dropped).
pub const NRI_REQUEST_TIMEOUT_SECS: u64 = 6;

/// The image the CRI test's pods and containers run (imported, never pulled).
pub const CRI_IMAGE: &str = "hookhost.test/busybox:1";

impl Containerd {
    /// containerd without CRI.
    pub fn start(engines: Engines, hookhost_config: &Path) -> Containerd {
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
    pub fn start_cri(hookhost_config: &Path, wrapper: &Path) -> Containerd {
        Self::start_with(Engines::Today, hookhost_config, |dir| {
            let handler = "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.hookhost";
            let extra = format!(
                "[{handler}]\n  runtime_type = 'io.containerd.runc.v2'\n\
                 \x20 pod_annotations = ['io.hookhost.hooks', 'io.hookhost.sandbox-hooks']\n\
                 [{handler}.options]\n  BinaryName = {:?}\n",
                wrapper.display().to_string(),
            );
            cri_config(dir, CRI_DISABLED_PLUGINS, "", &extra)
        })
    }

    /// containerd 2 with CRI (the default runtime: plain runc) and NRI on [`Self::nri_socket`],
    /// with its own plugin and plugin config dirs; `pre_installed` (NAME, executable) are
    /// linked into the plugin dir, for containerd to start them.
    pub fn start_cri_nri(pre_installed: &[(&str, &Path)]) -> Containerd {
        Self::start_cri_nri_with(pre_installed, None)
    }

    /// [`Self::start_cri_nri`], and with `base_spec` (an OCI spec file) as the default runc
    /// handler's `base_runtime_spec`.
    pub fn start_cri_nri_with(
        pre_installed: &[(&str, &Path)],
        base_spec: Option<&Path>,
    ) -> Containerd {
        Self::start_cri_nri_keyed(pre_installed, base_spec, "")
    }

    /// [`Self::start_cri_nri`], CRI resolving CDI devices (on by default in containerd 2)
    /// from the spec directory `cdi` only.
    pub fn start_cri_nri_cdi(cdi: &Path) -> Containerd {
        let keys = format!("  cdi_spec_dirs = [{:?}]\n", cdi.display().to_string());
        Self::start_cri_nri_keyed(&[], None, &keys)
    }

    /// [`Self::start_cri_nri_with`], with `runtime_keys` (TOML lines) in CRI's runtime table.
    fn start_cri_nri_keyed(
        pre_installed: &[(&str, &Path)],
        base_spec: Option<&Path>,
        runtime_keys: &str,
    ) -> Containerd {
        let config = Path::new("/nonexistent/hookhost-config.json");
        Self::start_with(Engines::Today, config, |dir| {
            let p = |name: &str| dir.join(name).display().to_string();
            fs::create_dir_all(dir.join("nri-plugins")).unwrap();
            for (name, executable) in pre_installed {
                std::os::unix::fs::symlink(executable, dir.join("nri-plugins").join(name)).unwrap();
            }
            let extra = format!(
                "[plugins.'io.containerd.nri.v1.nri']\n  disable = false\n  socket_path = {:?}\n\
                 \x20 plugin_path = {:?}\n  plugin_config_path = {:?}\n\
                 \x20 plugin_request_timeout = '{NRI_REQUEST_TIMEOUT_SECS}s'\n",
                p("nri.sock"),
                p("nri-plugins"),
                p("nri-conf.d"),
            );
            let runc = "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc";
            let base = base_spec.map_or(String::new(), |spec| {
                format!(
                    "[{runc}]\n  runtime_type = 'io.containerd.runc.v2'\n  base_runtime_spec = {:?}\n",
                    spec.display().to_string()
                )
            });
            let extra = format!("{extra}{base}");
            cri_config(dir, NRI_DISABLED_PLUGINS, runtime_keys, &extra)
        })
    }

    /// containerd's log (of its first start).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// The NRI socket of a containerd started by [`Self::start_cri_nri`].
    pub fn nri_socket(&self) -> PathBuf {
        self.dir.path().join("nri.sock")
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
        let child = Self::spawn(engines, dir.path(), hookhost_config, "containerd.log");
        let daemon = Containerd {
            dir,
            child,
            engines,
            hookhost_config: hookhost_config.to_path_buf(),
        };
        daemon.wait_ready();
        daemon
    }

    /// Starts containerd on `dir`'s config.toml, its output in `dir/log`.
    fn spawn(engines: Engines, dir: &Path, hookhost_config: &Path, log: &str) -> Child {
        let mut containerd = Command::new(engines.require("containerd"));
        containerd.arg("--config").arg(dir.join("config.toml"));
        spawn_daemon(&mut containerd, engines, hookhost_config, &dir.join(log))
    }

    fn wait_ready(&self) {
        wait_for("containerd to answer", Duration::from_secs(60), || {
            self.ctr(&["version"]).output().unwrap().status.success()
        });
    }

    /// Stops containerd (waiting for its exit) and starts it again on the same config and
    /// directories; its output goes to `log`.
    pub fn stop_daemon(&mut self) {
        stop(&mut self.child);
    }

    /// Starts containerd again after [`Self::stop_daemon`], its output in `log`.
    pub fn start_again(&mut self, log: &str) {
        self.child = Self::spawn(self.engines, self.dir.path(), &self.hookhost_config, log);
        self.wait_ready();
    }

    /// Imports [`CRI_IMAGE`] (the busybox rootfs) for CRI pods and containers.
    pub fn import_cri_image(&self) {
        let archive = oci_archive(self.dir.path());
        let import = self
            .ctr(&["-n", "k8s.io", "images", "import"])
            .arg(&archive)
            .output()
            .unwrap();
        assert!(import.status.success(), "{}", text(&import.stderr));
    }

    pub fn ctr(&self, args: &[&str]) -> Command {
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
    /// Removes the CRI pods left running (their shims outlive containerd), then stops it.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Cri { containerd: self }.call(&["remove-all-pods"]);
        }
        stop(&mut self.child);
    }
}

/// A CRI config: the machine's `restrict_oom_score_adj` (and `runtime_keys`), the pinned
/// sandbox image, no CNI (host-network pods), then `extra` tables.
fn cri_config(dir: &Path, disabled: &str, runtime_keys: &str, extra: &str) -> String {
    format!(
        "version = 3\ndisabled_plugins = {disabled}\n\
         [plugins.'io.containerd.cri.v1.runtime']\n  restrict_oom_score_adj = true\n\
         {runtime_keys}\
         [plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '{CRI_IMAGE}'\n\
         [plugins.'io.containerd.grpc.v1.cri']\n  stream_server_address = '127.0.0.1'\n\
         \x20 stream_server_port = '0'\n\
         [plugins.'io.containerd.cri.v1.runtime'.cni]\n  conf_dir = {:?}\n{extra}",
        dir.join("cni").display().to_string(),
    )
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

/// The Kubernetes namespace of the tests' pods unless one is given (tests/cri/client.py's
/// default).
pub const POD_NAMESPACE: &str = "hookhost-test";

/// The CRI client of tests/cri/client.py, on the module scripts/engines.sh generated.
pub struct Cri<'a> {
    pub containerd: &'a Containerd,
}

impl Cri<'_> {
    pub fn call(&self, args: &[&str]) -> Output {
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
    pub fn run_pod(&self, annotations: &serde_json::Value) -> (Output, String) {
        self.run_pod_on("hookhost", annotations)
    }

    /// RunPodSandbox with `annotations` and runtime `handler` ("" for the default); the pod's
    /// JSON for create.
    pub fn run_pod_on(&self, handler: &str, annotations: &serde_json::Value) -> (Output, String) {
        self.run_pod_in(handler, annotations, POD_NAMESPACE)
    }

    /// [`Self::run_pod_on`] in the Kubernetes namespace `namespace`.
    pub fn run_pod_in(
        &self,
        handler: &str,
        annotations: &serde_json::Value,
        namespace: &str,
    ) -> (Output, String) {
        let name = unique("pod");
        let log_dir = self.pod_log_dir(&name);
        fs::create_dir_all(&log_dir).unwrap();
        let pod = json!({"name": name, "annotations": annotations, "logDir": log_dir,
                         "namespace": namespace});
        let out = self.call(&[
            "run-pod",
            &name,
            handler,
            &annotations.to_string(),
            log_dir.to_str().unwrap(),
            namespace,
        ]);
        (out, pod.to_string())
    }

    /// A pod with `annotations` on the default runtime (plain runc) and the CRI
    /// CreateContainer of its container `app` running `sh -c SCRIPT`: the pod's id, its name,
    /// and the create's output.
    pub fn pod_and_app(
        &self,
        annotations: serde_json::Value,
        script: &str,
    ) -> (String, String, Output) {
        self.pod_and_app_in(POD_NAMESPACE, annotations, script)
    }

    /// [`Self::pod_and_app`] in the Kubernetes namespace `namespace`.
    pub fn pod_and_app_in(
        &self,
        namespace: &str,
        annotations: serde_json::Value,
        script: &str,
    ) -> (String, String, Output) {
        let (out, pod) = self.run_pod_in("", &annotations, namespace);
        let pod_id = stdout_ok(&out);
        let name = serde_json::from_str::<serde_json::Value>(&pod).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string();
        let command = json!(["sh", "-c", script]).to_string();
        let created = self.call(&["create", &pod_id, "app", CRI_IMAGE, &pod, &command]);
        (pod_id, name, created)
    }

    /// Where the containers of the pod `name` log (CRI's log directory).
    pub fn pod_log_dir(&self, name: &str) -> PathBuf {
        self.containerd.dir.path().join("pods").join(name)
    }
}

pub fn stdout_ok(out: &Output) -> String {
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}
