//! Benchmark (not a test): what one trivial WASM precreate hook adds to the runtime wrapper's
//! own work. The wrapper `run`s a bundle with a no-op runtime (`/bin/true`), interleaved in
//! the same run (150 rounds), medians:
//! - the bundle selects the `noop` example module registered `--type precreate` (it drains
//!   the config from stdin and writes nothing: config.json stays unchanged, the run is
//!   recorded in the audit trail);
//! - the same bundle selecting nothing.
//!
//! `scripts/cargo-static.sh bench --bench precreate` measures the shipped, static build.

#[path = "../tests/common/mod.rs"]
mod common;
mod support;

use std::process::Command;

use common::{Bundle, HOOKHOST, Host, unique};
use support::{median, report, timed};

fn main() {
    let rounds = support::rounds(HOOKHOST, 150);
    let host = Host::new();
    host.noop_precreate(false);
    // The small runtime wrapper beside hookhost, as installed (scripts/build-stage.sh).
    let wrapper = common::link_runtime_exe(host.dir.path());
    let noop_runtime = host.dir.path().join("noop.json");
    std::fs::write(&noop_runtime, r#"{"runtime": "/bin/true"}"#).unwrap();
    let plain = Bundle::new("true");
    let hooked = Bundle::new("true");
    hooked.edit(|c| c["annotations"] = serde_json::json!({"io.hookhost.hooks": "noop"}));
    let run = |bundle: &Bundle| {
        let mut cmd = Command::new(&wrapper);
        cmd.env("HOOKHOST_ROOT", host.root())
            .env("HOOKHOST_CONFIG", &noop_runtime)
            .args(["run", "--bundle", bundle.path_str(), &unique("bench")]);
        cmd
    };
    // Warm the module's compile cache, as the first container after `create` would.
    timed(&mut run(&hooked));
    let (mut none, mut one) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        none.push(timed(&mut run(&plain)));
        one.push(timed(&mut run(&hooked)));
    }
    let runs = host.ok(&["events", "--format", "json"]).lines().count();
    assert_eq!(
        runs,
        rounds + 1,
        "the precreate hook ran once per hooked run"
    );
    let added = median(one.clone()).as_secs_f64() - median(none.clone()).as_secs_f64();
    report(
        "hookhost-runtime run (no-op runtime) with one trivial WASM precreate hook vs none",
        one,
        none,
    );
    println!("added by the precreate hook: {:.2} ms", added * 1e3);
}
