//! Docker integration: registering the runtime in daemon.json, turning `hookhost run` into
//! `docker run --runtime hookhost`, and the `docker hook` CLI plugin.

pub mod args;
pub mod daemon_json;
pub mod plugin;
pub mod run;

/// The runtime name hookhost registers in daemon.json and passes to `docker run --runtime`.
pub const RUNTIME_NAME: &str = "hookhost";

/// The first Docker API version whose `docker run --annotation` reaches config.json (Docker 24).
pub const ANNOTATION_API: (u32, u32) = (1, 43);
