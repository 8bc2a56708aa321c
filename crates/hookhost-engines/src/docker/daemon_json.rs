//! Registering hookhost's runtime in dockerd's daemon.json, keeping every other key.

use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Map, Value};
use thiserror::Error;

use hookhost_exec::fs as fsutil;

#[derive(Debug, Error)]
pub enum DaemonJsonError {
    #[error("cannot {action} {}: {source}", file.display())]
    Io {
        action: &'static str,
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not valid: {reason}", file.display())]
    Invalid { file: PathBuf, reason: String },
    #[error("{} holds {content:?}, not a process id", file.display())]
    BadPidFile { file: PathBuf, content: String },
    #[error("process {pid} (from {}) is {comm:?}, not dockerd; not signalling it", file.display())]
    NotDockerd {
        pid: i32,
        file: PathBuf,
        comm: String,
    },
    #[error("cannot send SIGHUP to dockerd (pid {pid}): {source}")]
    Signal { pid: i32, source: nix::Error },
}

/// What `install_runtime` did.
#[derive(Debug, PartialEq, Eq)]
pub struct Installed {
    /// False when the runtime was already registered with this path.
    pub changed: bool,
    /// Where the previous daemon.json was copied, when there was one and it changed.
    pub backup: Option<PathBuf>,
}

/// The backup file of `file`: `daemon.json.hookhost-backup`.
pub fn backup_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".hookhost-backup");
    PathBuf::from(name)
}

/// Sets `runtimes.NAME.path` to `runtime`, keeping every other key (and any other key of that
/// runtime, such as `runtimeArgs`). Idempotent; the previous file is backed up first.
pub fn install_runtime(
    file: &Path,
    name: &str,
    runtime: &Path,
) -> Result<Installed, DaemonJsonError> {
    let original = read_existing(file)?;
    let mut doc = parse_object(file, original.as_deref())?;
    let runtimes = doc
        .entry("runtimes")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid(file, "\"runtimes\" is not an object"))?;
    let entry = runtimes
        .entry(name)
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .ok_or_else(|| invalid(file, &format!("\"runtimes\".{name:?} is not an object")))?;
    let wanted = Value::from(runtime.to_string_lossy().into_owned());
    if entry.get("path") == Some(&wanted) {
        return Ok(Installed {
            changed: false,
            backup: None,
        });
    }
    entry.insert("path".into(), wanted);
    let backup = match &original {
        Some(bytes) => {
            let backup = backup_path(file);
            fsutil::write_atomic(&backup, bytes, 0o600).map_err(io("write", &backup))?;
            Some(backup)
        }
        None => None,
    };
    write(file, &Value::Object(doc))?;
    Ok(Installed {
        changed: true,
        backup,
    })
}

fn read_existing(file: &Path) -> Result<Option<Vec<u8>>, DaemonJsonError> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("read", file)(e)),
    }
}

fn parse_object(file: &Path, bytes: Option<&[u8]>) -> Result<Map<String, Value>, DaemonJsonError> {
    let bytes = bytes.unwrap_or_default();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid(file, "the document is not a JSON object")),
        Err(e) => Err(invalid(file, &e.to_string())),
    }
}

fn write(file: &Path, doc: &Value) -> Result<(), DaemonJsonError> {
    if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty()) {
        fsutil::create_dir_all(dir, 0o755).map_err(io("create", dir))?;
    }
    let mut bytes = serde_json::to_vec_pretty(doc).expect("JSON serialises");
    bytes.push(b'\n');
    fsutil::replace_atomic(file, &bytes).map_err(io("write", file))
}

/// Sends SIGHUP to the dockerd whose pid is in `pidfile`, so that it re-reads `runtimes`.
pub fn reload(pidfile: &Path) -> Result<i32, DaemonJsonError> {
    let content = std::fs::read_to_string(pidfile).map_err(io("read", pidfile))?;
    let pid: i32 = content
        .trim()
        .parse()
        .map_err(|_| DaemonJsonError::BadPidFile {
            file: pidfile.to_path_buf(),
            content: content.trim().to_string(),
        })?;
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() != "dockerd" {
        return Err(DaemonJsonError::NotDockerd {
            pid,
            file: pidfile.to_path_buf(),
            comm: comm.trim().to_string(),
        });
    }
    kill(Pid::from_raw(pid), Signal::SIGHUP)
        .map_err(|source| DaemonJsonError::Signal { pid, source })?;
    Ok(pid)
}

fn invalid(file: &Path, reason: &str) -> DaemonJsonError {
    DaemonJsonError::Invalid {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

fn io(action: &'static str, file: &Path) -> impl FnOnce(std::io::Error) -> DaemonJsonError {
    let file = file.to_path_buf();
    move |source| DaemonJsonError::Io {
        action,
        file,
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_other_keys_backs_up_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("daemon.json");
        let before = r#"{"debug": true, "runtimes": {"nvidia": {"path": "/usr/bin/nvidia", "runtimeArgs": []}}, "log-opts": {"max-size": "10m"}}"#;
        std::fs::write(&file, before).unwrap();
        let rt = Path::new("/usr/local/bin/hookhost-runtime");
        let done = install_runtime(&file, "hookhost", rt).unwrap();
        assert!(done.changed);
        assert_eq!(
            std::fs::read_to_string(done.backup.unwrap()).unwrap(),
            before
        );
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["debug"], true);
        assert_eq!(doc["log-opts"]["max-size"], "10m");
        assert_eq!(doc["runtimes"]["nvidia"]["path"], "/usr/bin/nvidia");
        assert_eq!(doc["runtimes"]["hookhost"]["path"], rt.to_str().unwrap());
        let keys: Vec<_> = doc.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["debug", "runtimes", "log-opts"], "key order kept");
        let again = install_runtime(&file, "hookhost", rt).unwrap();
        assert_eq!(
            again,
            Installed {
                changed: false,
                backup: None
            }
        );
    }

    #[test]
    fn creates_a_missing_file_and_refuses_a_broken_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker/daemon.json");
        let done = install_runtime(&file, "hookhost", Path::new("/x")).unwrap();
        assert_eq!(done.backup, None);
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"runtimes": {"hookhost": {"path": "/x"}}})
        );
        std::fs::write(&file, "{broken").unwrap();
        let err = install_runtime(&file, "hookhost", Path::new("/x")).unwrap_err();
        assert!(
            err.to_string().contains("daemon.json is not valid"),
            "{err}"
        );
        std::fs::write(&file, r#"{"runtimes": []}"#).unwrap();
        let err = install_runtime(&file, "hookhost", Path::new("/x")).unwrap_err();
        assert!(
            err.to_string().contains("\"runtimes\" is not an object"),
            "{err}"
        );
    }
}
