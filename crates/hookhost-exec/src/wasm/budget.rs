//! The write budget: bytes written and files created through a run's writable directories.
//!
//! wasmtime-wasi has no quota of its own, so the WASI functions that write or create are
//! shadowed in the linker by thin wrappers: each counts what the call asks for, stops the
//! hook when that would pass the budget, and otherwise calls wasmtime-wasi's own function:
//!
//! - a write counts the bytes of its iovecs, plus the hole it leaves when it starts past the
//!   end of the file (`fd_pwrite` at an offset, or `fd_write` after `fd_seek`): a file's size
//!   is what it takes on the host, sparse or not, so one byte at offset 2^40 counts 1 TiB;
//! - `fd_filestat_set_size` counts the size the file is set to;
//! - each file, directory or link created counts one against [`MAX_FILES_CREATED`].
//!
//! Counting happens before the call, so the host file system never holds more than the
//! budget. Writes to the guest's stdout and stderr (descriptors 1 and 2) are bounded
//! elsewhere (they are captured, not written to disk) and not counted; a guest may not move a
//! file onto those descriptors (`fd_renumber` to 0–2 is refused), so it cannot pass a file off
//! as one.

use wasmtime::{AsContextMut, Caller, Extern, Linker, Memory};
use wasmtime_wasi::p1::types::Fd;
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as wasi, WasiSnapshotPreview1};
use wiggle::GuestMemory;

use super::Host;

/// The WASI preview-1 module name.
pub(super) const WASI: &str = "wasi_snapshot_preview1";

/// WASI errno `badf`: what a refused `fd_renumber` returns.
const ERRNO_BADF: i32 = 8;

/// `oflags` bit of `path_open` that creates the file.
const OFLAGS_CREAT: i32 = 1;

/// At most this many files, directories and links created per run.
pub const MAX_FILES_CREATED: u64 = 1000;

/// What one run may still write; kept in the store.
#[derive(Debug)]
pub(super) struct WriteBudget {
    pub limit: u64,
    written: u64,
    created: u64,
    /// Set when the guest was stopped for going over: the run's reported end.
    pub exceeded: Option<Exceeded>,
}

/// Which budget a guest went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Exceeded {
    Bytes,
    Files,
}

impl WriteBudget {
    pub fn new(limit: u64) -> Self {
        WriteBudget {
            limit,
            written: 0,
            created: 0,
            exceeded: None,
        }
    }

    fn take_bytes(&mut self, bytes: u64) -> wasmtime::Result<()> {
        match self.written.checked_add(bytes) {
            Some(total) if total <= self.limit => {
                self.written = total;
                Ok(())
            }
            _ => self.stop(Exceeded::Bytes),
        }
    }

    fn take_file(&mut self) -> wasmtime::Result<()> {
        if self.created >= MAX_FILES_CREATED {
            return self.stop(Exceeded::Files);
        }
        self.created += 1;
        Ok(())
    }

    fn stop(&mut self, which: Exceeded) -> wasmtime::Result<()> {
        self.exceeded = Some(which);
        Err(wasmtime::format_err!("write budget exceeded"))
    }
}

/// Calls wasmtime-wasi's own preview-1 function `$name` with the guest's memory and `$args`
/// (a tuple or its fields), as its own linker glue would.
macro_rules! forward {
    ($caller:ident, $name:ident, $($arg:expr),+) => {{
        let (memory, host) = memory_and_host(&mut $caller)?;
        let mut memory = GuestMemory::Unshared(memory);
        wasi::$name(&mut host.wasi, &mut memory, $($arg),+).await
    }};
}

/// Wraps the `i32`-only WASI function `$name` so that each call counts one file created.
macro_rules! counts_a_file {
    ($linker:ident, $name:ident, $($arg:ident),+) => {
        $linker.func_wrap_async(
            WASI,
            stringify!($name),
            move |mut caller: Caller<'_, Host>, ($($arg,)+): ($(counts_a_file!(@i32 $arg),)+)| {
                Box::new(async move {
                    caller.data_mut().budget.take_file()?;
                    forward!(caller, $name, $($arg),+)
                })
            },
        )?;
    };
    (@i32 $arg:ident) => { i32 };
}

/// The linker with every writing WASI function wrapped; `base` holds wasmtime-wasi's own.
pub(super) fn shadow(base: &Linker<Host>) -> wasmtime::Result<Linker<Host>> {
    let mut linker = base.clone();
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        WASI,
        "fd_write",
        move |mut caller: Caller<'_, Host>, (fd, iovs, len, nwritten): (i32, i32, i32, i32)| {
            Box::new(async move {
                if fd > 2 {
                    let bytes = iovec_bytes(&mut caller, iovs, len);
                    let hole = hole_before(&mut caller, fd, None).await;
                    let cost = bytes.saturating_add(hole);
                    caller.data_mut().budget.take_bytes(cost)?;
                }
                forward!(caller, fd_write, fd, iovs, len, nwritten)
            })
        },
    )?;
    linker.func_wrap_async(
        WASI,
        "fd_pwrite",
        move |mut caller: Caller<'_, Host>,
              (fd, iovs, len, offset, nwritten): (i32, i32, i32, i64, i32)| {
            Box::new(async move {
                let bytes = iovec_bytes(&mut caller, iovs, len);
                let hole = hole_before(&mut caller, fd, Some(offset as u64)).await;
                let cost = bytes.saturating_add(hole);
                caller.data_mut().budget.take_bytes(cost)?;
                forward!(caller, fd_pwrite, fd, iovs, len, offset, nwritten)
            })
        },
    )?;
    linker.func_wrap_async(
        WASI,
        "fd_filestat_set_size",
        move |mut caller: Caller<'_, Host>, (fd, size): (i32, i64)| {
            Box::new(async move {
                // Counted as written: a file set to a size takes (or may take) that much.
                caller.data_mut().budget.take_bytes(size as u64)?;
                forward!(caller, fd_filestat_set_size, fd, size)
            })
        },
    )?;
    linker.func_wrap_async(
        WASI,
        "fd_renumber",
        move |mut caller: Caller<'_, Host>, (fd, to): (i32, i32)| {
            Box::new(async move {
                if (0..=2).contains(&to) {
                    return Ok(ERRNO_BADF);
                }
                forward!(caller, fd_renumber, fd, to)
            })
        },
    )?;
    linker.func_wrap_async(
        WASI,
        "path_open",
        move |mut caller: Caller<'_, Host>,
              (fd, dirflags, path, len, oflags, base, inheriting, fdflags, opened): (
            i32,
            i32,
            i32,
            i32,
            i32,
            i64,
            i64,
            i32,
            i32,
        )| {
            Box::new(async move {
                if oflags & OFLAGS_CREAT != 0 {
                    caller.data_mut().budget.take_file()?;
                }
                let errno = forward!(
                    caller, path_open, fd, dirflags, path, len, oflags, base, inheriting, fdflags,
                    opened
                )?;
                super::record::after_open(&mut caller, errno, fd, (path, len), opened);
                Ok(errno)
            })
        },
    )?;
    // Each call that creates a name (file, directory, link) counts one against the file cap.
    counts_a_file!(linker, path_create_directory, fd, path, len);
    counts_a_file!(linker, path_symlink, old, old_len, fd, new, new_len);
    counts_a_file!(
        linker, path_link, old_fd, flags, old, old_len, fd, new, new_len
    );
    Ok(linker)
}

/// The guest's memory and the store's data, as wasmtime-wasi's glue takes them (with the
/// store's budget for host-side copies handed to the WASI context, as that glue does).
pub(super) fn memory_and_host<'a>(
    caller: &'a mut Caller<'_, Host>,
) -> wasmtime::Result<(&'a mut [u8], &'a mut Host)> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!("missing required memory export");
    };
    let fuel = caller.as_context_mut().hostcall_fuel();
    let (memory, host) = memory.data_and_store_mut(caller);
    host.wasi.set_hostcall_fuel(fuel);
    Ok((memory, host))
}

/// How far past the end of the file open at `fd` a write at `offset` (`None`: at the fd's
/// position) starts: the hole it would leave, which makes the file that much larger. Zero
/// when the fd is no seekable file (the write itself then fails or goes to a stream).
async fn hole_before(caller: &mut Caller<'_, Host>, fd: i32, offset: Option<u64>) -> u64 {
    let wasi = &mut caller.data_mut().wasi;
    // Neither call touches guest memory.
    let mut no_memory = GuestMemory::Unshared(&mut []);
    let fd = Fd::from(fd as u32);
    let Ok(stat) = wasi.fd_filestat_get(&mut no_memory, fd).await else {
        return 0;
    };
    let start = match offset {
        Some(offset) => offset,
        None => match wasi.fd_tell(&mut no_memory, fd) {
            Ok(position) => position,
            Err(_) => return 0,
        },
    };
    start.saturating_sub(stat.size)
}

/// The total length of the `len` iovecs at `iovs` in the guest's memory; zero when they cannot
/// be read (the original call then reports the fault itself).
fn iovec_bytes(caller: &mut Caller<'_, Host>, iovs: i32, len: i32) -> u64 {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return 0;
    };
    sum_iovecs(&memory, caller, iovs as u32 as usize, len as u32 as usize)
}

fn sum_iovecs(memory: &Memory, caller: &Caller<'_, Host>, iovs: usize, len: usize) -> u64 {
    let data = memory.data(caller);
    let mut total = 0u64;
    for i in 0..len {
        let Some(at) = i.checked_mul(8).and_then(|o| o.checked_add(iovs)) else {
            return total;
        };
        let Some(entry) = data.get(at..at + 8) else {
            return total;
        };
        let buf_len = u32::from_le_bytes(entry[4..8].try_into().expect("4 bytes"));
        total = total.saturating_add(u64::from(buf_len));
    }
    total
}
