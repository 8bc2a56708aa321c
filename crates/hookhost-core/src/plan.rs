//! What one container runs: the hooks selected for it, resolved against the registry and
//! snapshotted per stage at injection time, and the plan file that carries them to the stage
//! runner.
//!
//! Every selection source (the command line, annotations, the environment, hooks.d files,
//! inline specs) speaks one grammar ([`Item`]) and builds hooks through one constructor
//! ([`PlannedHook::registered`], [`PlannedHook::native`]); the selection module is the one engine
//! that applies them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hookhost_types::HookKind;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use hookhost_hooks::generation::Record;
use hookhost_hooks::hook::{DEFAULT_TIMEOUT_SECS, Hook, HookSpec, Stage};
use hookhost_hooks::listarg::{self, ListError, Split};

/// The largest plan file hookhost writes or reads.
pub const MAX_PLAN_BYTES: usize = 16 * 1024 * 1024;

/// One hook as a container will run it: a registered hook's spec with `--add-hook` extras
/// appended, or a native hook from a hooks.d file or an inline spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedHook {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(flatten)]
    pub spec: HookSpec,
    /// A hooks.d hook without `timeout`: it runs as long as it takes, as runc runs an OCI hook
    /// without one, and `spec.timeout` is not used (it keeps the default, so that a plan stays
    /// readable by an older hookhost, which then bounds the hook by it).
    #[serde(
        rename = "NoTimeout",
        default,
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub no_timeout: bool,
    /// Shadow hooks that run after it on the same input, without effect on the container
    /// (see [`crate::shadow`]).
    #[serde(rename = "Shadows", default, skip_serializing_if = "Vec::is_empty")]
    pub shadows: Vec<crate::shadow::PlannedShadow>,
}

impl PlannedHook {
    /// How long the hook may run: `None` when it has no timeout.
    pub fn timeout(&self) -> Option<u64> {
        (!self.no_timeout).then_some(self.spec.timeout)
    }

    /// A registered hook as selected: the extras appended to its registered args; nothing else
    /// of the registration (path, env, limits, grants) can be changed by a selection.
    pub fn registered(hook: &Hook, extra_args: &[String]) -> Self {
        let mut spec = hook.spec.clone();
        spec.args.extend(extra_args.iter().cloned());
        PlannedHook {
            name: hook.name.clone(),
            spec,
            no_timeout: false,
            shadows: Vec::new(),
        }
    }

    /// A native hook that is not in the registry (hooks.d, inline specs). Empty `args` run the
    /// program with its path as argv0, as runc does. `timeout: None` means no timeout.
    pub fn native(
        name: String,
        path: PathBuf,
        args: Vec<String>,
        env: Vec<String>,
        timeout: Option<u64>,
    ) -> Self {
        let args = if args.is_empty() {
            vec![path.to_string_lossy().into_owned()]
        } else {
            args
        };
        PlannedHook {
            name,
            spec: HookSpec {
                kind: HookKind::Native,
                path,
                args,
                env,
                timeout: timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
                digest: None,
                limits: None,
                grants: None,
                leave_helpers: false,
                on_failure: None,
                may_adjust: None,
            },
            no_timeout: timeout.is_none(),
            shadows: Vec::new(),
        }
    }

    /// The name an inline hook is shown and recorded under.
    pub fn inline_name(path: &std::path::Path) -> String {
        format!("inline:{}", path.display())
    }
}

/// Every stage's hooks for one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerPlan {
    pub stages: BTreeMap<Stage, Vec<PlannedHook>>,
    /// The registry generation its registered hooks were read from (none before the node's
    /// first `apply`): the one whole set they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<Record>,
}

impl ContainerPlan {
    pub fn is_empty(&self) -> bool {
        self.stages.values().all(Vec::is_empty)
    }

    /// Adds a hook at one stage; the same hook twice at one stage runs once.
    pub fn push(&mut self, stage: Stage, hook: PlannedHook) {
        let hooks = self.stages.entry(stage).or_default();
        if !hooks.contains(&hook) {
            hooks.push(hook);
        }
    }

    /// Adds a registered hook at each of its stages.
    pub fn push_registered(&mut self, hook: &Hook, extra_args: &[String]) {
        let planned = PlannedHook::registered(hook, extra_args);
        for stage in &hook.stages {
            self.push(*stage, planned.clone());
        }
    }

    /// Adds every hook of `other`, after this plan's own (and its generation, if it has one).
    pub fn extend(&mut self, other: ContainerPlan) {
        if other.generation.is_some() {
            self.generation = other.generation;
        }
        for (stage, hooks) in other.stages {
            for hook in hooks {
                self.push(stage, hook);
            }
        }
    }

    /// The hook names per stage, in run order, for reports.
    pub fn names(&self) -> Vec<(Stage, Vec<String>)> {
        self.stages
            .iter()
            .filter(|(_, hooks)| !hooks.is_empty())
            .map(|(stage, hooks)| (*stage, hooks.iter().map(|h| h.name.clone()).collect()))
            .collect()
    }

    /// Whether every hook can run where its stage runs, and every hook's argv and environment
    /// (with what selections appended) can be given to it ([`hookhost_hooks::hook::check_runnable`]):
    /// checked when the plan is made, so that no stage discovers later that it cannot run a hook.
    pub fn check(&self) -> Result<(), PlanError> {
        for (stage, hooks) in &self.stages {
            for hook in hooks {
                let spec = &hook.spec;
                hookhost_hooks::hook::check_runnable(spec.kind, &[*stage], &spec.args, &spec.env)
                    .map_err(|source| PlanError::Unrunnable {
                    name: hook.name.clone(),
                    source,
                })?;
            }
        }
        Ok(())
    }
}

/// The plan file: what `hookhost stage` reads to learn a container's hooks (see
/// `hookhost_types::StageCall` for how the runtime names it). Encoded and decoded only here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanFile {
    /// The registry root: WASM modules, their compile cache and the audit trail.
    pub root: PathBuf,
    /// The bound of the audit trail (the config's `eventsMaxSize`); none: the default.
    #[serde(
        default,
        rename = "eventsMaxSize",
        skip_serializing_if = "Option::is_none"
    )]
    pub events_max_size: Option<u64>,
    /// The replay records' settings (the config's `replay`); none: the defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<hookhost_hooks::config::ReplaySettings>,
    /// The runtime's log file, when the wrapper saw one: stage warnings (a failing poststop
    /// hook, a run that could not be recorded, an `--on-failure warn` hook) go there, since the
    /// runtime discards a succeeding hook's stderr.
    #[serde(
        default,
        rename = "runtimeLog",
        skip_serializing_if = "Option::is_none"
    )]
    pub runtime_log: Option<crate::runtime_log::RuntimeLog>,
    /// The CDI spec directories (the config file's `cdiSpecDirs`; empty: the defaults) that
    /// `hookhost stage precreate` resolves its hooks' CDI requests from, under Podman's hooks.d
    /// export (see [`crate::precreate::run_call`]).
    #[serde(default, rename = "cdiSpecDirs", skip_serializing_if = "Vec::is_empty")]
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// The hooks, per stage.
    #[serde(flatten)]
    pub plan: ContainerPlan,
}

impl PlanFile {
    /// The file's bytes; refused when larger than [`MAX_PLAN_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, PlanError> {
        let mut bytes = serde_json::to_vec(self).expect("a plan serialises");
        bytes.push(b'\n');
        if bytes.len() > MAX_PLAN_BYTES {
            return Err(PlanError::PlanTooLarge { size: bytes.len() });
        }
        Ok(bytes)
    }

    /// Reads what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// One stage's plan as hookhost wrote it into argv before plans became files
/// (`hookhost stage STAGE --plan JSON`). Still read, so that containers created before an
/// upgrade run their remaining stages (their poststop above all) with the new executable.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LegacyStagePlan {
    pub root: PathBuf,
    pub hooks: Vec<PlannedHook>,
}

impl LegacyStagePlan {
    /// `[argv0, "stage", STAGE, "--plan", JSON]`; `None` for anything else.
    pub fn from_argv<S: AsRef<str>>(argv: &[S]) -> Option<Self> {
        let [_, command, _, flag, json] = argv else {
            return None;
        };
        if command.as_ref() != "stage" || flag.as_ref() != "--plan" {
            return None;
        }
        serde_json::from_str(json.as_ref()).ok()
    }

    /// The same as a plan file holding only `stage`.
    pub fn into_plan_file(self, stage: Stage) -> PlanFile {
        let mut plan = ContainerPlan::default();
        for hook in self.hooks {
            plan.push(stage, hook);
        }
        PlanFile {
            root: self.root,
            events_max_size: None,
            replay: None,
            runtime_log: None,
            cdi_spec_dirs: Vec::new(),
            plan,
        }
    }
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error("invalid hook selection {given:?}: {reason}")]
    BadSelection { given: String, reason: String },
    #[error("hook {name:?} cannot be run")]
    Unrunnable {
        name: String,
        #[source]
        source: hookhost_hooks::hook::Unrunnable,
    },
    #[error(
        "the container's hook plan would be {size} bytes; at most {MAX_PLAN_BYTES} are allowed \
         (select fewer hooks or shorter arguments)"
    )]
    PlanTooLarge { size: usize },
}

/// One item of a selection list, as `--add-hook`, the `io.hookhost.hooks` annotation and
/// `HOOKHOST_HOOKS` write it: a registered hook `NAME[:JSON-ARGS]`, or an inline native
/// program `/abs/path[:JSON-ARGS]` (a prestart hook; allowed only where inline specs are).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Registered(Selection),
    Inline { path: PathBuf, args: Vec<String> },
}

impl Item {
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let text = text.trim();
        if !text.starts_with('/') {
            return Selection::parse(text).map(Item::Registered);
        }
        let (path, args) = match text.find(":[") {
            Some(at) => (&text[..at], Some(&text[at + 1..])),
            None => (text, None),
        };
        let mut argv = vec![path.to_string()];
        if let Some(args) = args {
            argv.extend(listarg::parse_list(args, Split::Always).map_err(|e| {
                PlanError::BadSelection {
                    given: text.to_string(),
                    reason: e.to_string(),
                }
            })?);
        }
        Ok(Item::Inline {
            path: path.into(),
            args: argv,
        })
    }
}

/// `NAME[:JSON-ARGS]`: a registered hook and the arguments appended to its registered ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub name: String,
    pub extra_args: Vec<String>,
}

impl Selection {
    pub fn parse(text: &str) -> Result<Self, PlanError> {
        let bad = |reason: String| PlanError::BadSelection {
            given: text.to_string(),
            reason,
        };
        let text = text.trim();
        let (name, args) = match text.split_once(':') {
            Some((name, args)) => (name, Some(args)),
            None => (text, None),
        };
        hookhost_hooks::hook::validate_name(name).map_err(|e| bad(e.to_string()))?;
        let extra_args = match args {
            Some(args) if args.trim().starts_with('[') => listarg::parse_list(args, Split::Always)
                .map_err(|e: ListError| bad(e.to_string()))?,
            Some(_) => return Err(bad("arguments after ':' must be a JSON list".into())),
            None => Vec::new(),
        };
        Ok(Selection {
            name: name.to_string(),
            extra_args,
        })
    }

    /// Several selections separated by commas or whitespace outside brackets:
    /// `a, b:["x","y"] c`.
    pub fn parse_many(text: &str) -> Result<Vec<Self>, PlanError> {
        split_top_level(text)
            .iter()
            .map(|s| Selection::parse(s))
            .collect()
    }
}

/// Splits at commas and whitespace that are not inside `[...]` or a quoted string.
pub fn split_top_level(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let (mut depth, mut in_quotes, mut escaped) = (0usize, false, false);
    for c in text.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '[' if !in_quotes => depth += 1,
            ']' if !in_quotes => depth = depth.saturating_sub(1),
            ',' | ' ' | '\t' | '\n' if depth == 0 && !in_quotes => {
                if !current.trim().is_empty() {
                    parts.push(std::mem::take(&mut current));
                }
                current.clear();
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    if !current.trim().is_empty() {
        parts.push(current);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_hooks::registry::Registry;

    #[test]
    fn items_are_registered_names_or_inline_paths() {
        let items: Vec<Item> = split_top_level(r#"a:["x"] /bin/echo:["hi"] /bin/true"#)
            .iter()
            .map(|s| Item::parse(s).unwrap())
            .collect();
        assert_eq!(
            items,
            [
                Item::Registered(Selection {
                    name: "a".into(),
                    extra_args: vec!["x".into()]
                }),
                Item::Inline {
                    path: "/bin/echo".into(),
                    args: vec!["/bin/echo".into(), "hi".into()]
                },
                Item::Inline {
                    path: "/bin/true".into(),
                    args: vec!["/bin/true".into()]
                },
            ]
        );
        assert!(Item::parse(r#"/bin/echo:["x""#).is_err());
    }

    fn native(args: Vec<String>, env: Vec<String>) -> ContainerPlan {
        let mut plan = ContainerPlan::default();
        let hook = PlannedHook::native("n".into(), "/bin/true".into(), args, env, Some(5));
        plan.push(Stage::Poststop, hook);
        plan
    }

    /// What the kernel would refuse to exec is refused when the plan is made, naming the hook,
    /// never discovered by the stage (at poststop, silently).
    #[test]
    fn native_hooks_must_fit_what_the_kernel_passes() {
        use hookhost_hooks::hook::MAX_ARG_BYTES;
        let refused = |plan: ContainerPlan| crate::error_chain(&plan.check().unwrap_err());
        assert!(
            native(vec!["a".repeat(MAX_ARG_BYTES - 1)], vec![])
                .check()
                .is_ok()
        );
        let err = refused(native(vec!["a".repeat(MAX_ARG_BYTES)], vec![]));
        assert!(
            err.contains("\"n\"") && err.contains("per argument"),
            "{err}"
        );
        let err = refused(native(vec!["a".repeat(100_000); 11], vec![]));
        assert!(err.contains("total"), "{err}");
        let err = refused(native(vec![], vec!["A=x\0y".into()]));
        assert!(err.contains("NUL"), "{err}");
    }

    #[test]
    fn plan_files_round_trip_and_are_bounded() {
        let file = PlanFile {
            root: "/var/lib/hookhost".into(),
            events_max_size: Some(1 << 20),
            replay: None,
            runtime_log: None,
            cdi_spec_dirs: Vec::new(),
            plan: native(vec!["x".into()], vec!["SECRET=1".into()]),
        };
        let bytes = file.encode().unwrap();
        assert_eq!(PlanFile::decode(&bytes).unwrap(), file);
        let huge = PlanFile {
            root: "/r".into(),
            events_max_size: None,
            replay: None,
            runtime_log: None,
            cdi_spec_dirs: Vec::new(),
            plan: native(vec!["a".repeat(MAX_PLAN_BYTES)], vec![]),
        };
        assert!(matches!(huge.encode(), Err(PlanError::PlanTooLarge { .. })));
    }

    #[test]
    fn parses_the_seed_selection() {
        let sel = Selection::parse(r#"myFirstHook:["/tmp/b","/tmp/c"]"#).unwrap();
        assert_eq!(sel.name, "myFirstHook");
        assert_eq!(sel.extra_args, vec!["/tmp/b", "/tmp/c"]);
        let sel = Selection::parse("myFirstHook:[/tmp/b,/tmp/c]").unwrap();
        assert_eq!(sel.extra_args, vec!["/tmp/b", "/tmp/c"]);
        assert_eq!(
            Selection::parse("plain").unwrap().extra_args,
            Vec::<String>::new()
        );
    }

    #[test]
    fn parses_several_selections() {
        let many = Selection::parse_many(r#"a, b:["x, y","z"] c"#).unwrap();
        let names: Vec<_> = many.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(many[1].extra_args, vec!["x, y", "z"]);
    }

    #[test]
    fn rejects_bad_selections_with_the_reason() {
        let err = Selection::parse("/bin/sh").unwrap_err().to_string();
        assert!(err.contains("invalid hook name"), "{err}");
        let err = Selection::parse("a:/tmp/b").unwrap_err().to_string();
        assert!(err.contains("must be a JSON list"), "{err}");
        let err = Selection::parse(r#"a:["x""#).unwrap_err().to_string();
        assert!(err.contains("must end with ']'"), "{err}");
    }

    /// Whatever a container writes after the name, it only adds arguments: the registered
    /// grants, limits, env, path and timeout are what runs.
    #[test]
    fn selection_extras_never_change_grants_or_limits() {
        use hookhost_exec::limits::WasmLimits;
        use hookhost_hooks::grants::{Access, Grants};
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path().join("root")).unwrap();
        let registered = HookSpec {
            kind: HookKind::Wasm,
            path: "/x.wasm".into(),
            args: vec!["x".into()],
            env: vec!["A=1".into()],
            timeout: 2,
            digest: Some("0".repeat(64)),
            limits: Some(WasmLimits {
                fuel: 1000,
                memory: 1 << 20,
                writes: 1 << 10,
            }),
            grants: Some(Grants {
                bundle: Some(Access::ReadOnly),
                ..Grants::default()
            }),
            leave_helpers: false,
            on_failure: None,
            may_adjust: None,
        };
        let hook = Hook {
            name: "sandboxed".into(),
            stages: vec![Stage::CreateRuntime],
            spec: registered.clone(),
            when: None,
            created: chrono::Utc::now(),
            source: None,
            shadow: None,
        };
        registry.create(&hook).unwrap();
        let hostile =
            r#"sandboxed:["--allow-dir","/:/host:rw","--fuel","999999999999","--timeout","9999"]"#;
        let selection = Selection::parse(hostile).unwrap();
        let mut plan = ContainerPlan::default();
        plan.push_registered(
            &registry.get(&selection.name).unwrap(),
            &selection.extra_args,
        );
        let planned = &plan.stages[&Stage::CreateRuntime][0].spec;
        assert_eq!(
            planned.args[1..],
            [
                "--allow-dir",
                "/:/host:rw",
                "--fuel",
                "999999999999",
                "--timeout",
                "9999"
            ]
        );
        assert_eq!(
            HookSpec {
                args: registered.args.clone(),
                ..planned.clone()
            },
            registered,
            "only args may differ"
        );
        for not_a_list in [r#"sandboxed:{"Grants":{}}"#, "sandboxed:--fuel=1"] {
            assert!(Selection::parse(not_a_list).is_err(), "{not_a_list}");
        }
    }
}
