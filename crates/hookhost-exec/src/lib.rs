//! hookhost's executor: runs one hook program as it is told — a native process ([`native`]) or
//! a sandboxed WebAssembly module ([`wasm`]) — under the same contract: argv from `args`, only
//! the environment it is given, the OCI state on stdin, output captured (bounded), exit code 0
//! = success. Like containers/common's `hooks/exec`, it knows nothing of registries, selections
//! or containers: it is the leaf every other hookhost crate builds on, together with the
//! crash-safe, trust-checked file primitives in [`fs`].

pub mod fs;
pub mod limits;
pub mod native;
pub mod wasm;

use std::fmt;
use std::time::Duration;

/// How much of each of stdout and stderr is kept; the rest is read and discarded.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How a hook ended when it was not stopped by hookhost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal ended it.
    Signal(i32),
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Code(code) => write!(f, "exit status {code}"),
            Exit::Signal(sig) => {
                let name = nix::sys::signal::Signal::try_from(*sig)
                    .map(|s| s.as_str())
                    .unwrap_or("?");
                write!(f, "killed by signal {sig} ({name})")
            }
        }
    }
}

/// What a finished hook left behind.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub exit: Exit,
    /// The first [`OUTPUT_LIMIT`] bytes of its stdout.
    pub stdout: Vec<u8>,
    /// The first [`OUTPUT_LIMIT`] bytes of its stderr.
    pub stderr: Vec<u8>,
    /// Whether stdout or stderr was longer than [`OUTPUT_LIMIT`] and cut.
    pub truncated: bool,
    /// Wall-clock time of the run.
    pub duration: Duration,
    /// WASM hooks only: fuel units consumed.
    pub fuel_used: Option<u64>,
}

impl Outcome {
    /// Exit status 0.
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    /// The hook's output as a failure message shows it: stderr, else stdout, trimmed.
    pub fn output_summary(&self) -> String {
        let mut text = pick_output(&self.stdout, &self.stderr);
        if self.truncated {
            text.push_str(" […output truncated]");
        }
        text
    }
}

/// What a failure message shows of a hook's output: stderr, else stdout, trimmed, as text
/// safe for a terminal or a log line ([`printable`]).
pub fn pick_output(stdout: &[u8], stderr: &[u8]) -> String {
    let has_text = |bytes: &[u8]| bytes.iter().any(|b| !b.is_ascii_whitespace());
    let pick = if has_text(stderr) { stderr } else { stdout };
    printable(&String::from_utf8_lossy(pick)).trim().to_string()
}

/// Hook output as text that cannot drive a terminal: every control character but newline and
/// tab (C0, DEL and C1, where escape sequences live) is written as a `\u{..}` escape.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// `KEY=VALUE` into its parts (a missing `=` means an empty value).
pub fn split_env(pair: &str) -> (String, String) {
    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
    (key.to_string(), value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(
            printable("a\x1b[31mred\x07\r\u{9b}2J"),
            "a\\u{1b}[31mred\\u{7}\\u{d}\\u{9b}2J"
        );
        assert_eq!(printable("line\n\tindented é"), "line\n\tindented é");
        assert_eq!(
            pick_output(b"", b"\x1b]0;owned\x07 failed\n"),
            "\\u{1b}]0;owned\\u{7} failed"
        );
    }
}
