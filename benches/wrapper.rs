//! Benchmark (not a test): the runtime wrapper's overhead, interleaved in the same run (150
//! rounds); medians. Needs root and runc.
//! - `runc run` of a busybox container that runs `true`, through `hookhost-runtime` with no
//!   hooks selected against bare runc;
//! - `start` of a created container without hooks, through the wrapper against bare runc (the
//!   wrapper checks the runtime's state for hooks at start, then execs runc);
//! - the wrapper's own work: `run` with a no-op runtime (`/bin/true`) against an exec of
//!   `/bin/true`; for scale, what the smallest static exec wrapper costs in the same
//!   comparison (busybox-static's `env /bin/true`, which only execs); and the wrapper against
//!   that floor (target ≤ 1.1×).
//!
//! The wrapper is the small `hookhost-runtime` executable built beside hookhost, as installed
//! (`scripts/build-stage.sh release` first; the bench refuses to run without it).
//! `scripts/cargo-static.sh bench --bench wrapper` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{Bundle, HOOKHOST, Host, unique};
use support::{report, timed};

fn main() {
    common::require("runc");
    let rounds = support::rounds(HOOKHOST, 150);
    let host = Host::new();
    host.ok(&["ls"]); // an (empty) registry for the wrapper to read
    // The small runtime wrapper beside hookhost, as installed (scripts/build-stage.sh).
    let wrapper = common::link_runtime_exe(host.dir.path());
    let bundle = Bundle::new("true");
    let runc_root = tempfile::tempdir().unwrap();
    let run = |program: &std::path::Path| {
        let mut cmd = Command::new(program);
        cmd.env("HOOKHOST_ROOT", host.root())
            .arg("--root")
            .arg(runc_root.path())
            .args(["run", "--bundle", bundle.path_str(), &unique("bench")]);
        cmd
    };
    let config = host.dir.path().join("config.json");
    std::fs::write(&config, r#"{"runtime": "runc"}"#).unwrap();
    let (mut bare, mut wrapped) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare.push(timed(&mut run("runc".as_ref())));
        wrapped.push(timed(run(&wrapper).env("HOOKHOST_CONFIG", &config)));
    }
    report(
        "runc run through hookhost-runtime (no hooks) vs bare runc",
        wrapped,
        bare,
    );

    let start = |program: &std::path::Path, id: &str| {
        let mut cmd = Command::new(program);
        cmd.env("HOOKHOST_CONFIG", &config)
            .arg("--root")
            .arg(runc_root.path())
            .args(["start", id]);
        cmd
    };
    let (mut bare, mut wrapped) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        for (program, times) in [(Path::new("runc"), &mut bare), (&wrapper, &mut wrapped)] {
            let id = unique("start");
            timed(
                Command::new("runc")
                    .arg("--root")
                    .arg(runc_root.path())
                    .args(["create", "--bundle", bundle.path_str(), &id])
                    .stdin(Stdio::null()),
            );
            times.push(timed(&mut start(program, &id)));
            let _ = Command::new("runc")
                .arg("--root")
                .arg(runc_root.path())
                .args(["delete", "--force", &id])
                .status();
        }
    }
    report(
        "start through hookhost-runtime (no hooks at start) vs bare runc",
        wrapped,
        bare,
    );

    let noop = host.dir.path().join("noop.json");
    std::fs::write(&noop, r#"{"runtime": "/bin/true"}"#).unwrap();
    let (mut bare, mut wrapped, mut minimal) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        bare.push(timed(&mut Command::new("/bin/true")));
        wrapped.push(timed(run(&wrapper).env("HOOKHOST_CONFIG", &noop)));
        minimal.push(timed(
            Command::new("/bin/busybox").args(["env", "/bin/true"]),
        ));
    }
    report(
        "hookhost-runtime run with a no-op runtime vs exec of /bin/true",
        wrapped.clone(),
        bare.clone(),
    );
    report(
        "for scale, the least any exec wrapper costs: static busybox `env /bin/true` vs exec of /bin/true",
        minimal.clone(),
        bare,
    );
    report(
        "the wrapper's own work against that floor: hookhost-runtime with a no-op runtime vs static busybox `env /bin/true`",
        wrapped,
        minimal,
    );
}
