//! One poll loop for a native hook's pipes and its exit: the OCI state written to its stdin,
//! its stdout and stderr read (the first bytes kept, the rest read and dropped so the hook
//! never blocks on a full pipe), and its pidfd watched — on the calling thread, no helpers.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::unistd::Pid;

/// What was kept of one output stream.
#[derive(Debug, Default)]
pub struct Captured {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// One output pipe and what was kept of it.
struct Output {
    pipe: Option<std::fs::File>,
    kept: Captured,
    limit: usize,
}

impl Output {
    fn read_some(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0u8; 8192];
        match pipe.read(&mut buf) {
            Ok(0) => self.pipe = None,
            Ok(n) => {
                let room = self.limit.saturating_sub(self.kept.bytes.len());
                self.kept.bytes.extend_from_slice(&buf[..n.min(room)]);
                self.kept.truncated |= n > room;
            }
            Err(e) if would_wait(&e) => {}
            Err(_) => self.pipe = None,
        }
    }
}

/// The hook's three pipes, driven by [`Pipes::pump`].
pub struct Pipes {
    stdin: Option<std::fs::File>,
    pending: Vec<u8>,
    written: usize,
    out: Output,
    err: Output,
}

/// Why [`Pipes::pump`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum Woke {
    /// The watched process exited.
    Exited,
    /// Both output pipes reached end of file (only when no exit was watched).
    Drained,
    /// The deadline passed.
    Deadline,
}

impl Pipes {
    /// Takes the child's pipes (all must have been piped) and the bytes for its stdin.
    pub fn new(child: &mut std::process::Child, stdin: &[u8], limit: usize) -> io::Result<Pipes> {
        let file = |fd: OwnedFd| -> io::Result<std::fs::File> {
            let flags = OFlag::from_bits_retain(fcntl(&fd, FcntlArg::F_GETFL)?);
            fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
            Ok(std::fs::File::from(fd))
        };
        let output = |fd: OwnedFd| -> io::Result<Output> {
            Ok(Output {
                pipe: Some(file(fd)?),
                kept: Captured::default(),
                limit,
            })
        };
        Ok(Pipes {
            stdin: child
                .stdin
                .take()
                .map(OwnedFd::from)
                .map(file)
                .transpose()?,
            pending: stdin.to_vec(),
            written: 0,
            out: output(child.stdout.take().expect("piped").into())?,
            err: output(child.stderr.take().expect("piped").into())?,
        })
    }

    /// Moves bytes until `exit` (a pidfd) is readable or `until` passes; without `exit`,
    /// until both outputs are at end of file or `until` passes.
    pub fn pump(&mut self, exit: Option<BorrowedFd<'_>>, until: Instant) -> io::Result<Woke> {
        loop {
            if exit.is_none() && self.out.pipe.is_none() && self.err.pipe.is_none() {
                return Ok(Woke::Drained);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Woke::Deadline);
            }
            let mut fds = Vec::with_capacity(4);
            let exit_slot = exit.map(|fd| push(&mut fds, fd, PollFlags::POLLIN));
            let out_slot = self
                .out
                .pipe
                .as_ref()
                .map(|p| push(&mut fds, p.as_fd(), PollFlags::POLLIN));
            let err_slot = self
                .err
                .pipe
                .as_ref()
                .map(|p| push(&mut fds, p.as_fd(), PollFlags::POLLIN));
            let in_slot = self
                .stdin
                .as_ref()
                .map(|p| push(&mut fds, p.as_fd(), PollFlags::POLLOUT));
            // Round up, so a wait of less than a millisecond does not spin.
            let ms = left.as_millis().saturating_add(1).min(i32::MAX as u128) as i32;
            match poll(
                &mut fds,
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
            let ready = |slot: Option<usize>| slot.is_some_and(|i| fds[i].any().unwrap_or(true));
            let (exited, out, err, input) = (
                ready(exit_slot),
                ready(out_slot),
                ready(err_slot),
                ready(in_slot),
            );
            drop(fds);
            if out {
                self.out.read_some();
            }
            if err {
                self.err.read_some();
            }
            if input {
                self.feed();
            }
            if exited {
                return Ok(Woke::Exited);
            }
        }
    }

    /// Writes what the pipe takes of the state; a hook that closes its stdin early is not an
    /// error.
    fn feed(&mut self) {
        let Some(stdin) = self.stdin.as_mut() else {
            return;
        };
        match stdin.write(&self.pending[self.written..]) {
            Ok(n) => {
                self.written += n;
                if self.written == self.pending.len() {
                    self.stdin = None;
                }
            }
            Err(e) if would_wait(&e) => {}
            Err(_) => self.stdin = None,
        }
    }

    /// What was kept of stdout and stderr.
    pub fn finish(self) -> (Captured, Captured) {
        (self.out.kept, self.err.kept)
    }
}

fn push<'fd>(fds: &mut Vec<PollFd<'fd>>, fd: BorrowedFd<'fd>, events: PollFlags) -> usize {
    fds.push(PollFd::new(fd, events));
    fds.len() - 1
}

fn would_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}

/// A pidfd for `pid`: readable once the process has exited.
pub fn pidfd(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}
