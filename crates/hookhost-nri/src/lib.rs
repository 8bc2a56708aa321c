//! hookhost's NRI plugin runtime: everything an NRI plugin needs that is NRI protocol, and
//! nothing of hookhost's hooks. NRI (the Node Resource Interface of containerd and CRI-O) calls
//! plugins over one unix socket that multiplexes two ttrpc connections ([`frame`]); this crate
//! serves the plugin side of NRI 0.8 ([`api`], what containerd 2.1 speaks), registers, follows
//! the runtime through restarts ([`plugin`]), and hands each request to a [`Handler`], which
//! decides.
//!
//! ```no_run
//! use std::sync::Arc;
//! use hookhost_nri::api::{Container, CreateContainerResponse, PodSandbox};
//! use hookhost_nri::{Config, Handler, Plugin, Refusal};
//!
//! struct Nothing;
//! impl Handler for Nothing {
//!     fn create_container(&self, _: &PodSandbox, _: &Container)
//!         -> Result<CreateContainerResponse, Refusal> {
//!         Ok(CreateContainerResponse::new())
//!     }
//! }
//! Plugin::new(Config::new("example", "50"))?.run(Arc::new(Nothing))?;
//! # Ok::<(), hookhost_nri::PluginError>(())
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod frame;
mod handler;
mod health;
mod mux;
pub mod plugin;
mod service;

pub use handler::{Handler, Refusal};
pub use mux::MuxError;
pub use plugin::{Config, Plugin, PluginError, Running, SessionError};

/// An error and its sources on one line.
pub(crate) fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
