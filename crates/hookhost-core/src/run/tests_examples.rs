//! The example hooks, built from `examples/` for wasm32-wasip1, run through `run` with the
//! grants their documentation asks for.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hookhost_exec::wasm::WasmOutcome;
use hookhost_exec::wasm::testing::{Blob, Params, precompile_blob, run_blob};
use hookhost_hooks::grants::{Access, DirGrant, Grants, Resolved};

const EXAMPLES: [&str; 4] = ["deny-privileged", "hosts-entry", "audit-log", "noop"];

/// Builds all examples once per test process; returns the directory holding the `.wasm` files.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let mut cargo = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cargo
            .current_dir(root)
            .args(["build", "--release", "--target", "wasm32-wasip1"])
            .arg("--target-dir")
            .arg(&target);
        for name in EXAMPLES {
            cargo.args(["-p", name]);
        }
        let status = cargo.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the examples for wasm32-wasip1 failed"
        );
        target.join("wasm32-wasip1/release")
    })
}

fn example(name: &str) -> Blob {
    let bytes = std::fs::read(built().join(format!("{name}.wasm"))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("module.wasm");
    std::fs::write(&path, &bytes).unwrap();
    Blob {
        digest: hookhost_exec::fs::sha256_hex(&bytes),
        dir,
        path,
    }
}

fn state(id: &str, status: &str, bundle: &Path, annotations: &str) -> Vec<u8> {
    format!(
        r#"{{"ociVersion":"1.2.0","id":"{id}","status":"{status}","pid":4242,"bundle":"{}","annotations":{annotations}}}"#,
        bundle.display()
    )
    .into_bytes()
}

/// Runs an example with the given grants, stage and extra args.
fn run_example(
    name: &str,
    grants: &Grants,
    bundle: &Path,
    stage: &str,
    extra: &[&str],
    stdin: Vec<u8>,
) -> WasmOutcome {
    grants.validate().unwrap();
    let rootfs = bundle.join("rootfs");
    let Resolved { preopens, mut env } = grants
        .resolve(Some(bundle), Some(&rootfs), |_| None)
        .unwrap();
    env.push((hookhost_types::STAGE_ENV.into(), stage.into()));
    let mut args = vec![name.to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let p = Params {
        args,
        env,
        stdin,
        preopens,
        ..Params::default()
    };
    let blob = example(name);
    precompile_blob(&blob);
    run_blob(&blob, &p).unwrap()
}

fn bundle_with(config: &str) -> tempfile::TempDir {
    let bundle = tempfile::tempdir().unwrap();
    std::fs::create_dir(bundle.path().join("rootfs")).unwrap();
    std::fs::write(bundle.path().join("config.json"), config).unwrap();
    bundle
}

const PRIVILEGED: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
  "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0},
  "capabilities":{"bounding":["CAP_SYS_ADMIN"],"effective":["CAP_KILL"]}},"x-unknown":1}"#;

#[test]
fn deny_privileged_refuses_and_allows() {
    let grants = Grants {
        bundle: Some(Access::ReadOnly),
        ..Grants::default()
    };
    let bundle = bundle_with(PRIVILEGED);
    let stdin = state("priv", "creating", bundle.path(), "{}");
    let out = run_example(
        "deny-privileged",
        &grants,
        bundle.path(),
        "createRuntime",
        &[],
        stdin,
    );
    assert_eq!(out.exit_code, 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("container priv refused: it has CAP_SYS_ADMIN in the bounding set"),
        "{stderr}"
    );

    let allow = r#"{"io.hookhost.allow-privileged":"true"}"#;
    let stdin = state("priv", "creating", bundle.path(), allow);
    let out = run_example(
        "deny-privileged",
        &grants,
        bundle.path(),
        "createRuntime",
        &[],
        stdin,
    );
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));

    let plain = bundle_with(&PRIVILEGED.replace("CAP_SYS_ADMIN", "CAP_CHOWN"));
    let stdin = state("plain", "creating", plain.path(), "{}");
    let out = run_example(
        "deny-privileged",
        &grants,
        plain.path(),
        "createRuntime",
        &[],
        stdin,
    );
    assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn hosts_entry_adds_lines_once() {
    let grants = Grants {
        rootfs: Some(Access::ReadWrite),
        ..Grants::default()
    };
    let bundle = bundle_with(PRIVILEGED);
    let args = ["db=10.0.0.5", "cache=10.0.0.6"];
    for _ in 0..2 {
        let stdin = state("c", "created", bundle.path(), "{}");
        let out = run_example(
            "hosts-entry",
            &grants,
            bundle.path(),
            "createContainer",
            &args,
            stdin,
        );
        assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let hosts = std::fs::read_to_string(bundle.path().join("rootfs/etc/hosts")).unwrap();
    assert_eq!(hosts, "10.0.0.5\tdb\n10.0.0.6\tcache\n");
}

#[test]
fn audit_log_appends_a_line_per_event() {
    let logdir = tempfile::tempdir().unwrap();
    let grants = Grants {
        dirs: vec![DirGrant {
            host: logdir.path().to_path_buf(),
            guest: "/log".into(),
            access: Access::ReadWrite,
        }],
        ..Grants::default()
    };
    let bundle = bundle_with(PRIVILEGED);
    for (stage, status) in [("poststart", "running"), ("poststop", "stopped")] {
        let stdin = state("c9", status, bundle.path(), "{}");
        let out = run_example("audit-log", &grants, bundle.path(), stage, &[], stdin);
        assert_eq!(out.exit_code, 0, "{}", String::from_utf8_lossy(&out.stderr));
    }
    let log = std::fs::read_to_string(logdir.path().join("audit.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(lines[0]["stage"], "poststart");
    assert_eq!(lines[1]["status"], "stopped");
    assert_eq!(lines[1]["pid"], 4242);
    assert!(
        lines[0]["time"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{log}"
    );
}

#[test]
fn noop_succeeds() {
    let bundle = bundle_with(PRIVILEGED);
    let stdin = state("c", "creating", bundle.path(), "{}");
    let out = run_example(
        "noop",
        &Grants::default(),
        bundle.path(),
        "prestart",
        &[],
        stdin,
    );
    assert_eq!(out.exit_code, 0);
}
