//! Logging for hooks: one `logfmt` line per call on stderr, with a level and fields, bounded.
//!
//! ```no_run
//! let path = "/rootfs/etc/motd";
//! hookhost_guest::info!("wrote the motd", bytes = 42, path = path);
//! hookhost_guest::warn!("no owner annotation", container = "web-1");
//! hookhost_guest::log::info("the same, without a macro", &[("bytes", &42)]);
//! ```
//!
//! writes
//!
//! ```text
//! level=info msg="wrote the motd" bytes=42 path=/rootfs/etc/motd
//! level=warn msg="no owner annotation" container=web-1
//! ```
//!
//! hookhost keeps the end of every run's stderr (its last 4 KiB) in the run's audit event,
//! also when the hook succeeds: `hookhost events --hook NAME` shows what the hook said, and
//! `hookhost try` prints it. A value is quoted when it holds a space, a quote, `=` or a
//! control character, with Rust's escapes, so that one line stays one line.
//!
//! Bounded: a line is cut at [`MAX_LINE_BYTES`], and a run writes at most [`MAX_LOG_BYTES`]
//! of log lines (then one line says how many were dropped), so a chatty hook cannot fill its
//! output buffer. Debug lines are written only when the hook's environment has
//! `HOOKHOST_GUEST_LOG=debug` (register it with `--env HOOKHOST_GUEST_LOG=debug`);
//! `HOOKHOST_GUEST_LOG=warn` or `error` keeps only those levels.

use std::fmt::{self, Display, Write as _};
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The environment variable that sets the lowest level written (default `info`).
pub const LEVEL_ENV: &str = "HOOKHOST_GUEST_LOG";

/// The longest line written, in bytes; a longer one is cut (on a character boundary) and
/// ends with `…`.
pub const MAX_LINE_BYTES: usize = 1024;

/// At most this many bytes of log lines per run.
pub const MAX_LOG_BYTES: usize = 16 * 1024;

/// How much a line matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// The level named by `HOOKHOST_GUEST_LOG`'s value; `info` for anything else.
    fn from_env(value: Option<&str>) -> Level {
        match value.map(str::trim) {
            Some("debug") => Level::Debug,
            Some("warn") => Level::Warn,
            Some("error") => Level::Error,
            _ => Level::Info,
        }
    }
}

impl Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field: a name and anything that displays.
pub type Field<'a> = (&'a str, &'a dyn Display);

/// Writes `msg` with `fields` at `level` on stderr, within the run's bounds.
pub fn log(level: Level, msg: &str, fields: &[Field<'_>]) {
    let lowest = Level::from_env(std::env::var(LEVEL_ENV).ok().as_deref());
    if level < lowest {
        return;
    }
    let mut text = line(level, msg, fields);
    text.push('\n');
    if let Some(text) = BUDGET.take(text) {
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }
}

/// What [`info!`](crate::info) and the other level macros expand to.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($level:ident, $msg:expr $(, $key:ident = $value:expr)* $(,)?) => {
        $crate::log::log(
            $crate::log::Level::$level,
            &$msg,
            &[$((stringify!($key), &$value as &dyn ::core::fmt::Display)),*],
        )
    };
}

/// `hookhost_guest::info!("msg", key = value, …)`: [`log`] at [`Level::Info`], each value
/// anything that implements `Display`. Also `debug!`, `warn!`, `error!`.
#[macro_export]
macro_rules! info {
    ($($given:tt)*) => { $crate::__log_at!(Info, $($given)*) };
}

/// [`info!`](crate::info) at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($given:tt)*) => { $crate::__log_at!(Debug, $($given)*) };
}

/// [`info!`](crate::info) at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($given:tt)*) => { $crate::__log_at!(Warn, $($given)*) };
}

/// [`info!`](crate::info) at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($given:tt)*) => { $crate::__log_at!(Error, $($given)*) };
}

pub fn debug(msg: &str, fields: &[Field<'_>]) {
    log(Level::Debug, msg, fields)
}

pub fn info(msg: &str, fields: &[Field<'_>]) {
    log(Level::Info, msg, fields)
}

pub fn warn(msg: &str, fields: &[Field<'_>]) {
    log(Level::Warn, msg, fields)
}

pub fn error(msg: &str, fields: &[Field<'_>]) {
    log(Level::Error, msg, fields)
}

/// The line (without its newline): `level=L msg=M k=v…`, at most [`MAX_LINE_BYTES`].
pub fn line(level: Level, msg: &str, fields: &[Field<'_>]) -> String {
    let mut out = format!("level={level} msg={}", value(msg));
    for (key, val) in fields {
        let _ = write!(out, " {}={}", key_text(key), value(&val.to_string()));
    }
    if out.len() > MAX_LINE_BYTES {
        let mut end = MAX_LINE_BYTES - '…'.len_utf8();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// A value as it is when plain, else quoted with Rust's escapes.
fn value(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| !c.is_whitespace() && !matches!(c, '"' | '=' | '\\') && !c.is_control());
    match plain {
        true => text.to_string(),
        false => format!("{text:?}"),
    }
}

/// A key: anything but a letter, digit, `_`, `.` or `-` becomes `_`.
fn key_text(key: &str) -> String {
    let key: String = key
        .chars()
        .map(
            |c| match c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                true => c,
                false => '_',
            },
        )
        .collect();
    match key.is_empty() {
        true => "_".into(),
        false => key,
    }
}

/// What is left of a run's [`MAX_LOG_BYTES`].
struct Budget {
    used: AtomicUsize,
    dropped: AtomicUsize,
    said: AtomicBool,
    limit: usize,
}

static BUDGET: Budget = Budget::new(MAX_LOG_BYTES);

impl Budget {
    const fn new(limit: usize) -> Budget {
        Budget {
            used: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            said: AtomicBool::new(false),
            limit,
        }
    }

    /// `text` if it fits what is left; else once a line saying that lines are dropped.
    fn take(&self, text: String) -> Option<String> {
        let fits = self
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + text.len() <= self.limit).then_some(used + text.len())
            })
            .is_ok();
        if fits {
            return Some(text);
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        match self.said.swap(true, Ordering::Relaxed) {
            true => None,
            false => Some(format!(
                "level=warn msg=\"log limit of {} bytes reached: further lines dropped\"\n",
                self.limit
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_logfmt_with_escaped_values() {
        let n = 3;
        assert_eq!(
            line(
                Level::Info,
                "wrote it",
                &[("bytes", &n), ("path", &"/rootfs/etc/motd")]
            ),
            "level=info msg=\"wrote it\" bytes=3 path=/rootfs/etc/motd"
        );
        let hostile = "a\nlevel=error msg=forged";
        let text = line(Level::Warn, "x", &[("bad key", &hostile)]);
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(
            text.contains(r#"bad_key="a\nlevel=error msg=forged""#),
            "{text}"
        );
    }

    #[test]
    fn a_line_and_a_run_are_bounded() {
        let long = "é".repeat(MAX_LINE_BYTES);
        let text = line(Level::Error, &long, &[]);
        assert!(text.len() <= MAX_LINE_BYTES, "{}", text.len());
        assert!(text.ends_with('…'));

        let budget = Budget::new(100);
        assert!(budget.take("x".repeat(60)).is_some());
        let refused = budget.take("y".repeat(60)).unwrap();
        assert!(
            refused.contains("log limit of 100 bytes reached"),
            "{refused}"
        );
        assert_eq!(
            budget.take("z".into()),
            Some("z".into()),
            "what still fits is written"
        );
        assert_eq!(budget.take("w".repeat(60)), None, "said once");
    }

    #[test]
    fn the_level_comes_from_the_environment() {
        assert_eq!(Level::from_env(None), Level::Info);
        assert_eq!(Level::from_env(Some("debug")), Level::Debug);
        assert_eq!(Level::from_env(Some("error")), Level::Error);
        assert_eq!(Level::from_env(Some("loud")), Level::Info);
    }
}
