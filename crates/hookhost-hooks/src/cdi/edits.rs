//! Applying resolved devices to a config.json document, as the Go reference's
//! `ContainerEdits.Apply` does: the edits of every device (a spec's own edits with the first of
//! its devices) are gathered, then applied kind by kind — env, device nodes (with a cgroup
//! rule each), net devices, mounts (then all mounts ordered by depth), hooks, Intel RDT,
//! additional groups. The document is edited in place: keys nobody touches stay as they were.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::spec::{ContainerEdits, DeviceNode, Hook, Mount};
use super::{CdiError, Resolved};

/// What one device brought to a config, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub device: String,
    pub spec: PathBuf,
    /// One line per edit (`env GPU=0`, `device /dev/gpu0 c 195:0 rwm`, …).
    pub edits: Vec<String>,
}

/// Edits and the device (index into the output) each came with.
type Gathered<'a> = Vec<(usize, &'a ContainerEdits)>;

/// Applies `devices` to `doc` (a config.json object); what each brought, in order.
pub fn apply(doc: &mut Value, devices: &[Resolved]) -> Result<Vec<Applied>, CdiError> {
    let mut applied: Vec<Applied> = Vec::new();
    let mut gathered: Gathered = Vec::new();
    let mut seen_specs: Vec<&Path> = Vec::new();
    for (i, device) in devices.iter().enumerate() {
        applied.push(Applied {
            device: device.name.to_string(),
            spec: device.file.path.clone(),
            edits: Vec::new(),
        });
        if !seen_specs.contains(&device.spec_path()) {
            seen_specs.push(device.spec_path());
            gathered.extend(device.file.spec.container_edits.iter().map(|e| (i, e)));
        }
        gathered.extend(device.device.container_edits.iter().map(|e| (i, e)));
    }
    let mut edit = Editor {
        doc,
        applied: &mut applied,
    };
    edit.env(&gathered)?;
    edit.device_nodes(&gathered)?;
    edit.net_devices(&gathered)?;
    edit.mounts(&gathered)?;
    edit.hooks(&gathered)?;
    edit.intel_rdt(&gathered)?;
    edit.additional_gids(&gathered)?;
    Ok(applied)
}

struct Editor<'a> {
    doc: &'a mut Value,
    applied: &'a mut Vec<Applied>,
}

impl Editor<'_> {
    fn note(&mut self, device: usize, line: String) {
        self.applied[device].edits.push(line);
    }

    fn device(&self, i: usize) -> String {
        self.applied[i].device.clone()
    }

    /// The object at `path` (created, with its parents, when missing or null).
    fn object(
        &mut self,
        i: usize,
        path: &[&'static str],
    ) -> Result<&mut Map<String, Value>, CdiError> {
        let device = self.device(i);
        let mut at = &mut *self.doc;
        for key in path {
            let map = at.as_object_mut().ok_or(CdiError::Shape {
                device: device.clone(),
                field: key,
                expected: "inside an object",
            })?;
            let slot = map.entry(*key).or_insert(Value::Null);
            if slot.is_null() {
                *slot = Value::Object(Map::new());
            }
            at = slot;
        }
        let last = path.last().copied().unwrap_or("config");
        at.as_object_mut().ok_or(CdiError::Shape {
            device,
            field: last,
            expected: "an object",
        })
    }

    /// The array under `key` of the object at `path` (created when missing or null).
    fn array(
        &mut self,
        i: usize,
        path: &[&'static str],
        key: &'static str,
    ) -> Result<&mut Vec<Value>, CdiError> {
        let device = self.device(i);
        let slot = self.object(i, path)?.entry(key).or_insert(Value::Null);
        if slot.is_null() {
            *slot = Value::Array(Vec::new());
        }
        slot.as_array_mut().ok_or(CdiError::Shape {
            device,
            field: key,
            expected: "an array",
        })
    }

    /// `NAME=value` replaces the variable where it is (its last entry), else is appended.
    fn env(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            for entry in &edits.env {
                let name = entry.split_once('=').map_or(entry.as_str(), |(n, _)| n);
                let env = self.array(*i, &["process"], "env")?;
                let names_it = |e: &Value| {
                    e.as_str()
                        .is_some_and(|e| e.split_once('=').map_or(e, |(n, _)| n) == name)
                };
                match env.iter().rposition(names_it) {
                    Some(at) => env[at] = Value::String(entry.clone()),
                    None => env.push(Value::String(entry.clone())),
                }
                self.note(*i, format!("env {entry}"));
            }
        }
        Ok(())
    }

    fn device_nodes(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            for node in &edits.device_nodes {
                let filled = filled(node).map_err(|reason| CdiError::DeviceNode {
                    device: self.device(*i),
                    spec: self.applied[*i].spec.clone(),
                    path: node.path.clone(),
                    reason,
                })?;
                let entry = self.oci_device(&filled);
                let devices = self.array(*i, &["linux"], "devices")?;
                if let Some(at) = devices
                    .iter()
                    .position(|d| d.get("path") == entry.get("path"))
                {
                    devices.remove(at);
                }
                devices.push(entry);
                let kind = filled.kind.clone().unwrap_or_default();
                let (major, minor) = (filled.major.unwrap_or(0), filled.minor.unwrap_or(0));
                let mut line = format!("device {} {kind} {major}:{minor}", node.path);
                if matches!(kind.as_str(), "b" | "c") {
                    let mut rule =
                        json!({"allow": true, "type": kind, "major": major, "minor": minor});
                    if !node.access().is_empty() {
                        rule["access"] = Value::String(node.access().to_string());
                    }
                    self.array(*i, &["linux", "resources"], "devices")?
                        .push(rule);
                    line.push_str(&format!(" allow {:?}", node.access()));
                }
                self.note(*i, line);
            }
        }
        Ok(())
    }

    /// The OCI `linux.devices` entry of a filled node: the container process's uid and gid
    /// own it unless the spec says (when they are not root).
    fn oci_device(&self, node: &DeviceNode) -> Value {
        let mut entry = json!({
            "path": node.path,
            "type": node.kind.clone().unwrap_or_default(),
            "major": node.major.unwrap_or(0),
            "minor": node.minor.unwrap_or(0),
        });
        if let Some(mode) = node.file_mode {
            entry["fileMode"] = json!(mode);
        }
        let user = |key: &str| {
            self.doc
                .pointer(&format!("/process/user/{key}"))
                .and_then(Value::as_u64)
                .filter(|id| *id > 0)
        };
        if let Some(uid) = node.uid.map(u64::from).or_else(|| user("uid")) {
            entry["uid"] = json!(uid);
        }
        if let Some(gid) = node.gid.map(u64::from).or_else(|| user("gid")) {
            entry["gid"] = json!(gid);
        }
        entry
    }

    fn net_devices(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            for net in &edits.net_devices {
                self.object(*i, &["linux", "netDevices"])?
                    .insert(net.host_interface_name.clone(), json!({"name": net.name}));
                self.note(
                    *i,
                    format!("netDevice {} as {}", net.host_interface_name, net.name),
                );
            }
        }
        Ok(())
    }

    /// A mount replaces the first one at its destination; then every mount is ordered by the
    /// depth of its destination (stable), so that a parent is mounted before what is inside it.
    fn mounts(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        let mut any = None;
        for (i, edits) in gathered {
            for mount in &edits.mounts {
                let entry = oci_mount(mount);
                let mounts = self.doc_mounts(*i)?;
                if let Some(at) = mounts
                    .iter()
                    .position(|m| m.get("destination") == entry.get("destination"))
                {
                    mounts.remove(at);
                }
                mounts.push(entry);
                any = Some(*i);
                let options = mount.options.join(",");
                self.note(
                    *i,
                    format!(
                        "mount {} from {} ({options})",
                        mount.container_path, mount.host_path
                    ),
                );
            }
        }
        if let Some(i) = any {
            self.doc_mounts(i)?
                .sort_by_key(|m| depth(m.get("destination").and_then(Value::as_str).unwrap_or("")));
        }
        Ok(())
    }

    fn doc_mounts(&mut self, i: usize) -> Result<&mut Vec<Value>, CdiError> {
        self.array(i, &[], "mounts")
    }

    /// A hook is appended to its stage's list, unless the very same hook is already there (so
    /// that resolving a config twice does not run it twice).
    fn hooks(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            for hook in &edits.hooks {
                let entry = oci_hook(hook);
                let list = self.array_for_hook(*i, hook)?;
                if !list.contains(&entry) {
                    list.push(entry);
                }
                self.note(*i, format!("hook {} {}", hook.hook_name, hook.path));
            }
        }
        Ok(())
    }

    fn array_for_hook(&mut self, i: usize, hook: &Hook) -> Result<&mut Vec<Value>, CdiError> {
        let stage =
            super::spec::hook_list(&hook.hook_name).expect("a valid spec names OCI hook lists");
        self.array(i, &["hooks"], stage)
    }

    fn intel_rdt(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            if let Some(rdt) = &edits.intel_rdt {
                let value = serde_json::to_value(rdt).expect("intelRdt serialises");
                self.object(*i, &["linux"])?
                    .insert("intelRdt".into(), value);
                self.note(*i, "intelRdt".into());
            }
        }
        Ok(())
    }

    fn additional_gids(&mut self, gathered: &Gathered) -> Result<(), CdiError> {
        for (i, edits) in gathered {
            for gid in edits.additional_gids.iter().filter(|g| **g != 0) {
                let gids = self.array(*i, &["process", "user"], "additionalGids")?;
                if !gids.iter().any(|g| g.as_u64() == Some(u64::from(*gid))) {
                    gids.push(json!(gid));
                }
                self.note(*i, format!("additionalGid {gid}"));
            }
        }
        Ok(())
    }
}

/// A device node with its type, major and minor filled in from the host (its `hostPath`, else
/// its `path`, not following a symlink) where the spec leaves them out; a type the spec gives
/// must match the host's.
fn filled(node: &DeviceNode) -> Result<DeviceNode, String> {
    let mut node = node.clone();
    if node.kind.as_deref() == Some("") {
        node.kind = None;
    }
    let major_set = node.major.is_some_and(|m| m != 0);
    if let Some(kind) = node.kind.as_deref()
        && (major_set || kind == "p")
    {
        return Ok(node);
    }
    let host = node
        .host_path
        .clone()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| node.path.clone());
    let meta = std::fs::symlink_metadata(&host)
        .map_err(|e| format!("cannot stat the host's {host}: {e}"))?;
    let file_type = meta.file_type();
    let host_kind = if file_type.is_block_device() {
        "b"
    } else if file_type.is_char_device() {
        "c"
    } else if file_type.is_fifo() {
        "p"
    } else {
        return Err(format!("the host's {host} is not a device node"));
    };
    match node.kind.as_deref() {
        None => node.kind = Some(host_kind.to_string()),
        Some(kind) if kind != host_kind => {
            return Err(format!(
                "the spec says type {kind} but the host's {host} is type {host_kind}"
            ));
        }
        Some(_) => {}
    }
    if !major_set && host_kind != "p" {
        let rdev = meta.rdev();
        node.major = Some(nix::sys::stat::major(rdev) as i64);
        node.minor = Some(nix::sys::stat::minor(rdev) as i64);
    }
    Ok(node)
}

fn oci_mount(mount: &Mount) -> Value {
    let mut entry = json!({"destination": mount.container_path});
    if let Some(kind) = mount.kind.as_ref().filter(|k| !k.is_empty()) {
        entry["type"] = json!(kind);
    }
    entry["source"] = json!(mount.host_path);
    if !mount.options.is_empty() {
        entry["options"] = json!(mount.options);
    }
    entry
}

fn oci_hook(hook: &Hook) -> Value {
    let mut entry = json!({"path": hook.path});
    if !hook.args.is_empty() {
        entry["args"] = json!(hook.args);
    }
    if !hook.env.is_empty() {
        entry["env"] = json!(hook.env);
    }
    if let Some(timeout) = hook.timeout {
        entry["timeout"] = json!(timeout);
    }
    entry
}

/// How deep a mount destination is: the number of separators in its clean form (Go's
/// `strings.Count(filepath.Clean(dest), "/")`).
fn depth(destination: &str) -> usize {
    let mut parts: Vec<&str> = Vec::new();
    for part in destination.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if destination.starts_with('/') => {}
            other => parts.push(other),
        }
    }
    match destination.starts_with('/') {
        true => parts.len().max(1),
        false => parts.len().saturating_sub(1),
    }
}

#[cfg(test)]
pub(super) fn depth_for_tests(destination: &str) -> usize {
    depth(destination)
}
