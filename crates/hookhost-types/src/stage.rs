use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// An OCI lifecycle stage, in the order the runtime-spec runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Stage {
    /// Not an OCI stage: run by hookhost before the runtime creates the container (Podman's
    /// hooks.d extension stage). The hook gets the proposed config.json document on stdin and
    /// writes the whole, possibly changed, document on stdout; it sees no OCI state, because
    /// no container exists yet.
    Precreate,
    /// Deprecated by the runtime-spec; during create, in the runtime namespace.
    Prestart,
    /// During create, in the runtime namespace, after the container's namespaces exist.
    CreateRuntime,
    /// During create; the path is resolved in the runtime namespace, it runs in the container's.
    CreateContainer,
    /// Not an OCI stage: run by hookhost's runtime wrapper when the engine calls the runtime's
    /// `start`, in the runtime namespace, before the container's process is released — after
    /// the engine set up the container's networks (Docker 28 does that between create and
    /// start).
    StartRuntime,
    /// During start, inside the container, before the user process.
    StartContainer,
    /// After the user process started, in the runtime namespace.
    Poststart,
    /// After the container was deleted, in the runtime namespace.
    Poststop,
}

/// A stage name that is not one of the OCI stages.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown stage {given:?}: valid stages are {}", Stage::names().join(", "))]
pub struct UnknownStage {
    /// What was given.
    pub given: String,
}

impl Stage {
    /// All stages in the order the runtime runs them.
    pub const ALL: [Stage; 8] = [
        Stage::Precreate,
        Stage::Prestart,
        Stage::CreateRuntime,
        Stage::CreateContainer,
        Stage::StartRuntime,
        Stage::StartContainer,
        Stage::Poststart,
        Stage::Poststop,
    ];

    /// The name used in config.json `hooks` and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Precreate => "precreate",
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartRuntime => "startRuntime",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }

    /// Every stage's name, in order.
    pub fn names() -> Vec<&'static str> {
        Stage::ALL.iter().map(|s| s.as_str()).collect()
    }

    /// The container status the runtime-spec reports to hooks of this stage (none at
    /// precreate, which gets no state).
    pub fn status(self) -> &'static str {
        match self {
            Stage::Precreate => "",
            Stage::Prestart | Stage::CreateRuntime | Stage::CreateContainer => "creating",
            Stage::StartRuntime | Stage::StartContainer => "created",
            Stage::Poststart => "running",
            Stage::Poststop => "stopped",
        }
    }

    /// Whether the runtime wrapper runs this stage at the engine's `start` call rather than
    /// the OCI runtime: startRuntime (no runtime knows it), and poststart (runc 1.1 would run
    /// it during `create`, before the container's process is released).
    pub fn runs_at_start(self) -> bool {
        matches!(self, Stage::StartRuntime | Stage::Poststart)
    }

    /// Whether config.json has a `hooks` list for this stage (every stage but precreate and
    /// startRuntime).
    pub fn is_oci(self) -> bool {
        !matches!(self, Stage::Precreate | Stage::StartRuntime)
    }

    /// Whether the stage's hooks edit the container's configuration (precreate: the config on
    /// stdin, the whole edited config on stdout) rather than act beside the container (the
    /// OCI state on stdin).
    pub fn edits_config(self) -> bool {
        self == Stage::Precreate
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
        assert_eq!(Stage::StartContainer.to_string(), "startContainer");
        assert_eq!("startruntime".parse::<Stage>(), Ok(Stage::StartRuntime));
    }

    #[test]
    fn start_runtime_runs_at_start_with_the_created_status_and_is_no_oci_stage() {
        assert_eq!(Stage::StartRuntime.status(), "created");
        assert!(!Stage::StartRuntime.is_oci());
        let at_start: Vec<_> = Stage::ALL
            .into_iter()
            .filter(|s| s.runs_at_start())
            .collect();
        assert_eq!(at_start, [Stage::StartRuntime, Stage::Poststart]);
    }

    #[test]
    fn precreate_comes_first_edits_the_config_and_is_no_oci_stage() {
        assert_eq!(Stage::ALL[0], Stage::Precreate);
        assert_eq!("PreCreate".parse::<Stage>(), Ok(Stage::Precreate));
        assert!(!Stage::Precreate.is_oci());
        assert!(Stage::Precreate.is_fatal());
        let editing: Vec<_> = Stage::ALL
            .into_iter()
            .filter(|s| s.edits_config())
            .collect();
        assert_eq!(editing, [Stage::Precreate]);
    }

    #[test]
    fn only_poststop_is_non_fatal() {
        let fatal: Vec<_> = Stage::ALL.iter().filter(|s| s.is_fatal()).collect();
        assert_eq!(fatal.len(), 7);
        assert!(!Stage::Poststop.is_fatal());
    }
}
