//! `hookhost-runtime` / `hookhost runtime`: the runc-compatible wrapper's thin CLI edge
//! (what a call does is `hookhost_engines::runtime::handle`). It reports errors where engines
//! look for them: the runtime's `--log` file (runc's format) and stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use hookhost_engines::runtime::argv::RuncCall;
use hookhost_engines::runtime::log::{self, LogError};
use hookhost_engines::runtime::{self, wrapper};

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

/// Runs the wrapper with the arguments after the program name. Returns on failure, or with
/// the runtime's status when it ran as a child (a `start` with hooks around it); otherwise the
/// process becomes the real runtime.
pub fn main(args: Vec<OsString>) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (config_file, args) = wrapper::take_config_flag(&args);
    let call = RuncCall::parse(&args, &cwd);
    let mut unlogged = |e: LogError| eprintln!("hookhost-runtime: {e}");
    match runtime::handle(&call, &args, config_file, &mut unlogged) {
        Ok(status) => exit_code(status),
        Err(err) => {
            fail(&call, &err.into());
            ExitCode::FAILURE
        }
    }
}

/// The child runtime's status as this process's: its code, or 128 + the signal, as a shell.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or(status.signal().map(|s| 128 + s));
    ExitCode::from(code.unwrap_or(1).clamp(0, 255) as u8)
}

/// The error goes to the `--log` file (containerd shows its last error line) and to stderr.
fn fail(call: &RuncCall, err: &anyhow::Error) {
    let msg = format!("hookhost: {}", super::chain_text(err));
    if let Err(e) = log::log_error(call, &msg) {
        eprintln!("hookhost-runtime: {e}");
    }
    eprintln!("{msg}");
}
