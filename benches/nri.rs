//! Benchmark (not a test): what one trivial WASM precreate hook adds to the NRI plugin's
//! handling of a CreateContainer, inside the plugin — hookhost's handler called as the plugin's
//! ttrpc service calls it, without containerd. Two handlers, each on its own registry holding
//! the `noop` example module registered `--type precreate`: global (`--when-always`: it runs
//! for every container, recorded in the audit trail) on one, selected by nothing on the other.
//! Interleaved (2,000 rounds), medians; then again with all the bench's threads on one CPU.
//! The handler keeps modules loaded after their first run (`wasm::keep_loaded`) and registry
//! entries parsed while their files are unchanged (`EntryCache`), as `hookhost nri` does.
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
    measure(rounds, "its threads on any CPU");
    // The same with every thread of the bench (the plugin's workers start after this) on one
    // CPU: what is left is the handling's own work, without the cross-CPU wake-ups of one
    // thread waiting for another (on this VM an idle virtual CPU halts at once —
    // `haltpoll.guest_halt_poll_ns=0` — and waking it is a round trip through the hypervisor),
    // which move the first figure by tens of µs from run to run.
    pin_to_one_cpu();
    measure(rounds, "all its threads on one CPU");
}

/// Pins the calling thread, and so the threads it starts from now on, to the first CPU it may
/// run on.
fn pin_to_one_cpu() {
    // SAFETY: a zeroed cpu_set_t is an empty set; both calls only read and write it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        let cpu = (0..libc::CPU_SETSIZE as usize)
            .find(|&cpu| libc::CPU_ISSET(cpu, &set))
            .expect("the bench may run on some CPU");
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(cpu, &mut set);
        assert_eq!(
            libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set),
            0
        );
    }
}

fn measure(rounds: usize, placement: &str) {
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
        &format!(
            "NRI CreateContainer in the plugin with one trivial WASM precreate hook vs none, \
             {placement}"
        ),
        one,
        none,
    );
    println!(
        "added by the precreate hook, {placement}: {:.1} µs",
        added * 1e6
    );
}
