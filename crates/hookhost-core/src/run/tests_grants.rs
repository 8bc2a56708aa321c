//! The sandbox: a guest reaches only its preopens and granted environment. Each test plants a
//! secret outside the preopen and checks that it is neither read nor changed.

use std::path::Path;

use tempfile::TempDir;

use hookhost_exec::wasm::testing::{Blob, Params, run_blob};
use hookhost_hooks::grants::{Access, DirGrant, Grants, Resolved};

const SECRET: &str = "host secret";

/// `root/secret` (outside) and `root/granted/` (the preopen, holding `inside.txt`).
struct Sandbox {
    root: TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("secret"), SECRET).unwrap();
        std::fs::create_dir(root.path().join("granted")).unwrap();
        std::fs::write(root.path().join("granted/inside.txt"), "inside").unwrap();
        Sandbox { root }
    }

    fn granted(&self) -> std::path::PathBuf {
        self.root.path().join("granted")
    }

    fn secret(&self) -> std::path::PathBuf {
        self.root.path().join("secret")
    }

    /// Runs `fs OP PATH` with the granted dir preopened at `/data` with `access`.
    fn probe(&self, op: &str, path: &str, access: Access) -> (i32, Vec<u8>) {
        let grants = Grants {
            dirs: vec![DirGrant {
                host: self.granted(),
                guest: "/data".into(),
                access,
            }],
            ..Grants::default()
        };
        grants.validate().unwrap();
        let Resolved { preopens, env } = grants.resolve(None, None, |_| None).unwrap();
        let p = Params {
            args: vec!["fs".into(), op.into(), path.into()],
            env,
            preopens,
            ..Params::default()
        };
        let out = run_blob(
            &Blob::new(include_str!("../../../../tests/fixtures/wasm/fs.wat")),
            &p,
        )
        .unwrap();
        (out.exit_code, out.stdout)
    }

    fn assert_secret_untouched(&self) {
        assert_eq!(std::fs::read_to_string(self.secret()).unwrap(), SECRET);
    }
}

fn assert_refused(sandbox: &Sandbox, op: &str, path: &str, access: Access) {
    let (code, stdout) = sandbox.probe(op, path, access);
    assert!(
        (1..100).contains(&code),
        "{op} {path}: exit {code}, expected a refused open"
    );
    assert!(
        !String::from_utf8_lossy(&stdout).contains(SECRET),
        "{op} {path} leaked"
    );
    sandbox.assert_secret_untouched();
}

#[test]
fn granted_files_are_readable_and_writable() {
    let sandbox = Sandbox::new();
    assert_eq!(
        sandbox.probe("read", "inside.txt", Access::ReadOnly),
        (0, b"inside".to_vec())
    );
    assert_eq!(sandbox.probe("write", "new.txt", Access::ReadWrite).0, 0);
    let written = std::fs::read_to_string(sandbox.granted().join("new.txt")).unwrap();
    assert_eq!(written, "pwned");
}

#[test]
fn dot_dot_out_of_a_preopen_is_refused() {
    let sandbox = Sandbox::new();
    assert_refused(&sandbox, "read", "../secret", Access::ReadWrite);
    assert_refused(&sandbox, "write", "../secret", Access::ReadWrite);
    assert_refused(&sandbox, "read", "sub/../../secret", Access::ReadWrite);
}

#[test]
fn symlinks_pointing_outside_are_refused() {
    let sandbox = Sandbox::new();
    let granted = sandbox.granted();
    std::os::unix::fs::symlink(sandbox.secret(), granted.join("abs-link")).unwrap();
    std::os::unix::fs::symlink("../secret", granted.join("rel-link")).unwrap();
    for link in ["abs-link", "rel-link"] {
        assert_refused(&sandbox, "read", link, Access::ReadWrite);
        assert_refused(&sandbox, "write", link, Access::ReadWrite);
    }
}

#[test]
fn absolute_host_paths_are_refused() {
    let sandbox = Sandbox::new();
    let secret = sandbox.secret();
    assert_refused(
        &sandbox,
        "read",
        secret.to_str().unwrap(),
        Access::ReadWrite,
    );
    assert_refused(
        &sandbox,
        "write",
        secret.to_str().unwrap(),
        Access::ReadWrite,
    );
    assert_refused(&sandbox, "read", "/etc/passwd", Access::ReadOnly);
}

#[test]
fn read_only_grants_refuse_writes() {
    let sandbox = Sandbox::new();
    let (code, _) = sandbox.probe("write", "inside.txt", Access::ReadOnly);
    assert!((1..100).contains(&code), "exit {code}");
    let (code, _) = sandbox.probe("write", "created.txt", Access::ReadOnly);
    assert!((1..100).contains(&code), "exit {code}");
    let inside = std::fs::read_to_string(sandbox.granted().join("inside.txt")).unwrap();
    assert_eq!(inside, "inside");
    assert!(!Path::new(&sandbox.granted().join("created.txt")).exists());
}

#[test]
fn only_granted_env_vars_reach_the_guest() {
    let grants = Grants {
        env: vec!["GRANTED_VAR".into(), "UNSET_VAR".into()],
        ..Grants::default()
    };
    // A host with PATH, a secret and the granted variable.
    let host_env = |name: &str| match name {
        "GRANTED_VAR" => Some("yes".to_string()),
        "SECRET_TOKEN" => Some("hunter2".to_string()),
        "PATH" => std::env::var("PATH").ok(),
        _ => None,
    };
    let Resolved { preopens, env } = grants.resolve(None, None, host_env).unwrap();
    let p = Params {
        env,
        preopens,
        ..Params::default()
    };
    let out = run_blob(
        &Blob::new(include_str!("../../../../tests/fixtures/wasm/echo.wat")),
        &p,
    )
    .unwrap();
    assert_eq!(
        out.stderr, b"GRANTED_VAR=yes\0",
        "the guest's whole environment"
    );
}
