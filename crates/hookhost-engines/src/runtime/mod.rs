//! The runc-compatible runtime wrapper: [`handle`] decides what one runtime call does (inject
//! on create, run hooks around `start`, then the real runtime); the binary only parses its
//! argv and reports an error.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;

use thiserror::Error;

use hookhost_hooks::config::{Config, ConfigError, LogLevel};
use hookhost_hooks::paths::ROOT_ENV;

pub mod argv;
pub mod log;
pub mod start;
pub mod wrapper;

use argv::RuncCall;
use log::{Level, LogError};
use start::{Start, StartError};
use wrapper::{Injected, Wrapper, WrapperError};

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
    unlogged: &mut dyn FnMut(LogError),
) -> Result<ExitStatus, RuntimeError> {
    let loaded = Config::load(config_file.as_deref())?;
    let level = loaded.config.log_level();
    let root_env = std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let wrapper = Wrapper::new(loaded.config, root_env)?;
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
