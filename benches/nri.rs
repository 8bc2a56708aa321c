//! Benchmark (not a test): what one trivial WASM precreate hook adds to the NRI plugin's
//! handling of a CreateContainer, inside the plugin — hookhost's handler called as the plugin's
//! ttrpc service calls it, without containerd. Two handlers, each on its own registry holding
//! the `noop` example module registered `--type precreate`: global (`--when-always`: it runs
//! for every container, recorded in the audit trail) on one, selected by nothing on the other.
//! Interleaved (2,000 rounds), medians. The handler keeps modules loaded after their first run
//! (`wasm::keep_loaded`) and registry entries parsed while their files are unchanged
//! (`EntryCache`), as `hookhost nri` does.
//!
//! `scripts/cargo-static.sh bench --bench nri` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::path::PathBuf;
use std::time::Instant;

use common::{HOOKHOST, Host};
use hookhost_engines::nri::NriHooks;
use hookhost_hooks::config::Config;
use hookhost_hooks::registry::EntryCache;
use hookhost_nri::Handler;
use hookhost_nri::api::{Container, PodSandbox};
use support::{median, report};

fn main() {
    let rounds = support::rounds(HOOKHOST, 2000);
    let handler = |global: bool| {
        let host = Host::new();
        host.noop_precreate(global);
        let nri = NriHooks::new(
            Config::default(),
            host.root(),
            PathBuf::from(HOOKHOST),
            "bench".into(),
        );
        (host, nri)
    };
    let (hooked_host, hooked) = handler(true);
    let (_plain_host, plain) = handler(false);
    let pod = PodSandbox {
        id: "pod0".into(),
        name: "bench".into(),
        namespace: "default".into(),
        ..PodSandbox::default()
    };
    let container = |i: usize| Container {
        id: format!("c{i}"),
        pod_sandbox_id: "pod0".into(),
        name: "app".into(),
        args: vec!["sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        ..Container::default()
    };
    let time = |nri: &NriHooks, i: usize| {
        let started = Instant::now();
        nri.create_container(&pod, &container(i))
            .expect("the container is prepared");
        started.elapsed()
    };
    // Hooks on a node are registered long before its containers start: wait until the entries
    // are old enough for the plugin to keep them parsed (`EntryCache::SETTLE`).
    std::thread::sleep(EntryCache::SETTLE);
    // The first run loads the module; the plugin's later ones find it loaded.
    time(&hooked, 0);
    let (mut none, mut one) = (Vec::new(), Vec::new());
    for i in 1..=rounds {
        none.push(time(&plain, i));
        one.push(time(&hooked, i));
    }
    let runs = hooked_host
        .ok(&["events", "--format", "json"])
        .lines()
        .count();
    assert_eq!(
        runs,
        rounds + 1,
        "the precreate hook ran once per hooked container"
    );
    let added = median(one.clone()).as_secs_f64() - median(none.clone()).as_secs_f64();
    report(
        "NRI CreateContainer in the plugin with one trivial WASM precreate hook vs none",
        one,
        none,
    );
    println!("added by the precreate hook: {:.1} µs", added * 1e6);
}
