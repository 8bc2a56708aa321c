//! `hookhost runtime`: the runc-compatible wrapper as a subcommand, for its `--help`; what it
//! runs is `hookhost_runtime::main`, as for `hookhost-runtime`.

use std::ffi::OsString;

use clap::Args;

/// Run as an OCI runtime (runc-compatible): inject this container's hooks on create, run and
/// restore, then exec the real runtime. Usually called as `hookhost-runtime` by Docker or containerd.
#[derive(Debug, Args)]
#[command(
    disable_help_flag = true,
    after_help = "Register with Docker:  hookhost install docker --reload\n\
    Then:                  docker run --runtime hookhost --annotation io.hookhost.hooks=NAME IMAGE\n\
    Settings (real runtime, hooks.d dirs, inline specs, log level, registry root) come from\n\
    /etc/hookhost/config.json, $HOOKHOST_CONFIG, or the wrapper's own global flag\n\
    --hookhost-config=FILE (Docker runtimeArgs, podman --runtime-flag hookhost-config=FILE)."
)]
pub struct RuntimeArgs {
    /// The runtime's arguments, exactly as for runc
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "RUNC-ARGS"
    )]
    pub args: Vec<OsString>,
}
