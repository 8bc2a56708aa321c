//! `hookhost metrics` and `hookhost stats` from a real run of known hooks: the counts match the
//! events, and the output passes `promtool check metrics`.

mod common;

use common::{Bundle, Host, Runc, require, text, unique, wat_module};

#[test]
fn metrics_count_a_run_of_known_hooks_and_pass_promtool() {
    require("promtool");
    let host = Host::new();
    let runc = Runc::new();
    let dir = tempfile::tempdir().unwrap();
    host.ok(&["create", "--type", "prestart", "ok", "/bin/true"]);
    host.ok(&["create", "--type", "createRuntime", "deny", "/bin/false"]);
    let module = wat_module(dir.path(), "noop");
    host.ok(&[
        "create",
        "--type",
        "poststop",
        "wasm-noop",
        module.to_str().unwrap(),
    ]);
    // Two containers that start (ok + wasm-noop each), one refused by `deny`.
    for _ in 0..2 {
        let bundle = Bundle::new("true");
        host.inject(&bundle, &["ok", "wasm-noop"]);
        let out = runc.run(&bundle, &unique("m"));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let bundle = Bundle::new("true");
    host.inject(&bundle, &["deny"]);
    assert!(!runc.run(&bundle, &unique("m")).status.success());

    let metrics = host.ok(&["metrics"]);
    for line in [
        r#"hookhost_hook_runs_total{hook="ok",stage="prestart",kind="native",result="success"} 2"#,
        r#"hookhost_hook_runs_total{hook="wasm-noop",stage="poststop",kind="wasm",result="success"} 2"#,
        r#"hookhost_hook_runs_total{hook="deny",stage="createRuntime",kind="native",result="failure"} 1"#,
        r#"hookhost_hook_duration_seconds_count{hook="ok",stage="prestart"} 2"#,
        r#"hookhost_hook_duration_seconds_bucket{hook="ok",stage="prestart",le="+Inf"} 2"#,
        r#"hookhost_container_refusals_total{reason="exit"} 1"#,
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "missing {line}:\n{metrics}"
        );
    }
    let fuel = metrics
        .lines()
        .find(|l| l.starts_with(r#"hookhost_hook_fuel_used_total{hook="wasm-noop""#))
        .unwrap_or_else(|| panic!("no fuel line:\n{metrics}"));
    assert!(!fuel.ends_with(" 0"), "{fuel}");

    common::check_metrics(&metrics);

    // The textfile is written atomically, with the same content.
    let file = dir.path().join("hookhost.prom");
    host.ok(&["metrics", "--textfile", file.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), metrics);

    // stats: one row per hook and stage; a window that excludes everything shows none.
    let stats = host.ok(&["stats"]);
    let row = |hook: &str| {
        stats
            .lines()
            .find(|l| l.starts_with(hook))
            .unwrap()
            .to_string()
    };
    let deny = row("deny ");
    let fields: Vec<&str> = deny.split_whitespace().collect();
    assert_eq!(
        &fields[..4],
        &["deny", "createRuntime", "1", "1"],
        "{stats}"
    );
    let fields_ok = row("ok ");
    let fields_ok: Vec<&str> = fields_ok.split_whitespace().collect();
    assert_eq!(&fields_ok[..4], &["ok", "prestart", "2", "0"], "{stats}");
    let future = host.ok(&["stats", "--since", "2999-01-01T00:00:00Z"]);
    assert_eq!(future.lines().count(), 1, "only the header: {future}");
}
