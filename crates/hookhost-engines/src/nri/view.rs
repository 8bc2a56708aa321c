//! The OCI config a container's hooks see in NRI mode, built from what NRI describes: process
//! args, env and rlimits, mounts, OCI hooks, annotations (the pod's, then the container's over
//! them, as selection reads them), and `linux` devices, namespaces and cgroups path. What NRI
//! does not give (capabilities, the root filesystem, resources) is absent; the OCI schema
//! requires `process.user`, which NRI 0.8 does not give: the view says uid 0, gid 0 (a hook
//! may not rely on it; an edit of it is refused as one NRI cannot carry).

use serde_json::{Map, Value, json};

use hookhost_nri::api::{Container, Hook, Hooks, LinuxDevice, Mount, PodSandbox};

/// The OCI version the view claims (what NRI 0.8 runtimes write).
const OCI_VERSION: &str = "1.0.2";

/// The container as an OCI config document.
pub fn config(pod: &PodSandbox, container: &Container) -> Value {
    let mut annotations: Map<String, Value> = sorted(&pod.annotations);
    annotations.extend(sorted(&container.annotations));
    let rlimits: Vec<Value> = container
        .rlimits
        .iter()
        .map(|r| json!({"type": r.type_, "hard": r.hard, "soft": r.soft}))
        .collect();
    let mut linux = Map::new();
    if let Some(l) = container.linux.as_ref() {
        let namespaces: Vec<Value> = l
            .namespaces
            .iter()
            .map(|n| match n.path.is_empty() {
                true => json!({"type": n.type_}),
                false => json!({"type": n.type_, "path": n.path}),
            })
            .collect();
        linux.insert("namespaces".into(), namespaces.into());
        let devices: Vec<Value> = l.devices.iter().map(device).collect();
        if !devices.is_empty() {
            linux.insert("devices".into(), devices.into());
        }
        if !l.cgroups_path.is_empty() {
            linux.insert("cgroupsPath".into(), l.cgroups_path.clone().into());
        }
    }
    json!({
        "ociVersion": OCI_VERSION,
        "process": {
            "args": container.args,
            "env": container.env,
            "cwd": "/",
            "user": {"uid": 0, "gid": 0},
            "rlimits": rlimits,
        },
        "mounts": container.mounts.iter().map(mount).collect::<Vec<_>>(),
        "hooks": hooks(container),
        "annotations": annotations,
        "linux": linux,
    })
}

fn sorted(map: &std::collections::HashMap<String, String>) -> Map<String, Value> {
    let mut pairs: Vec<(&String, &String)> = map.iter().collect();
    pairs.sort();
    pairs
        .into_iter()
        .map(|(k, v)| (k.clone(), Value::from(v.clone())))
        .collect()
}

pub fn mount(m: &Mount) -> Value {
    json!({"destination": m.destination, "type": m.type_, "source": m.source, "options": m.options})
}

pub fn device(d: &LinuxDevice) -> Value {
    let mut entry = json!({"path": d.path, "type": d.type_, "major": d.major, "minor": d.minor});
    if let Some(mode) = d.file_mode.as_ref() {
        entry["fileMode"] = mode.value.into();
    }
    if let Some(uid) = d.uid.as_ref() {
        entry["uid"] = uid.value.into();
    }
    if let Some(gid) = d.gid.as_ref() {
        entry["gid"] = gid.value.into();
    }
    entry
}

pub fn hook(h: &Hook) -> Value {
    let mut entry = json!({"path": h.path});
    if !h.args.is_empty() {
        entry["args"] = h.args.clone().into();
    }
    if !h.env.is_empty() {
        entry["env"] = h.env.clone().into();
    }
    if let Some(timeout) = h.timeout.as_ref() {
        entry["timeout"] = timeout.value.into();
    }
    entry
}

/// One of NRI's hook lists in a `Hooks` message.
pub type HookList = fn(&mut Hooks) -> &mut Vec<Hook>;

/// NRI's hook lists by their config.json names (NRI has no startRuntime list).
pub const STAGES: [(&str, HookList); 6] = [
    ("prestart", |h| &mut h.prestart),
    ("createRuntime", |h| &mut h.create_runtime),
    ("createContainer", |h| &mut h.create_container),
    ("startContainer", |h| &mut h.start_container),
    ("poststart", |h| &mut h.poststart),
    ("poststop", |h| &mut h.poststop),
];

/// The OCI hook lists (empty ones left out).
fn hooks(container: &Container) -> Value {
    let mut given = container.hooks.clone().unwrap_or_default();
    let mut lists = Map::new();
    for (name, list) in STAGES {
        let list = list(&mut given);
        if !list.is_empty() {
            lists.insert(
                name.into(),
                list.iter().map(hook).collect::<Vec<_>>().into(),
            );
        }
    }
    Value::Object(lists)
}
