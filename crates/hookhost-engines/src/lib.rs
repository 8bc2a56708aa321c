//! hookhost's engine integrations: the runc-compatible runtime wrapper ([`runtime`]), Docker
//! (`daemon.json`, `docker run` through hookhost, the CLI plugin: [`docker`]), and hooks.d
//! export/import for Podman and CRI-O ([`hooksd`]). Built on `hookhost-core`; nothing here
//! prints.

pub mod docker;
pub mod hooksd;
pub mod runtime;
