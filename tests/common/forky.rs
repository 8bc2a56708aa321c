//! The two stacks the engine tests run on: Debian 12's runc 1.1 and Podman 4.3 on this machine,
//! and today's runc (>= 1.2) and Podman (>= 5) with conmon from Debian testing (forky), which
//! need a newer glibc than Debian 12's and so run chrooted in the root scripts/forky-root.sh
//! builds and caches (scripts/setup.sh runs it).
//!
//! `HOOKHOST_TEST_STACK=forky` runs a test file's runc and Podman on forky (scripts/test.sh runs
//! the engine test files so, after their Debian 12 run); tests/forky.rs always does.
//!
//! Each command on forky runs in a mount namespace of its own (`unshare --mount`): the root
//! bind-mounted on itself (runc needs it to be a mount point), /proc, /sys and /dev rbind-mounted
//! in, one host directory shared by all of them as /run, and the temp dir (/tmp) rbind-mounted at
//! the same path, so a test's files have one path inside and out. The mounts go with the namespace's last process, whatever
//! happens to the test: nothing is ever mounted in the cached root itself. The static hookhost
//! under test runs there unchanged: [`visible_binary`] puts it where the root sees it.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::HOOKHOST;
use super::engines::SYSTEM_PATH;

/// Which runc and Podman a test drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stack {
    /// This machine's own: runc 1.1.5, Podman 4.3 (Debian 12).
    Debian12,
    /// runc >= 1.2, Podman >= 5, conmon, from Debian testing, in the forky root.
    Forky,
}

/// The variable that selects the stack of a test run.
const STACK_VAR: &str = "HOOKHOST_TEST_STACK";

/// The host directory every forky command sees as /run: one for all of them, as a machine has
/// one /run, so that runc's state (`/run/runc`) outlives the command that created a container
/// (Podman's `podman rm`, a later `runc delete`). Under the host's /run, a tmpfs.
const RUN: &str = "/run/hookhost-forky";

/// Sets up the namespace's mounts (`$1` the root, `$2` the temp dir, `$3` the working dir, `$4`
/// the host directory for /run) and runs the rest of the arguments chrooted there.
const ENTER: &str = r#"set -e
root=$1 tmp=$2 cwd=$3 run=$4
shift 4
mount --bind "$root" "$root"
for fs in /proc /sys /dev; do mount --rbind "$fs" "$root$fs"; done
mkdir -p -m 0755 "$run"
mount --rbind "$run" "$root/run"
mount --rbind "$tmp" "$root$tmp"
exec chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@""#;

impl Stack {
    /// The stack this test run is for: `HOOKHOST_TEST_STACK` (`debian12`, the default, or
    /// `forky`).
    pub fn under_test() -> Stack {
        match std::env::var(STACK_VAR).as_deref() {
            Err(_) | Ok("debian12") => Stack::Debian12,
            Ok("forky") => Stack::Forky,
            Ok(other) => panic!("{STACK_VAR}={other}: want debian12 or forky"),
        }
    }

    /// `program` of this stack (for forky, run in the root; see [`Stack::wrap`]).
    pub fn command(self, program: impl AsRef<OsStr>) -> Command {
        self.wrap(Command::new(program))
    }

    /// `cmd` as is on Debian 12; on forky, the same program, arguments, explicitly set
    /// variables and working directory, run in the root with only those variables (and PATH).
    pub fn wrap(self, cmd: Command) -> Command {
        match self {
            Stack::Debian12 => cmd,
            Stack::Forky => in_root(&cmd),
        }
    }

    /// Fails loudly unless `tool` can run on this stack (as `common::require`).
    pub fn require(self, tool: &str) {
        match self {
            Stack::Debian12 => super::require(tool),
            Stack::Forky => {
                let root = root();
                let found = ["usr/bin", "usr/sbin", "bin", "sbin"]
                    .iter()
                    .any(|dir| root.join(dir).join(tool).is_file());
                assert!(
                    found,
                    "`{tool}` is not in the forky root {}",
                    root.display()
                );
            }
        }
    }
}

/// The forky root, checked: root, with the stamp scripts/forky-root.sh writes when it is
/// complete, and the temp dir the tests' files are in.
pub fn root() -> PathBuf {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it mounts and runs real containers)"
    );
    let dir = std::env::var_os("HOOKHOST_FORKY_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/hookhost-forky-root"));
    let root = dir.join("root");
    assert!(
        dir.join("STAMP").is_file() && root.join("usr/sbin/runc").is_file(),
        "no forky root with runc and Podman in {}: run scripts/forky-root.sh (scripts/setup.sh does)",
        dir.display()
    );
    let tmp = std::env::temp_dir();
    assert!(
        root.join(tmp.strip_prefix("/").unwrap()).is_dir(),
        "the temp dir {} has no mount point in the forky root",
        tmp.display()
    );
    root
}

/// `cmd`, run in the forky root in a mount namespace of its own.
fn in_root(cmd: &Command) -> Command {
    let cwd = cmd
        .get_current_dir()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let mut wrapped = Command::new("/usr/bin/unshare");
    wrapped
        .args(["--mount", "--propagation", "private", "--", "/bin/sh", "-c"])
        .arg(ENTER)
        .arg("forky")
        .arg(root())
        .arg(std::env::temp_dir())
        .arg(cwd)
        .arg(RUN)
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        // Podman 5 warns at every call on this machine's cgroup v1 layout.
        .env("PODMAN_IGNORE_CGROUPSV1_WARNING", "1");
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => wrapped.env(key, value),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// The hookhost under test at a path `stack` can run it from: itself on Debian 12; on forky, a
/// hard link (else a copy) in `dir`, which must be under the temp dir, with the small
/// executables beside it when the build has them.
pub fn visible_binary(stack: Stack, dir: &Path) -> PathBuf {
    if stack == Stack::Debian12 {
        return PathBuf::from(HOOKHOST);
    }
    let bin = dir.join(hookhost_types::HOOKHOST_EXECUTABLE);
    fs_link_or_copy(Path::new(HOOKHOST), &bin);
    for small in [
        hookhost_types::STAGE_EXECUTABLE,
        hookhost_types::RUNTIME_EXECUTABLE,
    ] {
        let from = Path::new(HOOKHOST).with_file_name(small);
        if from.exists() {
            fs_link_or_copy(&from, &dir.join(small));
        }
    }
    bin
}

fn fs_link_or_copy(from: &Path, to: &Path) {
    if fs::hard_link(from, to).is_err() {
        fs::copy(from, to).unwrap();
    }
}
