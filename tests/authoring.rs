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

/// `hookhost new NAME --stage STAGE --sdk guest-sdk/` in `dir`, then `cargo build --release`
/// (wasm32-wasip1, preset) and `cargo test-native` in the new crate, which must all succeed;
/// returns the crate's directory and the built module.
fn new_hook_built_and_tested(
    host: &Host,
    dir: &std::path::Path,
    name: &str,
    stage: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let sdk = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest-sdk");
    let out = host
        .cmd()
        .current_dir(dir)
        .args([
            "new",
            name,
            "--stage",
            stage,
            "--sdk",
            sdk.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let krate = dir.join(name);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.join("target"));
    for args in [&["build", "--release"][..], &["test-native"]] {
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
    }
    let module = target.join(format!("wasm32-wasip1/release/{name}.wasm"));
    assert!(module.is_file(), "{} was not built", module.display());
    (krate, module)
}

/// `hookhost new` in an empty directory outside the repository: the crate builds for
/// wasm32-wasip1 as generated, registers with a relative path, passes `hookhost try`, and its
/// native unit test passes.
#[test]
fn a_new_hook_builds_registers_and_passes_try() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let (krate, module) = new_hook_built_and_tested(&host, dir.path(), "probe", "poststart");
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

/// `hookhost new --stage precreate`: a hook on the SDK's precreate API that builds for
/// wasm32-wasip1 and passes its own native tests (an edit that keeps the rest of the config, a
/// refusal), with the registration it needs in its header.
#[test]
fn a_new_precreate_hook_builds_and_passes_its_own_tests() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let (krate, module) = new_hook_built_and_tested(&host, dir.path(), "shaper", "precreate");
    let main = std::fs::read_to_string(krate.join("src/main.rs")).unwrap();
    assert!(main.contains("precreate(shape)"), "{main}");
    let create = "hookhost create --type precreate --may-adjust env=HELLO_FROM shaper \
                  target/wasm32-wasip1/release/shaper.wasm";
    assert!(main.contains(create), "{main}");
    // Registered as its header says (a relative path, from the crate), then tried: the diff
    // shows its one granted edit.
    // (The test builds into the shared target directory; put the module where the header's
    // relative path expects it.)
    let relative = krate.join("target/wasm32-wasip1/release/shaper.wasm");
    std::fs::create_dir_all(relative.parent().unwrap()).unwrap();
    std::fs::copy(&module, &relative).unwrap();
    let words: Vec<&str> = create.split_whitespace().skip(1).collect();
    let out = host
        .cmd()
        .current_dir(&krate)
        .args(&words)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = host.run(&["try", "shaper"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains(r#"+ env HELLO_FROM: "HELLO_FROM=shaper""#),
        "{shown}"
    );
    assert!(shown.contains("accepted"), "{shown}");
}
