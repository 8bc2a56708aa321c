//! `--hook-spec FILE`: inline OCI hooks keyed by stage (the seed's design (a)).
//!
//! ```json
//! {"prestart": [{"path": "/usr/bin/setup-net", "args": ["setup-net", "eth0"], "timeout": 5}]}
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

use crate::plan::PlannedHook;
use hookhost_hooks::hook::{
    DEFAULT_TIMEOUT_SECS, RawTimeout, Stage, TimeoutError, TimeoutSource, UnknownStage,
};

#[derive(Debug, Error)]
pub enum SpecFileError {
    #[error("cannot read hook spec {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("hook spec {} is not valid", file.display())]
    Invalid {
        file: PathBuf,
        #[source]
        source: SpecError,
    },
}

/// Why a hook-spec document is not valid: it names the stage and entry.
#[derive(Debug, Error)]
pub enum SpecError {
    #[error("expected an object of stage name to list of hooks")]
    Shape(#[source] serde_json::Error),
    #[error(transparent)]
    Stage(#[from] UnknownStage),
    #[error("{stage}[{index}]")]
    Entry {
        stage: String,
        index: usize,
        #[source]
        problem: EntryError,
    },
}

/// Why one entry of a hook-spec document is not an OCI hook hookhost can run.
#[derive(Debug, Error)]
pub enum EntryError {
    #[error("not an OCI hook")]
    Json(#[source] serde_json::Error),
    #[error("path {0:?} must be absolute")]
    NotAbsolute(PathBuf),
    #[error(transparent)]
    Timeout(#[from] TimeoutError),
}

/// One OCI hook as the runtime-spec writes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OciHook {
    path: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    timeout: Option<RawTimeout>,
}

/// The hooks of a spec file, per stage, ready to be planned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpecFile {
    pub stages: BTreeMap<Stage, Vec<PlannedHook>>,
}

impl SpecFile {
    pub fn load(file: &Path) -> Result<Self, SpecFileError> {
        let text = std::fs::read_to_string(file).map_err(|source| SpecFileError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(&text).map_err(|source| SpecFileError::Invalid {
            file: file.to_path_buf(),
            source,
        })
    }

    /// Parses the JSON text; the error says which stage and entry is wrong.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let raw: BTreeMap<String, Vec<serde_json::Value>> =
            serde_json::from_str(text).map_err(SpecError::Shape)?;
        let mut stages = BTreeMap::new();
        for (stage_name, entries) in raw {
            let stage: Stage = stage_name.parse()?;
            let hooks: Vec<PlannedHook> = entries
                .into_iter()
                .enumerate()
                .map(|(index, entry)| {
                    planned(entry).map_err(|problem| SpecError::Entry {
                        stage: stage_name.clone(),
                        index,
                        problem,
                    })
                })
                .collect::<Result<_, _>>()?;
            stages.insert(stage, hooks);
        }
        Ok(SpecFile { stages })
    }
}

fn planned(entry: serde_json::Value) -> Result<PlannedHook, EntryError> {
    let hook: OciHook = serde_json::from_value(entry).map_err(EntryError::Json)?;
    if !hook.path.is_absolute() {
        return Err(EntryError::NotAbsolute(hook.path));
    }
    let timeout = match hook.timeout {
        None => DEFAULT_TIMEOUT_SECS,
        Some(raw) => raw.validate(TimeoutSource::HookSpec)?,
    };
    Ok(PlannedHook::native(
        PlannedHook::inline_name(&hook.path),
        hook.path,
        hook.args,
        hook.env,
        Some(timeout),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stages_and_defaults() {
        let spec = SpecFile::parse(
            r#"{"prestart":[{"path":"/bin/ls","args":["ls","/tmp"],"timeout":3}],
                "poststop":[{"path":"/bin/true"}]}"#,
        )
        .unwrap();
        let pre = &spec.stages[&Stage::Prestart][0];
        assert_eq!(pre.spec.args, vec!["ls", "/tmp"]);
        assert_eq!(pre.spec.timeout, 3);
        let post = &spec.stages[&Stage::Poststop][0];
        assert_eq!(post.spec.args, vec!["/bin/true"]);
        assert_eq!(post.spec.timeout, DEFAULT_TIMEOUT_SECS);
        let max = SpecFile::parse(r#"{"prestart":[{"path":"/x","timeout":3600}]}"#).unwrap();
        assert_eq!(max.stages[&Stage::Prestart][0].spec.timeout, 3600);
    }

    #[test]
    fn errors_name_the_stage_and_entry() {
        let cases = [
            (r#"{"prestop":[]}"#, "unknown stage \"prestop\""),
            (
                r#"{"prestart":[{"path":"ls"}]}"#,
                "prestart[0]: path \"ls\" must be absolute",
            ),
            (
                r#"{"poststop":[{"path":"/x","timeout":0}]}"#,
                "poststop[0]: invalid hook spec timeout 0: a hook timeout must be a whole number \
                 of seconds from 1 to 3600",
            ),
            (
                r#"{"prestart":[{"path":"/x","timeout":18446744073709551615}]}"#,
                "prestart[0]: invalid hook spec timeout 18446744073709551615",
            ),
            (
                r#"{"prestart":[{"path":"/x","timeout":9223372036854775807}]}"#,
                "prestart[0]: invalid hook spec timeout 9223372036854775807",
            ),
            (
                r#"{"prestart":[{"path":"/x","timeout":-1}]}"#,
                "prestart[0]: invalid hook spec timeout -1",
            ),
            (
                r#"{"prestart":[{"path":"/x","timeout":3601}]}"#,
                "prestart[0]: invalid hook spec timeout 3601",
            ),
            (
                r#"{"prestart":[{"path":"/x","timeout":"5"}]}"#,
                "expected a whole number of seconds",
            ),
            (
                r#"{"prestart":[{"path":"/x","tmeout":1}]}"#,
                "unknown field `tmeout`",
            ),
            (r#"["prestart"]"#, "expected an object"),
        ];
        for (text, want) in cases {
            let err = crate::error_chain(&SpecFile::parse(text).unwrap_err());
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
