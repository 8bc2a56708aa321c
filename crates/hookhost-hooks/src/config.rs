//! hookhost's own configuration file, read by the runtime wrapper (which engines start with a
//! minimal environment) and by the CLI.
//!
//! ```json
//! {
//!   "runtime": "/usr/bin/runc",
//!   "hooksDirs": ["/usr/share/containers/oci/hooks.d", "/etc/containers/oci/hooks.d"],
//!   "hooksDirsSkipInvalid": false,
//!   "cdiSpecDirs": ["/etc/cdi", "/var/run/cdi"],
//!   "allowInlineSpecs": false,
//!   "logLevel": "warn",
//!   "root": "/var/lib/hookhost",
//!   "eventsMaxSize": "64MiB",
//!   "selectFromEnv": true,
//!   "insecureRegistries": ["registry.lan:5000"],
//!   "verifyKeys": ["/etc/hookhost/cosign.pub"],
//!   "requireSignatures": true,
//!   "compileCpuTime": 10,
//!   "compileMemory": "512MiB",
//!   "replay": {"enabled": true, "maxSize": "256MiB", "keepEnvValues": false, "maxFileSize": "1MiB"}
//! }
//! ```
//!
//! Every key is optional. The file is `/etc/hookhost/config.json`, or the path in
//! `HOOKHOST_CONFIG`, or the CLI's `--config`. A missing default file means "all defaults"; a
//! file named explicitly must exist. Unknown keys are refused, so that a typo in a security
//! setting (`allowInlineSpec`) is an error rather than silently ignored.

use std::path::{Path, PathBuf};

use hookhost_exec::wasm::CompileLimits;
use serde::{Deserialize, Serialize};

use crate::hook::MAX_TIMEOUT_SECS;
use thiserror::Error;

/// Where the configuration is read from when nothing else is said.
pub const DEFAULT_FILE: &str = "/etc/hookhost/config.json";

/// The environment variable naming another configuration file.
pub const CONFIG_ENV: &str = "HOOKHOST_CONFIG";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("cannot read the hookhost config file {file}: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("the hookhost config file {file} is not valid: {reason}")]
    Invalid { file: PathBuf, reason: String },
    /// It decides what runs as root (`runtime`, `hooksDirs`, `allowInlineSpecs`), so it gets
    /// the registry's sudo-style checks.
    #[error("the hookhost config file is not trusted")]
    Untrusted(#[from] hookhost_exec::fs::Untrusted),
}

/// The settings; see the module documentation for the file format.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The real OCI runtime the wrapper execs: an absolute path or a name looked up on PATH.
    /// Default: `runc`, then `crun`, on PATH.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<PathBuf>,
    /// hooks.d directories (oci-hooks(5)) the wrapper reads as global hooks, in increasing
    /// precedence. Default: none — Podman and CRI-O run their own hooks.d themselves, and
    /// reading the same directories here would run those hooks twice.
    #[serde(default)]
    pub hooks_dirs: Vec<PathBuf>,
    /// Whether an invalid hooks.d file (or one another user could write) is skipped with a
    /// warning. Default: false — as in Podman, it refuses the container, so that a hook the
    /// administrator put there never silently stops running.
    #[serde(default)]
    pub hooks_dirs_skip_invalid: bool,
    /// CDI spec directories the wrapper, `inject` and `run` resolve a container's CDI devices
    /// from, in increasing priority. Default: `/etc/cdi`, `/var/run/cdi` (the CDI
    /// specification's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdi_spec_dirs: Vec<PathBuf>,
    /// Whether containers may bring their own hook paths (an inline path in
    /// `io.hookhost.hooks`/`HOOKHOST_HOOKS`, or an `io.hookhost.hook-spec`). Default: false —
    /// whoever starts a container would otherwise run any program as root on the host.
    #[serde(default)]
    pub allow_inline_specs: bool,
    /// The wrapper's log level for the runtime `--log` file: error, warn, info, debug.
    /// Default: warn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_level: Option<String>,
    /// The registry root. Default: `HOOKHOST_ROOT`, else `/var/lib/hookhost` for root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// The bound of `events.jsonl` (and of its one rotated generation), a size such as
    /// `64MiB`. Default: 64 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_max_size: Option<String>,
    /// Whether `HOOKHOST_HOOKS` in a container's process environment (which holds the image's
    /// `ENV` as well as `docker run -e`) may select hooks. Default: true — it can only name
    /// hooks root registered (inline paths need `allowInlineSpecs`); set false so that only
    /// annotations, the command line and global hooks select.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub select_from_env: Option<bool>,
    /// OCI registries (`HOST` or `HOST:PORT`) that `oci://` references may reach over plain
    /// HTTP. Loopback hosts always may; every other registry needs HTTPS. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub insecure_registries: Vec<String>,
    /// cosign public keys (PEM files) that verify hooks pulled from OCI registries when
    /// `create` names no `--verify-key`; when any is set, a signature by one of them is
    /// required. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verify_keys: Vec<PathBuf>,
    /// Whether every hook pulled from an OCI registry must carry a verified signature (then
    /// `verifyKeys` or `--verify-key` must name a key). Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_signatures: Option<bool>,
    /// The bound on compiling a WASM module when it is registered (`create`, `pull`, `apply`,
    /// `import`, `recompile`), in whole seconds of CPU time; a module that takes more is
    /// refused. Default: 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_cpu_time: Option<u64>,
    /// The memory bound on the same, a size such as `512MiB`. Default: 512 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compile_memory: Option<String>,
    /// The NRI plugin's settings (`hookhost nri`).
    #[serde(default, skip_serializing_if = "NriSettings::is_default")]
    pub nri: NriSettings,
    /// The replay records of WASM hook runs (`hookhost replay`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayConfig>,
}

/// `"replay": {…}` in the config file: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReplayConfig {
    /// Whether WASM hook runs are recorded. Default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// The bound of all records together, a size such as `256MiB` (oldest dropped first).
    /// Default: 256 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<String>,
    /// Whether the values of a hook's environment are kept (they can hold secrets); else only
    /// their names and sha256. Default: false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_env_values: Option<bool>,
    /// The most of one granted file's content kept (its digest is kept whatever its size).
    /// Default: 1 MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_file_size: Option<String>,
}

/// What the replay records are, resolved from [`ReplayConfig`] (carried in plan files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySettings {
    pub enabled: bool,
    pub max_size: u64,
    pub keep_env_values: bool,
    pub max_file_size: u64,
}

/// The default bound of all replay records together.
pub const DEFAULT_REPLAY_MAX_SIZE: u64 = 256 << 20;

/// The default bound of one granted file's content in a replay record.
pub const DEFAULT_REPLAY_MAX_FILE_SIZE: u64 = 1 << 20;

impl Default for ReplaySettings {
    fn default() -> Self {
        ReplaySettings {
            enabled: true,
            max_size: DEFAULT_REPLAY_MAX_SIZE,
            keep_env_values: false,
            max_file_size: DEFAULT_REPLAY_MAX_FILE_SIZE,
        }
    }
}

impl ReplayConfig {
    fn validate(&self) -> Result<(), String> {
        for (key, size) in [
            ("maxSize", &self.max_size),
            ("maxFileSize", &self.max_file_size),
        ] {
            if let Some(size) = size {
                hookhost_exec::limits::parse_size(size)
                    .map_err(|e| format!("replay.{key}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The settings (validated when read).
    pub fn settings(&self) -> ReplaySettings {
        let defaults = ReplaySettings::default();
        let size = |s: &Option<String>, default| {
            s.as_deref()
                .and_then(|s| hookhost_exec::limits::parse_size(s).ok())
                .unwrap_or(default)
        };
        ReplaySettings {
            enabled: self.enabled.unwrap_or(defaults.enabled),
            max_size: size(&self.max_size, defaults.max_size),
            keep_env_values: self.keep_env_values.unwrap_or(defaults.keep_env_values),
            max_file_size: size(&self.max_file_size, defaults.max_file_size),
        }
    }
}

/// NRI's default request timeout (containerd's `plugin_request_timeout`).
pub const DEFAULT_NRI_REQUEST_TIMEOUT_MS: u64 = 2000;

/// `"nri": {…}` in the config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NriSettings {
    /// Pod namespaces whose containers the guard (`hookhost nri guard-spec`) lets start when
    /// hookhost's NRI plugin did not prepare them: the plugin's own DaemonSet, kube-system.
    /// Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exempt_namespaces: Vec<String>,
    /// The share of the runtime's NRI request timeout the plugin's work for one container may
    /// take before it refuses the container itself, in percent (10–90). Default: 75.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_percent: Option<u8>,
    /// The runtime's NRI request timeout on this node, in milliseconds (containerd's
    /// `plugin_request_timeout`; default 2000), until the runtime's `Configure` says: what
    /// `hookhost create` checks precreate hooks' timeouts against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_timeout_ms: Option<u64>,
}

impl NriSettings {
    fn is_default(&self) -> bool {
        self == &NriSettings::default()
    }

    /// The budget's share of the request timeout, in percent.
    pub fn budget_percent(&self) -> u8 {
        self.budget_percent.unwrap_or(75).clamp(10, 90)
    }

    /// The runtime's request timeout as the config file says it (default NRI's 2 s).
    pub fn request_timeout_ms(&self) -> u64 {
        self.request_timeout_ms
            .unwrap_or(DEFAULT_NRI_REQUEST_TIMEOUT_MS)
    }

    /// The plugin's budget for one container under a request timeout of `request_timeout_ms`.
    pub fn budget_for(&self, request_timeout_ms: u64) -> std::time::Duration {
        std::time::Duration::from_millis(
            request_timeout_ms * u64::from(self.budget_percent()) / 100,
        )
    }

    /// The budget `hookhost create` checks precreate hooks against: only when the config file
    /// has an `"nri"` section (the node runs the plugin), from its request timeout.
    pub fn budget(&self) -> Option<std::time::Duration> {
        (!self.is_default()).then(|| self.budget_for(self.request_timeout_ms()))
    }
}

/// A loaded configuration and the file it came from (`None`: defaults, no file).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub config: Config,
    pub file: Option<PathBuf>,
}

impl Config {
    /// Reads the configuration: `explicit` (from `--config`), else `HOOKHOST_CONFIG`, else the
    /// default file if it exists.
    pub fn load(explicit: Option<&Path>) -> Result<Loaded, ConfigError> {
        let from_env = std::env::var_os(CONFIG_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        match explicit.map(Path::to_path_buf).or(from_env) {
            Some(file) => Ok(Loaded {
                config: Config::read(&file)?,
                file: Some(file),
            }),
            None => {
                let file = PathBuf::from(DEFAULT_FILE);
                match Config::read(&file) {
                    Ok(config) => Ok(Loaded {
                        config,
                        file: Some(file),
                    }),
                    Err(ConfigError::Read { source, .. })
                        if source.kind() == std::io::ErrorKind::NotFound =>
                    {
                        Ok(Loaded::default())
                    }
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// Reads and validates one file: owned by root (or the current user), writable by nobody
    /// else, in directories nobody else can write.
    pub fn read(file: &Path) -> Result<Config, ConfigError> {
        if file.exists() {
            hookhost_exec::fs::check_trusted_path(file)?;
        }
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Config::parse(&text).map_err(|reason| ConfigError::Invalid {
            file: file.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<Config, String> {
        let config: Config = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        if let Some(level) = &self.log_level
            && LogLevel::parse(level).is_none()
        {
            return Err(format!(
                "logLevel {level:?} is not one of error, warn, info, debug"
            ));
        }
        if let Some(dir) = self.hooks_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(format!("hooksDirs entry {dir:?} must be an absolute path"));
        }
        if let Some(root) = self.root.as_ref().filter(|r| !r.is_absolute()) {
            return Err(format!("root {root:?} must be an absolute path"));
        }
        if let Some(key) = self.verify_keys.iter().find(|k| !k.is_absolute()) {
            return Err(format!("verifyKeys entry {key:?} must be an absolute path"));
        }
        if self.require_signatures == Some(true) && self.verify_keys.is_empty() {
            return Err(
                "requireSignatures is true but verifyKeys names no key: add the \
                 cosign public key files that sign your hooks"
                    .into(),
            );
        }
        if let Some(size) = &self.events_max_size {
            hookhost_exec::limits::parse_size(size).map_err(|e| format!("eventsMaxSize: {e}"))?;
        }
        if let Some(replay) = &self.replay {
            replay.validate()?;
        }
        if let Some(size) = &self.compile_memory {
            hookhost_exec::limits::parse_size(size).map_err(|e| format!("compileMemory: {e}"))?;
        }
        if matches!(self.nri.request_timeout_ms, Some(ms) if !(100..=600_000).contains(&ms)) {
            return Err("nri.requestTimeoutMs must be between 100 and 600000".into());
        }
        // The same range as a hook's own timeout.
        if matches!(self.compile_cpu_time, Some(secs) if secs == 0 || secs > MAX_TIMEOUT_SECS) {
            return Err(format!(
                "compileCpuTime must be between 1 and {MAX_TIMEOUT_SECS} seconds"
            ));
        }
        Ok(())
    }

    /// The bounds on compiling a module at registration (validated when read).
    pub fn compile_limits(&self) -> CompileLimits {
        let defaults = CompileLimits::default();
        CompileLimits::registration(
            self.compile_cpu_time
                .or(defaults.cpu_secs)
                .unwrap_or_default(),
            self.compile_memory
                .as_deref()
                .and_then(|size| hookhost_exec::limits::parse_size(size).ok())
                .unwrap_or(defaults.memory),
        )
    }

    /// The audit trail's bound, when the file sets one (validated when read).
    pub fn events_max_size(&self) -> Option<u64> {
        self.events_max_size
            .as_deref()
            .and_then(|size| hookhost_exec::limits::parse_size(size).ok())
    }

    /// The replay records' settings, when the file has a `"replay"` section (else the
    /// defaults apply).
    pub fn replay_settings(&self) -> Option<ReplaySettings> {
        self.replay.as_ref().map(ReplayConfig::settings)
    }

    /// Whether `HOOKHOST_HOOKS` in the process environment selects hooks (default true).
    pub fn select_from_env(&self) -> bool {
        self.select_from_env.unwrap_or(true)
    }

    /// The wrapper's log level (default warn).
    pub fn log_level(&self) -> LogLevel {
        self.log_level
            .as_deref()
            .and_then(LogLevel::parse)
            .unwrap_or(LogLevel::Warn)
    }

    /// The registry root: `HOOKHOST_ROOT` (or `--root`) first, then this file's `root`, then
    /// the default.
    pub fn registry_root(&self, from_env_or_flag: Option<PathBuf>) -> PathBuf {
        from_env_or_flag
            .or_else(|| self.root.clone())
            .unwrap_or_else(crate::paths::Paths::default_root)
    }
}

/// How much the wrapper writes to the runtime's `--log` besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
}

impl LogLevel {
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_lowercase().as_str() {
            "error" => Some(LogLevel::Error),
            "warn" | "warning" => Some(LogLevel::Warn),
            "info" => Some(LogLevel::Info),
            "debug" | "trace" => Some(LogLevel::Debug),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_optional() {
        assert_eq!(Config::parse("{}").unwrap(), Config::default());
        let oci = Config::parse(
            r#"{"insecureRegistries":["r.lan:5000"],"verifyKeys":["/k.pub"],"requireSignatures":true}"#,
        )
        .unwrap();
        assert_eq!(oci.insecure_registries, ["r.lan:5000"]);
        assert_eq!(oci.require_signatures, Some(true));
        let c = Config::parse(
            r#"{"runtime":"crun","hooksDirs":["/etc/containers/oci/hooks.d"],
                "allowInlineSpecs":true,"logLevel":"debug","root":"/srv/hookhost"}"#,
        )
        .unwrap();
        assert_eq!(c.runtime.as_deref(), Some(Path::new("crun")));
        assert!(c.allow_inline_specs);
        assert_eq!(c.log_level(), LogLevel::Debug);
        assert_eq!(c.registry_root(None), Path::new("/srv/hookhost"));
        assert_eq!(
            c.registry_root(Some("/x".into())),
            Path::new("/x"),
            "HOOKHOST_ROOT wins"
        );
    }

    /// `replay` defaults to recording, 256 MiB in all, 1 MiB of a file, no env values; each key
    /// can be set, and a bad size or an unknown key is named.
    #[test]
    fn replay_settings_default_and_are_read() {
        assert_eq!(Config::default().replay_settings(), None);
        let defaults = ReplaySettings::default();
        assert!(defaults.enabled && !defaults.keep_env_values);
        assert_eq!(defaults.max_size, 256 << 20);
        assert_eq!(defaults.max_file_size, 1 << 20);
        let c = Config::parse(
            r#"{"replay":{"enabled":false,"maxSize":"1MiB","keepEnvValues":true,"maxFileSize":"4KiB"}}"#,
        )
        .unwrap();
        let expected = ReplaySettings {
            enabled: false,
            max_size: 1 << 20,
            keep_env_values: true,
            max_file_size: 4096,
        };
        assert_eq!(c.replay_settings(), Some(expected));
        let partial = Config::parse(r#"{"replay":{"enabled":false}}"#).unwrap();
        assert_eq!(
            partial.replay_settings(),
            Some(ReplaySettings {
                enabled: false,
                ..defaults
            })
        );
        let bad = Config::parse(r#"{"replay":{"maxSize":"lots"}}"#).unwrap_err();
        assert!(bad.contains("replay.maxSize"), "{bad}");
        let typo = Config::parse(r#"{"replay":{"maxsize":"1MiB"}}"#).unwrap_err();
        assert!(typo.contains("unknown field `maxsize`"), "{typo}");
    }

    #[test]
    fn typos_and_bad_values_are_named() {
        let cases = [
            (
                r#"{"allowInlineSpec":true}"#,
                "unknown field `allowInlineSpec`",
            ),
            (r#"{"logLevel":"loud"}"#, "logLevel \"loud\""),
            (r#"{"hooksDirs":["hooks.d"]}"#, "must be an absolute path"),
            (r#"{"root":"rel"}"#, "root \"rel\" must be an absolute path"),
            (r#"{"allowInlineSpecs":"yes"}"#, "invalid type"),
            (
                r#"{"verifyKeys":["cosign.pub"]}"#,
                "verifyKeys entry \"cosign.pub\" must be an absolute path",
            ),
            (
                r#"{"requireSignatures":true}"#,
                "requireSignatures is true but verifyKeys names no key",
            ),
            (r#"{"insecureRegistries":"r.lan"}"#, "invalid type"),
            (
                r#"{"compileCpuTime":0}"#,
                "compileCpuTime must be between 1 and",
            ),
            (
                r#"{"compileMemory":"lots"}"#,
                "compileMemory: invalid size \"lots\"",
            ),
        ];
        for (text, want) in cases {
            let err = Config::parse(text).unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn compile_limits_default_and_are_read() {
        assert_eq!(Config::default().compile_limits(), CompileLimits::default());
        let c = Config::parse(r#"{"compileCpuTime":1,"compileMemory":"64MiB"}"#).unwrap();
        assert_eq!(c.compile_limits(), CompileLimits::registration(1, 64 << 20));
    }

    #[test]
    fn an_explicit_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = Config::load(Some(&missing)).unwrap_err().to_string();
        assert!(err.contains("nope.json"), "{err}");
        let file = dir.path().join("c.json");
        std::fs::write(&file, r#"{"allowInlineSpecs":true}"#).unwrap();
        let loaded = Config::load(Some(&file)).unwrap();
        assert!(loaded.config.allow_inline_specs);
        assert_eq!(loaded.file.as_deref(), Some(file.as_path()));
    }

    #[test]
    fn a_file_others_can_write_is_refused_with_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        std::fs::write(&file, r#"{"allowInlineSpecs":true}"#).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = crate::error_chain(&Config::load(Some(&file)).unwrap_err());
        assert!(
            err.contains("not trusted") && err.contains("chmod go-w"),
            "{err}"
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(Config::load(Some(&file)).unwrap().config.allow_inline_specs);
    }
}
