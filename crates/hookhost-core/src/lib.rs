//! hookhost's container pipeline: which hooks a container gets ([`select`], one engine for
//! every source, and the [`plan`] it builds), its precreate hooks' chain ([`precreate`], with
//! the conflict [`owners`]), what a front end hands the runtime ([`pipeline`]: a container
//! description in, the edited config and the plan out; [`prepare`] for a bundle, with its
//! [`cdi`] devices), how a bundle carries them ([`bundle`]: config.json and the plan file), how
//! a stage runs them ([`stage`], [`run`]), and the audit trail they leave ([`events`],
//! [`metrics`]).
//!
//! The hooks themselves (definitions, registry, grants, config file) are `hookhost-hooks`,
//! below this crate. Dependencies point one way: `hookhost-types` ← `hookhost-exec` ←
//! `hookhost-hooks` ← this crate ← `hookhost-engines` ← the `hookhost` binary. Nothing here
//! prints.

pub mod bundle;
pub mod cdi;
pub mod events;
pub mod metrics;
pub mod owners;
pub mod pipeline;

pub mod plan;
pub mod precreate;
pub mod prepare;
pub mod replay;
pub mod run;
pub mod runtime_log;
pub mod select;
pub mod shadow;
pub mod spec_file;
pub mod stage;
pub mod trial;

pub use hookhost_exec as exec;
pub use hookhost_hooks as hooks;
pub use hookhost_hooks::error_chain;
pub use hookhost_types as types;
