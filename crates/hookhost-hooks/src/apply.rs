//! `hookhost apply -f FILE`: converge the registry to a file of hooks.
//!
//! The file is what `hookhost inspect` prints — a JSON array of hook objects with the same
//! keys — so `hookhost inspect > hooks.json` on one node and `hookhost apply
//! -f hooks.json` on another is the round trip. Keys that inspect computes (`Type`, `Kind`,
//! `Digest`, `Created`) are checked when present rather than required. The whole file is read
//! and every hook built (modules validated and stored) before the registry is changed, so a
//! bad file changes nothing; a second run with the same file changes nothing and says so.
//!
//! The registry is changed in one step: the new set (the file's hooks, and unless `--prune`
//! the other hooks registered) is written as the node's next generation and switched to
//! ([`crate::generation`]), named by the file's digest, or by the artifact's when the file came
//! from a hook set in an OCI registry.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use thiserror::Error;

use crate::define::{self, DefineError, Definition, Fetched};
use crate::generation::{self, Next, Record};
use crate::grants::Grants;
use crate::hook::{Hook, HookKind, RawTimeout, Stage, TimeoutSource};
use crate::registry::{Registry, RegistryError};
use crate::when::When;
use hookhost_exec::limits::WasmLimits;

#[derive(Debug, Error)]
pub enum ApplyError {
    #[error("cannot read {}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: not a JSON array of hooks (what `hookhost inspect` prints): {source}", file.display())]
    NotAList {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: entry {index}{}: {reason}", file.display(), name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    Entry {
        file: PathBuf,
        index: usize,
        name: Option<String>,
        reason: String,
    },
    #[error("{}: hook {name} is listed twice", file.display())]
    Duplicate { file: PathBuf, name: String },
    #[error("hook {name}")]
    Define {
        name: String,
        #[source]
        source: DefineError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("hook {name}: cannot fetch {path}: {reason}")]
    Fetch {
        name: String,
        path: String,
        reason: String,
    },
    #[error("hook {0} was removed while the file was being applied; apply it again")]
    Raced(String),
    #[error(
        "the registry holds an entry that cannot be read, which a new generation could not \
         keep: remove it (`hookhost rm NAME`), or apply with --prune to leave it out"
    )]
    Unreadable(#[source] RegistryError),
    #[error("shadow hook {name}")]
    Shadow {
        name: String,
        #[source]
        source: Box<crate::shadow::ShadowError>,
    },
}

/// Fetches a hook's program from somewhere other than a local file (an `oci://` reference),
/// writing nothing; `None` for a local path. Given by the caller (the OCI client lives above
/// this crate).
pub type Fetch<'a> = &'a dyn Fn(&Path) -> Option<Result<Fetched, String>>;

/// One hook object of the file: `hookhost inspect`'s keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Entry {
    name: String,
    /// Computed by inspect from `Stages`; may stand in for it.
    #[serde(rename = "Type", default)]
    type_label: Option<String>,
    #[serde(default)]
    stages: Option<Vec<Stage>>,
    /// Computed from the file's content; checked.
    #[serde(default)]
    kind: Option<HookKind>,
    path: PathBuf,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: Vec<String>,
    #[serde(default)]
    timeout: Option<RawTimeout>,
    /// WASM: the module's sha256; native: the pinned binary's. Checked.
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    limits: Option<WasmLimits>,
    #[serde(default)]
    grants: Option<Grants>,
    #[serde(default)]
    leave_helpers: bool,
    #[serde(default)]
    on_failure: Option<crate::hook::OnFailure>,
    #[serde(default)]
    may_adjust: Option<crate::may_adjust::MayAdjust>,
    #[serde(default)]
    when: Option<When>,
    /// Set by the registry; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    created: Option<DateTime<Utc>>,
    /// Where an `oci://` module came from (computed at pull); its module is checked through
    /// `Digest`.
    #[serde(default)]
    #[allow(dead_code)]
    source: Option<crate::hook::Source>,
    /// A shadow hook: the hook it shadows and its budget (see [`crate::shadow`]). Its
    /// `Stages`, `Grants` and `MayAdjust`, when given, must be the enforced hook's.
    #[serde(default)]
    shadow: Option<crate::shadow::ShadowOf>,
    /// The generation inspect found it in; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    generation: Option<Value>,
}

/// What apply does (or, dry, would do) to one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// The keys that change, each `KEY: OLD -> NEW`.
    Update(Vec<String>),
    Unchanged,
    Remove,
}

/// One line of apply's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub name: String,
    pub action: Action,
}

/// How to apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Remove registered hooks the file does not list.
    pub prune: bool,
    /// Work out the changes, change nothing.
    pub dry_run: bool,
}

/// What an apply did: each hook's change, and the generation switched to (`None` when
/// nothing changed, and when dry).
#[derive(Debug, Clone)]
pub struct Applied {
    pub changes: Vec<Change>,
    pub generation: Option<Record>,
}

/// A file to apply: its bytes, the name errors give it, and the generation it makes.
pub struct Document {
    pub file: PathBuf,
    pub bytes: Vec<u8>,
    pub next: Next,
}

impl Document {
    /// A local file; its generation is named by its sha256.
    pub fn read(file: &Path) -> Result<Document, ApplyError> {
        let bytes = std::fs::read(file).map_err(|source| ApplyError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        let source = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        Ok(Document {
            file: file.to_path_buf(),
            next: Next {
                id: format!("sha256:{}", hookhost_exec::fs::sha256_hex(&bytes)),
                source: source.display().to_string(),
            },
            bytes,
        })
    }
}

/// Reads `file`, builds every hook in it, then (unless dry) makes the registry match.
pub fn apply(
    file: &Path,
    registry: &Registry,
    options: Options,
    fetch: Fetch<'_>,
) -> Result<Applied, ApplyError> {
    apply_document(Document::read(file)?, registry, options, fetch)
}

/// [`apply`] of a file already read (from a hook set, say).
pub fn apply_document(
    doc: Document,
    registry: &Registry,
    options: Options,
    fetch: Fetch<'_>,
) -> Result<Applied, ApplyError> {
    let file = doc.file.as_path();
    let entries = parse(file, &doc.bytes)?;
    // Fetched once: the dry pass and the real one build from the same bytes.
    let mut fetched = Vec::with_capacity(entries.len());
    for (_, entry) in &entries {
        let got = fetch(&entry.path)
            .transpose()
            .map_err(|reason| ApplyError::Fetch {
                name: entry.name.clone(),
                path: entry.path.display().to_string(),
                reason,
            })?;
        fetched.push(got);
    }
    // Every entry is built and checked without writing anything first: a bad entry anywhere
    // in the file leaves the registry as it was, modules and cache included.
    let mut changes = Vec::new();
    // Shadows last: each is built with what it takes from its enforced hook.
    let mut dry = BTreeMap::new();
    let order = entries.iter().zip(&fetched).enumerate();
    let (shadows, plain): (Vec<_>, Vec<_>) = order.partition(|(_, ((_, e), _))| e.shadow.is_some());
    let mut built_dry: Vec<Option<Hook>> = vec![None; entries.len()];
    for (at, ((index, entry), got)) in plain.into_iter().chain(shadows) {
        let enforced = enforced_of(entry, &dry, registry, &entries, options.prune)?;
        let hook = build(
            entry,
            *index,
            file,
            registry,
            got.clone(),
            enforced.as_ref(),
            true,
        )?;
        dry.insert(hook.name.clone(), hook.clone());
        built_dry[at] = Some(hook);
    }
    for ((_, entry), hook) in entries.iter().zip(built_dry) {
        let hook = hook.expect("every entry was built");
        let action = match registry.get(&entry.name) {
            Ok(old) => diff(&old, &hook),
            Err(RegistryError::NotFound(_)) => Action::Create,
            Err(e) => return Err(e.into()),
        };
        changes.push(Change {
            name: entry.name.clone(),
            action,
        });
    }
    if options.prune {
        let names = registry.names()?;
        let listed: Vec<&str> = entries.iter().map(|(_, e)| e.name.as_str()).collect();
        for name in names.into_iter().filter(|n| !listed.contains(&n.as_str())) {
            changes.push(Change {
                name,
                action: Action::Remove,
            });
        }
    }
    if options.dry_run {
        return Ok(Applied {
            changes,
            generation: None,
        });
    }
    // Only what changes is built for real (modules validated, precompiled, stored), all of it
    // before the new generation is written: an invalid module registers nothing.
    let mut built = BTreeMap::new();
    for (((index, entry), change), got) in entries.iter().zip(&changes).zip(fetched) {
        if matches!(change.action, Action::Create | Action::Update(_)) {
            let enforced = enforced_of(entry, &dry, registry, &entries, options.prune)?;
            let hook = build(entry, *index, file, registry, got, enforced.as_ref(), false)?;
            built.insert(hook.name.clone(), hook);
        }
    }
    let listed: Vec<&str> = entries.iter().map(|(_, e)| e.name.as_str()).collect();
    let next_id = doc.next.id.clone();
    let generation = generation::commit(registry, doc.next, |now| {
        let same = now.generation.is_some_and(|r| r.id == next_id);
        next_set(now.hooks, now.unreadable, built, &listed, options.prune)
            .map(|(set, changed)| (changed || !same).then_some(set))
    })?;
    Ok(Applied {
        changes,
        generation,
    })
}

/// The new set from the current one (read under the writers' lock): the file's hooks, built
/// or as registered, and unless `prune` the others; and whether any hook changed. An entry
/// that cannot be read cannot be carried over: `prune` drops it, otherwise it is refused.
fn next_set(
    current: Vec<Hook>,
    unreadable: Vec<RegistryError>,
    built: BTreeMap<String, Hook>,
    listed: &[&str],
    prune: bool,
) -> Result<(Vec<Hook>, bool), ApplyError> {
    let dropped = !unreadable.is_empty();
    if let Some(source) = unreadable.into_iter().find(|_| !prune) {
        return Err(ApplyError::Unreadable(source));
    }
    let mut set: BTreeMap<String, Hook> =
        current.into_iter().map(|h| (h.name.clone(), h)).collect();
    let before = set.len();
    if prune {
        set.retain(|name, _| listed.contains(&name.as_str()));
    }
    let changed = dropped || set.len() != before || !built.is_empty();
    if let Some(gone) = listed
        .iter()
        .find(|name| !set.contains_key(**name) && !built.contains_key(**name))
    {
        return Err(ApplyError::Raced(gone.to_string()));
    }
    set.extend(built);
    check_shadows(&set)?;
    Ok((set.into_values().collect(), changed))
}

/// Every shadow of the new set beside a hook of the set it may shadow, and no hook it would
/// leave shadowing nothing.
fn check_shadows(set: &BTreeMap<String, Hook>) -> Result<(), ApplyError> {
    for hook in set.values() {
        let Some(of) = &hook.shadow else { continue };
        let found = set
            .get(&of.of)
            .ok_or_else(|| RegistryError::NotFound(of.of.clone()))
            .map_err(|source| crate::shadow::ShadowError::Enforced {
                enforced: of.of.clone(),
                source,
            })
            .and_then(crate::shadow::check_enforced);
        found.map_err(|source| ApplyError::Shadow {
            name: hook.name.clone(),
            source: Box::new(source),
        })?;
    }
    Ok(())
}

/// The hook `entry` shadows, if it is a shadow: built from the file (`dry`), else registered
/// (unless `prune` removes it), and checked.
fn enforced_of(
    entry: &Entry,
    dry: &BTreeMap<String, Hook>,
    registry: &Registry,
    entries: &[(usize, Entry)],
    prune: bool,
) -> Result<Option<Hook>, ApplyError> {
    let Some(of) = &entry.shadow else {
        return Ok(None);
    };
    let shadow_err = |source| ApplyError::Shadow {
        name: entry.name.clone(),
        source: Box::new(source),
    };
    let listed = entries.iter().any(|(_, e)| e.name == of.of);
    let enforced = match dry.get(&of.of) {
        Some(hook) => hook.clone(),
        None if listed || prune => {
            let source = RegistryError::NotFound(of.of.clone());
            return Err(shadow_err(crate::shadow::ShadowError::Enforced {
                enforced: of.of.clone(),
                source,
            }));
        }
        None => crate::shadow::enforced(registry, &entry.name, &of.of).map_err(shadow_err)?,
    };
    crate::shadow::check_enforced(&enforced).map_err(shadow_err)?;
    Ok(Some(enforced))
}

/// Parses the whole file: a JSON array of entries, each named in errors by its index and name.
fn parse(file: &Path, text: &[u8]) -> Result<Vec<(usize, Entry)>, ApplyError> {
    let values: Vec<Value> =
        serde_json::from_slice(text).map_err(|source| ApplyError::NotAList {
            file: file.to_path_buf(),
            source,
        })?;
    let mut entries: Vec<(usize, Entry)> = Vec::with_capacity(values.len());
    for (index, value) in values.into_iter().enumerate() {
        let name = value
            .get("Name")
            .and_then(Value::as_str)
            .map(str::to_string);
        let entry: Entry = serde_json::from_value(value).map_err(|e| ApplyError::Entry {
            file: file.to_path_buf(),
            index,
            name: name.clone(),
            reason: e.to_string(),
        })?;
        if entries.iter().any(|(_, e)| e.name == entry.name) {
            return Err(ApplyError::Duplicate {
                file: file.to_path_buf(),
                name: entry.name,
            });
        }
        entries.push((index, entry));
    }
    Ok(entries)
}

/// The hook an entry describes, built as `hookhost create` would; the computed keys checked.
/// Dry, nothing is stored (a module's digest is computed, not stored).
fn build(
    entry: &Entry,
    index: usize,
    file: &Path,
    registry: &Registry,
    fetched: Option<Fetched>,
    enforced: Option<&Hook>,
    dry_run: bool,
) -> Result<Hook, ApplyError> {
    let bad = |name: &str, reason: String| ApplyError::Entry {
        file: file.to_path_buf(),
        index,
        name: Some(name.to_string()),
        reason,
    };
    let name = entry.name.clone();
    let stages = stages(entry).map_err(|reason| bad(&name, reason))?;
    // Named by the file's field, not by create's flag (define checks it again, as --timeout).
    if let Some(raw) = &entry.timeout {
        raw.validate(TimeoutSource::Field)
            .map_err(|e| bad(&name, e.to_string()))?;
    }
    let def = Definition {
        name: entry.name.clone(),
        path: entry.path.clone(),
        stages,
        args: entry.args.clone(),
        env: entry.env.clone(),
        timeout: entry.timeout.clone(),
        limits: entry.limits.clone(),
        grants: entry.grants.clone(),
        leave_helpers: entry.leave_helpers,
        on_failure: entry.on_failure,
        may_adjust: entry.may_adjust.clone(),
        when: entry.when.clone(),
        pin: false,
    };
    let mut def = pin_if_digest(def, entry.digest.as_deref(), entry.kind)
        .map_err(|reason| bad(&name, reason))?;
    let shadow_err = |source| ApplyError::Shadow {
        name: name.clone(),
        source: Box::new(source),
    };
    if let Some(enforced) = enforced {
        shadow_fields(&mut def, enforced).map_err(shadow_err)?;
    }
    let define_error = |source| ApplyError::Define {
        name: name.clone(),
        source,
    };
    let mut hook = define::build_from(def, fetched, registry, !dry_run).map_err(define_error)?;
    if let (Some(enforced), Some(of)) = (enforced, &entry.shadow) {
        hook = crate::shadow::make(hook, enforced, of.budget_ms).map_err(shadow_err)?;
    }
    if let Some(kind) = entry.kind.filter(|k| *k != hook.spec.kind) {
        return Err(bad(
            &name,
            format!(
                "Kind is {kind} but {} is a {} hook",
                hook.spec.path.display(),
                hook.spec.kind
            ),
        ));
    }
    if let Some(digest) = entry
        .digest
        .as_ref()
        .filter(|d| Some(*d) != hook.spec.digest.as_ref())
    {
        return Err(bad(
            &name,
            format!(
                "Digest is {digest} but {} has sha256 {}",
                hook.spec.path.display(),
                hook.spec.digest.as_deref().unwrap_or("-")
            ),
        ));
    }
    Ok(hook)
}

/// A shadow's entry as inspect prints it carries the stages, grants and `MayAdjust` it took
/// from its enforced hook when it was registered, which may have changed since: they are
/// replaced by the enforced hook's, as each run takes them ([`crate::shadow::inherit`] refuses
/// `When` and `OnFailure`).
fn shadow_fields(def: &mut Definition, enforced: &Hook) -> Result<(), crate::shadow::ShadowError> {
    def.stages.clear();
    def.grants = None;
    def.may_adjust = None;
    crate::shadow::inherit(def, enforced)
}

/// `Stages`, else `Type` (`prestart,poststop`); both must agree when both are given.
fn stages(entry: &Entry) -> Result<Vec<Stage>, String> {
    let from_type = entry
        .type_label
        .as_deref()
        .map(|label| {
            label
                .split(',')
                .map(|s| s.trim().parse::<Stage>().map_err(|e| format!("Type: {e}")))
                .collect::<Result<Vec<_>, _>>()
        })
        .transpose()?;
    match (&entry.stages, from_type) {
        (Some(stages), Some(typed)) if *stages != typed => Err(format!(
            "Type {:?} does not match Stages {stages:?}",
            entry.type_label.as_deref().unwrap_or_default()
        )),
        (Some(stages), _) => Ok(stages.clone()),
        (None, Some(typed)) => Ok(typed),
        (None, None) => Ok(Vec::new()),
    }
}

/// A native entry with a `Digest` was pinned: pin it again (the digest is then checked against
/// the file). A WASM entry's digest is its module's, checked after building.
fn pin_if_digest(
    mut def: Definition,
    digest: Option<&str>,
    kind: Option<HookKind>,
) -> Result<Definition, String> {
    if digest.is_some() && kind != Some(HookKind::Wasm) {
        let bytes = std::fs::read(&def.path)
            .map_err(|e| format!("cannot read {}: {e}", def.path.display()))?;
        def.pin = !hookhost_exec::wasm::is_wasm(&bytes);
    }
    Ok(def)
}

/// The keys (as inspect names them) whose values differ, ignoring `Created`: what `apply`
/// and `hookhost update` report.
pub fn diff(old: &Hook, new: &Hook) -> Action {
    let view = |hook: &Hook| -> BTreeMap<String, Value> {
        match hook.inspect_view() {
            Value::Object(map) => map.into_iter().filter(|(k, _)| k != "Created").collect(),
            _ => BTreeMap::new(),
        }
    };
    let (old, new) = (view(old), view(new));
    let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let changed: Vec<String> = keys
        .into_iter()
        .filter(|k| old.get(*k) != new.get(*k))
        .map(|k| {
            let show = |v: Option<&Value>| v.map_or("(none)".to_string(), Value::to_string);
            format!("{k}: {} -> {}", show(old.get(k)), show(new.get(k)))
        })
        .collect();
    if changed.is_empty() {
        Action::Unchanged
    } else {
        Action::Update(changed)
    }
}
