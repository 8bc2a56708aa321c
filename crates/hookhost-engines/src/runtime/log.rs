//! Writing to the runtime `--log` file the way runc (logrus) does, so that containerd's shim and
//! Docker show hookhost's error to the user: containerd reads the last `"level":"error"` JSON
//! line of that file when the runtime fails.

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use thiserror::Error;

use super::argv::RuncCall;

#[derive(Debug, Error)]
#[error("cannot write to the runtime log {}: {source}", path.display())]
pub struct LogError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// runc's `--log-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// logrus text: `time="…" level=error msg="…"` (runc's default).
    #[default]
    Text,
    /// logrus JSON: `{"level":"error","msg":"…","time":"…"}` (what Docker and containerd ask for).
    Json,
}

impl LogFormat {
    /// From the `--log-format` value; anything but `json` is text, runc's default.
    pub fn from_flag(value: Option<&str>) -> LogFormat {
        match value {
            Some("json") => LogFormat::Json,
            _ => LogFormat::Text,
        }
    }
}

/// logrus level names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

/// One log line, newline-terminated. Time is RFC 3339 in seconds, logrus's default.
pub fn format_line(format: LogFormat, level: Level, msg: &str, time: DateTime<Utc>) -> String {
    let time = time.to_rfc3339_opts(SecondsFormat::Secs, true);
    match format {
        // Keys in logrus's (sorted) order; serde_json escapes as encoding/json needs.
        LogFormat::Json => format!(
            "{}\n",
            json!({"level": level.as_str(), "msg": msg, "time": time})
        ),
        LogFormat::Text => format!(
            "time={} level={} msg={}\n",
            text_value(&time),
            level.as_str(),
            text_value(msg)
        ),
    }
}

/// logrus quotes a text value (Go `%q`) unless it only has "safe" characters.
fn text_value(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-._/@^+".contains(c);
    if value.chars().all(safe) {
        value.to_string()
    } else {
        go_quote(value)
    }
}

/// Go `strconv.Quote`-style quoting: one line, control characters escaped.
fn go_quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c == '\x7f' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Appends one line to the log file (created 0644 like runc's), in a single `write` so that
/// concurrent writers do not interleave within a line.
pub fn append(path: &Path, format: LogFormat, level: Level, msg: &str) -> Result<(), LogError> {
    let line = format_line(format, level, msg, Utc::now());
    let to_err = |source| LogError {
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)
        .map_err(to_err)?;
    file.write_all(line.as_bytes()).map_err(to_err)
}

/// Appends an error line.
pub fn write_error(path: &Path, format: LogFormat, msg: &str) -> Result<(), LogError> {
    append(path, format, Level::Error, msg)
}

/// Writes an error to this call's `--log` file in its `--log-format`. Returns `Ok(false)` when
/// the call has no `--log` (the caller still prints to stderr, which it should do anyway).
pub fn log_error(call: &RuncCall, msg: &str) -> Result<bool, LogError> {
    let Some(path) = &call.log else {
        return Ok(false);
    };
    write_error(path, LogFormat::from_flag(call.log_format.as_deref()), msg)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::os::unix::fs::PermissionsExt;
    use tempfile::TempDir;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap()
    }

    #[test]
    fn json_line_is_logrus_shaped() {
        let line = format_line(
            LogFormat::Json,
            Level::Error,
            "hook \"x\" failed\nexit 1",
            at(),
        );
        assert_eq!(
            line,
            "{\"level\":\"error\",\"msg\":\"hook \\\"x\\\" failed\\nexit 1\",\"time\":\"2024-05-06T07:08:09Z\"}\n"
        );
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).unwrap();
        assert_eq!(v["msg"], "hook \"x\" failed\nexit 1");
        assert!(chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).is_ok());
    }

    #[test]
    fn text_line_quotes_like_logrus() {
        assert_eq!(
            format_line(
                LogFormat::Text,
                Level::Error,
                "container refused: \"a\"\tb",
                at()
            ),
            "time=\"2024-05-06T07:08:09Z\" level=error msg=\"container refused: \\\"a\\\"\\tb\"\n"
        );
        assert_eq!(
            format_line(LogFormat::Text, Level::Warning, "plain-word_1.0", at()),
            "time=\"2024-05-06T07:08:09Z\" level=warning msg=plain-word_1.0\n"
        );
        assert_eq!(go_quote("a\u{1b}b\u{85}é"), "\"a\\x1bb\\u0085é\"");
    }

    #[test]
    fn format_from_flag() {
        assert_eq!(LogFormat::from_flag(Some("json")), LogFormat::Json);
        assert_eq!(LogFormat::from_flag(Some("text")), LogFormat::Text);
        assert_eq!(LogFormat::from_flag(None), LogFormat::Text);
    }

    #[test]
    fn appends_lines_and_creates_the_file() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("log.json");
        std::fs::write(
            &path,
            "{\"level\":\"info\",\"msg\":\"earlier\",\"time\":\"x\"}\n",
        )
        .unwrap();
        write_error(&path, LogFormat::Json, "first").unwrap();
        write_error(&path, LogFormat::Json, "second").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["msg"], "earlier");
        assert_eq!(
            (&lines[2]["level"], &lines[2]["msg"]),
            (&"error".into(), &"second".into())
        );

        let fresh = dir.path().join("new.log");
        write_error(&fresh, LogFormat::Text, "x").unwrap();
        assert!(
            std::fs::read_to_string(&fresh)
                .unwrap()
                .ends_with("level=error msg=x\n")
        );
        let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
        // 0644 minus the umask: owner read/write, never executable.
        assert_eq!(mode & 0o711, 0o600, "{mode:o}");
    }

    #[test]
    fn log_error_uses_the_calls_log_flags() {
        let dir = TempDir::new().unwrap();
        let log = dir.path().join("log.json");
        let args = [
            "--log",
            log.to_str().unwrap(),
            "--log-format",
            "json",
            "create",
            "id",
        ];
        let call = RuncCall::parse(&args, dir.path());
        assert!(log_error(&call, "refused: unregistered hook \"x\"").unwrap());
        let v: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "refused: unregistered hook \"x\"");

        let no_log = RuncCall::parse(&["create", "id"], dir.path());
        assert!(!log_error(&no_log, "x").unwrap());
        let bad = RuncCall::parse(
            &["--log", "/nonexistent-dir/x/log.json", "create"],
            dir.path(),
        );
        let err = log_error(&bad, "x").unwrap_err();
        assert!(err.to_string().contains("/nonexistent-dir/x/log.json"));
    }
}
