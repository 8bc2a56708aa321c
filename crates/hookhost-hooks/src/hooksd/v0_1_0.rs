//! The legacy hooks.d 0.1.0 format (no `version`): `hook`, `arguments`, `stage`/`stages`,
//! `cmd`/`cmds`, `annotation`/`annotations`, `hasbindmounts`; conditions are OR-ed.
//!
//! containers/common turns such a file into a 1.0.0 hook with an "or" flag: `args` becomes
//! `[hook, arguments…]` when `arguments` is present, and the annotation regexes become one value
//! regex `a|b` under the key regex `.*`. [`Legacy`] keeps exactly that meaning.

use std::collections::BTreeMap;

use oci_spec::runtime::Hook;
use regex::{Regex, RegexSet};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Condition, ErrorKind, Parsed, parse_stages};
use crate::re2;
use crate::when::{ContainerFacts, When, WhenError, compile_commands};

#[derive(Deserialize)]
struct RawLegacy {
    #[serde(default)]
    hook: Option<String>,
    #[serde(default)]
    arguments: Option<Vec<String>>,
    #[serde(default)]
    stages: Option<Vec<String>>,
    #[serde(default)]
    stage: Option<Vec<String>>,
    #[serde(default)]
    cmds: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
    #[serde(default)]
    annotations: Option<Vec<String>>,
    #[serde(default)]
    annotation: Option<Vec<String>>,
    #[serde(default)]
    hasbindmounts: Option<bool>,
}

/// 0.1.0 conditions: the hook applies when any of them holds.
#[derive(Debug, Clone)]
pub struct Legacy {
    commands: Vec<String>,
    /// `Some(vec![])` is meaningful: the joined regex is empty and matches any annotation value.
    annotations: Option<Vec<String>>,
    has_bind_mounts: Option<bool>,
    command_set: Option<RegexSet>,
    annotation_re: Option<Regex>,
}

impl PartialEq for Legacy {
    fn eq(&self, other: &Self) -> bool {
        (&self.commands, &self.annotations, self.has_bind_mounts)
            == (&other.commands, &other.annotations, other.has_bind_mounts)
    }
}

impl Legacy {
    pub fn new(
        commands: Vec<String>,
        annotations: Option<Vec<String>>,
        has_bind_mounts: Option<bool>,
    ) -> Result<Legacy, WhenError> {
        let command_set = compile_commands(&commands)?;
        let annotation_re = annotations
            .as_deref()
            .map(compile_annotations)
            .transpose()?;
        Ok(Legacy {
            commands,
            annotations,
            has_bind_mounts,
            command_set,
            annotation_re,
        })
    }

    pub fn commands(&self) -> &[String] {
        &self.commands
    }

    pub fn annotations(&self) -> Option<&[String]> {
        self.annotations.as_deref()
    }

    pub fn has_bind_mounts(&self) -> Option<bool> {
        self.has_bind_mounts
    }

    /// True when any condition holds (containers/common's "or" mode).
    pub fn matches(&self, facts: &ContainerFacts) -> bool {
        if self.has_bind_mounts == Some(true) && facts.has_bind_mounts {
            return true;
        }
        if let Some(re) = &self.annotation_re
            && facts.annotations.values().any(|v| re.is_match(v))
        {
            return true;
        }
        match (&self.command_set, &facts.args0) {
            (Some(set), Some(arg0)) => set.is_match(arg0),
            _ => false,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.commands.is_empty() && self.annotations.is_none() && self.has_bind_mounts.is_none()
    }

    /// The equivalent 1.0.0 condition, which exists when at most one kind of condition is set
    /// (one condition OR-ed with nothing is the same as AND-ed with nothing).
    pub fn to_when(&self) -> Option<When> {
        let kinds = [
            !self.commands.is_empty(),
            self.annotations.is_some(),
            self.has_bind_mounts.is_some(),
        ];
        if kinds.iter().filter(|set| **set).count() > 1 {
            return None;
        }
        let annotations = self
            .annotations
            .as_ref()
            .map(|a| BTreeMap::from([(".*".to_string(), a.join("|"))]))
            .unwrap_or_default();
        When::new(
            None,
            annotations,
            self.commands.clone(),
            self.has_bind_mounts,
        )
        .ok()
    }
}

/// Compiles each regex alone so an error names it, then the `|`-joined one containers/common uses.
fn compile_annotations(patterns: &[String]) -> Result<Regex, WhenError> {
    let value_error = |pattern: &str, source| WhenError::AnnotationValue {
        key: ".*".to_string(),
        pattern: pattern.to_string(),
        source,
    };
    for pattern in patterns {
        re2::compile(pattern).map_err(|e| value_error(pattern, e))?;
    }
    let joined = patterns.join("|");
    re2::compile(&joined).map_err(|e| value_error(&joined, e))
}

pub(super) fn parse(object: Map<String, Value>) -> Result<Parsed, ErrorKind> {
    let raw: RawLegacy = serde_json::from_value(Value::Object(object)).map_err(ErrorKind::Shape)?;
    let path = raw.hook.ok_or(ErrorKind::Missing("hook"))?;
    let stages = either(raw.stages, raw.stage, ("stage", "stages"))?;
    let stages = parse_stages(stages.ok_or(ErrorKind::Missing("stages"))?)?;
    let commands = either(raw.cmds, raw.cmd, ("cmd", "cmds"))?;
    let annotations = either(
        raw.annotations,
        raw.annotation,
        ("annotation", "annotations"),
    )?;
    let legacy = Legacy::new(commands.unwrap_or_default(), annotations, raw.hasbindmounts)?;
    Ok(Parsed {
        hook: legacy_hook(path, raw.arguments),
        stages,
        condition: Condition::Legacy(legacy),
    })
}

/// A property and its synonym: at most one may be set.
fn either<T>(
    plural: Option<T>,
    singular: Option<T>,
    names: (&'static str, &'static str),
) -> Result<Option<T>, ErrorKind> {
    match (plural, singular) {
        (Some(_), Some(_)) => Err(ErrorKind::Both(names.0, names.1)),
        (plural, singular) => Ok(plural.or(singular)),
    }
}

fn legacy_hook(path: String, arguments: Option<Vec<String>>) -> Hook {
    let mut hook = Hook::default();
    let args = arguments.map(|rest| std::iter::once(path.clone()).chain(rest).collect());
    hook.set_path(path.into());
    hook.set_args(args);
    hook
}
