//! hookhost's hook definitions: what a hook is ([`hook`], [`when`] with Go's [`re2`] syntax,
//! [`grants`] for WASM hooks, [`may_adjust`] for precreate hooks and the config [`diff`] they
//! are checked on), where hooks are kept ([`registry`], [`paths`], [`define`], [`apply`] and the
//! [`generation`]s it switches between, the watch loop's [`fleet`] status),
//! hookhost's [`config`] file, hooks.d files ([`hooksd`], read and written here), and CDI
//! device specs ([`cdi`]).
//!
//! Nothing here knows a container: the per-container pipeline (selection, the precreate chain,
//! plans, bundles, stages, the audit trail) is `hookhost-core`, above this crate.
//! Dependencies point one way: `hookhost-types` ← `hookhost-exec` ← this crate ←
//! `hookhost-core` ← `hookhost-engines`, `hookhost-oci` ← the `hookhost` binary. Nothing
//! here prints.

pub mod apply;
pub mod cdi;
pub mod config;
pub mod define;
pub mod diff;
pub mod drift;
pub mod fleet;
pub mod generation;
pub mod grants;
pub mod hook;
pub mod hooksd;
pub mod listarg;
pub mod may_adjust;
pub mod paths;
pub mod published;
pub mod re2;
pub mod recompile;
pub mod registry;
pub mod scaffold;
pub mod shadow;
pub mod when;

pub use hookhost_exec as exec;
pub use hookhost_types as types;

/// An error and its causes on one line, as hookhost shows every error (`: ` between them); a
/// cause whose text a message already includes is not repeated.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = String::new();
    let mut next = Some(error);
    while let Some(cause) = next {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause_text);
        }
        next = cause.source();
    }
    text
}
