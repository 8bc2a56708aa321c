//! The runc-compatible runtime wrapper, `hookhost-runtime`: [`handle`] decides what one runtime
//! call does (inject on create, run hooks around `start`, then the real runtime); [`main`] is
//! the whole program around it, which parses its argv and reports an error where engines look.
//!
//! Two executables run [`main`]: `hookhost` called as `hookhost-runtime` (or `hookhost runtime`),
//! and the small static `hookhost-runtime` built from crates/hookhost-stage, which is installed
//! beside hookhost and starts in a fraction of its time. Nothing here depends on Cranelift:
//! the runtime wrapper is a fresh process at every runtime call an engine makes.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{ExitCode, ExitStatus};

use thiserror::Error;

use hookhost_hooks::config::{Config, ConfigError, LogLevel};
use hookhost_hooks::paths::ROOT_ENV;
use hookhost_types::RUNTIME_EXECUTABLE;

pub mod argv;
pub mod log;
pub mod start;
pub mod wrapper;

use argv::RuncCall;
use log::{Level, LogError};
use start::{Start, StartError};
pub use wrapper::Hookhost;
use wrapper::{Injected, Wrapper, WrapperError};

/// Runs the wrapper with the arguments after the program name. Returns on failure, or with
/// the runtime's status when it ran as a child (a `start` with hooks around it); otherwise the
/// process becomes the real runtime. Errors go to the call's `--log` file (runc's format, where
/// containerd shows its last error line) and to stderr.
pub fn main(args: Vec<OsString>, hookhost: Hookhost) -> ExitCode {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let (config_file, args) = wrapper::take_config_flag(&args);
    let call = RuncCall::parse(&args, &cwd);
    let mut unlogged = |e: LogError| eprintln!("{RUNTIME_EXECUTABLE}: {e}");
    match handle(&call, &args, config_file, hookhost, &mut unlogged) {
        Ok(status) => exit_code(status),
        Err(err) => {
            let msg = format!("hookhost: {}", hookhost_core::error_chain(&err));
            if let Err(e) = log::log_error(&call, &msg) {
                unlogged(e);
            }
            eprintln!("{msg}");
            ExitCode::FAILURE
        }
    }
}

/// The child runtime's status as this process's: its code, or 128 + the signal, as a shell.
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or(status.signal().map(|s| 128 + s));
    ExitCode::from(code.unwrap_or(1).clamp(0, 255) as u8)
}

#[derive(Debug, Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Wrapper(#[from] WrapperError),
    #[error(transparent)]
    Start(#[from] StartError),
}

/// Handles one runtime call: injects the container's hooks when it creates one (and runs its
/// precreate hooks), runs startRuntime/poststart hooks around a `start` that has them (the real
/// runtime then runs as a child: its status is returned), and otherwise becomes the real
/// runtime (`execve`: returns only on failure). What was injected, and warnings, go to the
/// call's `--log` file as the config's log level says; a log that cannot be written is passed
/// to `unlogged`.
pub fn handle(
    call: &RuncCall,
    args: &[OsString],
    config_file: Option<PathBuf>,
    hookhost: Hookhost,
    unlogged: &mut dyn FnMut(LogError),
) -> Result<ExitStatus, RuntimeError> {
    let loaded = Config::load(config_file.as_deref())?;
    let level = loaded.config.log_level();
    let root_env = std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let wrapper = Wrapper::new(loaded.config, root_env, hookhost)?;
    let runtime = wrapper.runtime()?;
    let logger = Logger { call, level };
    if let Some(injected) = wrapper.prepare(call)? {
        logger.injected(&injected, unlogged);
    }
    if call.command.as_deref() == Some("start")
        && !call.help
        && let Start::Ran { status, warnings } = start::start(call, &runtime, args)?
    {
        logger.warnings(&warnings, unlogged);
        return Ok(status);
    }
    Err(wrapper::exec(&runtime, args).into())
}

/// Writes what the wrapper did to the call's `--log` file.
struct Logger<'a> {
    call: &'a RuncCall,
    level: LogLevel,
}

impl Logger<'_> {
    fn warnings(&self, warnings: &[String], unlogged: &mut dyn FnMut(LogError)) {
        if self.level >= LogLevel::Warn {
            for warning in warnings {
                self.write(Level::Warning, &format!("hookhost: {warning}"), unlogged);
            }
        }
    }

    /// What was injected (info) and what was skipped (warnings).
    fn injected(&self, injected: &Injected, unlogged: &mut dyn FnMut(LogError)) {
        let id = self.call.id.as_deref().unwrap_or("?");
        self.warnings(&injected.warnings, unlogged);
        if self.level >= LogLevel::Info {
            for (stage, names) in &injected.stages {
                let msg = format!("hookhost: container {id}: {stage}: {}", names.join(", "));
                self.write(Level::Info, &msg, unlogged);
            }
        }
    }

    fn write(&self, level: Level, msg: &str, unlogged: &mut dyn FnMut(LogError)) {
        let Some(path) = &self.call.log else { return };
        let format = log::LogFormat::from_flag(self.call.log_format.as_deref());
        if let Err(e) = log::append(path, format, level, msg) {
            unlogged(e);
        }
    }
}
