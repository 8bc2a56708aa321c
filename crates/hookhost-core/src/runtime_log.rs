//! Writing to the runtime's `--log` file the way runc (logrus) does, so that containerd's shim
//! and Docker show hookhost's error to the user (containerd reads the last `"level":"error"` JSON
//! line of that file when the runtime fails), and so that warnings of hook stages — which the
//! runtime discards when a hook succeeds — are on record there too ([`RuntimeLog`], named in a
//! container's plan file by the runtime wrapper).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::json;
use thiserror::Error;

use serde::{Deserialize, Serialize};

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

/// A runtime's log file and its format, as the wrapper saw them on the `create` call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuntimeLog {
    pub path: PathBuf,
    #[serde(default)]
    pub json: bool,
}

impl RuntimeLog {
    pub fn format(&self) -> LogFormat {
        if self.json {
            LogFormat::Json
        } else {
            LogFormat::Text
        }
    }

    /// Appends a warning line.
    pub fn warn(&self, msg: &str) -> Result<(), LogError> {
        append(&self.path, self.format(), Level::Warning, msg)
    }
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
}
