//! Native hooks: a process run as runc runs an OCI hook, but with a lifecycle runc does not
//! give it. The hook runs in a process group owned by a [`guard`] process, so:
//!
//! - when the hook's own process exits, hookhost reads what is left of its output for at most
//!   [`EXIT_GRACE`] (a background child holding the pipes cannot hold the stage), then kills
//!   what is left of the group, unless the hook was registered to leave helpers running;
//! - on timeout the whole group is killed (runc kills only the hook's pid);
//! - if hookhost itself dies, by any signal including `SIGKILL`, the guard kills the group.
//!
//! One thread does all of it: a poll loop over the hook's pipes and a pidfd ([`pump`]).
//! What escapes: a process that leaves the group (`setsid`, `setpgid`) — cgroups would close
//! that, see the README's security model.

mod guard;
mod pump;

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::{Exit, Outcome};
use guard::Guard;
use pump::{Captured, Pipes, Woke};

/// How long output is still read after the hook's own process exited, for what a background
/// child of it may still be writing.
pub const EXIT_GRACE: Duration = Duration::from_millis(100);

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
    #[error(
        "ran past its timeout of {}s and was killed with its process group{output}",
        timeout.as_secs_f64()
    )]
    Timeout {
        /// The time limit it ran past (its timeout, or less when the caller's deadline cut it).
        timeout: Duration,
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
    /// Leave what is left of the hook's process group running after it exited successfully
    /// (as runc does) instead of killing it.
    pub leave_helpers: bool,
    /// How much of stdout and of stderr is kept ([`crate::OUTPUT_LIMIT`] for a stage hook).
    pub output_limit: usize,
}

/// Runs the hook with `stdin` (the OCI state) and waits at most its timeout.
pub fn run(cmd: &NativeCommand<'_>, stdin: &[u8]) -> Result<Outcome, NativeError> {
    let started = Instant::now();
    let spawn_error = |source| NativeError::Spawn {
        path: cmd.path.to_path_buf(),
        source,
    };
    let guard = Guard::start().map_err(spawn_error)?;
    let mut child = command(cmd, &guard).spawn().map_err(spawn_error)?;
    let pidfd =
        pump::pidfd(nix::unistd::Pid::from_raw(child.id() as i32)).map_err(NativeError::Wait)?;
    let mut pipes = Pipes::new(&mut child, stdin, cmd.output_limit).map_err(NativeError::Wait)?;

    let deadline = deadline_after(started, cmd.timeout);
    let woke = pipes
        .pump(Some(pidfd.as_fd()), deadline)
        .map_err(NativeError::Wait)?;
    if woke == Woke::Deadline {
        guard.kill_group();
        let _ = child.wait();
        let _ = pipes.pump(None, deadline_after(Instant::now(), DRAIN_GRACE));
        let (out, err) = pipes.finish();
        return Err(timeout_error(cmd.timeout, &out, &err));
    }
    let status = child.wait().map_err(NativeError::Wait)?;
    let grace = deadline_after(Instant::now(), EXIT_GRACE).min(deadline);
    pipes.pump(None, grace).map_err(NativeError::Wait)?;
    if cmd.leave_helpers && status.success() {
        guard.disarm();
    } else {
        guard.kill_group();
    }
    let (out, err) = pipes.finish();
    Ok(outcome(status, out, err, started))
}

fn timeout_error(timeout: Duration, out: &Captured, err: &Captured) -> NativeError {
    let text = crate::pick_output(&out.bytes, &err.bytes);
    let output = if text.is_empty() {
        String::new()
    } else {
        format!(": {text}")
    };
    NativeError::Timeout { timeout, output }
}

/// Test support (feature `test-support`): live (not zombie) processes in process group
/// `pgid`, to prove that nothing of a hook survived it.
#[cfg(any(test, feature = "test-support"))]
pub fn survivors(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // After the `(comm)` field: state, ppid, pgrp.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        if fields[2] == pgid.to_string() && fields[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

/// Test support: [`survivors`] once they had `wait` to die (a `SIGKILL` is delivered
/// asynchronously: a killed process may still show as running for a moment).
#[cfg(any(test, feature = "test-support"))]
pub fn survivors_after(pgid: i32, wait: Duration) -> Vec<i32> {
    let until = Instant::now() + wait;
    loop {
        let left = survivors(pgid);
        if left.is_empty() || Instant::now() >= until {
            return left;
        }
        std::thread::sleep(Duration::from_millis(10));
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

fn command(hook: &NativeCommand<'_>, guard: &Guard) -> Command {
    let mut cmd = Command::new(hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear();
    cmd.envs(hook.env.iter().map(|pair| crate::split_env(pair)));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(guard.pgid().as_raw());
    cmd
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
    use crate::OUTPUT_LIMIT;
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;

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
            leave_helpers: false,
            output_limit: OUTPUT_LIMIT,
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

    /// The hook prints its process group first: `PGID\n…`.
    fn pgid_of(out: &Outcome) -> i32 {
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Runs `script` with a 5 s timeout and checks it ended long before that (the old runner
    /// waited for the background child's pipes until the timeout).
    fn at_once(script: &str) -> Outcome {
        let started = Instant::now();
        let out = go(&sh(script, 5), b"").unwrap();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "{script}: took {took:?}");
        out
    }

    /// How long a killed process may take to be gone.
    const KILLED: Duration = Duration::from_secs(2);

    const PRINT_PGID: &str = "cut -d' ' -f5 /proc/$$/stat; ";

    /// `sleep 1000 &` keeps the output pipes open: the stage no longer waits for the timeout,
    /// keeps what the hook wrote, and kills the background child.
    #[test]
    fn a_background_child_holding_the_output_neither_holds_the_stage_nor_survives() {
        let out = at_once(&format!("{PRINT_PGID}sleep 1000 & echo started; exit 0"));
        assert!(out.success());
        assert!(!out.truncated);
        assert!(
            String::from_utf8_lossy(&out.stdout).ends_with("started\n"),
            "{out:?}"
        );
        assert_eq!(survivors_after(pgid_of(&out), KILLED), Vec::<i32>::new());
    }

    /// A failing hook with a background child: the failure comes at once, with its stderr.
    #[test]
    fn a_failure_is_reported_with_its_stderr_at_once() {
        let out = at_once(&format!(
            "{PRINT_PGID}echo failing-reason >&2; sleep 1003 & exit 7"
        ));
        assert_eq!(out.exit, Exit::Code(7));
        assert_eq!(out.stderr, b"failing-reason\n");
        assert_eq!(survivors_after(pgid_of(&out), KILLED), Vec::<i32>::new());
    }

    /// A background child that let go of the output is killed too, unless the hook was
    /// registered to leave helpers running.
    #[test]
    fn a_detached_background_child_is_killed_unless_helpers_may_stay() {
        let script = format!("{PRINT_PGID}sleep 1001 >/dev/null 2>&1 & exit 0");
        let out = go(&sh(&script, 5), b"").unwrap();
        assert!(out.success());
        assert_eq!(survivors_after(pgid_of(&out), KILLED), Vec::<i32>::new());

        let spec = sh(&script, 5);
        let cmd = NativeCommand {
            path: &spec.path,
            args: &spec.args,
            env: &spec.env,
            timeout: spec.timeout,
            leave_helpers: true,
            output_limit: OUTPUT_LIMIT,
        };
        let out = run(&cmd, b"").unwrap();
        let pgid = pgid_of(&out);
        let left = survivors(pgid);
        assert_eq!(left.len(), 1, "the sleep stays: {left:?}");
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }

    /// On timeout the whole group is killed and what the hook wrote is kept.
    #[test]
    fn a_timeout_kills_the_group_and_keeps_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let pgid_file = dir.path().join("pgid");
        let script = format!(
            "cut -d' ' -f5 /proc/$$/stat > {}; echo working; sleep 1002 & sleep 1000",
            pgid_file.display()
        );
        let err = go(&sh(&script, 1), b"").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with("ran past its timeout of 1s"),
            "{message}"
        );
        assert!(message.ends_with(": working"), "{message}");
        let pgid: i32 = std::fs::read_to_string(&pgid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert_eq!(survivors_after(pgid, KILLED), Vec::<i32>::new());
    }
}
