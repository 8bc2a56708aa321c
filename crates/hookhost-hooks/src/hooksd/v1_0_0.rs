//! The hooks.d 1.0.0 format: `{"version":"1.0.0","hook":{…},"when":{…},"stages":[…]}`.

use std::collections::BTreeMap;

use oci_spec::runtime::Hook;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Condition, ErrorKind, Parsed, fold_nested, parse_stages};
use crate::hook::{RawTimeout, TimeoutSource};
use crate::when::When;

pub(super) const HOOK_KEYS: &[&str] = &["path", "args", "env", "timeout"];
const WHEN_KEYS: &[&str] = &["always", "annotations", "commands", "hasBindMounts"];

#[derive(Deserialize)]
struct RawV1 {
    #[serde(default)]
    hook: Option<RawHook>,
    #[serde(default)]
    when: Option<RawWhen>,
    #[serde(default)]
    stages: Option<Vec<String>>,
}

/// The OCI hook entry; read loosely so that a missing path gets hooks.d's own message.
#[derive(Deserialize)]
pub(super) struct RawHook {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    args: Option<Vec<String>>,
    #[serde(default)]
    env: Option<Vec<String>>,
    /// Any number: validated by [`crate::hook::validate_timeout`] in [`into_hook`].
    #[serde(default)]
    timeout: Option<RawTimeout>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWhen {
    #[serde(default)]
    always: Option<bool>,
    #[serde(default)]
    annotations: Option<BTreeMap<String, String>>,
    #[serde(default)]
    commands: Option<Vec<String>>,
    #[serde(default)]
    has_bind_mounts: Option<bool>,
}

pub(super) fn parse(mut object: Map<String, Value>) -> Result<Parsed, ErrorKind> {
    fold_nested(&mut object, "hook", HOOK_KEYS)?;
    fold_nested(&mut object, "when", WHEN_KEYS)?;
    let raw: RawV1 = serde_json::from_value(Value::Object(object)).map_err(ErrorKind::Shape)?;
    let when = raw.when.map(into_when).transpose()?.unwrap_or_default();
    let stages = parse_stages(raw.stages.ok_or(ErrorKind::Missing("stages"))?)?;
    Ok(Parsed {
        hook: raw.hook.map(into_hook).transpose()?.unwrap_or_default(),
        stages,
        condition: Condition::V1(when),
    })
}

fn into_when(raw: RawWhen) -> Result<When, ErrorKind> {
    Ok(When::new(
        raw.always,
        raw.annotations.unwrap_or_default(),
        raw.commands.unwrap_or_default(),
        raw.has_bind_mounts,
    )?)
}

pub(super) fn into_hook(raw: RawHook) -> Result<Hook, ErrorKind> {
    let timeout = raw
        .timeout
        .map(|t| t.validate(TimeoutSource::HooksD))
        .transpose()?;
    let mut hook = Hook::default();
    hook.set_path(raw.path.unwrap_or_default().into());
    hook.set_args(raw.args);
    hook.set_env(raw.env);
    // In 1..=MAX_TIMEOUT_SECS, so it fits.
    hook.set_timeout(timeout.map(|t| t as i64));
    Ok(hook)
}
