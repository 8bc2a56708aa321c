//! Benchmark (not a test): what a user sees of hookhost. `docker run --rm busybox true` with
//! three hook runs — a native prestart hook (`/bin/true`), and the `noop` example as a WASM
//! poststart and a WASM poststop hook — through `--runtime hookhost`, against the same command
//! on plain runc (`--runtime runc`), on the same daemon, interleaved (100 rounds); medians and
//! their ratio, and the spread (quartiles). Both commands carry the same `HOOKHOST_HOOKS`
//! selection (Docker 20.10 has no `--annotation`); runc ignores it.
//!
//! On Debian 12's Docker 20.10 and on Docker >= 28 (scripts/engines.sh), one daemon at a time,
//! each with its own directories, socket and bridge (never `docker0`, which the engine tests
//! use), stopped and removed even when a step fails. Needs root, dockerd and runc.
//!
//! The daemon's exec root, where containerd keeps the bundles, is a tmpfs, as Docker's default
//! (`/var/run/docker`) is; the images and hookhost's registry are on disk.
//!
//! `scripts/cargo-static.sh bench --bench docker` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Command, Stdio};

use common::engines::{Dockerd, Engines};
use common::{HOOKHOST, Host, example_wasm, text};
use support::{report, timed};

/// The hooks, as registered: name and stage.
const HOOKS: [(&str, &str); 3] = [
    ("bench-prestart", "prestart"),
    ("bench-poststart", "poststart"),
    ("bench-poststop", "poststop"),
];

fn main() {
    common::require("runc");
    let rounds = support::rounds(HOOKHOST, 100);
    let host = Host::new();
    let noop = example_wasm("noop");
    for (name, stage) in HOOKS {
        let program = match stage {
            "prestart" => "/bin/true",
            _ => noop.to_str().unwrap(),
        };
        host.ok(&["create", "--type", stage, name, program]);
    }
    for engines in [Engines::Debian12, Engines::Today] {
        measure(&host, engines, rounds);
    }
}

/// Starts a daemon of `engines` with hookhost registered, and compares the two runs on it.
fn measure(host: &Host, engines: Engines, rounds: usize) {
    // Declared before the daemon, so dropped after it. The exec root (where containerd keeps
    // the bundles) on a tmpfs, as Docker's default `/var/run/docker` is: this machine's `/run`
    // is on disk, where the fsyncs of config.json and the plan file at `create` cost 0.3-4 ms.
    let bridge = Bridge::new();
    let run_dir = common::Tmpfs::new("size=1g,mode=0711");
    let exec_root = run_dir.path().to_str().unwrap();
    let (daemon, _wrapper) = Dockerd::with_hookhost(
        engines,
        host,
        &["--bridge", &bridge.name, "--exec-root", exec_root],
    );
    let selection = format!("HOOKHOST_HOOKS={}", HOOKS.map(|(name, _)| name).join(","));
    let run = |runtime: &str| {
        let mut cmd = daemon.docker(&[
            "run",
            "--rm",
            "--runtime",
            runtime,
            "-e",
            &selection,
            "busybox",
            "true",
        ]);
        cmd.stdin(Stdio::null());
        cmd
    };
    for _ in 0..3 {
        timed(&mut run("runc"));
        timed(&mut run("hookhost"));
    }
    assert_hooks_ran(host);
    let (mut plain, mut hooked) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        plain.push(timed(&mut run("runc")));
        hooked.push(timed(&mut run("hookhost")));
    }
    let version = daemon
        .docker(&["version", "--format", "{{.Server.Version}}"])
        .output()
        .unwrap();
    report(
        &format!(
            "Docker {}: docker run --rm busybox true, 3 hook runs through hookhost vs plain runc",
            text(&version.stdout).trim()
        ),
        hooked,
        plain,
    );
}

/// Every hook ran (each for every hookhost run so far), without failing.
fn assert_hooks_ran(host: &Host) {
    let events = host.ok(&["events"]);
    for (name, stage) in HOOKS {
        assert!(
            events.contains(&format!("{stage} {name} (")),
            "{name} did not run: {events}"
        );
    }
    assert!(!events.contains("exit=1"), "a hook failed: {events}");
}

/// A Linux bridge of this benchmark's own for the daemon's default network; removed on drop.
struct Bridge {
    name: String,
}

impl Bridge {
    fn new() -> Bridge {
        let name = format!("hhbench{}", std::process::id() % 100_000);
        let bridge = Bridge { name };
        bridge.ip(&["link", "add", &bridge.name, "type", "bridge"]);
        bridge.ip(&["addr", "add", "10.231.99.1/24", "dev", &bridge.name]);
        bridge.ip(&["link", "set", &bridge.name, "up"]);
        bridge
    }

    fn ip(&self, args: &[&str]) {
        let out = Command::new("ip").args(args).output().unwrap();
        assert!(out.status.success(), "ip {args:?}: {}", text(&out.stderr));
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["link", "del", &self.name])
            .status();
    }
}
