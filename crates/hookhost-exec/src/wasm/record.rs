//! Recording what a WASM run read besides its explicit inputs, and feeding it back.
//!
//! A hook's explicit inputs (argv, environment, stdin, module, limits) are known before the
//! run. What else it reads comes through three WASI functions, which are shadowed in the
//! linker like the write budget's ([`super::budget`]):
//!
//! - `clock_time_get`: every value returned is kept, in order, and replayed in that order;
//! - `random_get`: every byte returned is kept, and replayed;
//! - `path_open` (through the budget's own wrapper): each file or directory opened under a
//!   granted directory is noted once, with its size, sha256 and (up to a bound) its content,
//!   read from the host when the guest first opens it.
//!
//! With [`Capture::Off`] the wrappers only forward (one branch per call).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use wasmtime::{Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1 as wasi;
use wiggle::GuestMemory;

use super::Host;
use super::budget::{WASI, memory_and_host};

/// What a run does with what it reads besides its explicit inputs.
#[derive(Debug, Clone, Default)]
pub enum Capture {
    /// Nothing is kept.
    #[default]
    Off,
    /// Keep it, with at most `max_file_size` bytes of each file's content.
    Record { max_file_size: u64 },
    /// Feed back the clocks and random numbers of this tape (the files are the caller's
    /// scratch copies, preopened as usual).
    Replay(Tape),
}

/// What a run read besides its explicit inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tape {
    /// Every value `clock_time_get` returned, in order (nanoseconds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clocks: Vec<u64>,
    /// Every byte `random_get` returned, in order, as hex.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub random: String,
    /// Each file or directory opened under a granted directory, once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRead>,
    /// What makes the run not exactly replayable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inexact: Vec<String>,
}

/// A file (or directory) a run opened under one of its granted directories.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileRead {
    /// The guest path of the granted directory.
    pub grant: String,
    /// The path under it, `/`-separated, without `.` or `..`.
    pub path: String,
    /// A directory, not a file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dir: bool,
    #[serde(default)]
    pub size: u64,
    /// The file's sha256 when it was opened (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Its content as hex, when it was no larger than the bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl FileRead {
    /// The content, when it was kept and is valid hex.
    pub fn bytes(&self) -> Option<Vec<u8>> {
        self.content.as_deref().and_then(|c| hex::decode(c).ok())
    }
}

/// A granted directory as the recorder sees it.
#[derive(Debug, Clone)]
pub(super) struct Grant {
    pub host: PathBuf,
    pub guest: String,
}

/// The capture of one run, kept in its store.
#[derive(Debug, Default)]
pub(super) struct Recorder {
    mode: Capture,
    tape: Tape,
    random: Vec<u8>,
    clock_at: usize,
    random_at: usize,
    grants: Vec<Grant>,
    /// Open descriptors under a grant: which grant, and the path under it.
    fds: HashMap<u32, (usize, String)>,
    seen: HashSet<(usize, String)>,
    /// A replayed run asked for more than was recorded.
    ran_past: bool,
}

/// The first descriptor wasmtime-wasi gives the preopened directories, in their order.
const FIRST_PREOPEN_FD: u32 = 3;

impl Recorder {
    pub fn new(mode: Capture, grants: Vec<Grant>) -> Self {
        let fds = (0..grants.len())
            .map(|i| (FIRST_PREOPEN_FD + i as u32, (i, String::new())))
            .collect();
        let random = match &mode {
            Capture::Replay(tape) => hex::decode(&tape.random).unwrap_or_default(),
            _ => Vec::new(),
        };
        Recorder {
            mode,
            random,
            grants,
            fds,
            ..Recorder::default()
        }
    }

    /// The tape recorded (empty unless recording).
    pub fn finish(mut self) -> Option<Tape> {
        match self.mode {
            Capture::Record { .. } => {
                self.tape.random = hex::encode(&self.random);
                Some(self.tape)
            }
            Capture::Replay(_) if self.ran_past => Some(Tape {
                inexact: vec![RAN_PAST.into()],
                ..Tape::default()
            }),
            _ => None,
        }
    }

    fn recording(&self) -> bool {
        matches!(self.mode, Capture::Record { .. })
    }

    fn replaying(&self) -> Option<&Tape> {
        match &self.mode {
            Capture::Replay(tape) => Some(tape),
            _ => None,
        }
    }

    /// The next recorded clock value, when replaying and one is left.
    fn next_clock(&mut self) -> Option<u64> {
        let value = self.replaying()?.clocks.get(self.clock_at).copied();
        self.clock_at += 1;
        self.ran_past |= value.is_none();
        value
    }

    /// The next `len` recorded random bytes, when replaying and enough are left.
    fn next_random(&mut self, len: usize) -> Option<Vec<u8>> {
        self.replaying()?;
        let bytes = self.random.get(self.random_at..self.random_at + len);
        self.ran_past |= bytes.is_none();
        let bytes = bytes?.to_vec();
        self.random_at += len;
        Some(bytes)
    }

    /// The guest opened `path` under descriptor `dir` and got descriptor `opened`.
    fn opened(&mut self, dir: u32, path: &str, opened: u32) {
        let Capture::Record { max_file_size } = self.mode else {
            return;
        };
        let Some((grant, base)) = self.fds.get(&dir).cloned() else {
            return;
        };
        let Some(path) = join(&base, path) else {
            return;
        };
        self.fds.insert(opened, (grant, path.clone()));
        if path.is_empty() || !self.seen.insert((grant, path.clone())) {
            return;
        }
        let host = self.grants[grant].host.join(&path);
        let guest = self.grants[grant].guest.clone();
        let read = read_file(&host, guest, path, max_file_size);
        if read.sha256.is_some() && read.content.is_none() {
            self.tape.inexact.push(format!(
                "{}/{} ({} bytes) is larger than the {max_file_size} bytes kept of a file",
                read.grant, read.path, read.size
            ));
        }
        self.tape.files.push(read);
    }
}

/// Set when a replayed run asked for more clock values or random bytes than were recorded.
const RAN_PAST: &str =
    "the run read more clock values or random bytes than were recorded (the real ones were used)";

/// `base/path` without `.` or `..`; none when it would leave the grant (wasmtime-wasi refuses
/// those opens itself).
fn join(base: &str, path: &str) -> Option<String> {
    let mut parts: Vec<String> = base
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.join("/"))
}

/// What a run found at `host` when it opened it.
fn read_file(host: &Path, grant: String, path: String, bound: u64) -> FileRead {
    let mut read = FileRead {
        grant,
        path,
        dir: false,
        size: 0,
        sha256: None,
        content: None,
    };
    let Ok(meta) = std::fs::metadata(host) else {
        return read;
    };
    if meta.is_dir() {
        read.dir = true;
        return read;
    }
    let Ok(mut file) = std::fs::File::open(host) else {
        return read;
    };
    let mut hasher = Sha256::new();
    let mut kept = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let mut size = 0u64;
    while let Ok(n) = file.read(&mut buf) {
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if size + n as u64 <= bound {
            kept.extend_from_slice(&buf[..n]);
        }
        size += n as u64;
    }
    read.size = size;
    read.sha256 = Some(hex::encode(hasher.finalize()));
    read.content = (size <= bound).then(|| hex::encode(&kept));
    read
}

/// The guest's memory, when it exports one.
fn memory<'a>(caller: &'a mut Caller<'_, Host>) -> Option<&'a mut [u8]> {
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return None;
    };
    Some(memory.data_mut(caller))
}

/// Called by the budget's `path_open` wrapper once the open returned `errno`.
pub(super) fn after_open(
    caller: &mut Caller<'_, Host>,
    errno: i32,
    dir: i32,
    path: (i32, i32),
    opened: i32,
) {
    if errno != 0 || !caller.data().recorder.recording() {
        return;
    }
    let Some(data) = memory(caller) else { return };
    let (at, len) = (path.0 as u32 as usize, path.1 as u32 as usize);
    let Some(name) = data
        .get(at..at + len)
        .map(|b| String::from_utf8_lossy(b).into_owned())
    else {
        return;
    };
    let at = opened as u32 as usize;
    let Some(fd) = data.get(at..at + 4) else {
        return;
    };
    let fd = u32::from_le_bytes(fd.try_into().expect("4 bytes"));
    caller.data_mut().recorder.opened(dir as u32, &name, fd);
}

/// Adds the clock and random wrappers to `linker`.
pub(super) fn shadow(linker: &mut Linker<Host>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        WASI,
        "clock_time_get",
        move |mut caller: Caller<'_, Host>, (id, precision, out): (i32, i64, i32)| {
            Box::new(async move {
                if let Some(value) = caller.data_mut().recorder.next_clock() {
                    return Ok(write_guest(&mut caller, out, &value.to_le_bytes()));
                }
                let errno = {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    let mut memory = GuestMemory::Unshared(memory);
                    wasi::clock_time_get(&mut host.wasi, &mut memory, id, precision, out)?
                };
                if errno == 0 && caller.data().recorder.recording() {
                    let at = out as u32 as usize;
                    let value = memory(&mut caller)
                        .and_then(|m| m.get(at..at + 8).map(|b| b.try_into().expect("8 bytes")))
                        .map(u64::from_le_bytes);
                    if let Some(value) = value {
                        caller.data_mut().recorder.tape.clocks.push(value);
                    }
                }
                Ok(errno)
            })
        },
    )?;
    linker.func_wrap_async(
        WASI,
        "random_get",
        move |mut caller: Caller<'_, Host>, (buf, len): (i32, i32)| {
            Box::new(async move {
                let size = len as u32 as usize;
                if let Some(bytes) = caller.data_mut().recorder.next_random(size) {
                    return Ok(write_guest(&mut caller, buf, &bytes));
                }
                let errno = {
                    let (memory, host) = memory_and_host(&mut caller)?;
                    let mut memory = GuestMemory::Unshared(memory);
                    wasi::random_get(&mut host.wasi, &mut memory, buf, len)?
                };
                if errno == 0 && caller.data().recorder.recording() {
                    let at = buf as u32 as usize;
                    let bytes =
                        memory(&mut caller).and_then(|m| m.get(at..at + size).map(<[u8]>::to_vec));
                    if let Some(bytes) = bytes {
                        caller.data_mut().recorder.random.extend_from_slice(&bytes);
                    }
                }
                Ok(errno)
            })
        },
    )?;
    Ok(())
}

/// WASI errno `fault`: a replayed value's destination is outside the guest's memory.
const ERRNO_FAULT: i32 = 21;

/// Writes `bytes` at `at` in the guest's memory: errno 0, or `fault`.
fn write_guest(caller: &mut Caller<'_, Host>, at: i32, bytes: &[u8]) -> i32 {
    let at = at as u32 as usize;
    match memory(caller).and_then(|m| m.get_mut(at..at + bytes.len())) {
        Some(dest) => {
            dest.copy_from_slice(bytes);
            0
        }
        None => ERRNO_FAULT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_joined_under_their_grant() {
        assert_eq!(join("", "a/./b").as_deref(), Some("a/b"));
        assert_eq!(join("etc", "x/../hosts").as_deref(), Some("etc/hosts"));
        assert_eq!(join("", ".."), None);
        assert_eq!(join("", "/abs"), None);
    }
}
