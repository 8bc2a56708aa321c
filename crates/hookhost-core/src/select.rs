//! Which hooks one container gets: the one selection engine, used by the runtime wrapper,
//! `hookhost inject`, `hookhost try` and (for its checks) `hookhost run`, so that a selection
//! means the same everywhere. Its sources: global hooks in the registry whose `when` matches,
//! hooks.d files, the `io.hookhost.hooks` annotation, the `HOOKHOST_HOOKS` variable in
//! `process.env` (removed once read), inline hook specs, and the command line.
//!
//! Order within a stage: registered global hooks (by name), hooks.d hooks (by lower-cased file
//! name; a hooks.d `prestart` file runs at createRuntime, as in containers/common), the
//! container's own selections (annotation, then environment, then inline spec
//! documents), then the command line's (`--add-hook`, then `--hook-spec`), each in the order
//! given.
//!
//! Whoever starts a container through an engine is not trusted with inline hooks (programs run
//! as root on the host, kata-containers#631): from annotations and the environment they are
//! refused unless the administrator allows them. Whoever runs `hookhost inject` or `try` edits
//! the bundle or runs the hook themselves, so the command line may name programs.

use std::fmt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::bundle::{BundleConfig, InjectError};
use crate::plan::{ContainerPlan, Item, PlanError, PlannedHook};
use crate::spec_file::{SpecError, SpecFile};
use hookhost_hooks::hook::{DEFAULT_TIMEOUT_SECS, Hook, Stage};
use hookhost_hooks::hooksd::{self, HooksdHook};
use hookhost_hooks::registry::{Registry, RegistryError};
use hookhost_hooks::when::ContainerFacts;

/// Annotation naming registered hooks: `NAME[:JSON-ARGS]`, several separated by commas.
pub const HOOKS_ANNOTATION: &str = "io.hookhost.hooks";
/// Annotation naming the hooks of a Kubernetes pod's sandbox (pause) container. Kubernetes
/// hands a pod's annotations to the sandbox and to every app container: [`HOOKS_ANNOTATION`]
/// selects for the app containers only, as a pod author expects, and this one for the sandbox.
pub const SANDBOX_HOOKS_ANNOTATION: &str = "io.hookhost.sandbox-hooks";
/// How CRI runtimes mark a pod's sandbox container: containerd, then CRI-O.
const SANDBOX_MARKS: [(&str, &str); 2] = [
    ("io.kubernetes.cri.container-type", "sandbox"),
    ("io.kubernetes.cri-o.ContainerType", "sandbox"),
];
/// Annotation carrying a whole `--hook-spec` document (inline hooks; only when allowed).
pub const HOOK_SPEC_ANNOTATION: &str = "io.hookhost.hook-spec";
/// The same as [`HOOKS_ANNOTATION`], in `process.env`, for engines without annotations.
pub const HOOKS_ENV: &str = "HOOKHOST_HOOKS";
/// The same as [`HOOK_SPEC_ANNOTATION`], in `process.env`.
pub const HOOK_SPEC_ENV: &str = "HOOKHOST_HOOK_SPEC";

/// Where a selection came from, for error messages and the inline policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Annotation(&'static str),
    Env(&'static str),
    /// `--add-hook` / `--hook-spec` / `try`, given by whoever runs hookhost.
    CommandLine,
}

impl Origin {
    /// Whether inline programs from this origin are accepted.
    fn may_inline(self, allow_inline: bool) -> bool {
        self == Origin::CommandLine || allow_inline
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Annotation(key) => write!(f, "annotation {key}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::CommandLine => f.write_str("the command line"),
        }
    }
}

#[derive(Debug, Error)]
pub enum SelectError {
    #[error(transparent)]
    Config(#[from] InjectError),
    #[error("cannot read the global hooks")]
    Registry(#[from] RegistryError),
    #[error("{origin} selects {item:?}: {source}")]
    Selection {
        origin: Origin,
        item: String,
        #[source]
        source: SelectionError,
    },
    #[error(
        "{origin} selects the inline hook path {path:?}, but only registered hook names are \
         allowed (an administrator may set \"allowInlineSpecs\": true in hookhost's config file)"
    )]
    InlineRefused { origin: Origin, path: String },
    #[error("{origin}: invalid inline hook spec")]
    BadSpec {
        origin: Origin,
        #[source]
        source: SpecError,
    },
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
    #[error(transparent)]
    Hooksd(#[from] InvalidHooksd),
}

/// hooks.d files that cannot be used: as in Podman, they refuse the container (unless the
/// config file's `hooksDirsSkipInvalid` makes them warnings).
#[derive(Debug, Error)]
#[error(
    "{} (fix or remove the file; an administrator may set \"hooksDirsSkipInvalid\": true in \
     hookhost's config file to skip invalid hooks.d files with a warning instead)",
    .errors.iter().map(|e| format!("invalid hooks.d file {e}")).collect::<Vec<_>>().join("; ")
)]
pub struct InvalidHooksd {
    pub errors: Vec<hooksd::HooksdError>,
}

/// Why one selected item was refused.
#[derive(Debug, Error)]
pub enum SelectionError {
    #[error(transparent)]
    Syntax(#[from] PlanError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(
        "{name} is a shadow of {of}: it runs beside {of} wherever {of} runs, never on its own \
         (select {of}, or make {name} the enforced hook with `hookhost promote {name}`)"
    )]
    Shadow { name: String, of: String },
}

/// What the selection reads besides the container's config.
pub struct Sources<'a> {
    /// `None` when the registry root does not exist (then no hook is registered).
    pub registry: Option<&'a Registry>,
    pub root: &'a Path,
    pub hooks_dirs: &'a [PathBuf],
    /// Whether an invalid hooks.d file is skipped with a warning (the config file's
    /// `hooksDirsSkipInvalid`) instead of refusing the container.
    pub skip_invalid_hooksd: bool,
    /// Whether containers may bring inline hooks (the config file's `allowInlineSpecs`).
    pub allow_inline: bool,
    /// Whether the process environment may select hooks (the config file's `selectFromEnv`).
    pub env_selects: bool,
    /// The CDI spec directories (the config file's `cdiSpecDirs`; empty: the defaults), for
    /// the front ends that resolve CDI devices themselves ([`crate::prepare`]).
    pub cdi_spec_dirs: &'a [PathBuf],
}

impl<'a> Sources<'a> {
    /// The sources as hookhost's config file sets them.
    pub fn configured(
        registry: Option<&'a Registry>,
        root: &'a Path,
        config: &'a hookhost_hooks::config::Config,
    ) -> Self {
        Sources {
            registry,
            root,
            hooks_dirs: &config.hooks_dirs,
            skip_invalid_hooksd: config.hooks_dirs_skip_invalid,
            allow_inline: config.allow_inline_specs,
            env_selects: config.select_from_env(),
            cdi_spec_dirs: &config.cdi_spec_dirs,
        }
    }
}

/// With `selectFromEnv` off, selection variables stay in the container's environment,
/// unread; a warning says they were ignored.
fn ignore_env_selection(config: &BundleConfig, selected: &mut Selected) {
    for name in SELECTION_ENV {
        if config.process_env(name).is_some() {
            selected.warnings.push(format!(
                "{name} in the container's environment was ignored: the config file sets \
                 \"selectFromEnv\": false"
            ));
        }
    }
}

/// The command line's own selections (`hookhost inject`, `hookhost try`).
#[derive(Debug, Default)]
pub struct CommandLine<'a> {
    /// `--add-hook` values: `NAME[:JSON-ARGS]` or `/abs/path[:JSON-ARGS]`.
    pub add_hooks: &'a [String],
    /// A `--hook-spec` document.
    pub spec: Option<&'a SpecFile>,
}

/// A container's hooks, and whether config.json changed (a variable was removed from the env).
#[derive(Debug, Default)]
pub struct Selected {
    pub plan: ContainerPlan,
    pub env_changed: bool,
    /// The selection variables taken from `process.env`, for [`select_again`].
    pub env: EnvSelection,
    /// Unusable registry entries or hooks.d files, skipped; each names its file.
    pub warnings: Vec<String>,
}

/// The values of [`HOOKS_ENV`] and [`HOOK_SPEC_ENV`] a selection took from `process.env`.
#[derive(Debug, Clone, Default)]
pub struct EnvSelection {
    hooks: Option<String>,
    spec: Option<String>,
}

impl EnvSelection {
    fn is_empty(&self) -> bool {
        self.hooks.is_none() && self.spec.is_none()
    }
}

impl CommandLine<'_> {
    fn is_empty(&self) -> bool {
        self.add_hooks.is_empty() && self.spec.is_none()
    }
}

/// The annotations and `process.env` variables with which a container selects its hooks.
const SELECTION_ANNOTATIONS: [&str; 3] = [
    HOOKS_ANNOTATION,
    SANDBOX_HOOKS_ANNOTATION,
    HOOK_SPEC_ANNOTATION,
];
const SELECTION_ENV: [&str; 2] = [HOOKS_ENV, HOOK_SPEC_ENV];

/// Whether the container's config names a selection (whatever its value).
fn names_selection(config: &BundleConfig) -> bool {
    SELECTION_ANNOTATIONS
        .iter()
        .any(|key| config.has_annotation(key))
        || SELECTION_ENV
            .iter()
            .any(|name| config.process_env(name).is_some())
}

/// Selects the container's hooks from every source; removes the selection variables from
/// `process.env`.
///
/// When no source can select anything (no global hook registered, no hooks.d directory, no
/// selection in the container's config or on the command line), the selection is empty and
/// config.json is not checked against the OCI schema: the wrapper then leaves the container
/// to its runtime as if it were not there, which is what most containers cost.
pub fn select(
    config: &mut BundleConfig,
    sources: &Sources,
    command_line: &CommandLine,
) -> Result<Selected, SelectError> {
    select_with(config, sources, command_line, None)
}

/// Selects again from a config its precreate hooks changed: the selection variables are the
/// ones the first selection took (they were read, and removed, before the hooks ran).
pub fn select_again(
    config: &mut BundleConfig,
    sources: &Sources,
    command_line: &CommandLine,
    env: &EnvSelection,
) -> Result<Selected, SelectError> {
    select_with(config, sources, command_line, Some(env.clone()))
}

fn select_with(
    config: &mut BundleConfig,
    sources: &Sources,
    command_line: &CommandLine,
    taken: Option<EnvSelection>,
) -> Result<Selected, SelectError> {
    let mut selected = Selected::default();
    let (global, shadows) = match sources.registry {
        Some(registry) => global_hooks(&mut selected, registry)?,
        None => Default::default(),
    };
    if global.is_empty()
        && sources.hooks_dirs.is_empty()
        && command_line.is_empty()
        && !names_selection(config)
        && taken.as_ref().is_none_or(EnvSelection::is_empty)
    {
        return Ok(selected);
    }
    let spec = config.typed()?;
    let facts = ContainerFacts::from_spec(&spec);
    let annotation = |key: &str| {
        spec.annotations()
            .as_ref()
            .and_then(|a| a.get(key))
            .cloned()
    };
    for hook in global {
        if hook.when.as_ref().is_some_and(|w| w.matches(&facts)) {
            selected.plan.push_registered(&hook, &[]);
        }
    }
    add_hooksd(&mut selected, sources, &facts)?;

    let env = match taken {
        Some(env) => env,
        None if sources.env_selects => EnvSelection {
            hooks: config.take_process_env(HOOKS_ENV),
            spec: config.take_process_env(HOOK_SPEC_ENV),
        },
        None => {
            ignore_env_selection(config, &mut selected);
            EnvSelection::default()
        }
    };
    selected.env_changed = !env.is_empty();
    let (env_hooks, env_spec) = (env.hooks.clone(), env.spec.clone());
    selected.env = env;
    let is_sandbox = SANDBOX_MARKS
        .iter()
        .any(|(key, value)| annotation(key).as_deref() == Some(value));
    let hooks_key = match is_sandbox {
        true => SANDBOX_HOOKS_ANNOTATION,
        false => HOOKS_ANNOTATION,
    };
    let lists = [
        (Origin::Annotation(hooks_key), annotation(hooks_key)),
        (Origin::Env(HOOKS_ENV), env_hooks),
    ];
    for (origin, text) in lists {
        if let Some(text) = text {
            selected.plan.extend(items(origin, &text, sources)?);
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
            let file =
                SpecFile::parse(&text).map_err(|source| SelectError::BadSpec { origin, source })?;
            add_spec(&mut selected.plan, origin, &file, sources.allow_inline)?;
        }
    }
    for text in command_line.add_hooks {
        selected
            .plan
            .extend(items(Origin::CommandLine, text, sources)?);
    }
    if let Some(file) = command_line.spec {
        add_spec(&mut selected.plan, Origin::CommandLine, file, true)?;
    }
    crate::shadow::attach(&mut selected.plan, &shadows, sources.registry);
    if !selected.plan.is_empty() {
        selected.plan.generation = sources.registry.and_then(|r| r.generation()).cloned();
    }
    selected.plan.check().map_err(SelectError::NotRunnable)?;
    Ok(selected)
}

/// The hooks one selection list names (`NAME[:JSON-ARGS]` or inline `/path[:JSON-ARGS]` items,
/// separated by commas or spaces), each at its stages.
pub fn items(origin: Origin, text: &str, sources: &Sources) -> Result<ContainerPlan, SelectError> {
    let mut plan = ContainerPlan::default();
    for raw in crate::plan::split_top_level(text) {
        let raw = raw.trim();
        let refused = |source: SelectionError| SelectError::Selection {
            origin,
            item: raw.to_string(),
            source,
        };
        match Item::parse(raw).map_err(|e| refused(e.into()))? {
            Item::Inline { path, args } => {
                if !origin.may_inline(sources.allow_inline) {
                    return Err(SelectError::InlineRefused {
                        origin,
                        path: path.display().to_string(),
                    });
                }
                let name = PlannedHook::inline_name(&path);
                let hook =
                    PlannedHook::native(name, path, args, Vec::new(), Some(DEFAULT_TIMEOUT_SECS));
                plan.push(Stage::Prestart, hook);
            }
            Item::Registered(selection) => {
                let Some(registry) = sources.registry else {
                    return Err(SelectError::NoRegistry {
                        origin,
                        item: raw.to_string(),
                        root: sources.root.to_path_buf(),
                    });
                };
                let hook = registry
                    .get(&selection.name)
                    .map_err(|e| refused(e.into()))?;
                if let Some(shadow) = &hook.shadow {
                    return Err(refused(SelectionError::Shadow {
                        name: hook.name.clone(),
                        of: shadow.of.clone(),
                    }));
                }
                plan.push_registered(&hook, &selection.extra_args);
            }
        }
    }
    Ok(plan)
}

/// The registry's global hooks and its shadows (both in `global/`); entries that cannot be
/// used become warnings.
fn global_hooks(
    selected: &mut Selected,
    registry: &Registry,
) -> Result<(Vec<Hook>, Vec<Hook>), SelectError> {
    let (hooks, errors) = registry.global_entries()?;
    selected.warnings.extend(
        errors
            .iter()
            .map(|e| format!("global hook skipped: {}", crate::error_chain(e))),
    );
    Ok(hooks.into_iter().partition(|h| h.shadow.is_none()))
}

fn add_hooksd(
    selected: &mut Selected,
    sources: &Sources,
    facts: &ContainerFacts,
) -> Result<(), InvalidHooksd> {
    if sources.hooks_dirs.is_empty() {
        return Ok(());
    }
    let set = hooksd::read_dirs(sources.hooks_dirs);
    if !set.errors.is_empty() && !sources.skip_invalid_hooksd {
        return Err(InvalidHooksd { errors: set.errors });
    }
    selected.warnings.extend(
        set.errors
            .iter()
            .map(|e| format!("hooks.d file skipped: {e}")),
    );
    selected.warnings.extend(
        set.ignored
            .iter()
            .map(|e| format!("hooks.d file ignored, as Podman ignores it: {e}")),
    );
    for (stage, hook) in set.injected(facts) {
        let mut planned = hooksd_planned(hook);
        if stage == Stage::Precreate {
            // Podman lets a precreate file change anything; its file has no way to say less.
            planned.spec.may_adjust = Some(hookhost_hooks::may_adjust::MayAdjust::all());
        }
        selected.plan.push(stage, planned);
    }
    Ok(())
}

/// A hooks.d hook as hookhost runs it: native, with its own args, env and timeout (none when
/// the file gives none, as runc runs an OCI hook).
fn hooksd_planned(hook: &HooksdHook) -> PlannedHook {
    let oci = &hook.hook;
    PlannedHook::native(
        hook.name.clone(),
        oci.path().clone(),
        oci.args().clone().unwrap_or_default(),
        oci.env().clone().unwrap_or_default(),
        oci.timeout().map(|t| t.max(1) as u64),
    )
}

fn add_spec(
    plan: &mut ContainerPlan,
    origin: Origin,
    file: &SpecFile,
    allow: bool,
) -> Result<(), SelectError> {
    if !origin.may_inline(allow) {
        let path = file
            .stages
            .values()
            .flatten()
            .next()
            .map_or_else(String::new, |h| h.spec.path.display().to_string());
        return Err(SelectError::InlineRefused { origin, path });
    }
    for (stage, hooks) in &file.stages {
        for hook in hooks {
            plan.push(*stage, hook.clone());
        }
    }
    Ok(())
}
