//! Native hooks: a process run as runc runs an OCI hook, but killed as a whole process group on
//! timeout (runc kills only the hook's pid, leaving its children behind).

use std::io::{self, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use thiserror::Error;

use crate::output::{self, Captured};
use crate::{Exit, OUTPUT_LIMIT, Outcome};

/// Time allowed for output pipes to drain after the hook's process group was killed.
const DRAIN_GRACE: Duration = Duration::from_millis(200);

/// Why a native hook could not run to its end.
#[derive(Debug, Error)]
pub enum NativeError {
    /// The program could not be started.
    #[error("cannot start {}", path.display())]
    Spawn {
        /// The program.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// It ran past its timeout and was killed with its process group.
    #[error("ran past its timeout of {secs}s and was killed with its process group{output}")]
    Timeout {
        /// The timeout, in seconds.
        secs: u64,
        /// `: ` and what it wrote, or nothing.
        output: String,
    },
    /// Waiting for it failed.
    #[error("cannot wait for the hook")]
    Wait(#[source] io::Error),
}

/// One native hook run, as the caller resolved it.
#[derive(Debug, Clone)]
pub struct NativeCommand<'a> {
    /// The executable.
    pub path: &'a Path,
    /// OCI `execv` semantics: `args[0]` is argv0.
    pub args: &'a [String],
    /// The hook's whole environment, `KEY=VALUE`.
    pub env: &'a [String],
    /// Wall-clock bound.
    pub timeout: Duration,
}

/// Runs the hook with `stdin` (the OCI state) and waits at most its timeout.
pub fn run(cmd: &NativeCommand<'_>, stdin: &[u8]) -> Result<Outcome, NativeError> {
    let started = Instant::now();
    let timeout = cmd.timeout;
    let mut child = command(cmd).spawn().map_err(|source| NativeError::Spawn {
        path: cmd.path.to_path_buf(),
        source,
    })?;
    let pgid = Pid::from_raw(child.id() as i32);
    feed_stdin(child.stdin.take(), stdin.to_vec());
    let stdout = output::capture(child.stdout.take().expect("piped"), OUTPUT_LIMIT);
    let stderr = output::capture(child.stderr.take().expect("piped"), OUTPUT_LIMIT);

    let (tx, exited) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let deadline = deadline_after(started, timeout);
    match exited.recv_timeout(timeout) {
        Ok(status) => {
            let status = status.map_err(NativeError::Wait)?;
            let (out, err) = (
                output::collect(&stdout, deadline),
                output::collect(&stderr, deadline),
            );
            Ok(outcome(status, out, err, started))
        }
        Err(_) => {
            // Kill the whole group: a hook's forked children must not outlive it.
            let _ = killpg(pgid, Signal::SIGKILL);
            let _ = exited.recv();
            let grace = deadline_after(Instant::now(), DRAIN_GRACE);
            let err = output::collect(&stderr, grace);
            let out = output::collect(&stdout, grace);
            let text = crate::pick_output(&out.bytes, &err.bytes);
            let output = if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            };
            Err(NativeError::Timeout {
                secs: timeout.as_secs(),
                output,
            })
        }
    }
}

/// `start + wait`, never panicking: a wait too long for the clock is "as late as the clock
/// goes", which for a bounded timeout never happens (hookhost-core caps timeouts at an hour).
fn deadline_after(start: Instant, wait: Duration) -> Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(Duration::from_secs(u64::from(u32::MAX))))
        .unwrap_or(start)
}

fn command(hook: &NativeCommand<'_>) -> Command {
    let mut cmd = Command::new(hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    cmd.envs(hook.env.iter().map(|pair| crate::split_env(pair)));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    cmd
}

/// Writes the state on a thread: a hook that never reads its stdin must not block us, and one
/// that closes it early is not an error.
fn feed_stdin(stdin: Option<std::process::ChildStdin>, bytes: Vec<u8>) {
    if let Some(mut stdin) = stdin {
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
}

fn outcome(status: ExitStatus, out: Captured, err: Captured, started: Instant) -> Outcome {
    let exit = match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(sig)) => Exit::Signal(sig),
        (None, None) => Exit::Code(-1),
    };
    Outcome {
        exit,
        truncated: out.truncated || err.truncated,
        stdout: out.bytes,
        stderr: err.bytes,
        duration: started.elapsed(),
        fuel_used: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sh {
        path: PathBuf,
        args: Vec<String>,
        env: Vec<String>,
        timeout: Duration,
    }

    fn sh(script: &str, timeout: u64) -> Sh {
        Sh {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["A=1".into(), "HOOKHOST_STAGE=poststop".into()],
            timeout: Duration::from_secs(timeout),
        }
    }

    fn go(hook: &Sh, stdin: &[u8]) -> Result<Outcome, NativeError> {
        let cmd = NativeCommand {
            path: &hook.path,
            args: &hook.args,
            env: &hook.env,
            timeout: hook.timeout,
        };
        run(&cmd, stdin)
    }

    #[test]
    fn passes_argv0_env_and_stdin() {
        let spec = sh(
            r#"echo "$0 $A $HOOKHOST_STAGE $(cat)"; echo "HOME=${HOME-unset}" >&2"#,
            5,
        );
        let out = go(&spec, b"{\"id\":\"x\"}").unwrap();
        assert!(out.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "sh 1 poststop {\"id\":\"x\"}\n"
        );
        assert_eq!(String::from_utf8_lossy(&out.stderr), "HOME=unset\n");
    }

    #[test]
    fn reports_exit_codes_and_signals() {
        assert_eq!(go(&sh("exit 3", 5), b"").unwrap().exit, Exit::Code(3));
        let out = go(&sh("kill -TERM $$", 5), b"").unwrap();
        assert_eq!(out.exit, Exit::Signal(15));
        assert_eq!(out.exit.to_string(), "killed by signal 15 (SIGTERM)");
    }

    #[test]
    fn bounds_output_without_blocking_the_hook() {
        let out = go(
            &sh("head -c 5000000 /dev/zero; exec 0<&-; echo done >&2", 10),
            b"",
        )
        .unwrap();
        assert!(out.success());
        assert_eq!(out.stdout.len(), OUTPUT_LIMIT);
        assert!(out.truncated);
        assert_eq!(out.stderr, b"done\n");
    }

    #[test]
    fn a_missing_program_is_a_spawn_error_naming_it() {
        let mut spec = sh("", 5);
        spec.path = "/nonexistent/hook".into();
        let err = go(&spec, b"").unwrap_err().to_string();
        assert!(err.contains("cannot start /nonexistent/hook"), "{err}");
    }

    /// The runner is a leaf that trusts its caller's timeout, but no value may panic it
    /// (`Instant + Duration` does on overflow).
    #[test]
    fn any_timeout_is_safe() {
        for timeout in [Duration::from_secs(u64::MAX), Duration::MAX] {
            let mut spec = sh("exit 0", 0);
            spec.timeout = timeout;
            assert!(go(&spec, b"").unwrap().success());
        }
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) >= now);
    }
}
