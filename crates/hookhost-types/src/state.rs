//! The OCI container state a runtime writes on a hook's stdin.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A container state that is not JSON, or has no `id`.
#[derive(Debug, Error)]
#[error("the container state on stdin is not valid: {0}")]
pub struct StateError(#[source] serde_json::Error);

/// The runtime-spec `state` object, read leniently: only `id` is required (a missing
/// `ociVersion`, `status` or `bundle` reads as empty), and any field a runtime adds is kept in
/// `extra` and passed on, so neither hookhost nor a hook ever rejects, or drops when
/// re-serialising, a newer runtime's state. Host and guests parse it with this one type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The runtime-spec version the runtime follows.
    #[serde(default)]
    pub oci_version: String,
    /// The container's id.
    pub id: String,
    /// `creating`, `created`, `running` or `stopped`.
    #[serde(default)]
    pub status: String,
    /// The container's process, once there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i64>,
    /// The bundle's path on the host (inside a WASM guest it is granted at
    /// [`BUNDLE_GUEST`](crate::BUNDLE_GUEST)).
    #[serde(default)]
    pub bundle: PathBuf,
    /// The container's annotations (absent and empty read the same).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Every other field, kept as given.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl State {
    /// Parses a state as a runtime writes it.
    pub fn parse(bytes: &[u8]) -> Result<Self, StateError> {
        serde_json::from_slice(bytes).map_err(StateError)
    }

    /// One annotation's value.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.get(key).map(String::as_str)
    }

    /// A plausible state for trying a hook outside a container, as runc would send it.
    pub fn sample(id: &str, status: &str, bundle: PathBuf, pid: u32) -> Self {
        State {
            oci_version: "1.0.2".into(),
            id: id.into(),
            status: status.into(),
            pid: Some(i64::from(pid)),
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
        assert!(state.annotations.is_empty());
        let back = serde_json::to_value(&state).unwrap();
        assert_eq!(back["runtimeSpecific"]["x"], 1);
    }

    #[test]
    fn only_the_id_is_required() {
        let state = State::parse(br#"{"id":"c"}"#).unwrap();
        assert_eq!(
            (state.oci_version.as_str(), state.status.as_str()),
            ("", "")
        );
        assert_eq!(state.pid, None);
        let err = State::parse(br#"{"status":"created"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `id`"), "{err}");
    }

    #[test]
    fn annotations_are_read() {
        let state = State::parse(br#"{"id":"c","annotations":{"a":"1"}}"#).unwrap();
        assert_eq!(state.annotation("a"), Some("1"));
        assert_eq!(state.annotation("b"), None);
    }
}
