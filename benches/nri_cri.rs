//! Benchmark (not a test): CRI CreateContainer + StartContainer of a busybox container on
//! containerd 2.1 (CRI and NRI on the bench's own sockets, the default runtime plain runc),
//! with `hookhost nri` registered and one trivial WASM precreate hook (the `noop` example,
//! global: it runs for every container) vs the same containerd without the plugin. Blocks of
//! containers alternate between the two (the plugin is started and stopped between blocks,
//! containerd never), 12 blocks of 10 each way; medians of the per-container times the CRI
//! client measures (tests/cri/client.py `bench`: create, start, then stop and remove, untimed).
//!
//! `scripts/cargo-static.sh bench --bench nri_cri` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::containerd::{CRI_IMAGE, Containerd, Cri, stdout_ok};
use common::engines::wait_for;
use common::{HOOKHOST, Host, unique};
use support::report;

fn main() {
    let blocks = support::rounds(HOOKHOST, 12);
    let per_block = if blocks > 2 { 10 } else { 2 };
    common::require("runc");
    let host = Host::new();
    host.noop_precreate(true);
    let containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let cri = Cri {
        containerd: &containerd,
    };
    let (out, pod) = cri.run_pod_on("", &serde_json::json!({}));
    let pod_id = stdout_ok(&out);
    let health = containerd.dir.path().join("registered");
    let block = |with_plugin: bool| -> Vec<Duration> {
        let plugin = with_plugin.then(|| start_plugin(&host, &containerd, &health));
        let out = cri.call(&[
            "bench",
            &pod_id,
            CRI_IMAGE,
            &pod,
            &per_block.to_string(),
            &unique("b"),
        ]);
        if let Some(plugin) = plugin {
            stop_plugin(plugin, &health);
        }
        let times: Vec<f64> = serde_json::from_str(&stdout_ok(&out)).unwrap();
        times
            .into_iter()
            .map(|ms| Duration::from_secs_f64(ms / 1e3))
            .collect()
    };
    // Warm: the image, runc, and the module's compile cache.
    block(true);
    block(false);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..blocks {
        with.extend(block(true));
        without.extend(block(false));
    }
    let runs = host.ok(&["events", "--format", "json"]).lines().count();
    assert_eq!(
        runs,
        (blocks + 1) * per_block,
        "the precreate hook ran once per container created with the plugin"
    );
    report(
        "CRI CreateContainer+StartContainer with hookhost nri and one trivial WASM precreate \
         hook vs without the plugin",
        with,
        without,
    );
}

/// `hookhost nri` on the bench's containerd, once it is registered.
fn start_plugin(host: &Host, containerd: &Containerd, health: &std::path::Path) -> Child {
    let child = Command::new(HOOKHOST)
        .env("HOOKHOST_ROOT", host.root())
        .args(["nri", "--socket"])
        .arg(containerd.nri_socket())
        .arg("--health-file")
        .arg(health)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("hookhost nri to register", Duration::from_secs(60), || {
        health.exists()
    });
    child
}

/// Stops the plugin as a DaemonSet would (SIGTERM), and waits until it is gone.
fn stop_plugin(mut plugin: Child, health: &std::path::Path) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(plugin.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    plugin.wait().unwrap();
    assert!(!health.exists(), "the plugin left its health file");
    // containerd notices the closed connection before the next container.
    std::thread::sleep(Duration::from_millis(200));
}
