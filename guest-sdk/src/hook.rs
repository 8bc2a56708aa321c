//! What a hook is given: the state, the stage, its args and environment, and the granted
//! bundle and root filesystem.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::Spec;

use hookhost_types::{BUNDLE_GUEST, ROOTFS_GUEST, Stage, State, StateError};

use crate::invocation;

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error("cannot read the container state from stdin: {0}")]
    ReadState(#[source] std::io::Error),
    #[error(transparent)]
    ParseState(#[from] StateError),
    #[error("cannot read {path}: {source} (was the hook registered with --allow-bundle?)")]
    BundleConfig {
        path: PathBuf,
        source: oci_spec::OciSpecError,
    },
    #[error("{path}: {source} (was the hook registered with --allow-rootfs=rw?)")]
    Rootfs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("path {0:?} inside the rootfs must not contain `..`")]
    BadRootfsPath(PathBuf),
}

/// One hook invocation.
#[derive(Debug, Clone)]
pub struct Hook {
    pub state: State,
    /// From `HOOKHOST_STAGE`; `None` when run outside hookhost.
    pub stage: Option<Stage>,
    /// argv; `args[0]` is argv0, [`Hook::extra_args`] the rest.
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    bundle_dir: PathBuf,
    rootfs_dir: PathBuf,
}

impl Hook {
    /// The invocation hookhost set up: state from stdin, args and environment of the process.
    pub fn from_process() -> Result<Hook, GuestError> {
        let mut stdin = String::new();
        std::io::stdin()
            .read_to_string(&mut stdin)
            .map_err(GuestError::ReadState)?;
        let state = State::parse(stdin.as_bytes())?;
        Ok(Hook::new(state)
            .with_args(std::env::args())
            .with_env(std::env::vars()))
    }

    /// A hook for `state` with no args or environment; for tests, with the `with_*` methods.
    pub fn new(state: State) -> Hook {
        Hook {
            state,
            stage: None,
            args: Vec::new(),
            env: BTreeMap::new(),
            bundle_dir: PathBuf::from(BUNDLE_GUEST),
            rootfs_dir: PathBuf::from(ROOTFS_GUEST),
        }
    }

    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Hook {
        self.args = invocation::args(args);
        self
    }

    /// Sets the environment; the stage is read from its stage variable (`HOOKHOST_STAGE`).
    pub fn with_env<K: Into<String>, V: Into<String>>(
        mut self,
        env: impl IntoIterator<Item = (K, V)>,
    ) -> Hook {
        self.env = invocation::env(env);
        self.stage = invocation::stage(&self.env);
        self
    }

    pub fn with_stage(mut self, stage: Stage) -> Hook {
        self.stage = Some(stage);
        self
    }

    /// Where the bundle is found (default `/bundle`); tests point it at a temporary dir.
    pub fn with_bundle_dir(mut self, dir: impl Into<PathBuf>) -> Hook {
        self.bundle_dir = dir.into();
        self
    }

    /// Where the rootfs is found (default `/rootfs`); tests point it at a temporary dir.
    pub fn with_rootfs_dir(mut self, dir: impl Into<PathBuf>) -> Hook {
        self.rootfs_dir = dir.into();
        self
    }

    /// The arguments after argv0 (registered args, then `--add-hook` extras).
    pub fn extra_args(&self) -> &[String] {
        invocation::extra(&self.args)
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// The bundle's `config.json` as typed `oci-spec` (needs `--allow-bundle`).
    pub fn bundle_spec(&self) -> Result<Spec, GuestError> {
        let path = self.bundle_dir.join("config.json");
        Spec::load(&path).map_err(|source| GuestError::BundleConfig { path, source })
    }

    /// A path inside the container's root filesystem: `/etc/hosts` → `/rootfs/etc/hosts`.
    pub fn rootfs_path(&self, path: impl AsRef<Path>) -> Result<PathBuf, GuestError> {
        let path = path.as_ref();
        let mut joined = self.rootfs_dir.clone();
        for component in path.components() {
            match component {
                Component::Normal(part) => joined.push(part),
                Component::RootDir | Component::CurDir => {}
                _ => return Err(GuestError::BadRootfsPath(path.to_path_buf())),
            }
        }
        Ok(joined)
    }

    /// Reads a file of the rootfs; `Ok(None)` if it does not exist (needs `--allow-rootfs`).
    pub fn read_rootfs_file(&self, path: impl AsRef<Path>) -> Result<Option<String>, GuestError> {
        let full = self.rootfs_path(path)?;
        match std::fs::read_to_string(&full) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(GuestError::Rootfs { path: full, source }),
        }
    }

    /// Writes a file of the rootfs, creating parent directories (needs `--allow-rootfs=rw`).
    pub fn write_rootfs_file(
        &self,
        path: impl AsRef<Path>,
        contents: impl AsRef<[u8]>,
    ) -> Result<(), GuestError> {
        let full = self.rootfs_path(path)?;
        let rootfs_err = |source| GuestError::Rootfs {
            path: full.clone(),
            source,
        };
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).map_err(rootfs_err)?;
        }
        std::fs::write(&full, contents).map_err(rootfs_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_types::STAGE_ENV;

    fn hook() -> Hook {
        Hook::new(State::default())
    }

    #[test]
    fn args_env_and_stage() {
        let hook = hook()
            .with_args(["prog", "a", "b"])
            .with_env([(STAGE_ENV, "poststart"), ("X", "1")]);
        assert_eq!(hook.extra_args(), ["a", "b"]);
        assert_eq!(hook.stage, Some(Stage::Poststart));
        assert_eq!(hook.var("X"), Some("1"));
        assert!(Hook::new(State::default()).extra_args().is_empty());
    }

    /// The host accepts a state without `ociVersion` and `status` (only `id` is required), and
    /// so must a guest: both parse it with the one `hookhost_types::State`.
    #[test]
    fn a_state_without_version_or_status_is_accepted() {
        let state = State::parse(br#"{"id":"c1","bundle":"/b"}"#).unwrap();
        let hook = Hook::new(state).with_env([(STAGE_ENV, "createRuntime")]);
        assert_eq!(hook.state.id, "c1");
        assert_eq!(hook.state.status, "");
        assert_eq!(hook.stage, Some(Stage::CreateRuntime));
    }

    #[test]
    fn rootfs_paths_stay_inside() {
        let hook = hook().with_rootfs_dir("/r");
        assert_eq!(
            hook.rootfs_path("/etc/hosts").unwrap(),
            Path::new("/r/etc/hosts")
        );
        assert_eq!(hook.rootfs_path("etc/./x").unwrap(), Path::new("/r/etc/x"));
        assert!(hook.rootfs_path("/etc/../../x").is_err());
    }

    #[test]
    fn rootfs_files_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let hook = hook().with_rootfs_dir(tmp.path());
        assert_eq!(hook.read_rootfs_file("/etc/hosts").unwrap(), None);
        hook.write_rootfs_file("/etc/hosts", "127.0.0.1 localhost\n")
            .unwrap();
        let text = hook.read_rootfs_file("/etc/hosts").unwrap();
        assert_eq!(text.as_deref(), Some("127.0.0.1 localhost\n"));
    }

    #[test]
    fn bundle_spec_is_typed_and_missing_bundle_is_explained() {
        let tmp = tempfile::tempdir().unwrap();
        let config = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
            "process":{"cwd":"/","args":["sh"],"user":{"uid":0,"gid":0}}}"#;
        std::fs::write(tmp.path().join("config.json"), config).unwrap();
        let spec = hook().with_bundle_dir(tmp.path()).bundle_spec().unwrap();
        assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
        let err = hook()
            .with_bundle_dir("/nonexistent")
            .bundle_spec()
            .unwrap_err();
        assert!(err.to_string().contains("--allow-bundle"), "{err}");
    }
}
