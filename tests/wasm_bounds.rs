//! The bounds around a WASM hook that are not its run's own limits: compiling a module (at
//! `create` and `recompile` under the config file's bounds, at a stage under the hook's own
//! timeout and memory limit), and the write budget counting what a file grows to.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Bundle, Host, Runc, nested_loops, text, unique, wat_module};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// hookhost with the config file `json` (root-owned, in the test's private directory).
fn with_config(host: &Host, json: &str, args: &[&str]) -> Output {
    let file = host.dir.path().join("hookhost.json");
    fs::write(&file, json).unwrap();
    host.cmd()
        .env("HOOKHOST_CONFIG", &file)
        .args(args)
        .output()
        .unwrap()
}

/// Runs hookhost with the config file `json` and expects it to fail; its stderr.
fn refused(host: &Host, json: &str, args: &[&str]) -> String {
    let out = with_config(host, json, args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "{args:?} should have failed: {stderr}"
    );
    stderr
}

fn artifacts(host: &Host) -> Vec<PathBuf> {
    fs::read_dir(host.root().join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".cwasm"))
        .collect()
}

/// A module that compiles for longer than the config file's compileCpuTime is refused by
/// `create` and by `apply` with the bound and the fix, and nothing is registered or stored.
#[test]
fn a_module_too_costly_to_compile_is_refused_at_create_and_apply() {
    let host = Host::new();
    let module = nested_loops(host.dir.path(), 20_000);
    let file = host.dir.path().join("hooks.json");
    let entry = serde_json::json!([{"Name": "loops", "Type": "prestart", "Path": module}]);
    fs::write(&file, entry.to_string()).unwrap();
    for args in [
        &["create", "loops", path(&module)][..],
        &["apply", "-f", path(&file)][..],
    ] {
        let stderr = refused(&host, r#"{"compileCpuTime": 1}"#, args);
        assert!(
            stderr.contains(
                "compiling it used more than its bound of 1s of CPU time and was stopped"
            ) && stderr.contains("raise compileCpuTime or compileMemory"),
            "{args:?}: {stderr}"
        );
        assert_eq!(host.ok(&["ls", "-q"]).trim(), "");
        assert!(artifacts(&host).is_empty());
        assert_eq!(
            fs::read_dir(host.root().join("modules")).unwrap().count(),
            0,
            "the module was not stored"
        );
    }
}

/// The memory bound holds the compiler to compileMemory: here 8 MiB, less than this module
/// needs (about 20 MB).
#[test]
fn the_compile_memory_bound_is_enforced_at_create() {
    let host = Host::new();
    let module = nested_loops(host.dir.path(), 2000);
    let stderr = refused(
        &host,
        r#"{"compileMemory": "8MiB"}"#,
        &["create", "loops", path(&module)],
    );
    assert!(
        stderr.contains("compiling it needed more than its memory bound of 8 MiB"),
        "{stderr}"
    );
    // Under the default bounds the same module registers.
    host.ok(&["create", "loops", path(&module)]);
}

/// A stage never compiles without a bound. Here a registered hook's module is one that takes a
/// minute to compile (an older build compiled it, say), and an upgrade left no artifact: the
/// stage compiles it under the hook's own timeout of 1 s, and fails with the fix; the
/// container does not start. `recompile` under a 1 s compileCpuTime fails too, naming the hook.
#[test]
fn a_stage_compile_is_bounded_by_the_hooks_timeout() {
    let host = Host::new();
    let runc = Runc::new();
    let noop = wat_module(host.dir.path(), "noop");
    host.ok(&[
        "create",
        "--timeout",
        "1",
        "--type",
        "createRuntime",
        "slow",
        path(&noop),
    ]);
    swap_module(&host, "slow", &noop, &nested_loops(host.dir.path(), 20_000));
    for artifact in artifacts(&host) {
        fs::remove_file(artifact).unwrap();
    }
    let bundle = Bundle::new("echo ran");
    host.inject(&bundle, &["slow"]);
    let out = runc.run(&bundle, &unique("stale"));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "hook slow (createRuntime): its compiled artifact is missing or stale (after a \
             hookhost upgrade, or a cleared cache), and compiling it here, bounded by the \
             hook's timeout, ran past its time bound of 1s and was stopped; run `hookhost \
             recompile`"
        ),
        "{stderr}"
    );
    assert!(!text(&out.stdout).contains("ran"));

    let stderr = refused(&host, r#"{"compileCpuTime": 1}"#, &["recompile"]);
    assert!(
        stderr.contains("Error: cannot compile slow (sha256:")
            && stderr.contains("used more than its bound of 1s of CPU time"),
        "{stderr}"
    );
}

/// Points hook `name`'s registry entry at `module` instead of `old`, with `module` stored.
fn swap_module(host: &Host, name: &str, old: &Path, module: &Path) {
    let bytes = fs::read(module).unwrap();
    let digest = hex_sha256(&bytes);
    fs::write(host.root().join(format!("modules/{digest}.wasm")), &bytes).unwrap();
    let entry = host.root().join(format!("hooks/{name}.json"));
    let old_digest = hex_sha256(&fs::read(old).unwrap());
    let json = fs::read_to_string(&entry).unwrap();
    assert!(json.contains(&old_digest));
    fs::write(&entry, json.replace(&old_digest, &digest)).unwrap();
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// `recompile` fills the cache for this build, says what it did, and removes artifacts no
/// build but another one can load.
#[test]
fn recompile_refills_the_cache_and_removes_other_builds_artifacts() {
    let host = Host::new();
    let noop = wat_module(host.dir.path(), "noop");
    host.ok(&["create", "a", path(&noop)]);
    host.ok(&["create", "b", path(&noop)]);
    let cache = host.root().join("cache");
    let ours = artifacts(&host);
    assert_eq!(ours.len(), 1, "one module, one artifact");
    fs::remove_file(&ours[0]).unwrap();
    let digest = hex_sha256(&fs::read(&noop).unwrap());
    let foreign = cache.join(format!("{digest}-0123456789abcdef.cwasm"));
    fs::write(&foreign, b"an older build's artifact").unwrap();
    fs::write(foreign.with_extension("cwasm.sum"), b"x\ny\n").unwrap();

    let out = host.ok(&["recompile"]);
    assert!(out.contains("compiled a, b (sha256:"), "{out}");
    assert!(
        out.contains("removed 2 artifact files of other hookhost builds"),
        "{out}"
    );
    assert!(!foreign.exists());
    assert_eq!(artifacts(&host), ours);
    assert!(host.ok(&["recompile"]).contains("up to date a, b"));
    assert!(host.ok(&["try", "a"]).contains("exit status 0"));
}

/// The write budget counts what a file grows to: one byte at offset 2^40 (fd_pwrite, or
/// fd_seek then fd_write) is refused under `--write-limit 1MiB`, and no sparse file is left.
#[test]
fn a_sparse_write_past_the_write_limit_is_stopped() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "sparse");
    for (name, args) in [("pwrite", "sparse"), ("seek", "sparse,seek")] {
        let out_dir = host.dir.path().join(name);
        fs::create_dir(&out_dir).unwrap();
        let grant = format!("{}:/out:rw", out_dir.display());
        host.ok(&[
            "create",
            "--allow-dir",
            &grant,
            "--write-limit",
            "1MiB",
            "--args",
            args,
            name,
            path(&module),
        ]);
        let out = host.run(&["try", name]);
        let shown = text(&out.stdout) + &text(&out.stderr);
        assert!(!out.status.success(), "{name}: {shown}");
        assert!(
            shown.contains("exceeded its write limit of 1 MiB"),
            "{name}: {shown}"
        );
        let size = fs::metadata(out_dir.join("sparse")).unwrap().len();
        assert_eq!(size, 0, "{name}: a {size}-byte file was left");
    }
}
