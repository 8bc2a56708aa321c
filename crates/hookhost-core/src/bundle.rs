//! Lossless `config.json` editing: hookhost adds itself as the OCI hook of each stage that has
//! work, after the hooks already there.
//!
//! The document is edited as a `serde_json::Value` (key order preserved), so every field
//! hookhost does not know survives untouched; `oci-spec` is used only to validate it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};
use thiserror::Error;

use crate::hook::Stage;
use crate::plan::{ContainerPlan, PlannedHook, StagePlan};
use hookhost_exec::fs as fsutil;

/// Slack added to the OCI timeout of hookhost's own entry, so that hookhost reports a hook's
/// timeout itself before the runtime kills hookhost.
pub const TIMEOUT_SLACK_SECS: u64 = 5;

#[derive(Debug, Error)]
pub enum InjectError {
    #[error("cannot read {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file} is not valid JSON: {reason}")]
    Malformed { file: PathBuf, reason: String },
    #[error("{file} is not a valid OCI runtime config: {reason}")]
    NotOci { file: PathBuf, reason: String },
    #[error("{file}: {reason}")]
    Shape { file: PathBuf, reason: String },
    #[error("cannot write {file}: {source}")]
    Write {
        file: PathBuf,
        source: std::io::Error,
    },
}

/// How hookhost calls itself back at each stage.
#[derive(Debug, Clone)]
pub struct SelfCall {
    /// hookhost's own executable (absolute, as the runtime resolves it).
    pub exe: PathBuf,
    /// The registry root the stage runner reads modules and writes events under.
    pub root: PathBuf,
}

/// A bundle's config.json, read and validated, ready to be edited.
pub struct BundleConfig {
    pub file: PathBuf,
    pub doc: Value,
}

impl BundleConfig {
    pub fn load(bundle: &Path) -> Result<Self, InjectError> {
        let file = bundle.join("config.json");
        let bytes = std::fs::read(&file).map_err(|source| InjectError::Read {
            file: file.clone(),
            source,
        })?;
        let doc: Value = serde_json::from_slice(&bytes).map_err(|e| InjectError::Malformed {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let config = BundleConfig { file, doc };
        config.typed()?;
        Ok(config)
    }

    /// The typed view, for reads and validation.
    pub fn typed(&self) -> Result<oci_spec::runtime::Spec, InjectError> {
        serde_json::from_value(self.doc.clone()).map_err(|e| InjectError::NotOci {
            file: self.file.clone(),
            reason: e.to_string(),
        })
    }

    /// Adds the plan's hooks. Injecting the same hooks again changes nothing.
    pub fn inject(&mut self, plan: &ContainerPlan, call: &SelfCall) -> Result<(), InjectError> {
        for (stage, hooks) in &plan.stages {
            if hooks.is_empty() {
                continue;
            }
            tracing::info!(file = %self.file.display(), %stage, hooks = hooks.len(), "injecting");
            let list = self.stage_list(*stage)?;
            if *stage == Stage::StartContainer {
                add_direct_entries(list, hooks);
            } else {
                add_self_entry(list, *stage, hooks, call);
            }
        }
        self.typed()?;
        Ok(())
    }

    /// Removes `NAME=…` from `process.env` and returns its value (the last one wins, as in a
    /// process environment).
    pub fn take_process_env(&mut self, name: &str) -> Option<String> {
        let env = self.doc.pointer_mut("/process/env")?.as_array_mut()?;
        let prefix = format!("{name}=");
        let mut value = None;
        env.retain(
            |entry| match entry.as_str().and_then(|s| s.strip_prefix(&prefix)) {
                Some(v) => {
                    value = Some(v.to_string());
                    false
                }
                None => true,
            },
        );
        value
    }

    pub fn save(&self) -> Result<(), InjectError> {
        let mut bytes = serde_json::to_vec_pretty(&self.doc).expect("a JSON value serialises");
        bytes.push(b'\n');
        fsutil::replace_atomic(&self.file, &bytes).map_err(|source| InjectError::Write {
            file: self.file.clone(),
            source,
        })
    }

    fn stage_list(&mut self, stage: Stage) -> Result<&mut Vec<Value>, InjectError> {
        let shape = |reason: &str| InjectError::Shape {
            file: self.file.clone(),
            reason: reason.into(),
        };
        let root = self
            .doc
            .as_object_mut()
            .ok_or_else(|| shape("the document is not an object"))?;
        let hooks = root
            .entry("hooks")
            .or_insert_with(|| Value::Object(Map::new()));
        let hooks = hooks
            .as_object_mut()
            .ok_or_else(|| shape("`hooks` is not an object"))?;
        let list = hooks
            .entry(stage.as_str())
            .or_insert_with(|| Value::Array(Vec::new()));
        list.as_array_mut()
            .ok_or_else(|| shape("a `hooks` stage is not a list"))
    }
}

/// The args of hookhost's own entry: `hookhost stage STAGE --plan JSON`.
pub fn self_args(stage: Stage, plan: &StagePlan) -> Vec<String> {
    let plan = serde_json::to_string(plan).expect("a plan serialises");
    vec![
        "hookhost".into(),
        "stage".into(),
        stage.as_str().into(),
        "--plan".into(),
        plan,
    ]
}

/// The plan carried by one of hookhost's own entries, if `entry` is one.
pub fn own_plan(entry: &Value) -> Option<StagePlan> {
    let args = entry.get("args")?.as_array()?;
    let is_ours = args.first()?.as_str()? == "hookhost"
        && args.get(1)?.as_str()? == "stage"
        && args.get(3)?.as_str()? == "--plan";
    if !is_ours {
        return None;
    }
    serde_json::from_str(args.get(4)?.as_str()?).ok()
}

/// Appends (or extends) hookhost's single entry for `stage`, keeping it after the others.
fn add_self_entry(list: &mut Vec<Value>, stage: Stage, hooks: &[PlannedHook], call: &SelfCall) {
    let mut plan = StagePlan {
        root: call.root.clone(),
        hooks: Vec::new(),
    };
    if let Some(pos) = list.iter().position(|e| own_plan(e).is_some()) {
        let existing = list.remove(pos);
        plan.hooks = own_plan(&existing).map(|p| p.hooks).unwrap_or_default();
    }
    for hook in hooks {
        if !plan.hooks.contains(hook) {
            plan.hooks.push(hook.clone());
        }
    }
    let timeout = crate::hook::oci_timeout_secs(
        plan.hooks.iter().map(|h| h.spec.timeout),
        TIMEOUT_SLACK_SECS,
    );
    list.push(json!({
        "path": call.exe,
        "args": self_args(stage, &plan),
        "timeout": timeout,
    }));
}

/// startContainer hooks run inside the container: add the native hooks themselves.
fn add_direct_entries(list: &mut Vec<Value>, hooks: &[PlannedHook]) {
    for hook in hooks {
        let mut env = hook.spec.env.clone();
        env.push(format!("HOOKHOST_STAGE={}", Stage::StartContainer));
        let entry = json!({
            "path": hook.spec.path,
            "args": hook.spec.args,
            "env": env,
            "timeout": hook.spec.timeout,
        });
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}
