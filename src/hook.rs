//! The hook definition: what a registered hook is, independent of where it is stored or how it runs.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::grants::Grants;
use crate::limits::WasmLimits;
use crate::when::When;

/// An OCI lifecycle stage, in the order the runtime-spec runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown stage {given:?}: valid stages are {}", Stage::names().join(", "))]
pub struct UnknownStage {
    pub given: String,
}

impl Stage {
    /// All stages in the order the runtime runs them.
    pub const ALL: [Stage; 6] = [
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ];

    /// The name used in config.json `hooks` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }

    pub fn names() -> Vec<&'static str> {
        Stage::ALL.iter().map(|s| s.as_str()).collect()
    }

    /// The container status the runtime-spec reports to hooks of this stage.
    pub fn status(self) -> &'static str {
        match self {
            Stage::Prestart | Stage::CreateRuntime | Stage::CreateContainer => "creating",
            Stage::StartContainer => "created",
            Stage::Poststart => "running",
            Stage::Poststop => "stopped",
        }
    }

    /// Whether a failing hook at this stage stops the container (runtime-spec 1.3 and runc);
    /// poststop failures are only warnings.
    pub fn is_fatal(self) -> bool {
        self != Stage::Poststop
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = UnknownStage;

    /// Accepts the OCI spelling case-insensitively (`createRuntime`, `createruntime`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownStage {
                given: s.to_string(),
            })
    }
}

/// What kind of program a hook is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HookKind {
    /// An executable run as a process, exactly as runc runs an OCI hook.
    Native,
    /// A WebAssembly (WASI preview 1) module run inside hookhost by wasmtime.
    Wasm,
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookKind::Native => "native",
            HookKind::Wasm => "wasm",
        })
    }
}

/// Wall-clock bound of a hook when its registration sets none, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// Everything needed to run a hook once: what a container snapshots when it is created, so that
/// later changes to the registry do not change what an existing container runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HookSpec {
    pub kind: HookKind,
    /// Native: the executable. WASM: the file the module was registered from (informational;
    /// the module itself is stored in the registry under `Digest`).
    pub path: PathBuf,
    /// OCI `execv` semantics: `args[0]` is argv0.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs; the hook's whole environment (plus `HOOKHOST_STAGE`).
    pub env: Vec<String>,
    /// Seconds; always > 0.
    pub timeout: u64,
    /// sha256 of the WASM module, or of the native binary when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<WasmLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Grants>,
}

/// A registered hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hook {
    pub name: String,
    pub stages: Vec<Stage>,
    #[serde(flatten)]
    pub spec: HookSpec,
    /// Conditions that make this a global hook, run for every matching container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    pub created: DateTime<Utc>,
}

impl Hook {
    /// The stages as the seed's `Type` column shows them: `prestart` or `prestart,poststop`.
    pub fn type_label(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The document `hookhost inspect` prints: the stored fields plus the seed's `Type` key.
    pub fn inspect_view(&self) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        doc.insert("Name".into(), self.name.clone().into());
        doc.insert("Type".into(), self.type_label().into());
        if let Ok(serde_json::Value::Object(stored)) = serde_json::to_value(self) {
            for (key, value) in stored {
                doc.entry(key).or_insert(value);
            }
        }
        serde_json::Value::Object(doc)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid hook name {0:?}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most 128 characters"
)]
pub struct InvalidName(pub String);

/// Hook names follow Docker's object-name rule, so they are also safe file names.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(InvalidName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_case_insensitively_and_list_valid_ones_on_error() {
        assert_eq!("createRuntime".parse::<Stage>(), Ok(Stage::CreateRuntime));
        assert_eq!("POSTSTOP".parse::<Stage>(), Ok(Stage::Poststop));
        let err = "prestop".parse::<Stage>().unwrap_err().to_string();
        assert!(err.contains("\"prestop\""), "{err}");
        assert!(
            err.contains("prestart, createRuntime, createContainer"),
            "{err}"
        );
    }

    #[test]
    fn only_poststop_is_non_fatal() {
        let fatal: Vec<_> = Stage::ALL.iter().filter(|s| s.is_fatal()).collect();
        assert_eq!(fatal.len(), 5);
        assert!(!Stage::Poststop.is_fatal());
    }

    #[test]
    fn names_follow_docker_rules() {
        for ok in ["myFirstHook", "a", "0.b_c-d"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
