//! The NRI adjustment that makes the runtime's config what the pipeline decided: the
//! difference between the container as NRI described it and as its precreate hooks (and
//! hookhost's own OCI hook entries) left it. NRI 0.8 carries env, mounts, annotations, OCI
//! hooks (appended), rlimits, linux devices and CDI devices (a hook's `cdi.k8s.io/` request,
//! resolved by the runtime); any other change refuses the container.

use serde_json::Value;
use thiserror::Error;

use hookhost_hooks::diff::{self, Change, ChangeKind, Field};
use hookhost_nri::api::{
    CDIDevice, ContainerAdjustment, Hook, Hooks, KeyValue, LinuxDevice, Mount, OptionalFileMode,
    OptionalInt, OptionalUInt32, POSIXRlimit,
};

use super::view::STAGES;

/// A change NRI cannot carry to the runtime.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "container refused: {who} {change}, which NRI cannot carry to the runtime (NRI adjusts \
     env, mounts, annotations, OCI hooks, rlimits and linux devices, and adds CDI devices): \
     register the hook without that edit, or give this container hookhost's runtime wrapper \
     (RuntimeClass) instead"
)]
pub struct Uncarried {
    who: String,
    change: String,
}

/// The adjustment from `before` to `after`; `adjusted` names who made each change.
pub fn adjustment(
    before: &Value,
    after: &Value,
    adjusted: &[(String, Vec<Change>)],
) -> Result<ContainerAdjustment, Uncarried> {
    let mut out = ContainerAdjustment::new();
    for change in diff::diff(before, after) {
        let uncarried = || Uncarried {
            who: adjusted
                .iter()
                .rev()
                .find(|(_, changes)| changes.iter().any(|c| c.field == change.field))
                .map_or("hookhost".to_string(), |(hook, _)| {
                    format!("precreate hook {hook}")
                }),
            change: change.to_string(),
        };
        let removed = change.kind == ChangeKind::Removed;
        match &change.field {
            Field::Env(key) => out.env.push(env(key, after, removed)),
            Field::Mount(dest) if removed => out.mounts.push(removal_mount(dest)),
            Field::Mount(dest) => out
                .mounts
                .extend(entries(after, "/mounts", "destination", dest).map(mount)),
            Field::Device(path) => {
                let linux = out.linux.mut_or_insert_default();
                match removed {
                    true => linux.devices.push(removal_device(path)),
                    false => linux.devices.extend(
                        entries(after, "/linux/devices", "path", path)
                            .map(device)
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(uncarried)?,
                    ),
                }
            }
            Field::Annotation(key) => {
                let value = after.pointer("/annotations").and_then(|a| a.get(key));
                match (removed, value.and_then(Value::as_str)) {
                    (true, _) => out.annotations.insert(format!("-{key}"), String::new()),
                    (false, Some(v)) => out.annotations.insert(key.clone(), v.to_string()),
                    (false, None) => return Err(uncarried()),
                };
            }
            Field::Rlimits => out.rlimits = rlimits(after).ok_or_else(uncarried)?,
            Field::Hooks => {
                out.hooks = Some(added_hooks(before, after).ok_or_else(uncarried)?).into()
            }
            Field::Cdi(name) if !removed => out.CDI_devices.push(cdi_device(name)),
            Field::Resources | Field::Args | Field::Cdi(_) | Field::Other(_) => {
                return Err(uncarried());
            }
        }
    }
    Ok(out)
}

/// Whether the runtime NRI's Configure named applies an adjustment's CDI devices: containerd
/// ≥ 2 (its NRI ≥ 0.8 hands them to its CDI injector; measured with 2.1.9). A runtime whose
/// NRI predates the field would drop it unread, and one may have no injector: for those
/// hookhost refuses the container rather than start it without its devices.
pub fn applies_cdi_devices(name: &str, version: &str) -> bool {
    let major = version.trim_start_matches('v').split('.').next();
    name == "containerd" && major.and_then(|m| m.parse::<u32>().ok()) >= Some(2)
}

/// A CDI device for the runtime to resolve (NRI 0.8 has them; containerd 2.1 applies them
/// from its own CDI spec directories).
fn cdi_device(name: &str) -> CDIDevice {
    let mut device = CDIDevice::new();
    device.name = name.to_string();
    device
}

fn env(key: &str, after: &Value, removed: bool) -> KeyValue {
    let mut kv = KeyValue::new();
    if removed {
        kv.key = format!("-{key}");
        return kv;
    }
    kv.key = key.to_string();
    let entries = after.pointer("/process/env").and_then(Value::as_array);
    let value = entries
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter_map(|e| e.split_once('='))
        .rfind(|(k, _)| *k == key);
    kv.value = value.map_or(String::new(), |(_, v)| v.to_string());
    kv
}

/// The entries of the list at `pointer` whose `member` is `key`.
fn entries<'a>(
    doc: &'a Value,
    pointer: &str,
    member: &'a str,
    key: &'a str,
) -> impl Iterator<Item = &'a Value> {
    doc.pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(move |e| e.get(member).and_then(Value::as_str) == Some(key))
}

fn text(entry: &Value, member: &str) -> String {
    entry
        .get(member)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings(entry: &Value, member: &str) -> Vec<String> {
    entry
        .get(member)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_string)
        .collect()
}

fn mount(entry: &Value) -> Mount {
    let mut m = Mount::new();
    m.destination = text(entry, "destination");
    m.type_ = text(entry, "type");
    m.source = text(entry, "source");
    m.options = strings(entry, "options");
    m
}

fn removal_mount(dest: &str) -> Mount {
    let mut m = Mount::new();
    m.destination = format!("-{dest}");
    m
}

fn removal_device(path: &str) -> LinuxDevice {
    let mut d = LinuxDevice::new();
    d.path = format!("-{path}");
    d
}

fn device(entry: &Value) -> Option<LinuxDevice> {
    let mut d = LinuxDevice::new();
    d.path = text(entry, "path");
    d.type_ = text(entry, "type");
    d.major = entry.get("major")?.as_i64()?;
    d.minor = entry.get("minor")?.as_i64()?;
    if let Some(mode) = entry.get("fileMode") {
        let mut m = OptionalFileMode::new();
        m.value = u32::try_from(mode.as_u64()?).ok()?;
        d.file_mode = Some(m).into();
    }
    for (member, field) in [("uid", &mut d.uid), ("gid", &mut d.gid)] {
        if let Some(id) = entry.get(member) {
            let mut v = OptionalUInt32::new();
            v.value = u32::try_from(id.as_u64()?).ok()?;
            *field = Some(v).into();
        }
    }
    Some(d)
}

fn rlimits(after: &Value) -> Option<Vec<POSIXRlimit>> {
    let list = after.pointer("/process/rlimits").and_then(Value::as_array);
    list.into_iter()
        .flatten()
        .map(|r| {
            let mut limit = POSIXRlimit::new();
            limit.type_ = r.get("type")?.as_str()?.to_string();
            limit.hard = r.get("hard")?.as_u64()?;
            limit.soft = r.get("soft")?.as_u64()?;
            Some(limit)
        })
        .collect()
}

fn hook(entry: &Value) -> Option<Hook> {
    let mut h = Hook::new();
    h.path = entry.get("path")?.as_str()?.to_string();
    h.args = strings(entry, "args");
    h.env = strings(entry, "env");
    if let Some(timeout) = entry.get("timeout") {
        let mut t = OptionalInt::new();
        t.value = timeout.as_i64()?;
        h.timeout = Some(t).into();
    }
    Some(h)
}

/// The hooks `after` appends to `before`'s lists; `None` when it changed or removed one
/// (NRI only appends hooks), or has a stage NRI has no list for (startRuntime).
fn added_hooks(before: &Value, after: &Value) -> Option<Hooks> {
    let mut hooks = Hooks::new();
    let lists = after.get("hooks").and_then(Value::as_object)?;
    if lists
        .keys()
        .any(|k| !STAGES.iter().any(|(name, _)| name == k))
    {
        return None;
    }
    for (name, list) in STAGES {
        let old = before
            .pointer(&format!("/hooks/{name}"))
            .and_then(Value::as_array);
        let new = after
            .pointer(&format!("/hooks/{name}"))
            .and_then(Value::as_array);
        let (old, new) = (
            old.map_or(&[][..], Vec::as_slice),
            new.map_or(&[][..], Vec::as_slice),
        );
        if !new.starts_with(old) {
            return None;
        }
        let added = new[old.len()..]
            .iter()
            .map(hook)
            .collect::<Option<Vec<_>>>()?;
        list(&mut hooks).extend(added);
    }
    Some(hooks)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn before() -> Value {
        json!({"ociVersion": "1.0.2",
               "process": {"args": ["sh"], "env": ["PATH=/bin", "OLD=1"], "cwd": "/"},
               "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
               "hooks": {"createRuntime": [{"path": "/bin/theirs"}]},
               "annotations": {"a": "1"}})
    }

    #[test]
    fn carried_edits_become_the_adjustment() {
        let mut after = before();
        after["process"]["env"] = json!(["PATH=/bin", "NEW=x=y"]);
        after["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/opt", "type": "tmpfs", "source": "tmpfs", "options": ["ro"]}),
        );
        after["hooks"]["createRuntime"]
            .as_array_mut()
            .unwrap()
            .push(
                json!({"path": "/usr/bin/hookhost", "args": ["hookhost", "stage"], "timeout": 7}),
            );
        after["annotations"] = json!({"b": "2"});
        let out = adjustment(&before(), &after, &[]).unwrap();
        let env: Vec<(&str, &str)> = out
            .env
            .iter()
            .map(|kv| (kv.key.as_str(), kv.value.as_str()))
            .collect();
        assert_eq!(env, [("-OLD", ""), ("NEW", "x=y")]);
        assert_eq!(out.mounts.len(), 1);
        assert_eq!(
            (
                out.mounts[0].destination.as_str(),
                out.mounts[0].options.clone()
            ),
            ("/opt", vec!["ro".to_string()])
        );
        let hooks = out.hooks.as_ref().unwrap();
        assert_eq!(hooks.create_runtime.len(), 1, "only the appended hook");
        assert_eq!(hooks.create_runtime[0].path, "/usr/bin/hookhost");
        assert_eq!(hooks.create_runtime[0].timeout.value, 7);
        assert_eq!(out.annotations.get("-a").map(String::as_str), Some(""));
        assert_eq!(out.annotations.get("b").map(String::as_str), Some("2"));
    }

    #[test]
    fn an_edit_nri_cannot_carry_refuses_naming_the_hook_and_the_field() {
        let mut after = before();
        after["process"]["args"] = json!(["sh", "-c", "evil"]);
        let adjusted = [("argser".to_string(), diff::diff(&before(), &after))];
        let err = adjustment(&before(), &after, &adjusted)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("precreate hook argser changed args (process.args)"),
            "{err}"
        );
        assert!(err.contains("NRI cannot carry"), "{err}");
        let mut user = before();
        user["process"]["user"] = json!({"uid": 1234});
        let err = adjustment(&before(), &user, &[]).unwrap_err().to_string();
        assert!(err.contains("hookhost added /process/user"), "{err}");
        // A hook removed from a list NRI only appends to.
        let mut removed = before();
        removed["hooks"] = json!({});
        assert!(adjustment(&before(), &removed, &[]).is_err());
    }

    #[test]
    fn cdi_devices_go_only_to_runtimes_known_to_apply_them() {
        for (name, version, applies) in [
            ("containerd", "v2.1.9", true),
            ("containerd", "2.0.0", true),
            ("containerd", "v1.7.24", false),
            ("containerd", "", false),
            ("cri-o", "1.33.0", false),
        ] {
            assert_eq!(
                applies_cdi_devices(name, version),
                applies,
                "{name} {version}"
            );
        }
    }

    /// A precreate hook's CDI request (the `cdi.k8s.io/` annotations) is passed on for the
    /// runtime to resolve, as the adjustment's CDI devices; withdrawing a device the container
    /// asked for cannot be carried.
    #[test]
    fn cdi_requests_become_the_adjustments_cdi_devices() {
        let mut after = before();
        after["annotations"]["cdi.k8s.io/picker"] = json!("example.com/gpu=0,example.com/gpu=1");
        let out = adjustment(&before(), &after, &[]).unwrap();
        let names: Vec<&str> = out.CDI_devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["example.com/gpu=0", "example.com/gpu=1"]);
        assert!(out.annotations.is_empty(), "{:?}", out.annotations);
        let err = adjustment(&after, &before(), &[]).unwrap_err().to_string();
        assert!(
            err.contains("removed cdi device example.com/gpu=0"),
            "{err}"
        );
    }
}
