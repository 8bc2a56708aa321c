//! Benchmark (not a test): the runtime wrapper's overhead. `runc run` of a busybox container
//! that runs `true`, through `hookhost-runtime` with no hooks selected against bare runc,
//! interleaved in the same run (150 rounds); medians. Needs root and runc.
//! `scripts/cargo-static.sh bench --bench wrapper` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Bundle, HOOKHOST, Host, unique};
use support::median;

fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    let took = started.elapsed();
    assert!(status.success(), "{cmd:?} failed");
    took
}

fn main() {
    common::require("runc");
    let rounds = if std::env::args().any(|a| a == "--bench") {
        150
    } else {
        2
    };
    let path = std::path::Path::new(HOOKHOST);
    support::as_read_from_disk(path);
    println!(
        "hookhost under test: {HOOKHOST} ({}, read back from disk)",
        support::linkage(path)
    );
    let host = Host::new();
    host.ok(&["ls"]); // an (empty) registry for the wrapper to read
    let wrapper = host.dir.path().join("hookhost-runtime");
    std::os::unix::fs::symlink(HOOKHOST, &wrapper).unwrap();
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
    let (b, w) = (median(bare), median(wrapped));
    println!(
        "runc run through hookhost-runtime (no hooks) vs bare runc: {:.2} ms vs {:.2} ms, ratio {:.3}x",
        w.as_secs_f64() * 1e3,
        b.as_secs_f64() * 1e3,
        w.as_secs_f64() / b.as_secs_f64()
    );
}
