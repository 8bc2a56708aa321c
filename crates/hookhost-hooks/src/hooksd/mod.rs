//! Podman/CRI-O hooks.d directories (oci-hooks(5)), read as containers/common `pkg/hooks` does,
//! and written in the 1.0.0 format.
//!
//! Behaviour kept from containers/common (each checked by a test naming the containers/common
//! test it mirrors, tests/hooksd_parity.rs):
//! - only `*.json` files; directories in increasing precedence, a file name in a later directory
//!   replacing the same name from an earlier one — only when the later file is valid (an invalid
//!   file is never added, so it does not mask anything);
//! - an invalid file is an error of the whole set (containers/common's `New` fails, and Podman
//!   refuses the container); [`HooksdSet::errors`] carries them for the caller to refuse —
//!   except where `New` ignores the error: when the only problem in a directory is a hook path
//!   that does not exist (`ReadDir` returns that one error unwrapped and `New` skips any
//!   not-exist error), the file is dropped, the other files are used, and a same-named file of a
//!   lower-precedence directory stays in force ([`HooksdSet::ignored`] names it);
//! - `version` `"1.0.0"` is the current format, absent/`""`/`"0.1.0"` the legacy one;
//! - JSON property names match case-insensitively (Go's `encoding/json`); stage names do not;
//! - regexes are Go's ([`crate::re2`]);
//! - a hook path that does not exist makes the file invalid (and dropped, as above);
//! - a file without conditions is valid and never matches; so is one with `"stages": []`
//!   (containers/common rejects only a missing `stages`);
//! - matching hooks are ordered by lower-cased file name, and `prestart` files are injected at
//!   createRuntime in that one order with the createRuntime files ([`HooksdSet::injected`]);
//! - a hook without `timeout` has none;
//! - Podman's extension stage `precreate` (containers/common `RuntimeConfigFilter`): the hook gets
//!   the proposed config.json on stdin and writes the whole document on stdout; hookhost runs
//!   these files itself before the runtime creates the container ([`crate::precreate`]).
//!
//! Stricter than containers/common, each reported as an error naming the file: a relative hook
//! path (the OCI spec requires absolute), a timeout outside 1..=[`MAX_TIMEOUT_SECS`](crate::hook::MAX_TIMEOUT_SECS)
//! (checked while the 1.0.0 hook is read), arguments or an environment no program can be given
//! ([`crate::hook::check_runnable`]: a NUL, or more than the kernel passes), and — as hookhost
//! trusts its registry — a directory or file another user could write
//! ([`hookhost_exec::fs::check_trusted_path`]). Duplicate stages in one file
//! are kept once.

mod v0_1_0;
mod v1_0_0;
mod write;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::Hook;
use serde_json::{Map, Value};
use thiserror::Error;

use hookhost_exec::fs::{self as fsutil, Untrusted};

use crate::hook::{HookKind, Stage, TimeoutError, Unrunnable, check_runnable};
use crate::when::{ContainerFacts, When, WhenError};

pub use v0_1_0::Legacy;
pub use write::{ExportError, v1_document, write_file};

/// The conventional directories, in increasing precedence.
pub const DEFAULT_DIRS: [&str; 2] = [
    "/usr/share/containers/oci/hooks.d",
    "/etc/containers/oci/hooks.d",
];

/// One valid hooks.d file.
#[derive(Debug, Clone, PartialEq)]
pub struct HooksdHook {
    /// The file stem (`oci-systemd-hook` for `oci-systemd-hook.json`).
    pub name: String,
    pub file: PathBuf,
    pub hook: Hook,
    /// In file order, without duplicates.
    pub stages: Vec<Stage>,
    pub condition: Condition,
}

/// The conditions of a hooks.d file: 1.0.0 conditions are AND-ed, 0.1.0 ones OR-ed.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    V1(When),
    Legacy(Legacy),
}

impl Condition {
    pub fn matches(&self, facts: &ContainerFacts) -> bool {
        match self {
            Condition::V1(when) => when.matches(facts),
            Condition::Legacy(legacy) => legacy.matches(facts),
        }
    }

    /// The same condition as a 1.0.0 `When`, when one exists (always for 1.0.0; for 0.1.0 only
    /// when at most one kind of condition is set, since `When` cannot express OR).
    pub fn to_when(&self) -> Option<When> {
        match self {
            Condition::V1(when) => Some(when.clone()),
            Condition::Legacy(legacy) => legacy.to_when(),
        }
    }

    /// No condition at all: the file is valid but never matches (as in containers/common).
    pub fn is_empty(&self) -> bool {
        match self {
            Condition::V1(when) => when.is_empty(),
            Condition::Legacy(legacy) => legacy.is_empty(),
        }
    }
}

/// A file or directory that could not be used, and why.
#[derive(Debug, Error)]
#[error("{}: {kind}", path.display())]
pub struct HooksdError {
    pub path: PathBuf,
    pub kind: ErrorKind,
}

#[derive(Debug, Error)]
pub enum ErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] io::Error),
    #[error("invalid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error("not a hook definition: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("unrecognized hook version {0:?} (expected \"1.0.0\", \"0.1.0\" or none)")]
    Version(String),
    #[error("missing required property: {0}")]
    Missing(&'static str),
    #[error("cannot set both '{0}' and '{1}'")]
    Both(&'static str, &'static str),
    #[error("hook path {0:?} is not absolute")]
    RelativePath(String),
    #[error("hook path {path:?} is unusable: {source}")]
    PathNotFound {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("unknown stage {stage:?}{hint} (valid: {})", Stage::names().join(", "))]
    UnknownStage { stage: String, hint: String },
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
    #[error(transparent)]
    When(#[from] WhenError),
    #[error(transparent)]
    Untrusted(#[from] Untrusted),
    #[error("the hook could never run: {0}")]
    Unrunnable(#[from] Unrunnable),
}

impl ErrorKind {
    /// The hook's path does not exist (ENOENT): the one error containers/common's `New`
    /// ignores when it is alone in its directory.
    pub fn is_missing_hook_path(&self) -> bool {
        matches!(self, ErrorKind::PathNotFound { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// Everything read from a list of directories: the valid hooks, ordered by lower-cased file name,
/// and the problems, each naming its file.
#[derive(Debug, Default)]
pub struct HooksdSet {
    pub hooks: Vec<HooksdHook>,
    pub errors: Vec<HooksdError>,
    /// Files dropped as containers/common drops them (see the module documentation): not an
    /// error of the set, but worth a warning.
    pub ignored: Vec<HooksdError>,
}

impl HooksdSet {
    /// The hooks to run for this container at this stage, in file order.
    pub fn matching(&self, facts: &ContainerFacts, stage: Stage) -> Vec<&HooksdHook> {
        self.hooks
            .iter()
            .filter(|h| h.stages.contains(&stage) && h.condition.matches(facts))
            .collect()
    }

    /// The hooks to inject for this container, each at the stage it runs at, in file order:
    /// as containers/common does since 2024, a `prestart` file runs at createRuntime, in the
    /// same list as the createRuntime files (so file order decides between them).
    pub fn injected(&self, facts: &ContainerFacts) -> Vec<(Stage, &HooksdHook)> {
        let matched = self.hooks.iter().filter(|h| h.condition.matches(facts));
        matched
            .flat_map(|hook| hook.stages.iter().map(move |&s| (injected_stage(s), hook)))
            .collect()
    }
}

/// The stage a hooks.d file's stage is injected at: `prestart` becomes createRuntime.
pub fn injected_stage(stage: Stage) -> Stage {
    match stage {
        Stage::Prestart => Stage::CreateRuntime,
        other => other,
    }
}

/// Reads hooks.d directories given in increasing precedence. A missing directory is skipped;
/// every unusable file is reported and skipped without hiding the others.
pub fn read_dirs(dirs: &[PathBuf]) -> HooksdSet {
    let mut by_file_name = BTreeMap::new();
    let mut errors = Vec::new();
    let mut ignored = Vec::new();
    for dir in dirs {
        let mut in_dir = Vec::new();
        read_dir_into(dir, &mut by_file_name, &mut in_dir);
        match in_dir.as_slice() {
            [only] if only.kind.is_missing_hook_path() => ignored.append(&mut in_dir),
            _ => errors.append(&mut in_dir),
        }
    }
    let mut hooks: Vec<(String, HooksdHook)> = by_file_name.into_iter().collect();
    hooks.sort_by(|(a, _), (b, _)| name_order(a, b));
    HooksdSet {
        hooks: hooks.into_iter().map(|(_, hook)| hook).collect(),
        errors,
        ignored,
    }
}

/// The order hooks.d runs files in, which hookhost also runs its global hooks in: by
/// lower-cased name (containers/common); ties (names differing only in case) are unordered
/// there, here broken by the exact name so the order is stable.
pub fn name_order(a: &str, b: &str) -> std::cmp::Ordering {
    (a.to_lowercase(), a).cmp(&(b.to_lowercase(), b))
}

fn read_dir_into(
    dir: &Path,
    hooks: &mut BTreeMap<String, HooksdHook>,
    errors: &mut Vec<HooksdError>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return,
        Err(e) => return errors.push(error(dir, ErrorKind::Io(e))),
    };
    if let Err(e) = fsutil::check_trusted_path(dir) {
        return errors.push(error(dir, e.into()));
    }
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) => {
                errors.push(error(dir, ErrorKind::Io(e)));
                continue;
            }
        };
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.ends_with(".json") {
            continue;
        }
        match read_file(&entry.path()) {
            Ok(hook) => {
                hooks.insert(file_name, hook);
            }
            // The file vanished between listing and reading: containers/common ignores it too.
            Err(HooksdError {
                path,
                kind: ErrorKind::Io(e),
            }) if e.kind() == io::ErrorKind::NotFound && path == entry.path() => {}
            Err(e) => errors.push(e),
        }
    }
}

fn error(path: &Path, kind: ErrorKind) -> HooksdError {
    HooksdError {
        path: path.to_path_buf(),
        kind,
    }
}

/// Reads and validates one hooks.d file, including that nobody but root (or the current user)
/// can change it and that its hook path exists.
pub fn read_file(path: &Path) -> Result<HooksdHook, HooksdError> {
    let bytes = std::fs::read(path).map_err(|e| error(path, ErrorKind::Io(e)))?;
    fsutil::check_trusted_path(path).map_err(|e| error(path, e.into()))?;
    let hook = parse(path, &bytes).map_err(|kind| error(path, kind))?;
    std::fs::metadata(hook.hook.path()).map_err(|source| {
        let path_str = hook.hook.path().to_string_lossy().into_owned();
        error(
            path,
            ErrorKind::PathNotFound {
                path: path_str,
                source,
            },
        )
    })?;
    Ok(hook)
}

/// Parses and validates a hooks.d document (no filesystem access). `file` gives the name.
pub fn parse(file: &Path, bytes: &[u8]) -> Result<HooksdHook, ErrorKind> {
    let value: Value = serde_json::from_slice(bytes).map_err(ErrorKind::Syntax)?;
    let object = fold_keys(value, TOP_LEVEL_KEYS)?;
    let parsed = match version(&object)? {
        Format::V1 => v1_0_0::parse(object)?,
        Format::Legacy => v0_1_0::parse(object)?,
    };
    validate(&parsed)?;
    Ok(HooksdHook {
        name: stem(file),
        file: file.to_path_buf(),
        hook: parsed.hook,
        stages: parsed.stages,
        condition: parsed.condition,
    })
}

fn stem(file: &Path) -> String {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_suffix(".json").unwrap_or(&name).to_string()
}

/// What a version-specific reader produces before common validation.
struct Parsed {
    hook: Hook,
    stages: Vec<Stage>,
    condition: Condition,
}

enum Format {
    V1,
    Legacy,
}

const TOP_LEVEL_KEYS: &[&str] = &[
    "version",
    "hook",
    "when",
    "stages",
    "stage",
    "arguments",
    "cmds",
    "cmd",
    "annotations",
    "annotation",
    "hasbindmounts",
];

fn version(object: &Map<String, Value>) -> Result<Format, ErrorKind> {
    match object.get("version") {
        None | Some(Value::Null) => Ok(Format::Legacy),
        Some(Value::String(v)) if v.is_empty() || v == "0.1.0" => Ok(Format::Legacy),
        Some(Value::String(v)) if v == "1.0.0" => Ok(Format::V1),
        Some(other) => Err(ErrorKind::Version(match other {
            Value::String(v) => v.clone(),
            v => v.to_string(),
        })),
    }
}

/// Renames the keys of a JSON object that equal a known property name ignoring ASCII case to
/// that name, as Go's `encoding/json` matches struct fields; a later duplicate wins, as in Go.
/// Also checks that the value is an object.
fn fold_keys(value: Value, known: &[&str]) -> Result<Map<String, Value>, ErrorKind> {
    let Value::Object(object) = value else {
        return Err(ErrorKind::Shape(serde::de::Error::custom(format!(
            "expected a JSON object, found {value}"
        ))));
    };
    let mut folded = Map::new();
    for (key, v) in object {
        let name = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(&key))
            .map_or(key, |k| k.to_string());
        folded.insert(name, v);
    }
    Ok(folded)
}

/// Folds the keys of a nested object (`hook`, `when`) in place; non-objects are left for serde
/// to reject with a precise message.
fn fold_nested(
    object: &mut Map<String, Value>,
    key: &str,
    known: &[&str],
) -> Result<(), ErrorKind> {
    if let Some(inner) = object.get_mut(key).filter(|v| v.is_object()) {
        *inner = Value::Object(fold_keys(inner.take(), known)?);
    }
    Ok(())
}

/// Stage names as hooks.d spells them: exact OCI camelCase (containers/common compares strings),
/// and Podman's `precreate`; hookhost's own startRuntime is no hooks.d stage.
fn parse_stages(names: Vec<String>) -> Result<Vec<Stage>, ErrorKind> {
    let mut stages = Vec::new();
    for name in names {
        let stage = Stage::ALL
            .into_iter()
            .find(|s| *s != Stage::StartRuntime && s.as_str() == name)
            .ok_or_else(|| unknown_stage(&name))?;
        if !stages.contains(&stage) {
            stages.push(stage);
        }
    }
    // `"stages": []` is valid in containers/common (only a missing `stages` is an error): the
    // file is read and never injected.
    Ok(stages)
}

fn unknown_stage(name: &str) -> ErrorKind {
    let hint = match name.parse::<Stage>() {
        Ok(s) => format!(
            " (stage names are case-sensitive: did you mean {s:?}?)",
            s = s.as_str()
        ),
        Err(_) => String::new(),
    };
    ErrorKind::UnknownStage {
        stage: name.to_string(),
        hint,
    }
}

fn validate(parsed: &Parsed) -> Result<(), ErrorKind> {
    let path = parsed.hook.path();
    if path.as_os_str().is_empty() {
        return Err(ErrorKind::Missing("hook.path"));
    }
    if !path.is_absolute() {
        return Err(ErrorKind::RelativePath(path.to_string_lossy().into_owned()));
    }
    let none = Vec::new();
    let args = parsed.hook.args().as_ref().unwrap_or(&none);
    let env = parsed.hook.env().as_ref().unwrap_or(&none);
    Ok(check_runnable(HookKind::Native, &[], args, env)?)
}

#[cfg(test)]
mod tests;
