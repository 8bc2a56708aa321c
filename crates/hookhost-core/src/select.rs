//! Which hooks one container gets, from everything that can select them: global hooks in the
//! registry whose `when` matches, hooks.d files, the `io.hookhost.hooks` annotation, the
//! `HOOKHOST_HOOKS` variable in `process.env` (removed once read), and, only when the
//! administrator allows inline specs, hook paths the container brings itself.
//!
//! Order within a stage: registered global hooks (by name), hooks.d hooks (by lower-cased file
//! name), then the container's own selections (annotation, then environment, then inline spec),
//! each in the order given.

use std::fmt;
use std::path::PathBuf;

use thiserror::Error;

use crate::bundle::{BundleConfig, InjectError};
use crate::hook::{DEFAULT_TIMEOUT_SECS, Hook, HookKind, HookSpec, Stage};
use crate::hooksd::{self, HooksdHook};
use crate::hookspec::SpecFile;
use crate::listarg::{self, Split};
use crate::plan::{self, ContainerPlan, PlanError, PlannedHook, Selection};
use crate::registry::{Registry, RegistryError};
use crate::when::ContainerFacts;

/// Annotation naming registered hooks: `NAME[:JSON-ARGS]`, several separated by commas.
pub const HOOKS_ANNOTATION: &str = "io.hookhost.hooks";
/// Annotation carrying a whole `--hook-spec` document (inline hooks; only when allowed).
pub const HOOK_SPEC_ANNOTATION: &str = "io.hookhost.hook-spec";
/// The same as [`HOOKS_ANNOTATION`], in `process.env`, for engines without annotations.
pub const HOOKS_ENV: &str = "HOOKHOST_HOOKS";
/// The same as [`HOOK_SPEC_ANNOTATION`], in `process.env`.
pub const HOOK_SPEC_ENV: &str = "HOOKHOST_HOOK_SPEC";

/// Where a container's selection came from, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Annotation(&'static str),
    Env(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Annotation(key) => write!(f, "annotation {key}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

#[derive(Debug, Error)]
pub enum SelectError {
    #[error(transparent)]
    Config(#[from] InjectError),
    #[error("cannot read the global hooks: {0}")]
    Registry(#[from] RegistryError),
    #[error("{origin} selects {item:?}: {source}")]
    Selection {
        origin: Origin,
        item: String,
        #[source]
        source: PlanError,
    },
    #[error(
        "{origin} selects the inline hook path {path:?}, but only registered hook names are \
         allowed (an administrator may set \"allowInlineSpecs\": true in hookhost's config file)"
    )]
    InlineRefused { origin: Origin, path: String },
    #[error("{origin}: invalid inline hook spec: {reason}")]
    BadSpec { origin: Origin, reason: String },
    #[error(
        "{origin} selects {item:?}, but there is no hook registry at {}; set \"root\" in \
         hookhost's config file (engines may start the runtime without HOOKHOST_ROOT)", root.display()
    )]
    NoRegistry {
        origin: Origin,
        item: String,
        root: PathBuf,
    },
    #[error(transparent)]
    NotRunnable(PlanError),
}

/// What the selection reads besides the container's config.
pub struct Sources<'a> {
    /// `None` when the registry root does not exist (then no hook is registered).
    pub registry: Option<&'a Registry>,
    pub root: &'a std::path::Path,
    pub hooks_dirs: &'a [PathBuf],
    pub allow_inline: bool,
}

/// A container's hooks, and whether config.json changed (a variable was removed from the env).
#[derive(Debug, Default)]
pub struct Selected {
    pub plan: ContainerPlan,
    pub env_changed: bool,
    /// Unusable registry entries or hooks.d files, skipped; each names its file.
    pub warnings: Vec<String>,
}

/// Selects the container's hooks; removes the selection variables from `process.env`.
pub fn select(config: &mut BundleConfig, sources: &Sources) -> Result<Selected, SelectError> {
    let spec = config.typed()?;
    let facts = ContainerFacts::from_spec(&spec);
    let annotation = |key: &str| {
        spec.annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    let mut selected = Selected::default();
    if let Some(registry) = sources.registry {
        add_global(&mut selected, registry, &facts)?;
    }
    add_hooksd(&mut selected, sources.hooks_dirs, &facts);

    let env_hooks = config.take_process_env(HOOKS_ENV);
    let env_spec = config.take_process_env(HOOK_SPEC_ENV);
    selected.env_changed = env_hooks.is_some() || env_spec.is_some();
    let lists = [
        (
            Origin::Annotation(HOOKS_ANNOTATION),
            annotation(HOOKS_ANNOTATION),
        ),
        (Origin::Env(HOOKS_ENV), env_hooks),
    ];
    for (origin, text) in lists {
        if let Some(text) = text {
            add_list(&mut selected.plan, origin, &text, sources)?;
        }
    }
    let specs = [
        (
            Origin::Annotation(HOOK_SPEC_ANNOTATION),
            annotation(HOOK_SPEC_ANNOTATION),
        ),
        (Origin::Env(HOOK_SPEC_ENV), env_spec),
    ];
    for (origin, text) in specs {
        if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
            add_spec(&mut selected.plan, origin, &text, sources.allow_inline)?;
        }
    }
    plan::check_runnable(&selected.plan).map_err(SelectError::NotRunnable)?;
    Ok(selected)
}

fn add_global(
    selected: &mut Selected,
    registry: &Registry,
    facts: &ContainerFacts,
) -> Result<(), SelectError> {
    let (hooks, errors) = registry.global_hooks()?;
    selected
        .warnings
        .extend(errors.iter().map(|e| format!("global hook skipped: {e}")));
    for hook in hooks {
        if hook.when.as_ref().is_some_and(|w| w.matches(facts)) {
            push_hook(&mut selected.plan, &hook, &[]);
        }
    }
    Ok(())
}

fn add_hooksd(selected: &mut Selected, dirs: &[PathBuf], facts: &ContainerFacts) {
    if dirs.is_empty() {
        return;
    }
    let set = hooksd::read_dirs(dirs);
    selected.warnings.extend(
        set.errors
            .iter()
            .map(|e| format!("hooks.d file skipped: {e}")),
    );
    for stage in Stage::ALL {
        for hook in set.matching(facts, stage) {
            selected.plan.push(stage, hooksd_planned(hook));
        }
    }
}

/// A hooks.d hook as hookhost runs it: native, with its own args, env and timeout.
fn hooksd_planned(hook: &HooksdHook) -> PlannedHook {
    let oci = &hook.hook;
    let path = oci.path().clone();
    let args = oci
        .args()
        .clone()
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| vec![path.to_string_lossy().into_owned()]);
    PlannedHook {
        name: hook.name.clone(),
        spec: HookSpec {
            kind: HookKind::Native,
            path,
            args,
            env: oci.env().clone().unwrap_or_default(),
            timeout: oci
                .timeout()
                .map_or(DEFAULT_TIMEOUT_SECS, |t| t.max(1) as u64),
            digest: None,
            limits: None,
            grants: None,
        },
    }
}

/// A registered hook at each of its stages, with extra arguments appended.
fn push_hook(plan: &mut ContainerPlan, hook: &Hook, extra_args: &[String]) {
    let mut spec = hook.spec.clone();
    spec.args.extend(extra_args.iter().cloned());
    for stage in &hook.stages {
        plan.push(
            *stage,
            PlannedHook {
                name: hook.name.clone(),
                spec: spec.clone(),
            },
        );
    }
}

/// `NAME[:JSON-ARGS]` items (or `/inline/path[:JSON-ARGS]` when allowed), comma-separated.
fn add_list(
    plan: &mut ContainerPlan,
    origin: Origin,
    text: &str,
    sources: &Sources,
) -> Result<(), SelectError> {
    for item in plan::split_top_level(text) {
        let item = item.trim();
        if item.starts_with('/') {
            add_inline_path(plan, origin, item, sources.allow_inline)?;
            continue;
        }
        let refused = |source| SelectError::Selection {
            origin,
            item: item.to_string(),
            source,
        };
        let selection = Selection::parse(item).map_err(refused)?;
        let Some(registry) = sources.registry else {
            return Err(SelectError::NoRegistry {
                origin,
                item: item.to_string(),
                root: sources.root.to_path_buf(),
            });
        };
        let hook = registry
            .get(&selection.name)
            .map_err(|e| refused(PlanError::Registry(e)))?;
        push_hook(plan, &hook, &selection.extra_args);
    }
    Ok(())
}

/// `/abs/path[:JSON-ARGS]`: a prestart native hook the container brings itself.
fn add_inline_path(
    plan: &mut ContainerPlan,
    origin: Origin,
    item: &str,
    allow: bool,
) -> Result<(), SelectError> {
    let (path, args) = match item.find(":[") {
        Some(at) => (&item[..at], Some(&item[at + 1..])),
        None => (item, None),
    };
    if !allow {
        return Err(SelectError::InlineRefused {
            origin,
            path: path.to_string(),
        });
    }
    let mut argv = vec![path.to_string()];
    if let Some(args) = args {
        argv.extend(listarg::parse_list(args, Split::Always).map_err(|e| {
            SelectError::BadSpec {
                origin,
                reason: e.to_string(),
            }
        })?);
    }
    let spec = format!(
        "{{\"prestart\":[{{\"path\":{},\"args\":{}}}]}}",
        serde_json::Value::from(path),
        serde_json::Value::from(argv)
    );
    add_spec(plan, origin, &spec, allow)
}

fn add_spec(
    plan: &mut ContainerPlan,
    origin: Origin,
    text: &str,
    allow: bool,
) -> Result<(), SelectError> {
    let file = SpecFile::parse(text).map_err(|reason| SelectError::BadSpec { origin, reason })?;
    if !allow {
        let path = file
            .stages
            .values()
            .flatten()
            .next()
            .map_or_else(String::new, |h| h.spec.path.display().to_string());
        return Err(SelectError::InlineRefused { origin, path });
    }
    plan.add_spec_file(&file);
    Ok(())
}
