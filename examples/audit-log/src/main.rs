//! audit-log: a poststart/poststop hook (register with `--allow-dir LOGDIR:/log:rw`) that
//! appends one JSON line per event to `/log/audit.jsonl` (or to the path given as its first
//! argument): time, stage, container id, status and pid.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use hookhost_guest::{Error, Hook, run, time};
use serde::Serialize;

const DEFAULT_LOG: &str = "/log/audit.jsonl";

fn main() -> ExitCode {
    run(|hook| {
        let path = hook
            .extra_args()
            .first()
            .map_or(DEFAULT_LOG, String::as_str);
        append(Path::new(path), &audit_line(hook, time::now_rfc3339()))
    })
}

/// One audit event; fields serialise in this order.
#[derive(Serialize)]
struct Event<'a> {
    /// Omitted when the clock is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    time: Option<String>,
    stage: Option<&'static str>,
    id: &'a str,
    status: &'a str,
    pid: Option<i64>,
}

/// One JSON object, newline-terminated.
fn audit_line(hook: &Hook, time: Option<String>) -> String {
    let event = Event {
        time,
        stage: hook.stage.map(|s| s.as_str()),
        id: &hook.state.id,
        status: &hook.state.status,
        pid: hook.state.pid,
    };
    let json = serde_json::to_string(&event).expect("plain strings and numbers serialise");
    format!("{json}\n")
}

/// Appends in one write so concurrent hooks' lines do not interleave.
fn append(path: &Path, line: &str) -> Result<(), Error> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("audit-log: cannot open {}: {e}", path.display()))?;
    file.write_all(line.as_bytes())
        .map_err(|e| format!("audit-log: cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_guest::{Stage, State};

    fn hook(stage: Stage, status: &str, pid: Option<i64>) -> Hook {
        let state = State {
            id: "c1".into(),
            status: status.into(),
            pid,
            ..State::default()
        };
        Hook::new(state).with_stage(stage)
    }

    #[test]
    fn lines_carry_the_event() {
        let line = audit_line(
            &hook(Stage::Poststart, "running", Some(42)),
            Some("T".into()),
        );
        assert_eq!(
            line,
            "{\"time\":\"T\",\"stage\":\"poststart\",\"id\":\"c1\",\"status\":\"running\",\"pid\":42}\n"
        );
        let line = audit_line(&hook(Stage::Poststop, "stopped", None), None);
        assert_eq!(
            line,
            "{\"stage\":\"poststop\",\"id\":\"c1\",\"status\":\"stopped\",\"pid\":null}\n"
        );
    }

    #[test]
    fn appends_one_line_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        append(&log, "{\"a\":1}\n").unwrap();
        append(&log, "{\"a\":2}\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "{\"a\":1}\n{\"a\":2}\n"
        );
        assert!(append(&dir.path().join("missing/x"), "x").is_err());
    }
}
