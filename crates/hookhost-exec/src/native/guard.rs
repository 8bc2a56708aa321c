//! The guard: a small process that owns a native hook's process group and kills it when
//! hookhost goes away, however it goes (a runtime's own hook timeout is a `SIGKILL` of
//! `hookhost stage`, which no handler of hookhost's could catch).
//!
//! The guard is forked (not exec'd) before the hook and leads a new process group; the hook is
//! spawned into that group, so the group's id cannot be reused while the guard lives — no other
//! process can ever be hit by its kill. The guard blocks on a pipe whose only write end
//! hookhost holds: end of file (hookhost exited or died) makes it kill its whole group,
//! itself included; one byte ("disarm") makes it exit alone.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2, setpgid, write};

/// A running guard; its pid is the hook's process group id.
#[derive(Debug)]
pub struct Guard {
    pid: Pid,
    /// The write end of the guard's pipe; closing it without writing arms the kill.
    line: Option<OwnedFd>,
}

impl Guard {
    /// Forks the guard as the leader of a new process group.
    pub fn start() -> io::Result<Guard> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        // SAFETY: the child runs only async-signal-safe calls (`guard_main`) and `_exit`s.
        match unsafe { fork() }? {
            ForkResult::Child => guard_main(read.as_raw_fd()),
            ForkResult::Parent { child } => {
                drop(read);
                // Both sides set the group, so it exists whichever runs first.
                let _ = setpgid(child, child);
                Ok(Guard {
                    pid: child,
                    line: Some(write),
                })
            }
        }
    }

    /// The process group the hook joins.
    pub fn pgid(&self) -> Pid {
        self.pid
    }

    /// Kills the whole group (the guard with it) and reaps the guard.
    pub fn kill_group(mut self) {
        let _ = killpg(self.pid, Signal::SIGKILL);
        self.line = None;
        let _ = waitpid(self.pid, None);
    }

    /// Lets the guard exit without killing anything (what is left of the group stays), and
    /// reaps it.
    pub fn disarm(mut self) {
        if let Some(line) = self.line.take() {
            let _ = write(&line, b"d");
        }
        let _ = waitpid(self.pid, None);
    }
}

impl Drop for Guard {
    /// A guard dropped without a decision (an error path) kills the group: fail closed.
    fn drop(&mut self) {
        if self.line.take().is_some() {
            let _ = killpg(self.pid, Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }
}

/// The guard's whole life, in the forked child: only async-signal-safe calls from here on
/// (the parent may have had other threads), and no allocation.
fn guard_main(read: i32) -> ! {
    // SAFETY: plain system calls on integers; nothing here touches the parent's heap or locks.
    unsafe {
        libc::setpgid(0, 0);
        // Signals meant for the hook's group (`kill 0` in a hook script) must not remove it.
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Hold nothing of the parent's (a copy of a pipe's write end would keep its reader
        // waiting), except the guard line.
        if read > 0 {
            libc::close_range(0, (read - 1) as u32, 0);
        }
        libc::close_range(read as u32 + 1, u32::MAX, 0);
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(read, (&raw mut byte).cast(), 1);
            if n >= 0 || *libc::__errno_location() != libc::EINTR {
                break n;
            }
        };
        if n != 1 {
            libc::kill(0, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}
