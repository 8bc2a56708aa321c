//! The OCI container state a runtime writes on a hook's stdin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

#[derive(Debug, Error)]
#[error("the container state on stdin is not valid: {0}")]
pub struct StateError(String);

/// The fields hookhost reads; any other field a runtime adds is kept in `extra` and passed on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    #[serde(default)]
    pub oci_version: String,
    pub id: String,
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    #[serde(default)]
    pub bundle: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

impl State {
    pub fn parse(bytes: &[u8]) -> Result<Self, StateError> {
        serde_json::from_slice(bytes).map_err(|e| StateError(e.to_string()))
    }

    /// A plausible state for `hookhost try`, as runc would send it at `stage`.
    pub fn sample(id: &str, status: &str, bundle: PathBuf) -> Self {
        State {
            oci_version: "1.0.2".into(),
            id: id.into(),
            status: status.into(),
            pid: Some(std::process::id() as i64),
            bundle,
            ..State::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_tolerates_missing_annotations() {
        let text = r#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,
                       "bundle":"/b","runtimeSpecific":{"x":1}}"#;
        let state = State::parse(text.as_bytes()).unwrap();
        assert_eq!(state.id, "c1");
        assert_eq!(state.annotations, None);
        let back = serde_json::to_value(&state).unwrap();
        assert_eq!(back["runtimeSpecific"]["x"], 1);
    }

    #[test]
    fn rejects_a_state_without_id() {
        let err = State::parse(br#"{"status":"created"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `id`"), "{err}");
    }
}
