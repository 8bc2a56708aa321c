//! `hookhost run`: the seed's `docker run --add-hook`, as `docker run --runtime hookhost` with
//! the container's hook selection carried to the runtime wrapper.

use std::path::PathBuf;

use thiserror::Error;

use super::args::{self, RunLine};
use super::{ANNOTATION_API, RUNTIME_NAME};
use hookhost_core::plan::{Item, PlanError, Selection};
use hookhost_core::select::{HOOK_SPEC_ANNOTATION, HOOK_SPEC_ENV, HOOKS_ANNOTATION, HOOKS_ENV};
use hookhost_core::spec_file::{SpecError, SpecFile, SpecFileError};

pub const ADD_HOOK: &str = "--add-hook";
pub const HOOK_SPEC: &str = "--hook-spec";

#[derive(Debug, Error)]
pub enum RunError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Selection(#[from] PlanError),
    #[error(transparent)]
    Spec(#[from] SpecFileError),
    #[error("unrecognised Docker API version {0:?}")]
    ApiVersion(String),
}

/// What `hookhost run` was asked.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RunRequest {
    pub globals: Vec<String>,
    /// `--add-hook` values: `NAME[:JSON-ARGS]` (or an inline `/path[:JSON-ARGS]`).
    pub add_hooks: Vec<String>,
    pub hook_spec: Option<PathBuf>,
    /// `docker run` options, IMAGE and command.
    pub run_args: Vec<String>,
}

impl RunRequest {
    /// Reads `hookhost run`'s arguments: `--add-hook`/`--hook-spec` anywhere before IMAGE,
    /// Docker global flags, and `docker run` options.
    pub fn parse(args: &[String]) -> Result<RunRequest, RunError> {
        let RunLine {
            globals,
            taken,
            run_args,
            image_at,
        } = args::split_run(args, &[ADD_HOOK, HOOK_SPEC]).map_err(RunError::Usage)?;
        if image_at.is_none() && !run_args.iter().any(|a| a == "--help") {
            return Err(RunError::Usage("hookhost run needs an IMAGE".into()));
        }
        if run_args[..image_at.unwrap_or(run_args.len())]
            .iter()
            .any(|a| a == "--runtime" || a.starts_with("--runtime="))
        {
            return Err(RunError::Usage(format!(
                "hookhost run sets --runtime {RUNTIME_NAME} itself; use plain docker run for another runtime"
            )));
        }
        let mut request = RunRequest {
            globals,
            run_args,
            ..RunRequest::default()
        };
        for (flag, value) in taken {
            if flag == ADD_HOOK {
                request.add_hooks.push(value);
            } else if request.hook_spec.replace(value.into()).is_some() {
                return Err(RunError::Usage("--hook-spec may be given once".into()));
            }
        }
        Ok(request)
    }

    /// The registered hooks selected, each checked with the selection grammar every source
    /// shares (inline paths are checked too, and left to the wrapper's policy).
    pub fn selections(&self) -> Result<Vec<Selection>, RunError> {
        let mut names = Vec::new();
        for text in &self.add_hooks {
            if let Item::Registered(selection) = Item::parse(text)? {
                names.push(selection);
            }
        }
        Ok(names)
    }

    /// The `docker` argv (without the program name). `api` is the daemon's API version.
    pub fn docker_argv(&self, api: &str) -> Result<Vec<String>, RunError> {
        let annotations = api_at_least(api, ANNOTATION_API)?;
        let mut argv = self.globals.clone();
        argv.extend(["run".into(), "--runtime".into(), RUNTIME_NAME.into()]);
        let mut carry = |annotation: &str, env: &str, value: String| {
            if annotations {
                argv.extend(["--annotation".into(), format!("{annotation}={value}")]);
            } else {
                argv.extend(["-e".into(), format!("{env}={value}")]);
            }
        };
        if !self.add_hooks.is_empty() {
            carry(HOOKS_ANNOTATION, HOOKS_ENV, self.add_hooks.join(","));
        }
        if let Some(file) = &self.hook_spec {
            carry(HOOK_SPEC_ANNOTATION, HOOK_SPEC_ENV, spec_text(file)?);
        }
        argv.extend(self.run_args.iter().cloned());
        Ok(argv)
    }
}

/// The spec file, validated, as one line of JSON.
fn spec_text(file: &std::path::Path) -> Result<String, RunError> {
    let text = std::fs::read_to_string(file).map_err(|source| SpecFileError::Read {
        file: file.to_path_buf(),
        source,
    })?;
    let invalid = |source| SpecFileError::Invalid {
        file: file.to_path_buf(),
        source,
    };
    SpecFile::parse(&text).map_err(invalid)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(SpecError::Shape(e)))?;
    Ok(value.to_string())
}

/// Compares a Docker API version (`1.41`) with `(major, minor)`.
pub fn api_at_least(version: &str, wanted: (u32, u32)) -> Result<bool, RunError> {
    let bad = || RunError::ApiVersion(version.to_string());
    let (major, minor) = version.trim().split_once('.').ok_or_else(bad)?;
    let major: u32 = major.parse().map_err(|_| bad())?;
    let minor: u32 = minor.parse().map_err(|_| bad())?;
    Ok((major, minor) >= wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn old_daemons_get_the_environment_variable_new_ones_the_annotation() {
        let req = RunRequest::parse(&v(&[
            "--add-hook",
            r#"myFirstHook:["/tmp/b","/tmp/c"]"#,
            "--rm",
            "busybox",
            "top",
        ]))
        .unwrap();
        assert_eq!(
            req.docker_argv("1.41").unwrap(),
            v(&[
                "run",
                "--runtime",
                "hookhost",
                "-e",
                r#"HOOKHOST_HOOKS=myFirstHook:["/tmp/b","/tmp/c"]"#,
                "--rm",
                "busybox",
                "top"
            ])
        );
        let argv = req.docker_argv("1.43").unwrap();
        assert_eq!(argv[3], "--annotation");
        assert_eq!(
            argv[4],
            r#"io.hookhost.hooks=myFirstHook:["/tmp/b","/tmp/c"]"#
        );
        assert!(matches!(req.docker_argv("x"), Err(RunError::ApiVersion(_))));
    }

    #[test]
    fn usage_errors_are_named() {
        let err = RunRequest::parse(&v(&["--rm"])).unwrap_err().to_string();
        assert!(err.contains("needs an IMAGE"), "{err}");
        let err = RunRequest::parse(&v(&["--runtime", "runc", "busybox"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("sets --runtime hookhost itself"), "{err}");
        let req = RunRequest::parse(&v(&["--add-hook", "bad name!", "busybox"])).unwrap();
        assert!(
            req.selections()
                .unwrap_err()
                .to_string()
                .contains("invalid hook name")
        );
    }

    #[test]
    fn versions_compare_numerically() {
        assert!(api_at_least("1.43", (1, 43)).unwrap());
        assert!(api_at_least("1.100", (1, 43)).unwrap());
        assert!(!api_at_least("1.41", (1, 43)).unwrap());
        assert!(api_at_least("2.0", (1, 43)).unwrap());
    }
}
