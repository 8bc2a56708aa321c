//! `hookhost-runtime` / `hookhost runtime`: the runc-compatible wrapper's thin CLI edge. It
//! reports errors where engines look for them: the runtime's `--log` file (runc's format) and
//! stderr.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use hookhost_engines::runtime::argv::RuncCall;
use hookhost_engines::runtime::log::{self, Level, LogFormat};
use hookhost_engines::runtime::start::{self, Start};
use hookhost_engines::runtime::wrapper::{self, Injected, Wrapper};
use hookhost_hooks::config::{Config, LogLevel};
use hookhost_hooks::paths::ROOT_ENV;

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
    match run(&call, &args, config_file) {
        Ok(code) => code,
        Err(err) => {
            fail(&call, &err);
            ExitCode::FAILURE
        }
    }
}

fn run(
    call: &RuncCall,
    args: &[OsString],
    config_file: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let loaded = Config::load(config_file.as_deref())?;
    let level = loaded.config.log_level();
    let root_env = std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let wrapper = Wrapper::new(loaded.config, root_env)?;
    let runtime = wrapper.runtime()?;
    if let Some(injected) = wrapper.prepare(call)? {
        log_injected(call, level, &injected);
    }
    if call.command.as_deref() == Some("start")
        && !call.help
        && let Start::Ran { status, warnings } = start::start(call, &runtime, args)?
    {
        log_warnings(call, level, &warnings);
        return Ok(exit_code(status));
    }
    Err(wrapper::exec(&runtime, args).into())
}

/// The child runtime's status as this process's: its code, or 128 + the signal, as a shell.
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or(status.signal().map(|s| 128 + s));
    ExitCode::from(code.unwrap_or(1).clamp(0, 255) as u8)
}

fn log_warnings(call: &RuncCall, level: LogLevel, warnings: &[String]) {
    if level >= LogLevel::Warn {
        for warning in warnings {
            write_log(call, Level::Warning, &format!("hookhost: {warning}"));
        }
    }
}

/// Records what was injected (info) and what was skipped (warnings) in the `--log` file.
fn log_injected(call: &RuncCall, level: LogLevel, injected: &Injected) {
    let id = call.id.as_deref().unwrap_or("?");
    log_warnings(call, level, &injected.warnings);
    if level >= LogLevel::Info {
        for (stage, names) in &injected.stages {
            let msg = format!("hookhost: container {id}: {stage}: {}", names.join(", "));
            write_log(call, Level::Info, &msg);
        }
    }
}

fn write_log(call: &RuncCall, level: Level, msg: &str) {
    let Some(path) = &call.log else { return };
    let format = LogFormat::from_flag(call.log_format.as_deref());
    if let Err(e) = log::append(path, format, level, msg) {
        eprintln!("hookhost-runtime: {e}");
    }
}

/// The error goes to the `--log` file (containerd shows its last error line) and to stderr.
fn fail(call: &RuncCall, err: &anyhow::Error) {
    let msg = format!("hookhost: {}", super::chain_text(err));
    if let Err(e) = log::log_error(call, &msg) {
        eprintln!("hookhost-runtime: {e}");
    }
    eprintln!("{msg}");
}
