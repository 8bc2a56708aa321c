//! A hook's definition as it travels with its module in an OCI artifact: `hookhost push`
//! records it, `pull` and `inspect` show it, and `create NAME oci://…` takes from it what the
//! command line does not give — except grants, which the administrator must accept
//! (`--accept-grants`) or give themselves, and environment values, which are never published
//! (they may be secrets): only their names are, for whoever registers the hook to give.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::define::Definition;
use crate::grants::Grants;
use crate::hook::{Hook, OnFailure, Stage};
use crate::may_adjust::MayAdjust;
use hookhost_exec::limits::WasmLimits;

/// The manifest annotation that holds a [`Published`] definition, as JSON.
pub const ANNOTATION: &str = "io.hookhost.definition";

/// What an artifact says about registering its module.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Published {
    #[serde(default)]
    pub stages: Vec<Stage>,
    #[serde(default)]
    pub args: Vec<String>,
    /// The names of the variables the hook was registered with (never their values).
    #[serde(default)]
    pub env_names: Vec<String>,
    #[serde(default)]
    pub timeout: Option<u64>,
    #[serde(default)]
    pub limits: Option<WasmLimits>,
    #[serde(default)]
    pub grants: Option<Grants>,
    #[serde(default)]
    pub may_adjust: Option<MayAdjust>,
    #[serde(default)]
    pub on_failure: Option<OnFailure>,
}

/// An artifact asks for grants that were neither accepted nor given.
#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "its artifact asks for grants ({asked}): hookhost never takes grants from an artifact by \
     itself. Give --accept-grants to grant what it asks, or the grant flags you choose \
     (--allow-*, --may-adjust; the artifact's are then ignored)"
)]
pub struct GrantsNotAccepted {
    /// What it asks, as JSON.
    pub asked: String,
}

impl Published {
    /// What `hook` publishes.
    pub fn of(hook: &Hook) -> Published {
        let spec = &hook.spec;
        let names = spec.env.iter().map(|pair| {
            let (name, _) = pair.split_once('=').unwrap_or((pair, ""));
            name.to_string()
        });
        Published {
            stages: hook.stages.clone(),
            args: spec.args.clone(),
            env_names: names.collect(),
            timeout: Some(spec.timeout),
            limits: spec.limits.clone(),
            grants: spec.grants.clone().filter(|g| !g.is_empty()),
            may_adjust: spec.may_adjust.clone(),
            on_failure: spec.on_failure,
        }
    }

    /// `def` with what it does not give taken from here; grants only when `accept_grants`
    /// or when `def` gives grants of its own (then this artifact's are ignored).
    pub fn fill(
        &self,
        mut def: Definition,
        accept_grants: bool,
    ) -> Result<Definition, GrantsNotAccepted> {
        if def.stages.is_empty() {
            def.stages = self.stages.clone();
        }
        if def.args.is_empty() {
            def.args = self.args.clone();
        }
        if def.timeout.is_none() {
            def.timeout = self.timeout.map(Into::into);
        }
        def.limits = def.limits.or_else(|| self.limits.clone());
        def.on_failure = def.on_failure.or(self.on_failure);
        let own_grants = def.grants.is_some() || def.may_adjust.is_some();
        let asks = self.grants.is_some() || self.may_adjust.is_some();
        match (own_grants, asks, accept_grants) {
            (true, _, _) | (false, false, _) => {}
            (false, true, true) => {
                def.grants = self.grants.clone();
                def.may_adjust = self.may_adjust.clone();
            }
            (false, true, false) => {
                let asked =
                    serde_json::json!({"Grants": self.grants, "MayAdjust": self.may_adjust});
                return Err(GrantsNotAccepted {
                    asked: asked.to_string(),
                });
            }
        }
        Ok(def)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grants::Access;

    fn published() -> Published {
        let mut hook = crate::hook::sample("audit");
        hook.stages = vec![Stage::Poststart, Stage::Poststop];
        hook.spec.env = vec!["TOKEN=secret".into()];
        hook.spec.timeout = 7;
        hook.spec.grants = Some(Grants {
            rootfs: Some(Access::ReadWrite),
            ..Grants::default()
        });
        Published::of(&hook)
    }

    #[test]
    fn env_values_are_never_published() {
        let p = published();
        assert_eq!(p.env_names, ["TOKEN"]);
        assert!(!serde_json::to_string(&p).unwrap().contains("secret"));
    }

    #[test]
    fn grants_need_the_administrators_yes() {
        let p = published();
        let def = Definition {
            name: "a".into(),
            ..Definition::default()
        };
        let err = p.fill(def.clone(), false).unwrap_err().to_string();
        assert!(err.contains("--accept-grants"), "{err}");
        assert!(err.contains(r#""rootfs":"rw""#), "{err}");
        let accepted = p.fill(def.clone(), true).unwrap();
        assert_eq!(accepted.grants, p.grants);
        assert_eq!(accepted.stages, [Stage::Poststart, Stage::Poststop]);
        assert_eq!(accepted.timeout, Some(7u64.into()));
        // Grants of the administrator's own: the artifact's are ignored; given flags win.
        let own = Definition {
            grants: Some(Grants::default()),
            stages: vec![Stage::Prestart],
            ..def
        };
        let kept = p.fill(own, false).unwrap();
        assert_eq!(kept.grants, Some(Grants::default()));
        assert_eq!(kept.stages, [Stage::Prestart]);
    }
}
