//! Helpers for the engine tests: which engines (Debian 12's or today's), the runtime wrapper
//! as a `hookhost-runtime` link, a config file, a busybox rootfs tarball for image imports,
//! bounded waits, stopping a daemon.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use serde_json::{Value, json};
use tempfile::TempDir;

use super::forky::{Stack, visible_binary};
use super::{Bundle, HOOKHOST, Host, Runc, text};

/// PATH for the system's own tools.
pub const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Which generation of engines a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engines {
    /// Debian 12's packages: Docker 20.10, containerd 1.6.
    Debian12,
    /// Docker >= 28 and containerd >= 2 from Debian testing, unpacked by scripts/engines.sh;
    /// first on PATH, so dockerd starts that containerd (and Debian 12's runc).
    Today,
}

impl Engines {
    /// PATH for the engine's daemons and CLIs, and for the runtimes they start.
    pub fn path(self) -> String {
        match self {
            Engines::Debian12 => SYSTEM_PATH.to_string(),
            Engines::Today => format!("{}:{SYSTEM_PATH}", today_bin().display()),
        }
    }

    /// `tool` on this PATH, with a loud failure when it is missing (as `common::require`).
    pub fn require(self, tool: &str) -> PathBuf {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test needs root (it runs real containers)"
        );
        std::env::split_paths(&self.path())
            .map(|dir| dir.join(tool))
            .find(|p| p.is_file())
            .unwrap_or_else(|| panic!("this test needs `{tool}` ({self:?}; see scripts/setup.sh)"))
    }

    /// The major version `tool --version` reports, checked against what these engines are:
    /// Docker >= 28 / containerd >= 2 for today's, older ones for Debian 12's.
    pub fn major_version(self, tool: &str, today_from: u32) -> u32 {
        let out = Command::new(self.require(tool))
            .arg("--version")
            .output()
            .unwrap();
        let major = parse_major(&text(&out.stdout))
            .unwrap_or_else(|| panic!("no version in `{tool} --version`: {}", text(&out.stdout)));
        assert_eq!(
            major >= today_from,
            self == Engines::Today,
            "{tool} {major} is not what {self:?} means"
        );
        major
    }
}

/// The bin directory scripts/engines.sh fills (HOOKHOST_ENGINES_DIR, else its default).
pub fn today_bin() -> PathBuf {
    let dir = std::env::var_os("HOOKHOST_ENGINES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hookhost-engines"));
    let bin = dir.join("bin");
    assert!(
        bin.join("dockerd").is_file() && bin.join("containerd").is_file(),
        "no Docker 28 / containerd 2 in {}: run scripts/engines.sh (scripts/setup.sh does)",
        bin.display()
    );
    bin
}

/// The first `MAJOR.` of a `--version` line (`Docker version 28.5.2…`, `containerd … v1.6.20`,
/// `containerd … 2.1.9+unknown`).
fn parse_major(version: &str) -> Option<u32> {
    version
        .split_whitespace()
        .filter_map(|word| word.trim_start_matches('v').split_once('.'))
        .find_map(|(major, _)| major.parse().ok())
}

/// Stops a daemon this test started: SIGTERM, a bounded wait, then SIGKILL.
pub fn stop(child: &mut Child) {
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    for _ in 0..300 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A temp dir holding `hookhost-runtime`, the small runtime wrapper built beside the hookhost
/// under test ([`runtime_exe`](super::runtime_exe)), and hookhost's config file.
pub struct Wrapper {
    pub dir: TempDir,
    /// Where the wrapper and the runtime it execs run.
    pub stack: Stack,
}

impl Wrapper {
    /// `config` is written as the config file (HOOKHOST_CONFIG).
    pub fn new(config: &Value) -> Self {
        Wrapper::on(Stack::under_test(), config)
    }

    pub fn on(stack: Stack, config: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        // On forky, visible_binary links it into the dir, beside the hookhost it runs there.
        if visible_binary(stack, dir.path()) != Path::new(HOOKHOST) {
            let link = dir.path().join(hookhost_types::RUNTIME_EXECUTABLE);
            assert!(link.is_file(), "{} was not linked", link.display());
        } else {
            super::link_runtime_exe(dir.path());
        }
        let wrapper = Wrapper { dir, stack };
        wrapper.set_config(config);
        wrapper
    }

    pub fn set_config(&self, config: &Value) {
        fs::write(self.config(), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join(hookhost_types::RUNTIME_EXECUTABLE)
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// `hookhost-runtime ARGS…` with only the config file in the environment (as an engine
    /// with a minimal environment would run it: no HOOKHOST_ROOT).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path());
        cmd.env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("HOOKHOST_CONFIG", self.config())
            .args(args);
        self.stack.wrap(cmd)
    }
}

/// A tarball of the busybox-static rootfs the bundles use, for `docker import`/`podman import`.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let bundle = Bundle::new("true");
    let tar = dir.join("busybox.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(bundle.rootfs())
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar: {}", text(&out.stderr));
    tar
}

/// Polls `ready` every 100 ms, at most `limit`; panics with `what` when it never holds.
pub fn wait_for(what: &str, limit: Duration, mut ready: impl FnMut() -> bool) {
    let step = Duration::from_millis(100);
    let mut waited = Duration::ZERO;
    while waited < limit {
        if ready() {
            return;
        }
        std::thread::sleep(step);
        waited += step;
    }
    panic!("gave up waiting for {what} after {limit:?}");
}

/// The JSON lines of a runtime `--log` file.
pub fn log_lines(file: &Path) -> Vec<Value> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}")))
        .collect()
}

/// A registry, a runc state root and the wrapper configured to use both.
pub struct Setup {
    pub host: Host,
    pub runc: Runc,
    pub wrapper: Wrapper,
}

impl Setup {
    pub fn new() -> Self {
        Self::with_config(json!({}))
    }

    /// `extra` keys are added to a config naming runc and the test's registry root.
    pub fn with_config(extra: Value) -> Self {
        Setup::on(Stack::under_test(), extra)
    }

    /// [`Setup::with_config`] on `stack`.
    pub fn on(stack: Stack, extra: Value) -> Self {
        let host = Host::on(stack);
        let runc = Runc::on(stack);
        let mut config = json!({"runtime": "runc", "root": host.root()});
        for (k, v) in extra.as_object().unwrap() {
            config[k] = v.clone();
        }
        let wrapper = Wrapper::on(stack, &config);
        Setup {
            host,
            runc,
            wrapper,
        }
    }

    pub fn log(&self) -> PathBuf {
        self.wrapper.dir.path().join("runtime-log.json")
    }

    /// `hookhost-runtime --root R --log L --log-format json ARGS…`, as Docker calls it.
    pub fn runtime(&self, args: &[&str]) -> std::process::Command {
        let root = self.runc.root.path().to_str().unwrap().to_string();
        let log = self.log().to_str().unwrap().to_string();
        let mut all = vec!["--root", &root, "--log", &log, "--log-format", "json"];
        all.extend_from_slice(args);
        self.wrapper.cmd(&all)
    }

    /// `run --bundle B ID` through the wrapper, in the foreground; never leaks the container.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        let out = self
            .runtime(&["run", "--bundle", bundle.path_str(), id])
            .output()
            .unwrap();
        let _ = self.runc.cmd(&["delete", "--force", id]).output();
        out
    }

    /// A prestart hook appending "NAME ARGS" to the rootfs file /marker.
    pub fn recorder(&self, name: &str, bundle: &Bundle, flags: &[&str]) {
        let marker = bundle.rootfs().join("marker");
        let script = self.host.script(
            &format!("{name}.sh"),
            &format!(r#"echo "{name} $*" >> {}"#, marker.display()),
        );
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.extend([name, script.to_str().unwrap()]);
        self.host.ok(&args);
    }
}

/// Starts an engine daemon with `engines` first on its PATH, passing `HOOKHOST_CONFIG` to the
/// runtimes it starts, its output in `log`.
pub fn spawn_daemon(
    daemon: &mut Command,
    engines: Engines,
    hookhost_config: &Path,
    log: &Path,
) -> Child {
    let log = fs::File::create(log).unwrap();
    daemon
        .env("HOOKHOST_CONFIG", hookhost_config)
        .env("PATH", engines.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {daemon:?}: {e}"))
}

/// A dockerd of our own.
pub struct Dockerd {
    pub dir: TempDir,
    child: Child,
    pub engines: Engines,
    /// dockerd's major version.
    pub major: u32,
}

impl Dockerd {
    /// Starts dockerd with `daemon_json` and `extra` flags, passing `HOOKHOST_CONFIG` to the
    /// runtimes it starts, and waits (bounded) until it answers.
    pub fn start(
        engines: Engines,
        dir: TempDir,
        daemon_json: &Path,
        hookhost_config: &Path,
        extra: &[&str],
    ) -> Dockerd {
        let major = engines.major_version("dockerd", 28);
        let p = |name: &str| dir.path().join(name);
        let mut dockerd = Command::new(engines.require("dockerd"));
        dockerd
            .arg("--data-root")
            .arg(p("data"))
            .arg("--exec-root")
            .arg(p("exec"))
            .arg("--host")
            .arg(format!("unix://{}", p("docker.sock").display()))
            .arg("--pidfile")
            .arg(p("docker.pid"))
            .args([
                "--storage-driver",
                "vfs",
                "--iptables=false",
                "--ip-masq=false",
            ])
            .arg("--config-file")
            .arg(daemon_json)
            .args(extra);
        let child = spawn_daemon(&mut dockerd, engines, hookhost_config, &p("dockerd.log"));
        let daemon = Dockerd {
            dir,
            child,
            engines,
            major,
        };
        wait_for("dockerd to answer", Duration::from_secs(60), || {
            daemon
                .docker(&["version"])
                .output()
                .unwrap()
                .status
                .success()
        });
        daemon
    }

    /// A dockerd (with `extra` flags) whose `hookhost` runtime is the wrapper, installed by
    /// `hookhost install docker` and reading `host`'s registry, with the busybox rootfs
    /// imported as the image `busybox`. Keep the wrapper while the daemon runs.
    pub fn with_hookhost(engines: Engines, host: &Host, extra: &[&str]) -> (Dockerd, Wrapper) {
        let dir = tempfile::tempdir().unwrap();
        let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
        let daemon_json = dir.path().join("daemon.json");
        fs::write(&daemon_json, r#"{"debug": false, "log-level": "warn"}"#).unwrap();
        host.ok(&[
            "install",
            "docker",
            "--daemon-json",
            daemon_json.to_str().unwrap(),
            "--runtime-path",
            wrapper.path().to_str().unwrap(),
        ]);
        let daemon = Dockerd::start(engines, dir, &daemon_json, &wrapper.config(), extra);
        let tar = busybox_tar(daemon.dir.path());
        let import = daemon
            .docker(&["import", tar.to_str().unwrap(), "busybox"])
            .output()
            .unwrap();
        assert!(import.status.success(), "{}", text(&import.stderr));
        (daemon, wrapper)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn host_flag(&self) -> String {
        format!("unix://{}", self.path("docker.sock").display())
    }

    /// The docker CLI, talking to this daemon, with its own config dir (for the plugin).
    pub fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.engines.require("docker"));
        cmd.env("DOCKER_CONFIG", self.path("docker-config"))
            .env("PATH", self.engines.path())
            .env_remove("DOCKER_HOST")
            .arg("-H")
            .arg(self.host_flag())
            .args(args);
        cmd
    }

    /// The config.json Docker handed to the runtime for a live container.
    pub fn bundle_config(&self, id: &str) -> Value {
        let file = self
            .path("exec/containerd/daemon/io.containerd.runtime.v2.task/moby")
            .join(id)
            .join("config.json");
        serde_json::from_slice(&fs::read(&file).unwrap()).unwrap()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}
