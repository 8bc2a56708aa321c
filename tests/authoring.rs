//! The authoring loop, as a new hook author meets it: relative paths at `create`, and `try` of a
//! hook granted the bundle without a bundle at hand.

mod common;

use common::{Host, text, wat_module};
use serde_json::Value;

#[test]
fn create_takes_a_relative_path_and_try_gives_a_sample_bundle() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    wat_module(dir.path(), "fs");
    let out = host
        .cmd()
        .current_dir(dir.path())
        .args([
            "create",
            "--type",
            "createRuntime",
            "--allow-bundle",
            "reader",
            "fs.wasm",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let inspect: Value = serde_json::from_str(&host.ok(&["inspect", "reader"])).unwrap();
    let stored = dir.path().join("fs.wasm");
    assert_eq!(
        inspect[0]["Path"],
        stored.to_str().unwrap(),
        "stored absolute"
    );

    // No --bundle: the hook reads the sample bundle's config.json at /bundle.
    let out = host.run(&["try", r#"reader:["read","config.json"]"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"ociVersion\""),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("sample bundle"),
        "{}",
        text(&out.stderr)
    );
}
