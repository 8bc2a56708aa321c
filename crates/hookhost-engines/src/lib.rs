//! hookhost's engine integrations (the runc-compatible runtime wrapper is its own crate,
//! `hookhost-runtime`, to be linked without this one's weight): Docker (`daemon.json`,
//! `docker run` through hookhost, the CLI plugin: [`docker`]), hooks.d export/import for Podman
//! and CRI-O ([`hooksd`]), and the NRI plugin's decisions ([`nri`]). Built on `hookhost-core`;
//! nothing here prints.

pub mod docker;
pub mod hooksd;
pub mod nri;
