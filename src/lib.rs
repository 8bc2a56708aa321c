//! hookhost: container lifecycle hooks for OCI runtimes.
//!
//! The crate is organised by domain concept; the `cli` module is the only place that prints.

pub mod config;
pub mod define;
pub mod docker;
pub mod events;
pub mod exec;
pub mod fsutil;
pub mod grants;
pub mod hook;
pub mod hooksd;
pub mod hookspec;
pub mod inject;
pub mod limits;
pub mod listarg;
pub mod paths;
pub mod plan;
pub mod registry;
pub mod runtime;
pub mod stage;
pub mod state;
pub mod when;
