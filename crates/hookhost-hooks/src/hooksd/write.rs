//! Writing hooks.d 1.0.0 files (for `hookhost export hooks.d`), beside their reader.

use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook;
use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::hook::Stage;
use crate::when::When;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(
        "invalid hooks.d file name {0:?}: it must be non-empty, without '/', and not start with '.'"
    )]
    InvalidName(String),
    #[error("cannot write {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The hooks.d 1.0.0 document for a hook: `version`, `hook`, `when`, `stages`, in that order.
pub fn v1_document(hook: &Hook, when: &When, stages: &[Stage]) -> Value {
    json!({
        "version": "1.0.0",
        "hook": hook_object(hook),
        "when": when,
        "stages": stages.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
    })
}

fn hook_object(hook: &Hook) -> Value {
    let mut object = Map::new();
    object.insert("path".into(), json!(hook.path()));
    if let Some(args) = hook.args() {
        object.insert("args".into(), json!(args));
    }
    if let Some(env) = hook.env() {
        object.insert("env".into(), json!(env));
    }
    if let Some(timeout) = hook.timeout() {
        object.insert("timeout".into(), json!(timeout));
    }
    Value::Object(object)
}

/// Writes `document` as `DIR/NAME.json` (`.json` is added unless `name` ends with it), creating
/// `DIR` if needed. Atomic: a temporary file in `DIR` (whose name readers skip, as it does not
/// end in `.json`) is synced, made world-readable like packaged hooks.d files, then renamed.
pub fn write_file(dir: &Path, name: &str, document: &Value) -> Result<PathBuf, ExportError> {
    let file_name = file_name(name)?;
    let path = dir.join(&file_name);
    let io_err = |source| ExportError::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io_err)?;
    let mut text = serde_json::to_vec_pretty(document).map_err(|e| io_err(e.into()))?;
    text.push(b'\n');
    hookhost_exec::fs::write_atomic(&path, &text, 0o644).map_err(io_err)?;
    Ok(path)
}

fn file_name(name: &str) -> Result<String, ExportError> {
    let stem = name.strip_suffix(".json").unwrap_or(name);
    if stem.is_empty() || stem.starts_with('.') || stem.contains(['/', '\0']) {
        return Err(ExportError::InvalidName(name.to_string()));
    }
    Ok(format!("{stem}.json"))
}

#[cfg(test)]
mod tests;
