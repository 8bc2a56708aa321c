//! A CDI spec file: its format (CDI 0.3.0 to 1.1.0) and the rules the CDI specification and its
//! Go reference (`container-device-interface/pkg/cdi`, which Podman, Docker, containerd and
//! CRI-O resolve devices with) state for it: names, versions and the features each needs,
//! container edits.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::names;

/// A spec file as written (YAML or JSON; unknown fields are an error, as in the Go
/// reference's strict parse).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    #[serde(rename = "cdiVersion")]
    pub version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub devices: Vec<Device>,
    #[serde(
        rename = "containerEdits",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub container_edits: Option<ContainerEdits>,
}

/// One device of a spec.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    pub name: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(rename = "containerEdits", default)]
    pub container_edits: Option<ContainerEdits>,
}

/// The edits a device (or every device of a spec) brings to a container's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerEdits {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub device_nodes: Vec<DeviceNode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net_devices: Vec<NetDevice>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hooks: Vec<Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intel_rdt: Option<IntelRdt>,
    #[serde(
        rename = "additionalGids",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub additional_gids: Vec<u32>,
}

impl ContainerEdits {
    fn is_empty(&self) -> bool {
        self == &ContainerEdits::default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeviceNode {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_path: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NetDevice {
    pub host_interface_name: String,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Mount {
    pub host_path: String,
    pub container_path: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Hook {
    pub hook_name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntelRdt {
    #[serde(rename = "closID", default, skip_serializing_if = "Option::is_none")]
    pub clos_id: Option<String>,
    #[serde(
        rename = "l3CacheSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub l3_cache_schema: Option<String>,
    #[serde(
        rename = "memBwSchema",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mem_bw_schema: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schemata: Option<Vec<String>>,
    #[serde(
        rename = "enableMonitoring",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub enable_monitoring: Option<bool>,
    #[serde(rename = "enableCMT", default, skip_serializing_if = "Option::is_none")]
    pub enable_cmt: Option<bool>,
    #[serde(rename = "enableMBM", default, skip_serializing_if = "Option::is_none")]
    pub enable_mbm: Option<bool>,
}

/// The OCI hooks list a CDI hook's `hookName` names (`createContainer`, …), if it is one.
pub fn hook_list(hook_name: &str) -> Option<&'static str> {
    hookhost_types::Stage::ALL
        .into_iter()
        .filter(|stage| stage.is_oci())
        .map(|stage| stage.as_str())
        .find(|name| *name == hook_name)
}

/// The CDI versions this reads (the Go reference's list), oldest first.
pub const VERSIONS: [&str; 10] = [
    "0.1.0", "0.2.0", "0.3.0", "0.4.0", "0.5.0", "0.6.0", "0.7.0", "0.8.0", "1.0.0", "1.1.0",
];

/// The device permissions value that adds no cgroup access.
const NO_PERMISSIONS: &str = "none";

/// Annotations of a spec or device may take this much in all (Kubernetes' bound, which the Go
/// reference applies).
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Why a spec is not valid; the caller adds the file.
pub type Invalid = String;

/// Parses a spec file's bytes (YAML, of which JSON is a part).
pub fn parse(bytes: &[u8]) -> Result<Spec, Invalid> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty".into());
    }
    serde_yaml::from_slice(bytes).map_err(|e| format!("not a CDI spec: {e}"))
}

impl Spec {
    /// The spec's vendor and class (`kind` is `vendor/class`).
    pub fn vendor_class(&self) -> (&str, &str) {
        self.kind.split_once('/').unwrap_or(("", &self.kind))
    }

    /// The rules of the CDI specification, as its Go reference checks them.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.validate_version()?;
        let (vendor, class) = self.vendor_class();
        if vendor.is_empty() {
            return Err(format!(
                "invalid kind {:?}: it must be vendor/class (example.com/gpu)",
                self.kind
            ));
        }
        names::vendor(vendor).map_err(|e| format!("invalid kind {:?}: {e}", self.kind))?;
        names::class(class).map_err(|e| format!("invalid kind {:?}: {e}", self.kind))?;
        annotations(&self.annotations).map_err(|e| format!("spec annotations: {e}"))?;
        if let Some(edits) = &self.container_edits {
            edits
                .validate()
                .map_err(|e| format!("containerEdits: {e}"))?;
        }
        if self.devices.is_empty() {
            return Err("invalid spec: no devices".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for device in &self.devices {
            device
                .validate()
                .map_err(|e| format!("device {:?}: {e}", device.name))?;
            if !seen.insert(device.name.as_str()) {
                return Err(format!(
                    "invalid spec: device {:?} is defined twice",
                    device.name
                ));
            }
        }
        Ok(())
    }

    fn validate_version(&self) -> Result<(), Invalid> {
        let declared = self.version.strip_prefix('v').unwrap_or(&self.version);
        let Some(index) = VERSIONS.iter().position(|v| *v == declared) else {
            return Err(format!(
                "invalid cdiVersion {:?}: known versions are {}",
                self.version,
                VERSIONS.join(", ")
            ));
        };
        let (required, feature) = self.required_version();
        let required_index = VERSIONS
            .iter()
            .position(|v| *v == required)
            .expect("required versions are known ones");
        if index < 2 {
            return Err(format!(
                "cdiVersion {declared} is too old: the oldest version read is {}",
                VERSIONS[2]
            ));
        }
        if index < required_index {
            return Err(format!(
                "cdiVersion {declared} is too old for what the spec uses: {feature} needs at \
                 least {required}"
            ));
        }
        Ok(())
    }

    /// The lowest version that has every feature the spec uses, and the feature that needs it.
    fn required_version(&self) -> (&'static str, &'static str) {
        let edits: Vec<&ContainerEdits> = (self.container_edits.iter())
            .chain(
                self.devices
                    .iter()
                    .filter_map(|d| d.container_edits.as_ref()),
            )
            .collect();
        let any = |f: fn(&ContainerEdits) -> bool| edits.iter().any(|e| f(e));
        if any(|e| !e.net_devices.is_empty()) {
            return ("1.1.0", "netDevices");
        }
        let rdt = |e: &ContainerEdits| e.intel_rdt.as_ref().cloned();
        if edits
            .iter()
            .filter_map(|e| rdt(e))
            .any(|r| r.schemata.is_some() || r.enable_monitoring.is_some())
        {
            return ("1.1.0", "intelRdt schemata or enableMonitoring");
        }
        if any(|e| e.intel_rdt.is_some()) {
            return ("0.7.0", "intelRdt");
        }
        if any(|e| !e.additional_gids.is_empty()) {
            return ("0.7.0", "additionalGids");
        }
        let (vendor, class) = self.vendor_class();
        if !self.annotations.is_empty() || self.devices.iter().any(|d| !d.annotations.is_empty()) {
            return ("0.6.0", "annotations");
        }
        if !vendor.is_empty() && class.contains('.') {
            return ("0.6.0", "a class name with a '.'");
        }
        let starts_with_letter = |n: &str| n.chars().next().is_some_and(char::is_alphabetic);
        if self.devices.iter().any(|d| !starts_with_letter(&d.name)) {
            return ("0.5.0", "a device name that does not start with a letter");
        }
        let nodes = edits.iter().flat_map(|e| &e.device_nodes);
        if nodes
            .into_iter()
            .any(|n| n.host_path.as_deref().is_some_and(|p| !p.is_empty()))
        {
            return ("0.5.0", "deviceNodes hostPath");
        }
        let mounts = edits.iter().flat_map(|e| &e.mounts);
        if mounts
            .into_iter()
            .any(|m| m.kind.as_deref().is_some_and(|t| !t.is_empty()))
        {
            return ("0.4.0", "mounts type");
        }
        (VERSIONS[2], "the base format")
    }
}

impl Device {
    fn validate(&self) -> Result<(), Invalid> {
        names::device(&self.name).map_err(|e| format!("invalid device name: {e}"))?;
        annotations(&self.annotations).map_err(|e| format!("annotations: {e}"))?;
        match &self.container_edits {
            Some(edits) if !edits.is_empty() => edits.validate(),
            _ => Err("invalid device: it has no containerEdits".into()),
        }
    }
}

impl ContainerEdits {
    fn validate(&self) -> Result<(), Invalid> {
        env(&self.env)?;
        for node in &self.device_nodes {
            node.validate()?;
        }
        for hook in &self.hooks {
            hook.validate()?;
        }
        for mount in &self.mounts {
            if mount.host_path.is_empty() {
                return Err("invalid mount: empty hostPath".into());
            }
            if mount.container_path.is_empty() {
                return Err("invalid mount: empty containerPath".into());
            }
        }
        net_devices(&self.net_devices)?;
        if let Some(clos) = self.intel_rdt.as_ref().and_then(|r| r.clos_id.as_ref())
            && (clos.len() >= 4096 || clos == "." || clos == ".." || clos.contains(['/', '\n']))
        {
            return Err(format!("invalid intelRdt closID {clos:?}"));
        }
        Ok(())
    }
}

impl DeviceNode {
    fn validate(&self) -> Result<(), Invalid> {
        if self.path.is_empty() {
            return Err("invalid device node: empty path".into());
        }
        if let Some(kind) = &self.kind
            && !matches!(kind.as_str(), "b" | "c" | "u" | "p" | "")
        {
            return Err(format!(
                "device node {:?}: invalid type {kind:?} (b, c, u or p)",
                self.path
            ));
        }
        if let Some(permissions) = &self.permissions
            && permissions != NO_PERMISSIONS
            && !permissions.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        {
            return Err(format!(
                "device node {:?}: invalid permissions {permissions:?} (r, w and m, or none)",
                self.path
            ));
        }
        Ok(())
    }

    /// The cgroup access the node gets: `rwm` unless the spec says (`none`: no access rule
    /// entry's access, as in the Go reference).
    pub fn access(&self) -> &str {
        match self.permissions.as_deref() {
            None | Some("") => "rwm",
            Some(NO_PERMISSIONS) => "",
            Some(p) => p,
        }
    }
}

impl Hook {
    fn validate(&self) -> Result<(), Invalid> {
        if hook_list(&self.hook_name).is_none() {
            let names: Vec<&str> = (hookhost_types::Stage::ALL.into_iter())
                .filter(|stage| stage.is_oci())
                .map(|stage| stage.as_str())
                .collect();
            return Err(format!(
                "invalid hook name {:?}: use one of {}",
                self.hook_name,
                names.join(", ")
            ));
        }
        if self.path.is_empty() {
            return Err(format!("hook {:?}: empty path", self.hook_name));
        }
        env(&self.env).map_err(|e| format!("hook {:?}: {e}", self.hook_name))
    }
}

fn env(entries: &[String]) -> Result<(), Invalid> {
    match entries
        .iter()
        .find(|v| v.split_once('=').is_none_or(|(name, _)| name.is_empty()))
    {
        Some(bad) => Err(format!(
            "invalid environment variable {bad:?}: it must be NAME=value"
        )),
        None => Ok(()),
    }
}

fn net_devices(devices: &[NetDevice]) -> Result<(), Invalid> {
    let mut hosts = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    for device in devices {
        if device.host_interface_name.is_empty() || device.name.is_empty() {
            return Err("invalid netDevices entry: empty hostInterfaceName or name".into());
        }
        if !hosts.insert(&device.host_interface_name) {
            return Err(format!(
                "invalid netDevices: hostInterfaceName {:?} twice",
                device.host_interface_name
            ));
        }
        if !names.insert(&device.name) {
            return Err(format!("invalid netDevices: name {:?} twice", device.name));
        }
    }
    Ok(())
}

/// Kubernetes' rules for annotations, which the Go reference applies: qualified-name keys
/// (`[prefix/]name`), at most 256 KiB in all.
fn annotations(map: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let size: usize = map.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_ANNOTATIONS_BYTES {
        return Err(format!(
            "{size} bytes, more than the {MAX_ANNOTATIONS_BYTES} allowed"
        ));
    }
    for key in map.keys() {
        names::annotation_key(key).map_err(|e| format!("invalid key {key:?}: {e}"))?;
    }
    Ok(())
}
