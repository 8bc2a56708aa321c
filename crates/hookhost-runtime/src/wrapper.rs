//! `hookhost-runtime`: a drop-in runc-compatible runtime. On `create`, `run` and `restore` (the
//! commands that create a container from a bundle) it injects the container's hooks into the
//! bundle's config.json, then it `execve`s the real runtime with the original arguments; every
//! other call goes straight through.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use thiserror::Error;

use super::argv::{RuncCall, is_valid_id};
use hookhost_core::bundle::SelfCall;
pub use hookhost_core::prepare::Injected;
use hookhost_core::prepare::{Container, PrepareError, prepare};
use hookhost_core::select::{CommandLine, Sources};
use hookhost_hooks::config::Config;
use hookhost_hooks::registry::{Registry, RegistryError};
use hookhost_types::HOOKHOST_EXECUTABLE;

/// The runtimes tried, in order, when the config file names none.
pub const DEFAULT_RUNTIMES: [&str; 2] = ["runc", "crun"];

/// The wrapper's own global flag, `--hookhost-config=FILE`, for engines that start the runtime
/// with a minimal environment (no `HOOKHOST_CONFIG`): Docker's `runtimeArgs`, Podman's
/// `--runtime-flag hookhost-config=FILE`. Removed before the real runtime sees the arguments.
pub const CONFIG_FLAG: &str = "--hookhost-config=";

/// PATH when the engine gave the wrapper none.
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Error)]
pub enum WrapperError {
    #[error("no OCI runtime found: tried {tried} (set \"runtime\" in hookhost's config file)")]
    NoRuntime { tried: String },
    #[error(
        "the configured runtime {0} is hookhost itself; set \"runtime\" to runc or crun \
         in hookhost's config file"
    )]
    RuntimeIsSelf(PathBuf),
    #[error("invalid container id {id:?}: {}; no hook ran", super::argv::ID_RULE)]
    InvalidId { id: String },
    #[error("`{command}` names no container id (give it after the flags); no hook ran")]
    MissingId { command: String },
    #[error("cannot find hookhost's own executable: {0}")]
    SelfExe(std::io::Error),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error("cannot execute the runtime {runtime}: {source}")]
    Exec {
        runtime: PathBuf,
        source: std::io::Error,
    },
}

/// The wrapper's settings for one call.
#[derive(Debug, Clone)]
pub struct Wrapper {
    pub config: Config,
    /// The registry root hooks are read from and stage runs are recorded under.
    pub root: PathBuf,
    /// This process's executable, which the real runtime must never be.
    pub self_exe: PathBuf,
    /// hookhost's executable, written into config.json as the stage hook.
    pub hookhost: PathBuf,
}

/// Where the hookhost whose stage calls the wrapper writes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hookhost {
    /// This executable: hookhost run under the wrapper's name.
    ThisExecutable,
    /// The [`HOOKHOST_EXECUTABLE`] beside this one: the small wrapper, whose stage entries
    /// name that hookhost (it runs the hooks around `start` itself).
    Beside,
}

impl Wrapper {
    pub fn new(
        config: Config,
        root_override: Option<PathBuf>,
        hookhost: Hookhost,
    ) -> Result<Wrapper, WrapperError> {
        let self_exe = std::env::current_exe().map_err(WrapperError::SelfExe)?;
        let root = config.registry_root(root_override);
        Ok(Wrapper {
            config,
            root: std::path::absolute(&root).unwrap_or(root),
            hookhost: match hookhost {
                Hookhost::ThisExecutable => self_exe.clone(),
                Hookhost::Beside => self_exe.with_file_name(HOOKHOST_EXECUTABLE),
            },
            self_exe,
        })
    }

    /// The real runtime: the configured one, else `runc`, then `crun`, on PATH — never hookhost
    /// (this executable, nor the hookhost beside the small wrapper).
    pub fn runtime(&self) -> Result<PathBuf, WrapperError> {
        let both = [self.self_exe.as_path(), self.hookhost.as_path()];
        let selves = match self.hookhost == self.self_exe {
            true => &both[..1],
            false => &both[..],
        };
        resolve_runtime(self.config.runtime.as_deref(), selves)
    }

    /// Injects the container's hooks into its bundle when `call` creates a container.
    pub fn prepare(&self, call: &RuncCall) -> Result<Option<Injected>, WrapperError> {
        match (&call.bundle, call.creates_container()) {
            (Some(bundle), true) => {
                let at_start = call.command.as_deref() == Some("create");
                let log = super::log::runtime_log(call);
                let container = Container {
                    id: Some(checked_id(call)?),
                    bundle: Some(bundle),
                    deadline: None,
                };
                self.inject(bundle, at_start, log, container).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Selects and injects (`hookhost_core::prepare`). `at_start`: the engine calls `create`
    /// and later `start`, at which the wrapper runs startRuntime and poststart itself
    /// (`run` and `restore` start the container in the same call, and so cannot).
    /// `runtime_log`: the call's `--log`, where stage warnings are also written. Precreate
    /// hooks run here, before the real runtime sees the bundle.
    pub fn inject(
        &self,
        bundle: &Path,
        at_start: bool,
        runtime_log: Option<hookhost_core::runtime_log::RuntimeLog>,
        container: Container,
    ) -> Result<Injected, WrapperError> {
        // A missing registry is not created here: the wrapper has no business making one.
        let registry = match self.root.join("hooks").is_dir() {
            true => Some(Registry::open(&self.root)?),
            false => None,
        };
        let sources = Sources::configured(registry.as_ref(), &self.root, &self.config);
        let call = SelfCall {
            exe: self.hookhost.clone(),
            root: self.root.clone(),
            events_max_size: self.config.events_max_size(),
            replay: self.config.replay_settings(),
            runtime_log,
            at_start,
            absolute_plan: false,
            check_exe: self.hookhost != self.self_exe,
        };
        Ok(prepare(
            bundle,
            &sources,
            &CommandLine::default(),
            &call,
            container,
        )?)
    }
}

/// The id of a container-creating call, when runc would accept it ([`is_valid_id`]): refused
/// before any hook runs, since hooks record their runs under it and runc refuses it only after.
fn checked_id(call: &RuncCall) -> Result<&str, WrapperError> {
    match call.id.as_deref() {
        Some(id) if is_valid_id(id) => Ok(id),
        Some(id) => Err(WrapperError::InvalidId { id: id.to_string() }),
        None => Err(WrapperError::MissingId {
            command: call.command.clone().unwrap_or_default(),
        }),
    }
}

/// Takes `--hookhost-config=FILE` out of the global flags (before the subcommand); returns
/// the last one given and the arguments for the real runtime.
pub fn take_config_flag(args: &[OsString]) -> (Option<PathBuf>, Vec<OsString>) {
    use std::os::unix::ffi::OsStrExt;
    let command = RuncCall::parse(args, Path::new("/")).command;
    let mut file = None;
    let mut rest = Vec::with_capacity(args.len());
    let mut in_globals = true;
    for arg in args {
        if in_globals
            && command
                .as_deref()
                .is_some_and(|c| arg.as_bytes() == c.as_bytes())
        {
            in_globals = false;
        }
        match arg.as_bytes().strip_prefix(CONFIG_FLAG.as_bytes()) {
            Some(value) if in_globals => {
                file = Some(PathBuf::from(std::ffi::OsStr::from_bytes(value)));
            }
            _ => rest.push(arg.clone()),
        }
    }
    (file, rest)
}

/// Replaces this process with `runtime ARGS…`; returns only on failure.
pub fn exec(runtime: &Path, args: &[OsString]) -> WrapperError {
    let source = Command::new(runtime).args(args).exec();
    WrapperError::Exec {
        runtime: runtime.to_path_buf(),
        source,
    }
}

/// Finds the real runtime. `configured` may be a path or a name looked up on PATH.
pub fn resolve_runtime(
    configured: Option<&Path>,
    selves: &[&Path],
) -> Result<PathBuf, WrapperError> {
    let candidates: Vec<PathBuf> = match configured {
        Some(path) => vec![path.to_path_buf()],
        None => DEFAULT_RUNTIMES.iter().map(PathBuf::from).collect(),
    };
    let selves: Vec<_> = selves.iter().filter_map(|me| file_id(me)).collect();
    for candidate in &candidates {
        for found in locate(candidate) {
            if !file_id(&found).is_some_and(|id| selves.contains(&id)) {
                return Ok(found);
            }
            if configured.is_some() {
                return Err(WrapperError::RuntimeIsSelf(found));
            }
        }
    }
    let tried = candidates
        .iter()
        .map(|c| c.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    Err(WrapperError::NoRuntime {
        tried: format!("{tried} (PATH={})", search_path()),
    })
}

/// Every executable `name` resolves to: itself when it has a '/', else each match on PATH.
fn locate(name: &Path) -> Vec<PathBuf> {
    if name.components().count() > 1 || name.is_absolute() {
        return [name.to_path_buf()]
            .into_iter()
            .filter(|p| is_executable(p))
            .collect();
    }
    std::env::split_paths(&search_path())
        .map(|dir| dir.join(name))
        .filter(|p| p.is_absolute() && is_executable(p))
        .collect()
}

fn search_path() -> String {
    std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| FALLBACK_PATH.to_string())
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `a` and `b` are one file (through symlinks, and hard links too).
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn the_config_flag_is_taken_out_of_the_global_flags_only() {
        let args: Vec<OsString> = [
            "--root",
            "/r",
            "--hookhost-config=/etc/h.json",
            "exec",
            "id",
            "sh",
            "--hookhost-config=/x",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let (file, rest) = take_config_flag(&args);
        assert_eq!(file.as_deref(), Some(Path::new("/etc/h.json")));
        assert_eq!(rest.len(), args.len() - 1);
        assert_eq!(rest[2], "exec");
        assert_eq!(rest[5], "--hookhost-config=/x");
    }

    #[test]
    fn never_resolves_to_itself() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::env::current_exe().unwrap();
        let link = dir.path().join("hookhost-runtime");
        symlink(&me, &link).unwrap();
        let err = resolve_runtime(Some(&link), &[&me])
            .unwrap_err()
            .to_string();
        assert!(err.contains("is hookhost itself"), "{err}");
        let missing = dir.path().join("nope");
        let err = resolve_runtime(Some(&missing), &[&me])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no OCI runtime found") && err.contains("nope"),
            "{err}"
        );
        let sh = resolve_runtime(Some(Path::new("sh")), &[&me]).unwrap();
        assert!(sh.is_absolute(), "{sh:?}");
    }
}
