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

/// `hookhost new` in an empty directory outside the repository: the crate builds for
/// wasm32-wasip1 as generated, registers with a relative path, passes `hookhost try`, and its
/// native unit test passes.
#[test]
fn a_new_hook_builds_registers_and_passes_try() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-sdk");
    let out = host
        .cmd()
        .current_dir(dir.path())
        .args([
            "new",
            "probe",
            "--stage",
            "poststart",
            "--sdk",
            sdk.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let krate = dir.path().join("probe");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("target"));
    let cargo = |args: &[&str]| {
        let out = std::process::Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .current_dir(&krate)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "cargo {args:?}: {}",
            text(&out.stderr)
        );
    };
    cargo(&["build", "--release"]);
    cargo(&["test-native"]);
    let module = target.join("wasm32-wasip1/release/probe.wasm");
    std::fs::copy(&module, krate.join("probe.wasm")).unwrap();
    let out = host
        .cmd()
        .current_dir(&krate)
        .args(["create", "--type", "poststart", "probe", "probe.wasm"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["try", "probe"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("probe: container hookhost-try is running"),
        "{}",
        text(&out.stdout)
    );
    // The same name again is refused, nothing overwritten.
    let again = host
        .cmd()
        .current_dir(dir.path())
        .args(["new", "probe"])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("already exists"),
        "{}",
        text(&again.stderr)
    );
}
