//! The hook definition: what a registered hook is, independent of where it is stored or how it runs.

use std::path::PathBuf;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use hookhost_types::{HookKind, Stage, UnknownStage};

use crate::grants::Grants;
use crate::when::When;
use hookhost_exec::limits::WasmLimits;

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
    fn names_follow_docker_rules() {
        for ok in ["myFirstHook", "a", "0.b_c-d"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
