//! Podman (4.3 from Debian 12, or >= 5 from forky: `forky::Stack`) driven with its own state
//! directories and a busybox image.

use std::fs;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

use serde_json::json;

use super::engines::{Wrapper, busybox_tar};
use super::forky::Stack;
use super::{Host, text, unique};

/// Podman's storage and run state in a temp dir, with a busybox image.
pub struct Podman {
    pub dir: TempDir,
    pub stack: Stack,
}

impl Podman {
    pub fn new() -> Self {
        Podman::on(Stack::under_test())
    }

    pub fn on(stack: Stack) -> Self {
        stack.require("podman");
        stack.require("runc");
        let podman = Podman {
            dir: tempfile::tempdir().unwrap(),
            stack,
        };
        let tar = busybox_tar(podman.dir.path());
        let out = podman
            .cmd(&[])
            .arg("import")
            .arg(&tar)
            .arg("busybox:local")
            .output()
            .unwrap();
        assert!(out.status.success(), "podman import: {}", text(&out.stderr));
        podman
    }

    /// `podman` with this test's state dirs; `global` go before the subcommand.
    pub fn cmd(&self, global: &[&str]) -> Command {
        let p = |name: &str| self.dir.path().join(name);
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(p("root"))
            .arg("--runroot")
            .arg(p("runroot"))
            .arg("--tmpdir")
            .arg(p("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file"])
            .args(global);
        let mut cmd = self.stack.wrap(cmd);
        cmd.stdin(Stdio::null());
        cmd
    }

    /// `podman GLOBAL… run --cidfile F (sandbox flags) busybox:local ARGS…`, then `podman rm -f`
    /// of the container; returns the output and the container id. Not `run --rm`: Podman 5
    /// removes the cidfile with the container.
    pub fn run(&self, global: &[&str], run: &[&str], args: &[&str]) -> (Output, String) {
        let cidfile = self.dir.path().join(unique("cid"));
        let out = self
            .cmd(global)
            .arg("run")
            .arg("--cidfile")
            .arg(&cidfile)
            .args([
                "--ulimit",
                "nofile=1024:1024",
                "--ulimit",
                "nproc=1024:1024",
            ])
            .args(["--network", "none"])
            .args(run)
            .arg("busybox:local")
            .args(args)
            .output()
            .unwrap();
        let id = fs::read_to_string(&cidfile).unwrap_or_default();
        let id = id.trim().to_string();
        if !id.is_empty() {
            let rm = self.cmd(global).args(["rm", "-f", &id]).output().unwrap();
            assert!(rm.status.success(), "podman rm: {}", text(&rm.stderr));
        }
        (out, id)
    }

    /// [`Podman::run`] with the runtime wrapper (reading `host`'s registry) as Podman's runtime,
    /// and no hooks.d directory.
    pub fn run_through_the_wrapper(
        &self,
        host: &Host,
        run: &[&str],
        args: &[&str],
    ) -> (Output, String) {
        let wrapper = Wrapper::on(self.stack, &json!({"runtime": "runc", "root": host.root()}));
        let runtime = wrapper.path();
        let flag = format!("hookhost-config={}", wrapper.config().display());
        let empty = tempfile::tempdir().unwrap();
        let global = [
            "--runtime",
            runtime.to_str().unwrap(),
            "--runtime-flag",
            &flag,
            "--hooks-dir",
            empty.path().to_str().unwrap(),
        ];
        self.run(&global, run, args)
    }
}
