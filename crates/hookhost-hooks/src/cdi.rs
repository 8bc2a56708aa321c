//! CDI, the Container Device Interface: vendors install spec files (`/etc/cdi`,
//! `/var/run/cdi`) that say what a device needs in a container (device nodes, env, mounts,
//! hooks, additional groups, …) under a fully qualified name `vendor.com/class=name`; a
//! container asks for devices by name, and whoever creates it applies their edits to
//! config.json.
//!
//! hookhost resolves the devices a container asks for with the standard annotations
//! (`cdi.k8s.io/KEY` = comma-separated names, [`requested`]) — put there by the container's
//! engine, or by a precreate hook granted `--may-adjust cdi[=GLOB]` — from the spec
//! directories ([`Catalog`], each file under the same trust checks as hooks.d files), and edits
//! config.json as a JSON document, keeping every key it does not touch ([`apply`]).
//!
//! The rules are those of the CDI specification as its Go reference
//! (`container-device-interface/pkg/cdi`, which Podman, Docker, containerd and CRI-O use)
//! implements them, so that a device comes out the same whichever resolves it; where hookhost
//! differs (it is stricter: a problem in any spec file refuses every container that asks for a
//! CDI device) the README says so. Why not the `container-device-interface` crate: see the
//! README ("CDI devices").

mod dirs;
mod edits;
pub mod names;
pub mod spec;

use std::path::{Path, PathBuf};

use serde_json::Value;
use thiserror::Error;

pub use dirs::{Catalog, Problem, Shadowed, SpecFile};
pub use edits::{Applied, apply};
pub use hookhost_types::{CDI_ANNOTATION_PREFIX, CDI_SDK_ANNOTATION};

/// The spec directories when the config file names none, in increasing priority: a device
/// defined in both is taken from `/var/run/cdi` (the CDI specification's defaults).
pub const DEFAULT_SPEC_DIRS: [&str; 2] = ["/etc/cdi", "/var/run/cdi"];

/// Why a container's CDI devices could not be resolved or applied: the container is refused.
#[derive(Debug, Error)]
pub enum CdiError {
    #[error("invalid CDI device name {name:?} in annotation {key}: {reason}")]
    BadName {
        name: String,
        key: String,
        reason: String,
    },
    #[error(
        "unknown CDI device {name} (annotation {key}): no spec file in {} defines it \
         (`hookhost cdi list` shows the devices there)",
        dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Unknown {
        name: String,
        key: String,
        dirs: Vec<PathBuf>,
    },
    #[error(
        "the CDI spec files have problems, so no CDI device is resolved until they are fixed \
         (`hookhost cdi list` shows them): {}",
        problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    Specs { problems: Vec<Problem> },
    #[error("CDI device {device} (spec {}): device node {path}: {reason}", spec.display())]
    DeviceNode {
        device: String,
        spec: PathBuf,
        path: String,
        reason: String,
    },
    #[error("CDI device {device} cannot be applied: config.json's {field} is not {expected}")]
    Shape {
        device: String,
        field: &'static str,
        expected: &'static str,
    },
}

/// A device a container asks for, and the annotation that asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    pub key: String,
}

/// The devices a config's annotations ask for (`cdi.k8s.io/…` keys, in the document's order,
/// each name once), as written: [`Catalog::resolve`] checks them.
pub fn requested(doc: &Value) -> Vec<Request> {
    let mut out: Vec<Request> = Vec::new();
    let annotations = doc.get("annotations").and_then(Value::as_object);
    for (key, value) in annotations.into_iter().flatten() {
        if !key.starts_with(CDI_ANNOTATION_PREFIX) {
            continue;
        }
        for name in value.as_str().unwrap_or_default().split(',') {
            if !out.iter().any(|r| r.name == name) {
                out.push(Request {
                    name: name.to_string(),
                    key: key.clone(),
                });
            }
        }
    }
    out
}

/// The spec directories the config file names, or the defaults.
pub fn spec_dirs(configured: &[PathBuf]) -> Vec<PathBuf> {
    match configured.is_empty() {
        true => DEFAULT_SPEC_DIRS.iter().map(PathBuf::from).collect(),
        false => configured.to_vec(),
    }
}

/// A device the catalog resolved: its name, spec file and definition.
#[derive(Debug, Clone, Copy)]
pub struct Resolved<'a> {
    pub name: &'a str,
    pub file: &'a SpecFile,
    pub device: &'a spec::Device,
}

impl Resolved<'_> {
    pub fn spec_path(&self) -> &Path {
        &self.file.path
    }
}

#[cfg(test)]
mod tests;
