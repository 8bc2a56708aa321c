//! The hook definition: what a registered hook is, independent of where it is stored or how it runs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

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
            .ok_or_else(|| UnknownStage { given: s.to_string() })
    }
}
