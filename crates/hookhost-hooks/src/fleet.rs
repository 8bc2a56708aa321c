//! What `hookhost apply --watch` last did, kept in `ROOT/fleet/status.json` (one atomic write
//! per attempt) for people, `hookhost metrics` and whatever checks a fleet: which generation the
//! node runs, when it last converged, and how many attempts since have failed.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::generation::Record;

#[derive(Debug, Error)]
pub enum StatusError {
    #[error("cannot {action} {}", file.display())]
    Io {
        action: &'static str,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a fleet status file", file.display())]
    Corrupt {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// How the last attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The node was already on the artifact the reference names.
    Unchanged,
    /// The node switched to a new generation.
    Applied,
    /// The registry could not be reached, or the artifact could not be fetched or applied.
    Failed,
    /// The artifact's signature or a digest did not verify.
    Unverified,
}

/// The status file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Status {
    /// The `oci://` reference watched.
    pub reference: String,
    /// The manifest digest the reference resolved to at the last attempt (none when the
    /// registry could not be asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The generation the node is on (kept when an attempt fails).
    pub generation: Option<Record>,
    pub last_attempt: DateTime<Utc>,
    pub last_outcome: Outcome,
    /// The last attempt that ended on the artifact the reference named.
    pub last_success: Option<DateTime<Utc>>,
    /// Failed attempts since the last success.
    pub consecutive_failures: u64,
    /// Every attempt refused because a signature or digest did not verify, since the watch
    /// started on this node (kept across restarts).
    pub verification_failures: u64,
    /// Why the last failed attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// When the next attempt is due.
    pub next_attempt: DateTime<Utc>,
}

impl Status {
    /// The status in `file`; `None` when there is none yet.
    pub fn read(file: &Path) -> Result<Option<Status>, StatusError> {
        let bytes = match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(StatusError::Io {
                    action: "read",
                    file: file.to_path_buf(),
                    source,
                });
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StatusError::Corrupt {
                file: file.to_path_buf(),
                source,
            })
    }

    /// Writes the status to `file` atomically, readable by all (it says nothing secret, and
    /// monitoring agents read it).
    pub fn write(&self, file: &Path) -> Result<(), StatusError> {
        if let Some(dir) = file.parent() {
            hookhost_exec::fs::create_dir_all(dir, 0o755).map_err(|source| StatusError::Io {
                action: "create the directory of",
                file: file.to_path_buf(),
                source,
            })?;
        }
        let mut doc = serde_json::to_vec_pretty(self).expect("a status serialises");
        doc.push(b'\n');
        hookhost_exec::fs::write_atomic(file, &doc, 0o644).map_err(|source| StatusError::Io {
            action: "write",
            file: file.to_path_buf(),
            source,
        })
    }
}
