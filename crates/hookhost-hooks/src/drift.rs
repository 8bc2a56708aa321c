//! Whether the file a hook was registered from still holds what the registry runs.
//!
//! `create` copies a WASM module into the registry (addressed by its sha256) and a pinned
//! native hook records its binary's sha256. After a rebuild at the same Path, the registry
//! still runs the old module (or refuses the changed pinned binary) — silently, unless
//! `try`, `ls` and `inspect` say so. They do, through [`DriftCheck`].

use std::collections::HashMap;
use std::path::PathBuf;

use thiserror::Error;

use crate::hook::{Hook, HookKind};

/// How many hex digits of a sha256 a drift warning shows.
const SHOWN_HEX: usize = 12;

/// The file at a hook's Path no longer has the registered digest.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "hook {name}: {} has changed since it was registered (sha256 {now}…, registered \
     {registered}…): {consequence}; register the new build with `hookhost update {name}`",
    path.display()
)]
pub struct Drift {
    pub name: String,
    pub path: PathBuf,
    /// The first hex digits of the registered digest.
    pub registered: String,
    /// The first hex digits of the file's digest now.
    pub now: String,
    /// What runs meanwhile.
    pub consequence: &'static str,
}

/// Checks hooks against their files, reading each file once however many hooks name it (`ls`
/// of a large registry).
#[derive(Debug, Default)]
pub struct DriftCheck {
    digests: HashMap<PathBuf, Option<String>>,
}

impl DriftCheck {
    /// The drift of `hook`, if its Path is a local file whose sha256 differs from the one
    /// registered. A hook without a digest (an unpinned native hook, which runs the file as
    /// it is), a module pulled from an OCI registry, or a file that cannot be read now has
    /// none.
    pub fn check(&mut self, hook: &Hook) -> Option<Drift> {
        let registered = hook.spec.digest.as_deref()?;
        if hook.source.is_some() || !hook.spec.path.is_absolute() {
            return None;
        }
        let now = self
            .digests
            .entry(hook.spec.path.clone())
            .or_insert_with(|| {
                std::fs::read(&hook.spec.path)
                    .ok()
                    .map(|bytes| hookhost_exec::fs::sha256_hex(&bytes))
            })
            .as_deref()?;
        if now == registered {
            return None;
        }
        let consequence = match hook.spec.kind {
            HookKind::Wasm => "containers and `hookhost try` still run the registered module",
            HookKind::Native => "it is pinned, so containers refuse to run it",
        };
        let short = |hex: &str| hex.chars().take(SHOWN_HEX).collect();
        Some(Drift {
            name: hook.name.clone(),
            path: hook.spec.path.clone(),
            registered: short(registered),
            now: short(now),
            consequence,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(path: PathBuf, kind: HookKind, digest: Option<String>) -> Hook {
        let mut hook = crate::hook::sample("motd");
        hook.spec.path = path;
        hook.spec.kind = kind;
        hook.spec.digest = digest;
        hook
    }

    #[test]
    fn a_rebuilt_file_is_named_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("motd.wasm");
        std::fs::write(&file, b"old").unwrap();
        let old = hookhost_exec::fs::sha256_hex(b"old");
        let wasm = hook(file.clone(), HookKind::Wasm, Some(old.clone()));
        assert_eq!(DriftCheck::default().check(&wasm), None);

        std::fs::write(&file, b"new").unwrap();
        let drift = DriftCheck::default().check(&wasm).expect("drift");
        let text = drift.to_string();
        assert!(
            text.contains("has changed since it was registered"),
            "{text}"
        );
        assert!(text.contains(&old[..SHOWN_HEX]), "{text}");
        assert!(text.contains("still run the registered module"), "{text}");
        assert!(text.ends_with("`hookhost update motd`"), "{text}");

        let pinned = hook(file.clone(), HookKind::Native, Some(old));
        let text = DriftCheck::default().check(&pinned).unwrap().to_string();
        assert!(
            text.contains("pinned, so containers refuse to run it"),
            "{text}"
        );

        // Nothing to say: no digest, a missing file.
        assert_eq!(
            DriftCheck::default().check(&hook(file, HookKind::Native, None)),
            None
        );
        let gone = hook(dir.path().join("gone"), HookKind::Wasm, Some("00".into()));
        assert_eq!(DriftCheck::default().check(&gone), None);
    }
}
