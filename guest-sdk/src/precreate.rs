//! Precreate hooks: the proposed `config.json` on stdin, the whole (possibly changed) document
//! on stdout.
//!
//! hookhost diffs the output against the input and refuses changes the hook was not granted
//! with `--may-adjust`, so everything the hook does not mean to change must come out as it came
//! in — including fields `oci-spec` does not know and the order of keys. [`Precreate`] therefore
//! edits the JSON document itself and offers the typed [`Spec`] only to read.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use oci_spec::runtime::{LinuxDevice, Mount, Spec};
use serde::Deserialize;
use serde_json::{Map, Value};

use hookhost_types::{CDI_ANNOTATION_PREFIX, CDI_SDK_ANNOTATION, Stage};

use crate::invocation;

/// Why a precreate hook could not read, edit or write the container's configuration.
#[derive(Debug, thiserror::Error)]
pub enum PrecreateError {
    #[error("cannot read the proposed config.json from stdin")]
    Read(#[source] std::io::Error),
    #[error(
        "no config.json on stdin: hookhost gives one to precreate hooks only \
         (register the hook with --type precreate)"
    )]
    NoConfig,
    #[error(
        "this is a precreate hook but it was run at the {0} stage: register it with --type precreate"
    )]
    WrongStage(Stage),
    #[error("the config on stdin is not a JSON object: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the config on stdin is not an OCI runtime config: {0}")]
    NotSpec(#[source] serde_json::Error),
    #[error(
        "the edited config is no longer an OCI runtime config (an edit of the hook is wrong): {0}"
    )]
    EditBrokeSpec(#[source] serde_json::Error),
    #[error("config.json's {field} is not {expected}; the config is malformed")]
    Shape {
        field: &'static str,
        expected: &'static str,
    },
    #[error("the config has no `process`, so it has no environment to set {0} in")]
    NoProcess(String),
    #[error("invalid environment variable name {0:?}: it must be non-empty and contain no '='")]
    BadEnvName(String),
    #[error(
        "invalid CDI device name {0:?}: a device is named by vendor, class and name, \
         vendor.com/class=name"
    )]
    BadCdiName(String),
    #[error("cannot encode the {0} to add")]
    Encode(&'static str, #[source] serde_json::Error),
    #[error("cannot write the config to stdout")]
    Write(#[source] std::io::Error),
}

/// The container's proposed configuration, as a precreate hook sees and edits it.
///
/// Read it through [`Precreate::spec`] (typed `oci-spec`, refreshed after every edit); change it
/// with the edit methods, which touch only what they name.
#[derive(Debug, Clone)]
pub struct Precreate {
    document: Map<String, Value>,
    spec: Spec,
    /// argv; `args[0]` is argv0, [`Precreate::extra_args`] the rest.
    pub args: Vec<String>,
    /// The hook's own environment: what it was granted plus `HOOKHOST_STAGE` (not the
    /// container's; see [`Precreate::container_env`]).
    pub env: BTreeMap<String, String>,
}

impl Precreate {
    /// Reads a proposed config.json document; fails unless it is a JSON object that `oci-spec`
    /// reads as a runtime config.
    pub fn parse(config: &[u8]) -> Result<Precreate, PrecreateError> {
        if config.iter().all(u8::is_ascii_whitespace) {
            return Err(PrecreateError::NoConfig);
        }
        let document = serde_json::from_slice(config).map_err(PrecreateError::NotJson)?;
        let spec = typed(&document).map_err(PrecreateError::NotSpec)?;
        Ok(Precreate {
            document,
            spec,
            args: Vec::new(),
            env: BTreeMap::new(),
        })
    }

    /// Sets argv (`args[0]` is argv0).
    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Precreate {
        self.args = invocation::args(args);
        self
    }

    /// Sets the hook's own environment.
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Precreate {
        self.env = invocation::env(env);
        self
    }

    /// The arguments after argv0 (registered args, then `--add-hook` extras).
    pub fn extra_args(&self) -> &[String] {
        invocation::extra(&self.args)
    }

    /// A variable of the hook's own environment.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The configuration as typed `oci-spec`, including the hook's edits so far. Read only:
    /// a typed round trip would lose what `oci-spec` does not know.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The configuration as JSON, including the hook's edits so far.
    pub fn document(&self) -> &Map<String, Value> {
        &self.document
    }

    /// The whole document as hookhost (or Podman) expects it on stdout.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(&self.document).expect("a JSON map always serialises");
        out.push(b'\n');
        out
    }

    /// A variable of the container's `process.env` (the last entry wins, as in `execve`).
    pub fn container_env(&self, name: &str) -> Option<&str> {
        let env = self.spec.process().as_ref()?.env().as_ref()?;
        env.iter()
            .rev()
            .find_map(|entry| entry.strip_prefix(name)?.strip_prefix('='))
    }

    /// Sets `NAME=value` in the container's `process.env`: the first `NAME=` entry is replaced
    /// in place and any others removed; without one it is appended.
    pub fn set_env(&mut self, name: &str, value: &str) -> Result<&mut Precreate, PrecreateError> {
        check_env_name(name)?;
        let entry = Value::String(format!("{name}={value}"));
        self.edit(|doc| {
            let env = process_env(doc, name)?;
            let first = env.iter().position(|e| names_var(e, name));
            env.retain(|e| !names_var(e, name));
            env.insert(first.unwrap_or(env.len()), entry);
            Ok(())
        })
    }

    /// Removes every `NAME=` entry from the container's `process.env`; `true` if there was one.
    pub fn remove_env(&mut self, name: &str) -> Result<bool, PrecreateError> {
        check_env_name(name)?;
        if self.spec.process().is_none() {
            return Ok(false);
        }
        let mut removed = false;
        self.edit(|doc| {
            let env = process_env(doc, name)?;
            let before = env.len();
            env.retain(|e| !names_var(e, name));
            removed = env.len() != before;
            Ok(())
        })?;
        Ok(removed)
    }

    /// Appends a mount to `mounts` (created if missing), after the ones already there.
    pub fn add_mount(&mut self, mount: &Mount) -> Result<&mut Precreate, PrecreateError> {
        let mount = encode("mount", mount)?;
        self.edit(|doc| {
            array_at(doc, "mounts", "mounts")?.push(mount);
            Ok(())
        })
    }

    /// Adds a device node to `linux.devices` (creating `linux` and `devices` if missing); an
    /// entry with the same path is replaced in place.
    pub fn add_device(&mut self, device: &LinuxDevice) -> Result<&mut Precreate, PrecreateError> {
        let device = encode("device", device)?;
        self.edit(|doc| {
            let linux = object_at(doc, "linux", "linux")?;
            let devices = array_at(linux, "devices", "linux.devices")?;
            let same_path = |d: &Value| d.get("path") == device.get("path");
            match devices.iter_mut().find(|d| same_path(d)) {
                Some(existing) => *existing = device,
                None => devices.push(device),
            }
            Ok(())
        })
    }

    /// Sets an annotation (`annotations` is created if missing; an existing key keeps its
    /// place).
    pub fn set_annotation(
        &mut self,
        key: &str,
        value: &str,
    ) -> Result<&mut Precreate, PrecreateError> {
        self.edit(|doc| {
            let annotations = object_at(doc, "annotations", "annotations")?;
            annotations.insert(key.to_string(), Value::String(value.to_string()));
            Ok(())
        })
    }

    /// Removes an annotation; `true` if it was there.
    pub fn remove_annotation(&mut self, key: &str) -> Result<bool, PrecreateError> {
        let present = self
            .spec
            .annotations()
            .as_ref()
            .is_some_and(|a| a.contains_key(key));
        if present {
            self.edit(|doc| {
                object_at(doc, "annotations", "annotations")?.shift_remove(key);
                Ok(())
            })?;
        }
        Ok(present)
    }

    /// Requests a CDI device by its fully qualified name (`example.com/gpu=0`): hookhost resolves
    /// it from the host's CDI spec files after the precreate hooks and applies its edits
    /// (device nodes, env, mounts, hooks, groups). It is added to the `cdi.k8s.io/hookhost`
    /// annotation (comma-separated names), once. The hook needs `--may-adjust cdi[=GLOB]`
    /// naming the device.
    pub fn add_cdi_device(&mut self, name: &str) -> Result<&mut Precreate, PrecreateError> {
        if name.is_empty() || name.contains(',') || !name.contains('=') || !name.contains('/') {
            return Err(PrecreateError::BadCdiName(name.to_string()));
        }
        let present = self.cdi_devices().iter().any(|d| d == name);
        if present {
            return Ok(self);
        }
        self.edit(|doc| {
            let annotations = object_at(doc, "annotations", "annotations")?;
            let entry = annotations
                .entry(CDI_SDK_ANNOTATION)
                .or_insert(Value::String(String::new()));
            let list = match entry.as_str() {
                Some("") => name.to_string(),
                Some(list) => format!("{list},{name}"),
                None => return Err(shape("annotations", "string values")),
            };
            *entry = Value::String(list);
            Ok(())
        })
    }

    /// The CDI devices the config requests (every `cdi.k8s.io/` annotation), in order.
    pub fn cdi_devices(&self) -> Vec<String> {
        let annotations = self.spec.annotations().as_ref();
        let mut names: Vec<String> = Vec::new();
        for (key, value) in annotations.into_iter().flatten() {
            if key.starts_with(CDI_ANNOTATION_PREFIX) {
                let new: Vec<String> = (value.split(','))
                    .filter(|n| !n.is_empty() && !names.iter().any(|k| k == n))
                    .map(str::to_string)
                    .collect();
                names.extend(new);
            }
        }
        names
    }

    /// Any other change, made to the JSON document directly; the result must still be an OCI
    /// runtime config. Change only what you mean to: hookhost refuses what the hook was not
    /// granted with `--may-adjust`.
    pub fn edit(
        &mut self,
        change: impl FnOnce(&mut Map<String, Value>) -> Result<(), PrecreateError>,
    ) -> Result<&mut Precreate, PrecreateError> {
        let mut document = self.document.clone();
        change(&mut document)?;
        self.spec = typed(&document).map_err(PrecreateError::EditBrokeSpec)?;
        self.document = document;
        Ok(self)
    }
}

/// Reads the invocation of this process: the config from stdin, argv and environment; refuses
/// to run at a stage other than precreate.
pub(crate) fn from_process() -> Result<Precreate, PrecreateError> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    check_stage(&env)?;
    let mut config = Vec::new();
    std::io::stdin()
        .read_to_end(&mut config)
        .map_err(PrecreateError::Read)?;
    Ok(Precreate::parse(&config)?
        .with_args(std::env::args())
        .with_env(env))
}

/// Calls `body` and, if it succeeds, writes the whole document to `out`; on an error nothing is
/// written.
pub(crate) fn apply<F>(
    mut config: Precreate,
    body: F,
    mut out: impl Write,
) -> Result<(), crate::Error>
where
    F: FnOnce(&mut Precreate) -> Result<(), crate::Error>,
{
    body(&mut config)?;
    out.write_all(&config.to_json())
        .and_then(|()| out.flush())
        .map_err(PrecreateError::Write)?;
    Ok(())
}

/// Refuses a run at another stage (a hook registered with the wrong `--type` would get the OCI
/// state instead of the config); outside hookhost, without `HOOKHOST_STAGE`, any input goes.
fn check_stage(env: &BTreeMap<String, String>) -> Result<(), PrecreateError> {
    match invocation::stage(env) {
        Some(stage) if stage != Stage::Precreate => Err(PrecreateError::WrongStage(stage)),
        _ => Ok(()),
    }
}

fn typed(document: &Map<String, Value>) -> Result<Spec, serde_json::Error> {
    Spec::deserialize(document)
}

fn encode(what: &'static str, item: &impl serde::Serialize) -> Result<Value, PrecreateError> {
    serde_json::to_value(item).map_err(|e| PrecreateError::Encode(what, e))
}

fn check_env_name(name: &str) -> Result<(), PrecreateError> {
    if name.is_empty() || name.contains('=') {
        return Err(PrecreateError::BadEnvName(name.to_string()));
    }
    Ok(())
}

/// Whether an env entry (`NAME=value`, or a bare `NAME`) is for `name`.
fn names_var(entry: &Value, name: &str) -> bool {
    entry
        .as_str()
        .and_then(|e| e.strip_prefix(name))
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('='))
}

/// `process.env`, created if `process` has none.
fn process_env<'a>(
    doc: &'a mut Map<String, Value>,
    name: &str,
) -> Result<&'a mut Vec<Value>, PrecreateError> {
    let process = match doc.get_mut("process") {
        Some(Value::Object(process)) => process,
        Some(_) => return Err(shape("process", "an object")),
        None => return Err(PrecreateError::NoProcess(name.to_string())),
    };
    array_at(process, "env", "process.env")
}

/// The object under `key`, created if missing or null.
fn object_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Map<String, Value>, PrecreateError> {
    slot(map, key, || Value::Object(Map::new()))
        .as_object_mut()
        .ok_or(shape(field, "an object"))
}

/// The array under `key`, created if missing or null.
fn array_at<'a>(
    map: &'a mut Map<String, Value>,
    key: &str,
    field: &'static str,
) -> Result<&'a mut Vec<Value>, PrecreateError> {
    slot(map, key, || Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or(shape(field, "an array"))
}

/// The value under `key`; a missing or null one is replaced by `empty()` (appended last).
fn slot<'a>(map: &'a mut Map<String, Value>, key: &str, empty: fn() -> Value) -> &'a mut Value {
    let value = map.entry(key).or_insert(Value::Null);
    if value.is_null() {
        *value = empty();
    }
    value
}

fn shape(field: &'static str, expected: &'static str) -> PrecreateError {
    PrecreateError::Shape { field, expected }
}

#[cfg(test)]
mod tests;
