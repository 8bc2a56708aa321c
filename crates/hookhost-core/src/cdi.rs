//! A bundle's CDI devices: after the precreate chain, the devices the config's `cdi.k8s.io/`
//! annotations request — the engine's (for engines that pass annotations on but do not resolve
//! CDI: Docker 20.10 through the wrapper, plain runc with `hookhost inject`), or a precreate
//! hook's, within its `--may-adjust cdi` grant — are resolved from the spec directories and
//! applied to config.json ([`hookhost_hooks::cdi`]), and each device is recorded in the audit
//! trail with the hook that asked for it and the edits it brought.

use std::path::{Path, PathBuf};

use chrono::Utc;
use serde_json::Value;

use crate::events::{self, CdiRecord, Event, EventsError};
use hookhost_hooks::cdi::{self, Applied, Catalog, CdiError};
use hookhost_hooks::diff::{Change, ChangeKind, Field};
use hookhost_hooks::paths::Paths;
use hookhost_types::{HookKind, Stage};

/// A device applied, and the precreate hook that requested it (`None`: the container's own
/// annotations did).
#[derive(Debug, Clone)]
pub struct Brought {
    pub applied: Applied,
    pub by: Option<(String, HookKind)>,
}

/// Which of a config's requests hookhost resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every `cdi.k8s.io/` request, the container's own and its hooks' (the runtime wrapper,
    /// `inject`, `run`: the engines there do not resolve the annotations).
    All,
    /// Only the names the precreate hooks of this call added (`hookhost stage precreate` under
    /// Podman's hooks.d export: Podman resolved its own `--device` names before, and the
    /// hooks of other exported files resolve their own requests).
    HooksOnly,
}

/// Resolves and applies the devices `doc` requests (within `scope`); `adjusted` (each
/// precreate hook's changes) tells who asked. Nothing is read when nothing is requested.
pub fn apply(
    doc: &mut Value,
    dirs: &[PathBuf],
    scope: Scope,
    adjusted: &[(String, Vec<Change>)],
    kinds: &[(String, HookKind)],
) -> Result<Vec<Brought>, CdiError> {
    let mut requests = cdi::requested(doc);
    if scope == Scope::HooksOnly {
        requests.retain(|r| requester(&r.name, adjusted).is_some());
    }
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let catalog = Catalog::load(&cdi::spec_dirs(dirs));
    let resolved = catalog.resolve(&requests)?;
    let applied = cdi::apply(doc, &resolved)?;
    Ok(applied
        .into_iter()
        .map(|applied| {
            let by = requester(&applied.device, adjusted)
                .map(|hook| (hook.to_string(), kind_of(hook, kinds)));
            Brought { applied, by }
        })
        .collect())
}

fn kind_of(hook: &str, kinds: &[(String, HookKind)]) -> HookKind {
    (kinds.iter())
        .find(|(name, _)| name == hook)
        .map_or(HookKind::Native, |(_, kind)| *kind)
}

/// The names a precreate hook's changes added to the requests.
fn added(changes: &[Change]) -> impl Iterator<Item = &str> {
    changes.iter().filter_map(|c| match &c.field {
        Field::Cdi(name) if c.kind == ChangeKind::Added => Some(name.as_str()),
        _ => None,
    })
}

/// The last precreate hook that added `device` to the requests.
fn requester<'a>(device: &str, adjusted: &'a [(String, Vec<Change>)]) -> Option<&'a str> {
    adjusted
        .iter()
        .rev()
        .find(|(_, changes)| added(changes).any(|n| n == device))
        .map(|(hook, _)| hook.as_str())
}

/// Where the records go, and for which container.
pub struct Audit<'a> {
    pub root: &'a Path,
    pub max_size: u64,
    pub container: &'a str,
    pub doc: &'a Value,
}

/// One event per device: stage precreate, the requesting hook (empty: the container), and
/// [`CdiRecord`].
pub fn record(audit: &Audit, brought: &[Brought]) -> Result<(), EventsError> {
    let file = Paths::new(audit.root).events_file();
    for device in brought {
        let by = (device.by.clone()).unwrap_or((String::new(), HookKind::Native));
        let record = CdiRecord {
            device: device.applied.device.clone(),
            spec: device.applied.spec.clone(),
            edits: device.applied.edits.clone(),
        };
        events::append(&file, &event(audit, by, record, None), audit.max_size)?;
    }
    Ok(())
}

/// A refused resolution, for `hookhost stage precreate` (whose stderr Podman discards): one
/// event per precreate hook that requested devices, with the names it requested (no spec, no
/// edits) and the reason.
pub fn record_refusal(
    audit: &Audit,
    adjusted: &[(String, Vec<Change>)],
    kinds: &[(String, HookKind)],
    error: &CdiError,
) -> Result<(), EventsError> {
    let file = Paths::new(audit.root).events_file();
    let reason = crate::error_chain(error);
    for (hook, changes) in adjusted {
        let names: Vec<&str> = added(changes).collect();
        if names.is_empty() {
            continue;
        }
        let record = CdiRecord {
            device: names.join(","),
            spec: PathBuf::new(),
            edits: Vec::new(),
        };
        let by = (hook.clone(), kind_of(hook, kinds));
        let event = event(audit, by, record, Some(reason.clone()));
        events::append(&file, &event, audit.max_size)?;
    }
    Ok(())
}

/// The event of one CDI record: stage precreate, `by` the requesting hook.
fn event(audit: &Audit, by: (String, HookKind), cdi: CdiRecord, error: Option<String>) -> Event {
    let annotations = (audit.doc.get("annotations").and_then(Value::as_object))
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let (pod, name) = events::kubernetes_names(&annotations);
    let (hook, kind) = by;
    Event {
        id: events::new_id(),
        time: Utc::now(),
        container: audit.container.to_string(),
        stage: Stage::Precreate,
        hook,
        kind,
        exit: None,
        duration_ms: 0.0,
        error,
        failure: None,
        fuel_used: None,
        on_failure: None,
        pod,
        name,
        generation: None,
        verdict: None,
        needs: None,
        stderr: None,
        cdi: Some(cdi),
        shadow: None,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde_json::json;

    use super::*;

    /// A spec directory defining `example.com/gpu=0` and `=1`, each setting `GPUN=1`.
    fn specs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let device = |n: &str| json!({"name": n, "containerEdits": {"env": [format!("GPU{n}=1")]}});
        let spec = json!({"cdiVersion": "0.6.0", "kind": "example.com/gpu",
                          "devices": [device("0"), device("1")]});
        let file = dir.path().join("gpu.json");
        std::fs::write(&file, spec.to_string()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        dir
    }

    /// The container asks for gpu=1, a precreate hook adds gpu=0: `All` resolves both,
    /// `HooksOnly` (Podman's hooks.d export) only the hook's, which it names.
    #[test]
    fn hooks_only_resolves_what_the_hooks_added() {
        let dir = specs();
        let before = json!({"ociVersion": "1.0.2", "process": {"env": []},
                            "annotations": {"cdi.k8s.io/ctr": "example.com/gpu=1"}});
        let mut after = before.clone();
        after["annotations"]["cdi.k8s.io/picker"] = json!("example.com/gpu=0");
        let adjusted = [(
            "picker".to_string(),
            hookhost_hooks::diff::diff(&before, &after),
        )];
        let kinds = [("picker".to_string(), HookKind::Wasm)];
        let dirs = [dir.path().to_path_buf()];
        for (scope, want) in [
            (Scope::All, json!(["GPU1=1", "GPU0=1"])),
            (Scope::HooksOnly, json!(["GPU0=1"])),
        ] {
            let mut doc = after.clone();
            let brought = apply(&mut doc, &dirs, scope, &adjusted, &kinds).unwrap();
            assert_eq!(doc["process"]["env"], want, "{scope:?}");
            let picked = brought
                .iter()
                .find(|b| b.applied.device == "example.com/gpu=0");
            let by = picked.and_then(|b| b.by.clone());
            assert_eq!(
                by,
                Some(("picker".to_string(), HookKind::Wasm)),
                "{scope:?}"
            );
        }
    }
}
