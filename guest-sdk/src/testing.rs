//! Checking a precreate hook's edit against grants in native unit tests, with hookhost's own
//! checker: `cargo test` then catches an edit outside the hook's `--may-adjust` before the
//! module is built or tried.
//!
//! ```no_run
//! use hookhost_guest::Precreate;
//!
//! const CONFIG: &[u8] = br#"{"ociVersion":"1.2.0","process":{"cwd":"/","args":["sh"],
//!     "user":{"uid":0,"gid":0},"env":["PATH=/bin"]}}"#;
//! let mut config = Precreate::parse(CONFIG).unwrap();
//! config.set_env("GPU_VISIBLE", "0").unwrap();
//! let diff = hookhost_guest::testing::check_edit(CONFIG, &config.to_json(), "env=GPU_*").unwrap();
//! assert!(diff.contains("+ env GPU_VISIBLE"));
//! ```
//!
//! The check is the one hookhost makes when a container is created, so the grant vocabulary
//! is not written twice: it runs `hookhost try` (the `hookhost` on PATH, or `$HOOKHOST_BIN`)
//! on a scratch bundle holding `before` as its config.json, with a stand-in hook that returns
//! `after`. Nothing is registered.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The variable naming the hookhost executable to check with (default: `hookhost` on PATH).
pub const BIN_ENV: &str = "HOOKHOST_BIN";

/// Checks that changing the config `before` into `after` is within `may_adjust` (what
/// `hookhost create --may-adjust` takes; empty: the hook may change nothing). `Ok` holds the
/// diff hookhost printed; `Err` what it said of the refused edit (each change marked with the
/// grant that would allow it), or why it could not check.
pub fn check_edit(before: &[u8], after: &[u8], may_adjust: &str) -> Result<String, String> {
    let dir = Scratch::new().map_err(|e| format!("cannot make a scratch bundle: {e}"))?;
    let hook = dir.0.join("edit.sh");
    let written = std::fs::write(dir.0.join("config.json"), before)
        .and_then(|()| std::fs::write(dir.0.join("after.json"), after))
        .and_then(|()| std::fs::write(&hook, stand_in(&dir.0.join("after.json"))))
        .and_then(|()| make_executable(&hook));
    written.map_err(|e| format!("cannot write the scratch bundle: {e}"))?;
    let bin = std::env::var_os(BIN_ENV).unwrap_or_else(|| "hookhost".into());
    let mut command = Command::new(&bin);
    command.arg("try").arg(&hook).args(["--type", "precreate"]);
    command.arg("--bundle").arg(&dir.0);
    if !may_adjust.is_empty() {
        command.args(["--may-adjust", may_adjust]);
    }
    let out = command.output().map_err(|e| match e.kind() {
        ErrorKind::NotFound => format!(
            "{} not found: install hookhost, or set {BIN_ENV} to its path",
            Path::new(&bin).display()
        ),
        _ => format!("cannot run {}: {e}", Path::new(&bin).display()),
    })?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    match out.status.success() {
        true => Ok(stdout),
        false => Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr))),
    }
}

/// A hook that drains the config it is given and returns `after`.
fn stand_in(after: &Path) -> String {
    let quoted = after.display().to_string().replace('\'', r"'\''");
    format!("#!/bin/sh\ncat > /dev/null\nexec cat '{quoted}'\n")
}

#[cfg(unix)]
fn make_executable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("checking edits needs a Unix host"))
}

/// A directory of its own under the temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> std::io::Result<Scratch> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("hookhost-guest-check-{}-{n}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
