//! WASM hooks in real runc containers: the example hooks doing their jobs, limits stopping a
//! container on time, grants checked at create time, and the compile cache healing itself.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::{Bundle, Host, Runc, example_wasm, text, unique, wat_module};

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn deny_privileged_stops_a_privileged_container_and_lets_a_plain_one_through() {
    let host = Host::new();
    let runc = Runc::new();
    let module = example_wasm("deny-privileged");
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--allow-bundle=ro",
        "deny",
        path(&module),
    ]);

    let plain = Bundle::new("echo plain-ran");
    plain.edit(|c| c["root"]["readonly"] = true.into());
    host.inject(&plain, &["deny"]);
    let out = runc.run(&plain, &unique("plain"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "plain-ran");

    let privileged = Bundle::new("echo privileged-ran");
    privileged.edit(|c| {
        c["root"]["readonly"] = true.into();
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push("CAP_SYS_ADMIN".into());
    });
    host.inject(&privileged, &["deny"]);
    let out = runc.run(&privileged, &unique("priv"));
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("hook deny (createRuntime)"), "{stderr}");
    assert!(
        stderr.contains("CAP_SYS_ADMIN in the bounding set"),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("privileged-ran"));
}

#[test]
fn hosts_entry_adds_lines_to_the_containers_etc_hosts() {
    let host = Host::new();
    let runc = Runc::new();
    let module = example_wasm("hosts-entry");
    host.ok(&[
        "create",
        "--type",
        "createContainer",
        "--allow-rootfs=rw",
        "--args",
        "hosts-entry,db.internal=10.0.0.5",
        "hosts",
        path(&module),
    ]);
    let bundle = Bundle::new("cat /etc/hosts");
    host.inject(&bundle, &[r#"hosts:["cache=10.0.0.6"]"#]);
    let out = runc.run(&bundle, &unique("hosts"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts = text(&out.stdout);
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().eq(["10.0.0.5", "db.internal"])),
        "{hosts}"
    );
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().eq(["10.0.0.6", "cache"])),
        "{hosts}"
    );
}

/// Registers the audit-log example as `audit` at `stages`, logging into the returned dir.
fn audit_hook(host: &Host, stages: &str) -> tempfile::TempDir {
    let logdir = tempfile::tempdir().unwrap();
    let module = example_wasm("audit-log");
    let grant = format!("{}:/log:rw", path(logdir.path()));
    host.ok(&[
        "create",
        "--type",
        stages,
        "--allow-dir",
        &grant,
        "audit",
        path(&module),
    ]);
    logdir
}

#[test]
fn audit_log_records_poststart_and_poststop() {
    let host = Host::new();
    let runc = Runc::new();
    let logdir = audit_hook(&host, "poststart,poststop");
    let bundle = Bundle::new("true");
    host.inject(&bundle, &["audit"]);
    let id = unique("audit");
    let out = runc.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let log = fs::read_to_string(logdir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stages: Vec<&str> = lines.iter().map(|l| l["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["poststart", "poststop"]);
    assert!(lines.iter().all(|l| l["id"] == id.as_str()));
}

/// hookhost accepts a state with only an `id` (a runtime may omit `ociVersion` and `status`),
/// and so does a hook built with the guest SDK: both read it with the one
/// `hookhost_types::State`. Before, the SDK's own copy required both fields and the hook failed.
#[test]
fn a_guest_sdk_hook_runs_against_a_state_without_version_or_status() {
    let host = Host::new();
    let logdir = audit_hook(&host, "poststop");
    let state = logdir.path().join("state.json");
    fs::write(&state, r#"{"id":"bare","pid":7}"#).unwrap();
    let out = host.ok(&["try", "audit", "--state", path(&state)]);
    assert!(out.contains("exit status 0"), "{out}");
    let line: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(logdir.path().join("audit.jsonl")).unwrap())
            .unwrap();
    assert_eq!(
        (line["id"].as_str(), line["status"].as_str()),
        (Some("bare"), Some(""))
    );
    assert_eq!(line["stage"], "poststop");
}

/// Each limit stops the guest within limit + 0.5 s with its own message, and the container
/// does not start.
#[test]
fn limits_stop_the_hook_and_the_container() {
    let host = Host::new();
    let runc = Runc::new();
    let dir = host.dir.path().to_path_buf();
    let cases = [
        (
            "spin",
            vec!["--fuel", "1000000000000000", "--timeout", "1"],
            "ran past its timeout of 1s",
            1.0,
        ),
        (
            "sleep",
            vec!["--timeout", "1"],
            "ran past its timeout of 1s",
            1.0,
        ),
        (
            "grow",
            vec!["--memory", "4MiB", "--timeout", "5"],
            "exceeded its memory limit of 4 MiB",
            0.0,
        ),
        (
            "spin",
            vec!["--fuel", "1000", "--timeout", "5"],
            "ran out of fuel (1000 units)",
            0.0,
        ),
    ];
    for (i, (wat, flags, message, limit_secs)) in cases.into_iter().enumerate() {
        let module = wat_module(&dir, wat);
        let name = format!("limit{i}");
        let mut args = vec!["create", "--type", "createRuntime"];
        args.extend(flags);
        args.extend([name.as_str(), path(&module)]);
        host.ok(&args);
        let bundle = Bundle::new("touch /ran");
        host.inject(&bundle, &[&name]);
        let started = Instant::now();
        let out = runc.run(&bundle, &unique("limit"));
        let took = started.elapsed();
        let stderr = text(&out.stderr);
        assert!(
            !out.status.success(),
            "{name}: the container must not start"
        );
        assert!(
            stderr.contains(&format!("hook {name} (createRuntime): {message}")),
            "{name}: {stderr}"
        );
        assert!(!bundle.rootfs().join("ran").exists(), "{name}");
        // runc's own create/teardown adds to the hook's time; 1 s covers it generously here.
        let bound = Duration::from_secs_f64(limit_secs + 0.5) + Duration::from_secs(1);
        assert!(took < bound, "{name} took {took:?}");
    }
}

#[test]
fn bad_modules_and_grants_are_refused_at_create_time() {
    let host = Host::new();
    let dir = host.dir.path();
    let broken = dir.join("broken.wasm");
    fs::write(&broken, b"\0asm\x01\0\0\0\x07garbage").unwrap();
    let noop = wat_module(dir, "noop");
    let before = host.snapshot();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["create", "m", path(&broken)],
            "invalid WebAssembly module",
        ),
        (
            vec!["create", "--allow-dir", "/no/such/dir:/x", "m", path(&noop)],
            "/no/such/dir",
        ),
        (
            vec!["create", "--allow-dir", "/tmp:relative", "m", path(&noop)],
            "relative",
        ),
        (vec!["create", "--memory", "lots", "m", path(&noop)], "lots"),
        (vec!["create", "--fuel", "-5", "m", path(&noop)], "-5"),
        (
            vec!["create", "--allow-env", "A", "native", "/bin/true"],
            "WASM hooks only",
        ),
    ];
    for (args, want) in cases {
        let err = host.fails(&args);
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(
            host.snapshot()
                .iter()
                .filter(|(p, _)| p.starts_with(host.root().join("hooks")))
                .count(),
            0
        );
    }
    assert!(
        before
            .iter()
            .all(|(p, _)| !p.starts_with(host.root().join("hooks")))
    );
}

/// A deleted or corrupted precompiled artifact is rebuilt, never trusted.
#[test]
fn cache_damage_is_repaired_transparently() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "noop");
    host.ok(&["create", "noop", path(&module)]);
    let cache = host.root().join("cache");
    let artifacts = || -> Vec<std::path::PathBuf> {
        fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect()
    };
    assert_eq!(artifacts().len(), 1, "create precompiles");
    fs::write(&artifacts()[0], b"corrupt artifact").unwrap();
    assert!(host.ok(&["try", "noop"]).contains("exit status 0"));
    for file in artifacts() {
        fs::remove_file(file).unwrap();
    }
    assert!(host.ok(&["try", "noop"]).contains("exit status 0"));
    assert_eq!(artifacts().len(), 1, "recompiled into the cache");
}

#[test]
fn try_shows_output_exit_status_and_fuel() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "exit3");
    host.ok(&["create", "three", path(&module)]);
    let out = host.run(&["try", "three", "--stage", "poststop"]);
    assert!(!out.status.success());
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("hook three (poststop, wasm): exit status 3"),
        "{stdout}"
    );
    assert!(stdout.contains("fuel used"), "{stdout}");
}
