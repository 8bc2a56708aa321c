//! Helpers for the engine tests: the runtime wrapper as a `hookhost-runtime` link, a config
//! file, a busybox rootfs tarball for image imports, bounded waits.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::{Bundle, HOOKHOST, text};

/// A temp dir holding `hookhost-runtime` → the hookhost under test, and hookhost's config file.
pub struct Wrapper {
    pub dir: TempDir,
}

impl Wrapper {
    /// `config` is written as the config file (HOOKHOST_CONFIG).
    pub fn new(config: &Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        symlink(HOOKHOST, dir.path().join("hookhost-runtime")).unwrap();
        let wrapper = Wrapper { dir };
        wrapper.set_config(config);
        wrapper
    }

    pub fn set_config(&self, config: &Value) {
        fs::write(self.config(), serde_json::to_vec_pretty(config).unwrap()).unwrap();
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("hookhost-runtime")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    /// `hookhost-runtime ARGS…` with only the config file in the environment (as an engine
    /// with a minimal environment would run it: no HOOKHOST_ROOT).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.path());
        cmd.env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("HOOKHOST_CONFIG", self.config())
            .args(args);
        cmd
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
