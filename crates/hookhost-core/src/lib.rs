//! hookhost's core: what a hook is ([`hook`], [`when`] with Go's [`re2`] syntax, [`grants`]), where hooks are kept
//! ([`registry`], [`define`]), which hooks a container gets ([`select`], one engine for every
//! source, and the [`plan`] it builds), how a bundle carries them ([`bundle`]: config.json and
//! the plan file), and how a stage runs them ([`stage`], [`run`], [`events`]).
//!
//! Dependencies point one way: `hookhost-types` ← `hookhost-exec` ← this crate ←
//! `hookhost-engines` ← the `hookhost` binary. Nothing here prints.

pub mod adjust;
pub mod apply;
pub mod bundle;
pub mod config;
pub mod define;
pub mod events;
pub mod grants;
pub mod hook;
pub mod hooksd;
pub mod hookspec;
pub mod listarg;
pub mod metrics;
pub mod paths;
pub mod plan;
pub mod precreate;
pub mod prepare;
pub mod re2;
pub mod recompile;
pub mod registry;
pub mod run;
pub mod runtime_log;
pub mod scaffold;
pub mod select;
pub mod stage;
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
