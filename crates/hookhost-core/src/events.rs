//! The audit trail: one JSON line per hook run, appended to `ROOT/events.jsonl`.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hook::{HookKind, Stage};

#[derive(Debug, Error)]
pub enum EventsError {
    #[error("cannot {action} the events log {file}: {source}")]
    Io {
        action: &'static str,
        file: PathBuf,
        source: io::Error,
    },
}

/// One hook run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
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
}

/// Appends one event. A single `write` on an `O_APPEND` file keeps concurrent lines whole.
pub fn append(file: &Path, event: &Event) -> Result<(), EventsError> {
    let io = |action| {
        let file = file.to_path_buf();
        move |source| EventsError::Io {
            action,
            file,
            source,
        }
    };
    let mut line = serde_json::to_vec(event).expect("an event serialises");
    line.push(b'\n');
    let mut out = open_for_append(file).map_err(io("open"))?;
    out.write_all(&line).map_err(io("append to"))
}

/// Checks that events can be appended to `file` (creating it if needed), without writing any.
pub fn check_appendable(file: &Path) -> Result<(), EventsError> {
    open_for_append(file)
        .map(drop)
        .map_err(|source| EventsError::Io {
            action: "open",
            file: file.to_path_buf(),
            source,
        })
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
}

impl Filter {
    pub fn accepts(&self, event: &Event) -> bool {
        self.container
            .as_ref()
            .is_none_or(|c| &event.container == c)
            && self.since.is_none_or(|since| event.time >= since)
    }
}

/// Reads matching events, calling `emit` for each; with `follow`, keeps waiting for new ones
/// until `emit` returns false. Lines that do not parse (a torn last line) are skipped.
pub fn read(
    file: &Path,
    filter: &Filter,
    follow: bool,
    mut emit: impl FnMut(&Event) -> bool,
) -> Result<(), EventsError> {
    let io = |action| {
        let file = file.to_path_buf();
        move |source| EventsError::Io {
            action,
            file,
            source,
        }
    };
    let handle = match File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound && !follow => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => wait_for(file).map_err(io("open"))?,
        Err(e) => return Err(io("open")(e)),
    };
    let mut reader = BufReader::new(handle);
    let mut line = String::new();
    loop {
        let pos = reader.stream_position().map_err(io("read"))?;
        line.clear();
        let n = reader.read_line(&mut line).map_err(io("read"))?;
        if n == 0 || !line.ends_with('\n') {
            if !follow {
                return Ok(());
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
            return Ok(());
        }
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
            time: DateTime::from_timestamp(secs, 0).unwrap(),
            container: container.into(),
            stage: Stage::Prestart,
            hook: "h".into(),
            kind: HookKind::Native,
            exit: Some(0),
            duration_ms: 1.5,
            error: None,
        }
    }

    #[test]
    fn filters_by_container_and_time_and_skips_torn_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("events.jsonl");
        append(&file, &event("a", 100)).unwrap();
        append(&file, &event("b", 200)).unwrap();
        append(&file, &event("a", 300)).unwrap();
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
        };
        read(&file, &filter, false, |e| {
            seen.push(e.clone());
            true
        })
        .unwrap();
        assert_eq!(seen, vec![event("a", 300)]);
    }
}
