//! The audit trail: one JSON line per hook run, appended to `ROOT/events.jsonl`.
//!
//! It is bounded: when a line would take the file past its bound (the config's
//! `eventsMaxSize`, default [`DEFAULT_MAX_SIZE`]) the file becomes `events.jsonl.1` (replacing
//! the older generation) and a new one is started, so the trail never takes more than twice
//! its bound; [`read`] reads both generations. One event keeps at most [`MAX_ERROR_BYTES`] of a
//! failure's text (the hook's output goes in full to the runtime's error only), so a noisy
//! hook cannot grow it at will either.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use hookhost_hooks::hook::{HookKind, Stage};

/// Default bound of `events.jsonl` (and of its one rotated generation).
pub const DEFAULT_MAX_SIZE: u64 = 64 << 20;

/// At most this much of a failure's text is stored in one event.
pub const MAX_ERROR_BYTES: usize = 4096;

/// At most this much of the end of a run's stderr (escaped) is stored in its event: what a
/// hook said, kept also when it succeeded (the runtime discards a succeeding hook's stderr).
pub const MAX_STDERR_BYTES: usize = 4096;

/// Free space (and inodes) the state directory must have for hooks to run at a fatal stage:
/// room for the events of a stage (one keeps at most a few KiB; a rotation is a rename).
pub const MIN_FREE_BYTES: u64 = 256 << 10;

#[derive(Debug, Error)]
pub enum EventsError {
    #[error("cannot {action} the events log {file}: {source}")]
    Io {
        action: &'static str,
        file: PathBuf,
        source: io::Error,
    },
    #[error(
        "the file system of {} has {free} bytes and {inodes} inodes free, less than the {} \
         bytes hookhost keeps for its audit trail",
        dir.display(), MIN_FREE_BYTES
    )]
    NoSpace {
        dir: PathBuf,
        free: u64,
        inodes: u64,
    },
}

/// One hook run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The run's stable id ([`new_id`]): what `hookhost replay` takes. Empty in events written
    /// before ids existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
    pub time: DateTime<Utc>,
    pub container: String,
    pub stage: Stage,
    pub hook: String,
    pub kind: HookKind,
    /// The exit code, when the hook exited by itself.
    pub exit: Option<i32>,
    pub duration_ms: f64,
    /// Why the run failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What kind of failure it was, when it failed (for metrics).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// WASM hooks: fuel consumed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel_used: Option<u64>,
    /// When it failed: what the failure did (`fail` stopped the container).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<hookhost_hooks::hook::OnFailure>,
    /// The Kubernetes pod, `NAMESPACE/NAME`, when the container's annotations say (CRI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The container's name in its pod, when the annotations say (CRI).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `refused` when the hook exited 0 but what it returned was refused (a precreate edit
    /// outside its grants, or output that is not a config): the run failed, whatever `exit`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// A refused precreate edit: the grant that would have allowed it
    /// (`--may-adjust env=GPU_*`), when one would.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<String>,
    /// The end of what the hook wrote on stderr, escaped, at most [`MAX_STDERR_BYTES`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderr: Option<String>,
    /// The registry generation (what `apply` last applied: an artifact's digest) the hook
    /// was planned from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Not a hook run but a CDI device hookhost resolved for the container after its precreate
    /// hooks: `hook` is the precreate hook that requested it (empty when the container's own
    /// annotations did), and this what it brought.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cdi: Option<CdiRecord>,
    /// Not a run of an enforced hook but of a shadow (see [`crate::shadow`]): what it decided,
    /// and whether it agreed with the hook it shadows. Nothing of it was enforced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<crate::shadow::ShadowRecord>,
}

/// A CDI device applied to a container: its name, the spec file that defines it, and its edits
/// (`env GPU=0`, `device /dev/gpu0 c 195:0 allow "rwm"`, `mount …`, `hook …`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CdiRecord {
    pub device: String,
    pub spec: PathBuf,
    pub edits: Vec<String>,
}

/// What became of a run that exited by itself with 0 but is not a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// What it returned was refused: a precreate hook's edit outside its grants (or in
    /// conflict with an earlier hook's), or output that is not a usable config.json.
    Refused,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Refused => "refused",
        }
    }
}

/// The last [`MAX_STDERR_BYTES`] of `stderr`, escaped as hook output is shown (control
/// characters as text), on a character boundary; none when it is empty.
pub fn stderr_tail(stderr: &[u8]) -> Option<String> {
    // Escaping at most quadruples a byte: escape only what can be kept.
    let start = stderr.len().saturating_sub(4 * MAX_STDERR_BYTES);
    let text = hookhost_exec::printable(&String::from_utf8_lossy(&stderr[start..]));
    let text = text.trim_end();
    if text.is_empty() {
        return None;
    }
    let mut cut = text.len().saturating_sub(MAX_STDERR_BYTES);
    while !text.is_char_boundary(cut) {
        cut += 1;
    }
    Some(text[cut..].to_string())
}

/// The annotations containerd's and CRI-O's CRI set on every container: its pod's namespace and
/// name, and its own name.
const POD_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";
const POD_NAME: &str = "io.kubernetes.cri.sandbox-name";
const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// The pod (`NAMESPACE/NAME`) and the container's name, from a container's annotations.
pub fn kubernetes_names(
    annotations: &std::collections::BTreeMap<String, String>,
) -> (Option<String>, Option<String>) {
    let pod = match (annotations.get(POD_NAMESPACE), annotations.get(POD_NAME)) {
        (Some(namespace), Some(name)) => Some(format!("{namespace}/{name}")),
        _ => None,
    };
    (pod, annotations.get(CONTAINER_NAME).cloned())
}

/// The kinds of hook failure, as metrics count them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Exited with a non-zero status.
    Exit,
    /// Killed by a signal it did not get from hookhost.
    Signal,
    /// Ran past its timeout.
    Timeout,
    /// A WASM hook ran out of fuel.
    Fuel,
    /// A WASM hook exceeded its memory limit.
    Memory,
    /// A WASM hook exceeded its write or file budget.
    Writes,
    /// A WASM hook trapped.
    Trap,
    /// It could not be run at all (missing program, changed pinned binary, bad grant, …).
    Error,
    /// A precreate hook's output was not a usable config.json.
    Output,
    /// A precreate hook changed what it was not granted, or what an earlier hook set.
    Adjust,
}

impl Failure {
    /// The label value metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Exit => "exit",
            Failure::Signal => "signal",
            Failure::Timeout => "timeout",
            Failure::Fuel => "fuel",
            Failure::Memory => "memory",
            Failure::Writes => "writes",
            Failure::Trap => "trap",
            Failure::Error => "error",
            Failure::Output => "output",
            Failure::Adjust => "adjust",
        }
    }
}

impl Event {
    /// The event as one line of `hookhost events` text: time, container (`-` when none), stage,
    /// hook, kind, exit, duration, then the error and a policy other than `fail`. Every field
    /// is shown through [`text_field`], so that no value can break the line or reach the
    /// reader's terminal as anything but text.
    pub fn text_line(&self) -> String {
        // Every field named, so that a new one must be given a place here (or skipped) at
        // compile time, and cannot reach a text view unescaped.
        let Event {
            id,
            time,
            container,
            stage,
            hook,
            kind,
            exit,
            duration_ms,
            error,
            failure: _,
            fuel_used: _,
            on_failure,
            pod,
            name,
            verdict,
            needs,
            stderr,
            cdi,
            generation,
            shadow,
        } = self;
        let time = time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let container = match container.is_empty() {
            true => "-".into(),
            false => text_field(container),
        };
        let exit = exit.map_or("-".to_string(), |c| c.to_string());
        // A refused edit exited 0: the verdict comes first, so that it cannot read as a success.
        let verdict = verdict.map_or(String::new(), |v| format!("{} ", v.as_str()));
        let mut line = format!(
            "{time} {container} {} {} ({}) {verdict}exit={exit} {duration_ms:.1}ms",
            text_field(stage.as_str()),
            text_field(hook),
            text_field(&kind.to_string()),
        );
        if !id.is_empty() {
            line.push_str(&format!(" id={}", text_field(id)));
        }
        if let Some(pod) = pod {
            line.push_str(&format!(" pod={}", text_field(pod)));
        }
        if let Some(name) = name {
            line.push_str(&format!(" name={}", text_field(name)));
        }
        if let Some(needs) = needs {
            line.push_str(&format!(" needs={}", text_field(needs)));
        }
        if let Some(generation) = generation {
            line.push_str(&format!(" generation={}", text_field(generation)));
        }
        if let Some(error) = error {
            line.push_str(&format!(" error={}", text_field(error)));
        }
        if let Some(policy) = on_failure.filter(|p| *p != hookhost_hooks::hook::OnFailure::Fail) {
            line.push_str(&format!(" on-failure={}", text_field(policy.as_str())));
        }
        if let Some(stderr) = stderr {
            line.push_str(&format!(" stderr={}", text_field(stderr)));
        }
        if let Some(cdi) = cdi {
            line.push_str(&format!(
                " cdi={} spec={} edits={}",
                text_field(&cdi.device),
                text_field(&cdi.spec.to_string_lossy()),
                text_field(&cdi.edits.join("; "))
            ));
        }
        if let Some(shadow) = shadow {
            line.push_str(&shadow.text());
        }
        line
    }
}

/// How every text view of the trail (`hookhost events`, `hookhost stats`) shows one field: as
/// it is when it is only printable characters without spaces, quotes or backslashes, else
/// quoted with Rust's escapes (`"a b"`, `"x\n2026-…"`, `"\u{1b}[2J"`). A value, whoever chose
/// it (a container id, a hooks.d file name, a hook's error output), can then neither forge a
/// line nor drive the reader's terminal.
pub fn text_field(value: &str) -> Cow<'_, str> {
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| !c.is_whitespace() && c != '"' && c != '\\' && c.escape_debug().len() == 1);
    match plain {
        true => Cow::Borrowed(value),
        false => Cow::Owned(format!("{value:?}")),
    }
}

/// Appends one event, rotating the file first when the line would take it past `max_size`.
/// A single `write` on an `O_APPEND` file keeps concurrent lines whole; rotation happens under
/// a lock, so two writers never both rotate.
pub fn append(file: &Path, event: &Event, max_size: u64) -> Result<(), EventsError> {
    let io = |action| io_error(action, file);
    let mut event = event.clone();
    if let Some(error) = event.error.as_mut() {
        cap_text(error, MAX_ERROR_BYTES);
    }
    let mut line = serde_json::to_vec(&event).expect("an event serialises");
    line.push(b'\n');
    append_line(file, &line, max_size).map_err(|(action, source)| io(action)(source))
}

/// Appends one whole `line` to a bounded, rotated JSON-lines file (the audit trail, the replay
/// records), rotating it first when the line would take it past `max_size`.
pub(crate) fn append_line(
    file: &Path,
    line: &[u8],
    max_size: u64,
) -> Result<(), (&'static str, io::Error)> {
    with_appender(file, |out, size| {
        if size > 0 && size + line.len() as u64 > max_size {
            *out = rotate(file, line.len() as u64, max_size).map_err(|e| ("rotate", e))?;
        }
        out.write_all(line).map_err(|e| ("append to", e))
    })
}

/// The files a long-lived process keeps open for appending (see [`keep_files_open`]).
static KEPT: std::sync::OnceLock<std::sync::Mutex<HashMap<PathBuf, File>>> =
    std::sync::OnceLock::new();

/// The most files kept open; past it, they are all closed and kept again as they are used.
const MAX_KEPT: usize = 16;

/// For a long-lived process (the NRI plugin, which records runs for every container), and a
/// stage (a line or two for each of its hooks): from now on, the files events and replay
/// records are appended to stay open between appends, instead
/// of being opened and closed for each line. Before each use a kept file is checked to be the
/// one its path names (device and inode): one that a rotation (by this process or another)
/// renamed, or that was removed, is closed and the path opened again — created if missing —
/// so that lines always go where readers look for them.
pub fn keep_files_open() {
    KEPT.get_or_init(Default::default);
}

/// Calls `with` on `path` opened for appending (created if missing, mode 0600) and its size:
/// the file kept open when it is still the one `path` names (see [`keep_files_open`]), else a
/// file opened now. What `with` puts in place of the file (a rotation's new one) is kept.
fn with_appender<T>(
    path: &Path,
    with: impl FnOnce(&mut File, u64) -> Result<T, (&'static str, io::Error)>,
) -> Result<T, (&'static str, io::Error)> {
    let Some(kept) = KEPT.get() else {
        let mut file = open_for_append(path).map_err(|e| ("open", e))?;
        let size = file.metadata().map_err(|e| ("read", e))?.len();
        return with(&mut file, size);
    };
    let mut kept = kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let size = kept.get(path).and_then(|file| {
        let named = std::fs::metadata(path).ok()?;
        let own = file.metadata().ok()?;
        ((own.dev(), own.ino()) == (named.dev(), named.ino())).then_some(own.len())
    });
    let size = match size {
        Some(size) => size,
        None => {
            kept.remove(path);
            let file = open_for_append(path).map_err(|e| ("open", e))?;
            let size = file.metadata().map_err(|e| ("read", e))?.len();
            if kept.len() >= MAX_KEPT {
                kept.clear();
            }
            kept.insert(path.to_path_buf(), file);
            size
        }
    };
    with(kept.get_mut(path).expect("kept just above"), size)
}

/// A new event id: unique, short (21 hex digits) and sortable by time — the microseconds since
/// the epoch, then the process id and a per-process counter, so that two runs in the same
/// microsecond (in one process or two) get different ids.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let micros = Utc::now().timestamp_micros().max(0) as u64;
    let count = COUNTER.fetch_add(1, Ordering::Relaxed) & 0xff;
    let pid = std::process::id() & 0xff_ffff;
    format!("{micros:013x}{pid:06x}{count:02x}")
}

/// Renames a full `file` to its `.1` generation, unless another writer just did, and returns
/// the file to append to.
fn rotate(file: &Path, line: u64, max_size: u64) -> io::Result<File> {
    let mut lock = file.as_os_str().to_owned();
    lock.push(".lock");
    let lock = open_for_append(Path::new(&lock))?;
    nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io::Error::from(errno))
        .and_then(|_held| {
            let current = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
            if current > 0 && current + line > max_size {
                std::fs::rename(file, previous(file))?;
            }
            open_for_append(file)
        })
}

/// The rotated generation of `file`.
pub fn previous(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Cuts `text` to at most `limit` bytes (on a character boundary), saying so.
fn cap_text(text: &mut String, limit: usize) {
    if text.len() <= limit {
        return;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push_str(" […cut: the whole text went to the runtime's error]");
}

fn io_error(action: &'static str, file: &Path) -> impl FnOnce(io::Error) -> EventsError {
    let file = file.to_path_buf();
    move |source| EventsError::Io {
        action,
        file,
        source,
    }
}

/// Checks that events can be appended to `file` (creating it if needed) and that its file
/// system has room for them, without writing any.
pub fn check_recordable(file: &Path) -> Result<(), EventsError> {
    with_appender(file, |_, _| Ok(())).map_err(|(action, e)| io_error(action, file)(e))?;
    let dir = file.parent().unwrap_or(Path::new("/"));
    let stat = nix::sys::statvfs::statvfs(dir).map_err(|e| io_error("check", file)(e.into()))?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let inodes = stat.files_available() as u64;
    // File systems without inode accounting report zero files in all.
    let inodes_short = stat.files() > 0 && inodes == 0;
    if free < MIN_FREE_BYTES || inodes_short {
        return Err(EventsError::NoSpace {
            dir: dir.to_path_buf(),
            free,
            inodes,
        });
    }
    Ok(())
}

fn open_for_append(file: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(file)
}

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub container: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Only this hook's runs.
    pub hook: Option<String>,
    pub stage: Option<Stage>,
    /// Only runs that failed (refused edits included).
    pub failed: bool,
}

impl Filter {
    pub fn accepts(&self, event: &Event) -> bool {
        self.container
            .as_ref()
            .is_none_or(|c| &event.container == c)
            && self.since.is_none_or(|since| event.time >= since)
            && self.hook.as_ref().is_none_or(|h| &event.hook == h)
            && self.stage.is_none_or(|s| event.stage == s)
            && (!self.failed || event.error.is_some())
    }
}

/// Reads matching events, the rotated generation first, calling `emit` for each; with
/// `follow`, keeps waiting for new ones (across rotations) until `emit` returns false. Lines
/// that do not parse (a torn last line) are skipped.
pub fn read(
    file: &Path,
    filter: &Filter,
    follow: bool,
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<(), EventsError> {
    let mut go_on = true;
    match File::open(previous(file)) {
        Ok(old) => go_on = read_lines(old, file, filter, false, &mut emit)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("open", &previous(file))(e)),
    }
    if !go_on {
        return Ok(());
    }
    let handle = match File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            wait_for(file).map_err(io_error("open", file))?
        }
        Err(e) => return Err(io_error("open", file)(e)),
    };
    read_lines(handle, file, filter, follow, &mut emit).map(drop)
}

/// Emits the matching events of one open file; false when `emit` asked to stop. Following,
/// a rotation (the path naming a new file) moves on to the new file once the old is read.
fn read_lines(
    handle: File,
    file: &Path,
    filter: &Filter,
    follow: bool,
    emit: &mut impl FnMut(&Event) -> bool,
) -> Result<bool, EventsError> {
    let io = |action| io_error(action, file);
    let mut reader = BufReader::new(handle);
    let mut line = String::new();
    loop {
        let pos = reader.stream_position().map_err(io("read"))?;
        line.clear();
        let n = reader.read_line(&mut line).map_err(io("read"))?;
        if n == 0 || !line.ends_with('\n') {
            if !follow {
                return Ok(true);
            }
            if n == 0 && rotated(reader.get_ref(), file) {
                let new = wait_for(file).map_err(io("open"))?;
                reader = BufReader::new(new);
                continue;
            }
            // Not a whole line yet: re-read it once the writer finished.
            reader.seek(SeekFrom::Start(pos)).map_err(io("read"))?;
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        if let Ok(event) = serde_json::from_str::<Event>(&line)
            && filter.accepts(&event)
            && !emit(&event)
        {
            return Ok(false);
        }
    }
}

/// Whether `path` now names another file than `handle` (the log was rotated).
fn rotated(handle: &File, path: &Path) -> bool {
    match (handle.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(now)) => (open.dev(), open.ino()) != (now.dev(), now.ino()),
        (Ok(_), Err(_)) => true,
        _ => false,
    }
}

fn wait_for(file: &Path) -> io::Result<File> {
    loop {
        match File::open(file) {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                std::thread::sleep(Duration::from_millis(100))
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(container: &str, secs: i64) -> Event {
        Event {
            id: String::new(),
            time: DateTime::from_timestamp(secs, 0).unwrap(),
            container: container.into(),
            stage: Stage::Prestart,
            hook: "h".into(),
            kind: HookKind::Native,
            exit: Some(0),
            duration_ms: 1.5,
            error: None,
            failure: None,
            fuel_used: None,
            on_failure: None,
            pod: None,
            generation: None,
            name: None,
            verdict: None,
            needs: None,
            stderr: None,
            cdi: None,
            shadow: None,
        }
    }

    /// A refused precreate edit exited 0: its line says `refused` first, and which grant
    /// would have allowed it; `--hook`, `--stage` and `--failed` pick runs.
    #[test]
    fn a_refused_edit_reads_as_refused_and_filters_pick_runs() {
        let mut refused = event("c", 100);
        refused.stage = Stage::Precreate;
        refused.hook = "gpu".into();
        refused.error = Some("it added env FOO".into());
        refused.failure = Some(Failure::Adjust);
        refused.verdict = Some(Verdict::Refused);
        refused.needs = Some("--may-adjust env=FOO".into());
        refused.stderr = stderr_tail(b"warn: shaping\n");
        let line = refused.text_line();
        assert!(
            line.contains(" precreate gpu (native) refused exit=0 "),
            "{line}"
        );
        assert!(line.contains(r#"needs="--may-adjust env=FOO""#), "{line}");
        assert!(line.ends_with(r#"stderr="warn: shaping""#), "{line}");
        let json = serde_json::to_value(&refused).unwrap();
        assert_eq!(json["verdict"], "refused");

        let ok = event("c", 101);
        let pick = |filter: Filter| [&refused, &ok].iter().filter(|e| filter.accepts(e)).count();
        let hook = |h: &str| Filter {
            hook: Some(h.into()),
            ..Filter::default()
        };
        assert_eq!((pick(hook("gpu")), pick(hook("h"))), (1, 1));
        let stage = Filter {
            stage: Some(Stage::Prestart),
            ..Filter::default()
        };
        assert_eq!(pick(stage), 1);
        assert_eq!(
            pick(Filter {
                failed: true,
                ..Filter::default()
            }),
            1
        );
    }

    /// Every run gets a short, unique, time-ordered id, shown in JSON and in the text view;
    /// lines written before ids existed still read.
    #[test]
    fn events_have_stable_ids_and_old_lines_still_read() {
        let ids: Vec<String> = (0..1000).map(|_| new_id()).collect();
        let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(
            ids.windows(2).all(|w| w[0][..13] <= w[1][..13]),
            "time-ordered"
        );
        assert!(
            ids.iter()
                .all(|id| id.len() == 21 && id.chars().all(|c| c.is_ascii_hexdigit()))
        );
        let mut e = event("c", 100);
        e.id = ids[0].clone();
        assert_eq!(serde_json::to_value(&e).unwrap()["id"], ids[0]);
        let line = e.text_line();
        assert!(line.ends_with(&format!("1.5ms id={}", ids[0])), "{line}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        let old = r#"{"time":"1970-01-01T00:01:40Z","container":"c","stage":"prestart","hook":"h","kind":"native","exit":0,"duration_ms":1.5}"#;
        std::fs::write(&file, format!("{old}\n")).unwrap();
        append(&file, &e, DEFAULT_MAX_SIZE).unwrap();
        let seen = all(&file);
        assert_eq!(seen, vec![event("c", 100), e]);
    }

    /// A run's stderr is kept to its last 4 KiB, escaped, cut on a character boundary.
    #[test]
    fn the_stderr_tail_is_bounded_and_escaped() {
        assert_eq!(stderr_tail(b""), None);
        assert_eq!(stderr_tail(b"\n \n"), None);
        let tail = stderr_tail(b"\x1b[2Jhi\n").unwrap();
        assert!(!tail.contains('\x1b'), "{tail:?}");
        assert!(tail.ends_with("hi"), "{tail:?}");
        let long = format!("start{}é-end", "x".repeat(10_000)).repeat(3);
        let tail = stderr_tail(long.as_bytes()).unwrap();
        assert!(tail.len() <= MAX_STDERR_BYTES, "{}", tail.len());
        assert!(tail.ends_with("é-end"), "{tail:?}");
        let noisy = vec![0x07u8; 100_000];
        assert!(stderr_tail(&noisy).unwrap().len() <= MAX_STDERR_BYTES);
    }

    #[test]
    fn filters_by_container_and_time_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        append(&file, &event("a", 100), DEFAULT_MAX_SIZE).unwrap();
        append(&file, &event("b", 200), DEFAULT_MAX_SIZE).unwrap();
        append(&file, &event("a", 300), DEFAULT_MAX_SIZE).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"{\"tor")
            .unwrap();
        let mut seen = Vec::new();
        let filter = Filter {
            container: Some("a".into()),
            since: DateTime::from_timestamp(150, 0),
            ..Filter::default()
        };
        read(&file, &filter, false, |e| {
            seen.push(e.clone());
            true
        })
        .unwrap();
        assert_eq!(seen, vec![event("a", 300)]);
    }

    fn all(file: &Path) -> Vec<Event> {
        let mut seen = Vec::new();
        read(file, &Filter::default(), false, |e| {
            seen.push(e.clone());
            true
        })
        .unwrap();
        seen
    }

    /// 1,000 noisy failures against a 64 KiB bound: the file and its one rotated generation
    /// stay under the bound, each event keeps at most 4 KiB of text, and `read` shows the
    /// latest runs, oldest first.
    #[test]
    fn the_trail_is_bounded_and_rotated_and_reads_both_generations() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        let bound = 64 * 1024;
        for i in 0..1000 {
            let mut e = event("noisy", i);
            e.error = Some(format!("exit status 1: {}", "x".repeat(64 * 1024)));
            append(&file, &e, bound).unwrap();
        }
        for f in [file.clone(), previous(&file)] {
            let size = std::fs::metadata(&f).unwrap().len();
            assert!(size <= bound, "{}: {size}", f.display());
        }
        let seen = all(&file);
        assert!(!seen.is_empty());
        let times: Vec<i64> = seen.iter().map(|e| e.time.timestamp()).collect();
        assert_eq!(*times.last().unwrap(), 999, "the latest run is shown");
        assert!(times.windows(2).all(|w| w[0] < w[1]), "in order: {times:?}");
        let error = seen[0].error.as_deref().unwrap();
        assert!(error.len() < MAX_ERROR_BYTES + 100, "{}", error.len());
        assert!(error.ends_with("went to the runtime's error]"), "{error}");
    }

    /// Every field of the text view is escaped: a hostile container id, hook name or error
    /// keeps the line one line with no control character, each shown as its escaped form;
    /// plain values are shown as they are.
    #[test]
    fn every_text_field_is_escaped() {
        let plain = event("c1", 100);
        assert_eq!(
            plain.text_line(),
            "1970-01-01T00:01:40.000Z c1 prestart h (native) exit=0 1.5ms"
        );
        let hostile = "x\n1970-01-01T00:00:00.000Z forged\x1b[2J\u{9b}2J\r\x07 \"q\" \\";
        let mut e = event(hostile, 100);
        e.hook = hostile.into();
        e.error = Some(hostile.into());
        e.on_failure = Some(hookhost_hooks::hook::OnFailure::Warn);
        let line = e.text_line();
        assert!(!line.chars().any(char::is_control), "{line:?}");
        let escaped = format!("{hostile:?}");
        assert!(escaped.contains(r"\u{1b}[2J\u{9b}2J\r\u{7}"), "{escaped}");
        assert_eq!(line.matches(&escaped).count(), 3, "{line}");
        assert!(line.ends_with(" on-failure=warn"), "{line}");
        for (value, shown) in [
            ("", r#""""#),
            ("a b", r#""a b""#),
            ("tab\there", r#""tab\there""#),
            ("\u{202e}evil", r#""\u{202e}evil""#),
            ("café+id_1.0-x", "café+id_1.0-x"),
        ] {
            assert_eq!(text_field(value), shown, "{value:?}");
        }
    }

    #[test]
    fn a_full_file_system_is_not_recordable() {
        let dir = tempfile::tempdir().unwrap();
        check_recordable(&dir.path().join("events.jsonl")).unwrap();
        let err = check_recordable(Path::new("/proc/events.jsonl")).unwrap_err();
        assert!(
            err.to_string().contains("cannot open the events log"),
            "{err}"
        );
    }
}
