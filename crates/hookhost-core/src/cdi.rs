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

/// Resolves and applies the devices `doc` requests; `adjusted` (each precreate hook's changes)
/// tells who asked. Nothing is read when nothing is requested.
pub fn apply(
    doc: &mut Value,
    dirs: &[PathBuf],
    adjusted: &[(String, Vec<Change>)],
    kinds: &[(String, HookKind)],
) -> Result<Vec<Brought>, CdiError> {
    let requests = cdi::requested(doc);
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let catalog = Catalog::load(&cdi::spec_dirs(dirs));
    let resolved = catalog.resolve(&requests)?;
    let applied = cdi::apply(doc, &resolved)?;
    Ok(applied
        .into_iter()
        .map(|applied| {
            let by = requester(&applied.device, adjusted).map(|hook| {
                let kind = kinds
                    .iter()
                    .find(|(name, _)| name == hook)
                    .map_or(HookKind::Native, |(_, kind)| *kind);
                (hook.to_string(), kind)
            });
            Brought { applied, by }
        })
        .collect())
}

/// The last precreate hook that added `device` to the requests.
fn requester<'a>(device: &str, adjusted: &'a [(String, Vec<Change>)]) -> Option<&'a str> {
    adjusted
        .iter()
        .rev()
        .find(|(_, changes)| {
            changes.iter().any(|c| {
                c.kind == ChangeKind::Added && matches!(&c.field, Field::Cdi(n) if n == device)
            })
        })
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
    let annotations = (audit.doc.get("annotations").and_then(Value::as_object))
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
        .collect();
    let (pod, name) = events::kubernetes_names(&annotations);
    let file = Paths::new(audit.root).events_file();
    for device in brought {
        let (hook, kind) = device
            .by
            .clone()
            .unwrap_or((String::new(), HookKind::Native));
        let event = Event {
            id: events::new_id(),
            time: Utc::now(),
            container: audit.container.to_string(),
            stage: Stage::Precreate,
            hook,
            kind,
            exit: None,
            duration_ms: 0.0,
            error: None,
            failure: None,
            fuel_used: None,
            on_failure: None,
            pod: pod.clone(),
            name: name.clone(),
            generation: None,
            verdict: None,
            needs: None,
            stderr: None,
            cdi: Some(CdiRecord {
                device: device.applied.device.clone(),
                spec: device.applied.spec.clone(),
                edits: device.applied.edits.clone(),
            }),
        };
        events::append(&file, &event, audit.max_size)?;
    }
    Ok(())
}
