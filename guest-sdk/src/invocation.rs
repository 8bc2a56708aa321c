//! What every hook is invoked with, whatever its stage: argv and an environment that names the
//! stage. Shared by [`crate::Hook`] and [`crate::Precreate`].

use std::collections::BTreeMap;

use hookhost_types::{STAGE_ENV, Stage};

pub(crate) fn args<S: Into<String>>(args: impl IntoIterator<Item = S>) -> Vec<String> {
    args.into_iter().map(Into::into).collect()
}

pub(crate) fn env<K: Into<String>, V: Into<String>>(
    env: impl IntoIterator<Item = (K, V)>,
) -> BTreeMap<String, String> {
    env.into_iter().map(|(k, v)| (k.into(), v.into())).collect()
}

/// The stage named by `HOOKHOST_STAGE`; `None` outside hookhost.
pub(crate) fn stage(env: &BTreeMap<String, String>) -> Option<Stage> {
    env.get(STAGE_ENV).and_then(|s| s.parse().ok())
}

/// The arguments after argv0.
pub(crate) fn extra(args: &[String]) -> &[String] {
    args.get(1..).unwrap_or(&[])
}
