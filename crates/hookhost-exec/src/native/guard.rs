//! The guard: a small process that owns a native hook's process group and kills it when
//! hookhost goes away, however it goes (a runtime's own hook timeout is a `SIGKILL` of
//! `hookhost stage`, which no handler of hookhost's could catch).
//!
//! The guard is started (never exec'd) before the hook and leads a new process group; the hook
//! is spawned into that group, so the group's id cannot be reused while the guard lives — no
//! other process can ever be hit by its kill. The guard blocks on a pipe whose only write end
//! hookhost holds: end of file (hookhost exited or died) makes it kill its whole group, itself
//! included; one byte ("disarm") makes it exit alone.
//!
//! On x86-64 and aarch64 Linux the guard is a `clone(CLONE_VM)` child on a small stack of its
//! own: it shares hookhost's memory instead of copying its page tables, so starting it costs
//! neither a copy nor the copy-on-write faults hookhost would take afterwards (a fork did). It
//! makes only raw system calls (no libc call, which could write the parent thread's `errno`
//! through the shared thread pointer) and touches nothing but its stack. Elsewhere it is forked.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, killpg, pthread_sigmask};
use nix::sys::wait::waitpid;
use nix::unistd::{Pid, pipe2, setpgid, write};

/// Signals sent to the hook's group (`kill 0` in a hook script) that the tests send the guard;
/// it blocks every signal it can, so none of these (or any other) removes it.
#[cfg(test)]
const GROUP_SIGNALS: [Signal; 8] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGPIPE,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
];

/// A running guard; its pid is the hook's process group id.
#[derive(Debug)]
pub struct Guard {
    pid: Pid,
    /// The write end of the guard's pipe; closing it without writing arms the kill.
    line: Option<OwnedFd>,
    /// The guard's stack (a shared-memory guard's), given back once the guard was reaped.
    stack: Option<raw::Stack>,
}

impl Guard {
    /// Starts the guard as the leader of a new process group.
    pub fn start() -> io::Result<Guard> {
        let (read, write) = pipe2(OFlag::O_CLOEXEC)?;
        // The guard inherits this thread's mask: it starts with every signal blocked, so a
        // signal meant for the hook's group cannot remove it (only SIGKILL can), nor run one of
        // hookhost's handlers in it. This thread's own mask is back right after the start.
        let mut mask = SigSet::empty();
        pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&SigSet::all()), Some(&mut mask))?;
        let started = raw::spawn(read.as_raw_fd());
        pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&mask), None)?;
        let (pid, stack) = started?;
        drop(read);
        // Both sides set the group, so it exists whichever runs first.
        let _ = setpgid(pid, pid);
        Ok(Guard {
            pid,
            line: Some(write),
            stack,
        })
    }

    /// The process group the hook joins.
    pub fn pgid(&self) -> Pid {
        self.pid
    }

    /// Kills the whole group (the guard with it) and reaps the guard.
    pub fn kill_group(mut self) {
        let _ = killpg(self.pid, Signal::SIGKILL);
        self.line = None;
        self.reap();
    }

    /// Lets the guard exit without killing anything (what is left of the group stays), and
    /// reaps it.
    pub fn disarm(mut self) {
        if let Some(line) = self.line.take() {
            let _ = write(&line, b"d");
        }
        self.reap();
    }

    /// Waits for the guard to end. Its stack is given back only when it surely has: a guard
    /// that could not be waited for (someone else reaped it) keeps its stack for the process's
    /// life.
    fn reap(&mut self) {
        let reaped = loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                result => break result.is_ok(),
            }
        };
        if let (true, Some(stack)) = (reaped, self.stack.take()) {
            raw::give_back(stack);
        }
    }
}

impl Drop for Guard {
    /// A guard dropped without a decision (an error path) kills the group: fail closed.
    fn drop(&mut self) {
        if self.line.take().is_some() {
            let _ = killpg(self.pid, Signal::SIGKILL);
            self.reap();
        }
    }
}

/// The guard's whole life: hold nothing of hookhost's but `line`, lead its own group, wait on
/// `line`; end of file kills the group. Raw system calls only (see the module's comment).
fn guard_main(line: RawFd) -> i32 {
    // SAFETY: system calls on integers; nothing here touches the parent's heap, locks or TLS.
    unsafe {
        raw::setpgid_self();
        // A copy of a pipe's write end (another hook's output, in a process running several)
        // would keep its reader waiting: close everything but the line.
        if line > 0 {
            raw::close_range(0, line as u32 - 1);
        }
        raw::close_range(line as u32 + 1, u32::MAX);
        if raw::read_byte(line) != 1 {
            raw::kill_own_group();
        }
    }
    0
}

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod raw {
    //! The guard as a `clone(CLONE_VM)` child, and the few system calls it makes, issued
    //! directly (no `errno`).

    use std::io;
    use std::os::fd::RawFd;
    use std::ptr::NonNull;
    use std::sync::{Mutex, PoisonError};

    use nix::unistd::Pid;

    /// The guard's stack: it calls one small function.
    const STACK_SIZE: usize = 64 << 10;

    /// How many stacks of reaped guards are kept for the next guards.
    const MAX_SPARE: usize = 8;

    /// A private anonymous mapping the guard runs on; never unmapped while a guard may run on
    /// it (a stack is only given back once its guard was reaped).
    #[derive(Debug)]
    pub struct Stack(NonNull<libc::c_void>);

    // SAFETY: the mapping is owned by one Guard at a time, or by the spare list.
    unsafe impl Send for Stack {}
    unsafe impl Sync for Stack {}

    /// Stacks of reaped guards, for the next ones. Unmapping a stack right after its guard ran
    /// on another CPU costs a TLB shootdown there (an interprocessor interrupt, which traps to
    /// the hypervisor on a VM), and a new mapping costs a system call and a fault; a stage
    /// process leaves its one stack to its exit, and the NRI plugin reuses a few.
    static SPARE: Mutex<Vec<Stack>> = Mutex::new(Vec::new());

    /// Keeps the stack of a reaped guard for the next guard, or unmaps it.
    pub fn give_back(stack: Stack) {
        let mut spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner);
        if spare.len() < MAX_SPARE {
            spare.push(stack);
        } else {
            // SAFETY: the mapping made in `spawn`, whose guard has been reaped.
            unsafe { libc::munmap(stack.0.as_ptr(), STACK_SIZE) };
        }
    }

    /// A spare stack, else a new mapping.
    fn take() -> io::Result<Stack> {
        let spare = SPARE.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if let Some(stack) = spare {
            return Ok(stack);
        }
        // SAFETY: a fresh anonymous mapping, checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Stack(
            NonNull::new(base).ok_or_else(io::Error::last_os_error)?,
        ))
    }

    extern "C" fn entry(arg: *mut libc::c_void) -> libc::c_int {
        super::guard_main(arg as usize as RawFd)
    }

    /// Starts the guard sharing this process's memory, on a stack of its own.
    pub fn spawn(line: RawFd) -> io::Result<(Pid, Option<Stack>)> {
        let stack = take()?;
        let base = stack.0.as_ptr();
        // SAFETY: `entry` runs on the new stack (its top, as the ABI wants) and only makes raw
        // system calls; the stack lives until the guard is reaped (`Guard::reap`).
        let pid = unsafe {
            libc::clone(
                entry,
                base.cast::<u8>().add(STACK_SIZE).cast(),
                libc::CLONE_VM | libc::SIGCHLD,
                line as usize as *mut libc::c_void,
            )
        };
        if pid < 0 {
            let err = io::Error::last_os_error();
            give_back(stack);
            return Err(err);
        }
        Ok((Pid::from_raw(pid), Some(stack)))
    }

    /// A system call with up to three arguments; a negative result is `-errno`.
    #[cfg(target_arch = "x86_64")]
    unsafe fn syscall3(nr: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let ret: isize;
        // SAFETY: the Linux x86-64 system call convention; the caller vouches for the call.
        unsafe {
            std::arch::asm!(
                "syscall",
                inlateout("rax") nr as isize => ret,
                in("rdi") a,
                in("rsi") b,
                in("rdx") c,
                lateout("rcx") _,
                lateout("r11") _,
                options(nostack),
            );
        }
        ret
    }

    /// A system call with up to three arguments; a negative result is `-errno`.
    #[cfg(target_arch = "aarch64")]
    unsafe fn syscall3(nr: libc::c_long, a: usize, b: usize, c: usize) -> isize {
        let ret: isize;
        // SAFETY: the Linux aarch64 system call convention; the caller vouches for the call.
        unsafe {
            std::arch::asm!(
                "svc 0",
                in("x8") nr,
                inlateout("x0") a as isize => ret,
                in("x1") b,
                in("x2") c,
                options(nostack),
            );
        }
        ret
    }

    pub unsafe fn setpgid_self() {
        unsafe { syscall3(libc::SYS_setpgid, 0, 0, 0) };
    }

    pub unsafe fn close_range(first: u32, last: u32) {
        unsafe { syscall3(libc::SYS_close_range, first as usize, last as usize, 0) };
    }

    /// Reads one byte from `fd`, again after an interruption: what `read` returned.
    pub unsafe fn read_byte(fd: RawFd) -> isize {
        let mut byte = 0u8;
        loop {
            let n = unsafe { syscall3(libc::SYS_read, fd as usize, (&raw mut byte) as usize, 1) };
            if n != -(libc::EINTR as isize) {
                return n;
            }
        }
    }

    pub unsafe fn kill_own_group() {
        unsafe { syscall3(libc::SYS_kill, 0, libc::SIGKILL as usize, 0) };
    }
}

#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
mod raw {
    //! Elsewhere the guard is forked and makes its calls through libc (a forked child has
    //! its own `errno`).

    use std::io;
    use std::os::fd::RawFd;

    use nix::unistd::{ForkResult, Pid, fork};

    /// No stack of its own: a forked guard runs on its copy of the parent's.
    #[derive(Debug)]
    pub enum Stack {}

    pub fn give_back(stack: Stack) {
        match stack {}
    }

    pub fn spawn(line: RawFd) -> io::Result<(Pid, Option<Stack>)> {
        // SAFETY: the child runs only async-signal-safe calls (`guard_main`) and `_exit`s.
        match unsafe { fork() }? {
            ForkResult::Child => {
                super::guard_main(line);
                unsafe { libc::_exit(0) }
            }
            ForkResult::Parent { child } => Ok((child, None)),
        }
    }

    pub unsafe fn setpgid_self() {
        unsafe { libc::setpgid(0, 0) };
    }

    pub unsafe fn close_range(first: u32, last: u32) {
        unsafe { libc::close_range(first, last, 0) };
    }

    pub unsafe fn read_byte(fd: RawFd) -> isize {
        let mut byte = 0u8;
        loop {
            let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
            if n >= 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return n;
            }
        }
    }

    pub unsafe fn kill_own_group() {
        unsafe { libc::kill(0, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The descriptors the guard holds, once it had `wait` to close the others.
    fn held_by(pid: Pid, wait: Duration) -> Vec<String> {
        let until = Instant::now() + wait;
        loop {
            let held: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            if held.len() <= 1 || Instant::now() >= until {
                return held;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn state_of(pid: Pid) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 2..].chars().next()
    }

    /// The guard holds its line and nothing else: not a pipe's write end that was open when
    /// it started (whose reader would wait for the guard), nor stdin, stdout or stderr.
    #[test]
    fn the_guard_holds_only_its_line() {
        let (other_read, other_write) = pipe2(OFlag::O_CLOEXEC).unwrap();
        let guard = Guard::start().unwrap();
        let held = held_by(guard.pgid(), Duration::from_secs(2));
        assert_eq!(held.len(), 1, "the guard holds {held:?}");
        drop(other_write);
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(&other_read, &mut byte), Ok(0));
        guard.disarm();
    }

    /// Signals sent to the hook's group do not end the guard; a disarmed guard exits alone,
    /// and a dropped one is killed; both are reaped.
    #[test]
    fn the_guard_outlives_group_signals_and_ends_when_told() {
        let guard = Guard::start().unwrap();
        let pid = guard.pgid();
        for signal in GROUP_SIGNALS {
            killpg(pid, signal).unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            matches!(state_of(pid), Some('S' | 'R')),
            "the guard ended on a group signal: {:?}",
            state_of(pid)
        );
        guard.disarm();
        assert_eq!(state_of(pid), None, "a disarmed guard is gone and reaped");

        let guard = Guard::start().unwrap();
        let pid = guard.pgid();
        drop(guard);
        assert_eq!(state_of(pid), None, "a dropped guard is gone and reaped");
    }
}
