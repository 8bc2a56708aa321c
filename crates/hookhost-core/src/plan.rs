//! What one container runs: the hooks selected for it, resolved against the registry and
//! snapshotted per stage at injection time.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hook::{Hook, HookKind, HookSpec, Stage};
use crate::hookspec::SpecFile;
use crate::listarg::{self, ListError, Split};
use crate::registry::{Registry, RegistryError};

/// One hook as a container will run it: the registered spec with `--add-hook` extras appended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedHook {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(flatten)]
    pub spec: HookSpec,
}

impl PlannedHook {
    /// A registered hook as selected: `--add-hook` extras appended to its registered args.
    pub fn from_registered(hook: Hook, selection: &Selection) -> Self {
        let mut spec = hook.spec;
        spec.args.extend(selection.extra_args.iter().cloned());
        PlannedHook {
            name: hook.name,
            spec,
        }
    }
}

/// The hooks of one stage, in order, and the registry root they came from (for WASM modules,
/// the compile cache and the audit trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StagePlan {
    pub root: PathBuf,
    pub hooks: Vec<PlannedHook>,
}

/// Every stage's hooks for one container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerPlan {
    pub stages: BTreeMap<Stage, Vec<PlannedHook>>,
}

impl ContainerPlan {
    pub fn is_empty(&self) -> bool {
        self.stages.values().all(Vec::is_empty)
    }

    pub fn push(&mut self, stage: Stage, hook: PlannedHook) {
        self.stages.entry(stage).or_default().push(hook);
    }

    /// Adds a registered hook at each of its stages.
    pub fn add_registered(
        &mut self,
        selection: &Selection,
        registry: &Registry,
    ) -> Result<(), PlanError> {
        let hook = registry.get(&selection.name)?;
        let mut spec = hook.spec;
        spec.args.extend(selection.extra_args.iter().cloned());
        for stage in hook.stages {
            self.push(
                stage,
                PlannedHook {
                    name: hook.name.clone(),
                    spec: spec.clone(),
                },
            );
        }
        Ok(())
    }

    /// Adds the inline hooks of a `--hook-spec` file.
    pub fn add_spec_file(&mut self, file: &SpecFile) {
        for (stage, hooks) in &file.stages {
            for hook in hooks {
                self.push(*stage, hook.clone());
            }
        }
    }
}

#[derive(Debug, Error)]
pub enum PlanError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("invalid hook selection {given:?}: {reason}")]
    BadSelection { given: String, reason: String },
    #[error(
        "hook {name:?} is a WASM hook at startContainer, which runs inside the container where \
         hookhost cannot run it"
    )]
    WasmInContainer { name: String },
}

/// `NAME[:JSON-ARGS]`, as given to `--add-hook`, the `io.hookhost.hooks` annotation and
/// `HOOKHOST_HOOKS`.
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
        crate::hook::validate_name(name).map_err(|e| bad(e.to_string()))?;
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

/// startContainer hooks run inside the container, where only a native path that exists in the
/// container can run; hookhost injects those directly instead of itself.
pub fn check_runnable(plan: &ContainerPlan) -> Result<(), PlanError> {
    let in_container = plan
        .stages
        .get(&Stage::StartContainer)
        .into_iter()
        .flatten();
    for hook in in_container {
        if hook.spec.kind == HookKind::Wasm {
            return Err(PlanError::WasmInContainer {
                name: hook.name.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        use crate::grants::{Access, Grants};
        use hookhost_exec::limits::WasmLimits;
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
            }),
            grants: Some(Grants {
                bundle: Some(Access::ReadOnly),
                ..Grants::default()
            }),
        };
        let hook = Hook {
            name: "sandboxed".into(),
            stages: vec![Stage::CreateRuntime],
            spec: registered.clone(),
            when: None,
            created: chrono::Utc::now(),
        };
        registry.create(&hook).unwrap();
        let hostile =
            r#"sandboxed:["--allow-dir","/:/host:rw","--fuel","999999999999","--timeout","9999"]"#;
        let mut plan = ContainerPlan::default();
        plan.add_registered(&Selection::parse(hostile).unwrap(), &registry)
            .unwrap();
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
