//! Shadow hooks, on the definition side: a candidate version of a WASM hook that runs on every
//! real run of the hook it shadows (its *enforced* hook), after it, on the same input, without
//! any effect on the container (`hookhost-core`'s `shadow` module runs it and records how it
//! agreed), until `hookhost promote` makes it the enforced one.
//!
//! What a shadow is, and why:
//! - its entry is in `global/` with a `Shadow` field naming the enforced hook, so that every
//!   container's selection (which reads `global/` anyway) finds it at no extra cost; it is never
//!   selected on its own, and an annotation that names it is refused;
//! - it takes the enforced hook's stages, conditions, grants and `--may-adjust` (what `promote`
//!   keeps): its grants can then never exceed the enforced hook's, and its verdicts are the ones
//!   it would give once promoted. Its own are the module, args, env, timeout, limits and budget;
//! - both are WASM: a native program's writes cannot be kept from the container;
//! - a hook with shadows cannot be removed (`rm` names them); promote or remove them first.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::define::Definition;
use crate::hook::{Hook, HookKind};
use crate::registry::{Registry, RegistryError, write_entry};
use hookhost_exec::fs as fsutil;

/// How long a shadow may delay its container when its registration says nothing, in
/// milliseconds: a WASM policy runs in a few.
pub const DEFAULT_BUDGET_MS: u64 = 200;

/// The largest budget a shadow may have, in milliseconds.
pub const MAX_BUDGET_MS: u64 = 10_000;

/// What makes a registered hook a shadow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct ShadowOf {
    /// The enforced hook it runs beside.
    pub of: String,
    /// How long it may delay the container, in milliseconds; none: [`DEFAULT_BUDGET_MS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_ms: Option<u64>,
}

impl ShadowOf {
    /// Its budget in milliseconds.
    pub fn budget_ms(&self) -> u64 {
        self.budget_ms.unwrap_or(DEFAULT_BUDGET_MS)
    }

    /// Its budget.
    pub fn budget(&self) -> Duration {
        Duration::from_millis(self.budget_ms())
    }
}

#[derive(Debug, Error)]
pub enum ShadowError {
    #[error("cannot shadow {enforced}")]
    Enforced {
        enforced: String,
        #[source]
        source: RegistryError,
    },
    #[error(
        "{enforced} is itself a shadow (of {of}): a shadow runs beside an enforced hook; \
         shadow {of} instead"
    )]
    OfShadow { enforced: String, of: String },
    #[error("a hook cannot shadow itself ({0})")]
    OfItself(String),
    #[error(
        "{enforced} is a native hook: shadows run only beside WASM hooks, whose inputs and \
         writes hookhost controls"
    )]
    NativeEnforced { enforced: String },
    #[error(
        "{path} is not a WebAssembly module: a shadow must be one (a native program's writes \
         cannot be kept from the container)"
    )]
    NativeShadow { path: std::path::PathBuf },
    #[error(
        "a shadow takes {enforced}'s stages, conditions, grants, --may-adjust and \
         --on-failure (what `hookhost promote` keeps), so it cannot be given {flags}"
    )]
    Inherited { enforced: String, flags: String },
    #[error(
        "invalid shadow budget {0} ms: a whole number of milliseconds from 1 to {MAX_BUDGET_MS}"
    )]
    Budget(u64),
    #[error(
        "{0} is not a shadow hook (`hookhost promote` takes one made with `create --shadow-of`)"
    )]
    NotShadow(String),
    #[error("shadow {name} cannot be promoted")]
    Promote {
        name: String,
        #[source]
        source: RegistryError,
    },
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

/// Checks a budget given in milliseconds.
pub fn check_budget(ms: u64) -> Result<u64, ShadowError> {
    match ms {
        1..=MAX_BUDGET_MS => Ok(ms),
        _ => Err(ShadowError::Budget(ms)),
    }
}

/// The enforced hook `enforced` names, checked: registered, not a shadow, WASM.
pub fn enforced(registry: &Registry, name: &str, enforced: &str) -> Result<Hook, ShadowError> {
    if name == enforced {
        return Err(ShadowError::OfItself(name.to_string()));
    }
    let hook = registry
        .get(enforced)
        .map_err(|source| ShadowError::Enforced {
            enforced: enforced.to_string(),
            source,
        })?;
    check_enforced(&hook)?;
    Ok(hook)
}

/// A hook a shadow may run beside: not a shadow itself, and WASM.
pub fn check_enforced(hook: &Hook) -> Result<(), ShadowError> {
    if let Some(shadow) = &hook.shadow {
        return Err(ShadowError::OfShadow {
            enforced: hook.name.clone(),
            of: shadow.of.clone(),
        });
    }
    if hook.spec.kind != HookKind::Wasm {
        return Err(ShadowError::NativeEnforced {
            enforced: hook.name.clone(),
        });
    }
    Ok(())
}

/// A new definition of a hook that has shadows (`update`, `create --replace`) must still be
/// one they can shadow: WASM, and no shadow itself.
pub fn check_replacement(registry: &Registry, hook: &Hook) -> Result<(), ShadowError> {
    if registry.shadows_of(&hook.name)?.is_empty() {
        return Ok(());
    }
    check_enforced(hook)
}

/// Gives a shadow's definition what it takes from `enforced`; refuses a definition that sets
/// any of it itself.
pub fn inherit(def: &mut Definition, enforced: &Hook) -> Result<(), ShadowError> {
    let given = [
        (!def.stages.is_empty(), "--type"),
        (def.when.is_some(), "--when-*"),
        (
            def.grants.as_ref().is_some_and(|g| !g.is_empty()),
            "--allow-*",
        ),
        (def.may_adjust.is_some(), "--may-adjust"),
        (def.on_failure.is_some(), "--on-failure"),
    ];
    let flags: Vec<&str> = given
        .iter()
        .filter(|(set, _)| *set)
        .map(|(_, f)| *f)
        .collect();
    if !flags.is_empty() {
        return Err(ShadowError::Inherited {
            enforced: enforced.name.clone(),
            flags: flags.join(", "),
        });
    }
    if !is_module(&def.path) {
        return Err(ShadowError::NativeShadow {
            path: def.path.clone(),
        });
    }
    def.stages = enforced.stages.clone();
    def.grants = enforced.spec.grants.clone();
    def.may_adjust = enforced.spec.may_adjust.clone();
    Ok(())
}

/// Whether `path` starts as a WebAssembly module does; true when it cannot be read (an
/// `oci://` reference, or a missing file that building the hook reports).
fn is_module(path: &std::path::Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 8];
    match std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut head)) {
        Ok(()) => hookhost_exec::wasm::is_wasm(&head),
        Err(_) => true,
    }
}

/// `hook` (as built from a definition [`inherit`] completed) made a shadow of `enforced`.
pub fn make(mut hook: Hook, enforced: &Hook, budget_ms: Option<u64>) -> Result<Hook, ShadowError> {
    if hook.spec.kind != HookKind::Wasm {
        return Err(ShadowError::NativeShadow {
            path: hook.spec.path,
        });
    }
    let budget_ms = budget_ms.map(check_budget).transpose()?;
    hook.when = None;
    hook.shadow = Some(ShadowOf {
        of: enforced.name.clone(),
        budget_ms,
    });
    Ok(hook)
}

/// The enforced hook with the shadow's program: its module, args, env, timeout, limits and
/// provenance; the enforced hook's name, stages, conditions, grants and failure policy.
pub fn promoted(enforced: &Hook, shadow: &Hook) -> Hook {
    let mut hook = enforced.clone();
    let (to, from) = (&mut hook.spec, &shadow.spec);
    to.kind = from.kind;
    to.path = from.path.clone();
    to.args = from.args.clone();
    // A WASM hook's default argv0 is its name: the promoted hook is called by its own.
    if let Some(argv0) = to.args.first_mut().filter(|a| **a == shadow.name) {
        argv0.clone_from(&enforced.name);
    }
    to.env = from.env.clone();
    to.timeout = from.timeout;
    to.digest = from.digest.clone();
    to.limits = from.limits.clone();
    hook.source = shadow.source.clone();
    hook.created = chrono::Utc::now();
    hook
}

impl Registry {
    /// The shadows of `name`, sorted by name.
    pub fn shadows_of(&self, name: &str) -> Result<Vec<Hook>, RegistryError> {
        let (hooks, _) = self.global_entries()?;
        Ok(hooks
            .into_iter()
            .filter(|h| h.shadow.as_ref().is_some_and(|s| s.of == name))
            .collect())
    }

    pub(crate) fn shadow_names_of(&self, name: &str) -> Result<Vec<String>, RegistryError> {
        Ok(self.shadows_of(name)?.into_iter().map(|h| h.name).collect())
    }

    /// Replaces the enforced hook of shadow `name` with it, under the writers' lock: one
    /// atomic rename of the enforced hook's entry (a container being created reads the old
    /// entry or the new one), then the shadow's entry is removed. Killed between the two, the
    /// shadow is left shadowing its own module; promoting it again finishes. Returns the new
    /// enforced hook.
    pub fn promote(&self, name: &str) -> Result<Hook, ShadowError> {
        let promote_err = |source| ShadowError::Promote {
            name: name.to_string(),
            source,
        };
        let _lock = self.lock()?;
        let shadow = self.get(name)?;
        let Some(of) = &shadow.shadow else {
            return Err(ShadowError::NotShadow(name.to_string()));
        };
        let enforced = self.get(&of.of).map_err(promote_err)?;
        let hook = promoted(&enforced, &shadow);
        let paths = self.paths();
        let file = match hook.in_global_dir() {
            true => paths.global_hook_file(&hook.name),
            false => paths.hook_file(&hook.name),
        };
        write_entry(&hook, &file)?;
        let entry = paths.global_hook_file(name);
        std::fs::remove_file(&entry)
            .and_then(|()| fsutil::sync_dir(&paths.global_dir()))
            .map_err(|source| {
                promote_err(RegistryError::Io {
                    action: "remove",
                    path: entry.clone(),
                    source,
                })
            })?;
        Ok(hook)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wasm(name: &str) -> Hook {
        let mut hook = crate::hook::sample(name);
        hook.spec.kind = HookKind::Wasm;
        hook.spec.digest = Some("a".repeat(64));
        hook
    }

    fn shadow(name: &str, of: &Hook, digest: &str) -> Hook {
        let mut hook = wasm(name);
        hook.spec.digest = Some(digest.repeat(64));
        make(hook, of, Some(50)).unwrap()
    }

    #[test]
    fn a_shadow_is_not_a_global_hook_and_is_found_beside_its_enforced_hook() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let policy = wasm("policy");
        reg.create(&policy).unwrap();
        reg.create(&shadow("policy-v2", &policy, "b")).unwrap();
        assert!(reg.paths().global_hook_file("policy-v2").exists());
        assert!(reg.global_hooks().unwrap().0.is_empty());
        let found = reg.shadows_of("policy").unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].shadow.as_ref().unwrap().budget_ms(), 50);
        assert_eq!(reg.get("policy-v2").unwrap(), found[0]);
    }

    #[test]
    fn bad_shadows_are_refused_with_the_problem_named() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let policy = wasm("policy");
        reg.create(&policy).unwrap();
        reg.create(&crate::hook::sample("native")).unwrap();
        reg.create(&shadow("v2", &policy, "b")).unwrap();
        let err = |e: ShadowError| crate::error_chain(&e);
        let missing = err(enforced(&reg, "x", "nope").unwrap_err());
        assert_eq!(missing, "cannot shadow nope: no such hook: nope");
        let of_shadow = err(enforced(&reg, "x", "v2").unwrap_err());
        assert!(
            of_shadow.contains("itself a shadow (of policy)"),
            "{of_shadow}"
        );
        let native = err(enforced(&reg, "x", "native").unwrap_err());
        assert!(native.contains("native hook"), "{native}");
        assert!(matches!(
            enforced(&reg, "policy", "policy"),
            Err(ShadowError::OfItself(_))
        ));
        let native_shadow = make(crate::hook::sample("n2"), &policy, None).unwrap_err();
        assert!(matches!(native_shadow, ShadowError::NativeShadow { .. }));
        assert!(matches!(check_budget(0), Err(ShadowError::Budget(0))));
        assert!(check_budget(MAX_BUDGET_MS + 1).is_err());
        let rm = reg.remove("policy").unwrap_err().to_string();
        assert!(
            rm.contains("has shadow hooks (v2)") && rm.contains("promote"),
            "{rm}"
        );
    }

    #[test]
    fn promote_keeps_the_enforced_name_stages_and_grants_and_removes_the_shadow() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let mut policy = wasm("policy");
        policy.stages = vec![crate::hook::Stage::CreateRuntime];
        policy.spec.grants = Some(crate::grants::Grants {
            env: vec!["HOME".into()],
            ..Default::default()
        });
        reg.create(&policy).unwrap();
        let mut candidate = shadow("v2", &policy, "b");
        candidate.spec.args = vec!["v2".into(), "--strict".into()];
        candidate.spec.grants = None;
        reg.create(&candidate).unwrap();
        let hook = reg.promote("v2").unwrap();
        let stored = reg.get("policy").unwrap();
        assert_eq!(stored, hook);
        assert_eq!(stored.spec.digest, Some("b".repeat(64)));
        assert_eq!(stored.spec.args, ["policy", "--strict"]);
        assert_eq!(stored.stages, policy.stages);
        assert_eq!(stored.spec.grants, policy.spec.grants);
        assert!(stored.shadow.is_none());
        assert!(matches!(reg.get("v2"), Err(RegistryError::NotFound(_))));
        assert!(matches!(
            reg.promote("policy"),
            Err(ShadowError::NotShadow(_))
        ));
        reg.remove("policy").unwrap();
    }
}
