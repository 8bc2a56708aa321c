//! Security properties, each proved through the real CLI (and runc where the stage runner is
//! the point): registry permissions, refusal of entries and modules other users can write,
//! digest pinning, and the WASM sandbox against a guest that plants symlinks.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use common::{Bundle, Host, Runc, require, text, unique, wat_module};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// The stored module of the only WASM hook registered in `host`.
fn module_blob(host: &Host) -> PathBuf {
    let mut blobs: Vec<_> = fs::read_dir(host.root().join("modules"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(blobs.len(), 1, "{blobs:?}");
    blobs.pop().unwrap()
}

#[test]
fn registry_dirs_are_private_and_owned_by_root() {
    require("true");
    let host = Host::new();
    host.ok(&["create", "t", "/bin/true"]);
    for sub in ["", "hooks", "modules", "cache"] {
        let meta = fs::metadata(host.root().join(sub)).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700, "{sub}: {:o}", meta.mode());
        assert_eq!(meta.uid(), 0, "{sub}");
    }
    let entry = fs::metadata(host.root().join("hooks/t.json")).unwrap();
    assert_eq!(entry.mode() & 0o777, 0o600);
}

#[test]
fn an_entry_another_user_can_write_is_refused_with_the_fix() {
    let host = Host::new();
    host.ok(&["create", "t", "/bin/true"]);
    let entry = host.root().join("hooks/t.json");
    chmod(&entry, 0o666);
    let err = host.fails(&["inspect", "t"]);
    assert!(
        err.contains("writable by its group and other users") && err.contains("chmod go-w"),
        "{err}"
    );
    // Injection refuses too, and leaves config.json as it was.
    let bundle = Bundle::new("true");
    let before = fs::read(bundle.config_file()).unwrap();
    let err = host.fails(&["inject", "--bundle", bundle.path_str(), "--add-hook", "t"]);
    assert!(err.contains("chmod go-w"), "{err}");
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    // Owned by someone else: refused even when not writable by others.
    chmod(&entry, 0o600);
    nix::unistd::chown(&entry, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let err = host.fails(&["try", "t"]);
    assert!(
        err.contains("owned by uid 65534") && err.contains("chown root"),
        "{err}"
    );
    nix::unistd::chown(&entry, Some(nix::unistd::Uid::from_raw(0)), None).unwrap();
    host.ok(&["try", "t"]);
}

#[test]
fn a_registry_dir_another_user_can_write_is_refused() {
    let host = Host::new();
    host.ok(&["create", "t", "/bin/true"]);
    chmod(&host.root().join("hooks"), 0o777);
    let err = host.fails(&["ls"]);
    assert!(err.contains("hooks") && err.contains("chmod go-w"), "{err}");
    let err = host.fails(&["create", "u", "/bin/true"]);
    assert!(err.contains("chmod go-w"), "{err}");
    chmod(&host.root().join("hooks"), 0o700);
    assert!(host.ok(&["ls", "-q"]).contains('t'));
}

#[test]
fn a_module_another_user_can_write_is_refused_at_stage_time() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "noop");
    host.ok(&["create", "noop", s(&module)]);
    assert!(host.ok(&["try", "noop"]).contains("exit status 0"));
    let blob = module_blob(&host);
    chmod(&blob, 0o646);
    let out = host.run(&["try", "noop"]);
    assert!(!out.status.success());
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(
        all.contains("writable by other users") && all.contains("chmod go-w"),
        "{all}"
    );
    chmod(&blob, 0o600);
    // The compile cache decides what code runs as much as the module does.
    chmod(&host.root().join("cache"), 0o770);
    let out = host.run(&["try", "noop"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success() && all.contains("cache"), "{all}");
}

#[test]
fn a_tampered_module_is_refused_through_the_cli() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "noop");
    host.ok(&["create", "noop", s(&module)]);
    let blob = module_blob(&host);
    let other = wat_module(host.dir.path(), "exit3");
    fs::copy(&other, &blob).unwrap();
    // Without a cache the module must be recompiled from the (tampered) blob.
    for entry in fs::read_dir(host.root().join("cache")).unwrap() {
        fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let out = host.run(&["try", "noop"]);
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains("does not match its registered digest"),
        "{all}"
    );
    assert!(
        !all.contains("exit status 3"),
        "the tampered module ran: {all}"
    );
}

#[test]
fn pin_records_the_digest_and_the_stage_runner_refuses_a_changed_binary() {
    let runc = Runc::new();
    let host = Host::new();
    let hook = host.script("pinned.sh", "echo pinned-ran >&2");
    host.ok(&["create", "--pin", "pinned", s(&hook)]);
    let view: serde_json::Value = serde_json::from_str(&host.ok(&["inspect", "pinned"])).unwrap();
    let digest = view[0]["Digest"].as_str().unwrap().to_string();
    assert_eq!(
        digest,
        hookhost_exec::fs::sha256_hex(&fs::read(&hook).unwrap())
    );

    // Unchanged: the container starts.
    let bundle = Bundle::new("echo container-ran");
    host.inject(&bundle, &["pinned"]);
    let out = runc.run(&bundle, &unique("pin-ok"));
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Changed after registration: refused by the stage runner, container not started.
    fs::write(&hook, "#!/bin/sh\necho evil >&2\n").unwrap();
    let bundle = Bundle::new("echo container-ran");
    host.inject(&bundle, &["pinned"]);
    let out = runc.run(&bundle, &unique("pin-changed"));
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(!text(&out.stdout).contains("container-ran"));
    assert!(
        stderr.contains("has changed since it was registered") && stderr.contains(&digest),
        "{stderr}"
    );
    assert!(!stderr.contains("evil"), "the changed binary ran: {stderr}");

    // Pinning a binary another user can replace is refused at create time.
    let shared = host.script("shared.sh", "true");
    chmod(&shared, 0o777);
    let err = host.fails(&["create", "--pin", "shared", s(&shared)]);
    assert!(err.contains("chmod go-w"), "{err}");
}

/// A guest that creates `link` -> TARGET inside its rw preopen (fd 3), then opens READ through
/// it and copies it to stdout. Exit: 100+errno if the symlink was refused, errno if the open
/// was, 0 when it read the file.
fn symlink_guest(target: &str, read: &str) -> Vec<u8> {
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_symlink" (func $symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{target}")
  (data (i32.const 2048) "link")
  (data (i32.const 3072) "{read}")
  (func (export "_start") (local $e i32)
    (local.set $e (call $symlink (i32.const 1024) (i32.const {tlen}) (i32.const 3) (i32.const 2048) (i32.const 4)))
    (if (local.get $e) (then (call $exit (i32.add (i32.const 100) (local.get $e)))))
    (local.set $e (call $open (i32.const 3) (i32.const 1) (i32.const 3072) (i32.const {rlen})
      (i32.const 0) (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 8)))
    (if (local.get $e) (then (call $exit (local.get $e))))
    (i32.store (i32.const 0) (i32.const 4096))
    (i32.store (i32.const 4) (i32.const 4096))
    (drop (call $read (i32.load (i32.const 8)) (i32.const 0) (i32.const 1) (i32.const 12)))
    (i32.store (i32.const 4) (i32.load (i32.const 12)))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))
    (call $exit (i32.const 0))))"#,
        tlen = target.len(),
        rlen = read.len(),
    );
    wat::parse_str(wat).unwrap()
}

#[test]
fn a_wasm_hook_cannot_escape_its_grant_through_symlinks_it_creates() {
    let host = Host::new();
    let outside = host.dir.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret.txt"), "host-secret-42").unwrap();
    let granted = outside.join("granted");
    fs::create_dir(&granted).unwrap();
    let cases = [
        (s(&outside).to_string(), "link/secret.txt"),
        ("..".to_string(), "link/secret.txt"),
        (format!("{}/secret.txt", s(&outside)), "link"),
        ("/etc".to_string(), "link/passwd"),
    ];
    for (i, (target, read)) in cases.iter().enumerate() {
        let _ = fs::remove_file(granted.join("link"));
        let module = host.dir.path().join(format!("esc{i}.wasm"));
        fs::write(&module, symlink_guest(target, read)).unwrap();
        let name = format!("esc{i}");
        let grant = format!("{}:/data:rw", s(&granted));
        host.ok(&["create", "--allow-dir", &grant, &name, s(&module)]);
        let out = host.run(&["try", &name]);
        let stdout = text(&out.stdout) + &text(&out.stderr);
        assert!(
            !out.status.success(),
            "{target} -> {read}: the guest read through its symlink: {stdout}"
        );
        assert!(
            !stdout.contains("host-secret-42") && !stdout.contains("root:"),
            "{target} -> {read}: {stdout}"
        );
        // Seen with wasmtime-wasi 48: an absolute target traps the guest at path_symlink; a
        // `..` target creates the link but the open through it fails with EPERM (exit 63).
        assert!(
            stdout.contains("trapped") || stdout.contains("exit status 63"),
            "{target} -> {read}: {stdout}"
        );
    }
}

#[test]
fn a_wasm_hook_sees_only_the_environment_it_was_given() {
    let host = Host::new();
    let module = wat_module(host.dir.path(), "echo");
    host.ok(&["create", "--env", "GIVEN=1", "echo", s(&module)]);
    let out = host
        .cmd()
        .args(["try", "echo"])
        .env("HOOKHOST_TEST_SECRET", "host-env-secret")
        .output()
        .unwrap();
    let all = text(&out.stdout);
    assert!(out.status.success(), "{all}");
    assert!(
        all.contains("GIVEN=1") && all.contains("HOOKHOST_STAGE=prestart"),
        "{all}"
    );
    assert!(!all.contains("host-env-secret"), "{all}");
    assert!(!all.contains("PATH="), "host PATH leaked: {all}");
}

/// Fuzz finding (target `state`): serde_json's default float parsing is not correctly rounded,
/// so a long number in an unknown state field changed by one ULP on a parse/serialise/parse
/// round trip. Fixed by serde_json's `float_roundtrip` feature.
#[test]
fn state_round_trip_keeps_unknown_numbers_exact() {
    use hookhost_types::State;
    let input =
        br#"{"id":"x","sa":{"n":111111111111111111111111111111111111111111111000000000111}}"#;
    let state = State::parse(input).unwrap();
    let again = State::parse(&serde_json::to_vec(&state).unwrap()).unwrap();
    assert_eq!(state, again);
}
