//! The OCI container state a hook receives on stdin, and the stage it runs at.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The runtime-spec `state` object. Fields the spec may add later are kept in `extra`, so a hook
/// never rejects (or drops, when re-serialising) a newer runtime's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    pub oci_version: String,
    pub id: String,
    /// `creating`, `created`, `running` or `stopped`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// The bundle's path on the host (inside the guest it is granted at `/bundle`).
    #[serde(default)]
    pub bundle: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl State {
    pub fn from_json(json: &str) -> Result<State, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }
}

/// The OCI lifecycle stage a hook was run for (`HOOKHOST_STAGE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

const STAGES: [(Stage, &str); 6] = [
    (Stage::Prestart, "prestart"),
    (Stage::CreateRuntime, "createRuntime"),
    (Stage::CreateContainer, "createContainer"),
    (Stage::StartContainer, "startContainer"),
    (Stage::Poststart, "poststart"),
    (Stage::Poststop, "poststop"),
];

impl Stage {
    /// The OCI spelling, as in `config.json` `hooks`.
    pub fn as_str(self) -> &'static str {
        STAGES
            .iter()
            .find(|(stage, _)| *stage == self)
            .map_or("", |(_, name)| name)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown stage name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown stage {0:?}")]
pub struct UnknownStage(pub String);

impl FromStr for Stage {
    type Err = UnknownStage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        STAGES
            .iter()
            .find(|(_, name)| name.eq_ignore_ascii_case(s.trim()))
            .map(|(stage, _)| *stage)
            .ok_or_else(|| UnknownStage(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_are_kept() {
        let json = r#"{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,
            "bundle":"/b","annotations":{"a":"1"},"future":{"x":true}}"#;
        let state = State::from_json(json).unwrap();
        assert_eq!(state.pid, Some(42));
        assert_eq!(state.annotation("a"), Some("1"));
        assert_eq!(state.extra["future"]["x"], true);
        let again: serde_json::Value = serde_json::to_value(&state).unwrap();
        assert_eq!(again["future"]["x"], true);
    }

    #[test]
    fn minimal_state_parses() {
        let state = State::from_json(r#"{"ociVersion":"1.0.2","id":"c","status":"stopped"}"#);
        let state = state.unwrap();
        assert_eq!(state.pid, None);
        assert!(state.annotations.is_empty());
    }

    #[test]
    fn stages() {
        assert_eq!("createRuntime".parse(), Ok(Stage::CreateRuntime));
        assert_eq!("POSTSTOP".parse(), Ok(Stage::Poststop));
        assert!("later".parse::<Stage>().is_err());
        assert_eq!(Stage::StartContainer.to_string(), "startContainer");
    }
}
