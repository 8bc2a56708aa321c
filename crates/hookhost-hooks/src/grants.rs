//! Capabilities granted to a WebAssembly hook by whoever registers it.
//!
//! A WASM hook starts with nothing: no files, no host environment, no network. The registering
//! administrator may grant host directories (`--allow-dir`), the container's bundle
//! (`--allow-bundle`, at `/bundle`) or root filesystem (`--allow-rootfs`, at `/rootfs`), and named
//! host environment variables (`--allow-env`). Grants are fixed at create time; nothing a
//! container or `--add-hook` supplies can widen them. Bundle and rootfs grants name no path:
//! they resolve at run time from the container being hooked.

use std::collections::HashSet;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use hookhost_exec::wasm::Preopen;

pub use hookhost_types::{BUNDLE_GUEST, ROOTFS_GUEST};

/// Why a precreate hook may not have the bundle read-write.
pub const PRECREATE_BUNDLE_RW: &str = "a precreate hook may not be granted --allow-bundle=rw: \
    it could rewrite config.json after its output was checked against its --may-adjust grants \
    (register it with --allow-bundle=ro, and return its edit on stdout)";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    #[default]
    #[serde(rename = "ro")]
    ReadOnly,
    #[serde(rename = "rw")]
    ReadWrite,
}

/// A host directory granted at a guest path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirGrant {
    pub host: PathBuf,
    pub guest: String,
    pub access: Access,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// The container's bundle directory at `/bundle`.
    pub bundle: Option<Access>,
    /// The container's root filesystem (`root.path` of `config.json`) at `/rootfs`.
    pub rootfs: Option<Access>,
    /// Names of host environment variables passed through.
    pub env: Vec<String>,
}

/// What the grants amount to for one container run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolved {
    pub preopens: Vec<Preopen>,
    /// Granted host variables that are set on the host, as `(name, value)`.
    pub env: Vec<(String, String)>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GrantError {
    #[error("invalid access {0:?}: use ro or rw")]
    BadAccess(String),
    #[error("invalid --allow-dir {0:?}: use HOST[:GUEST][:ro|rw]")]
    BadDirSpec(String),
    #[error("granted host path {0:?} is not absolute")]
    HostNotAbsolute(PathBuf),
    #[error("granted host directory {path:?} cannot be used: {reason}")]
    HostUnusable { path: PathBuf, reason: String },
    #[error("guest path {0:?} must be absolute and contain no `.` or `..`")]
    BadGuestPath(String),
    #[error("guest path {0:?} is granted twice")]
    DuplicateGuest(String),
    #[error(
        "invalid environment variable name {0:?}: use letters, digits and _, not starting with a digit"
    )]
    BadEnvName(String),
    #[error("{}", PRECREATE_BUNDLE_RW)]
    PrecreateBundleWritable,
    #[error("the hook is granted the container's {what}, but {why}")]
    Unresolved { what: &'static str, why: String },
}

impl Access {
    pub fn is_writable(self) -> bool {
        self == Access::ReadWrite
    }

    /// For `--allow-bundle[=ro|rw]` and `--allow-rootfs[=ro|rw]`: no value means read-only.
    pub fn from_flag_value(value: Option<&str>) -> Result<Access, GrantError> {
        value.map_or(Ok(Access::ReadOnly), str::parse)
    }
}

impl FromStr for Access {
    type Err = GrantError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "ro" => Ok(Access::ReadOnly),
            "rw" => Ok(Access::ReadWrite),
            other => Err(GrantError::BadAccess(other.to_string())),
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
        })
    }
}

impl FromStr for DirGrant {
    type Err = GrantError;

    /// `HOST[:GUEST][:ro|rw]`; the guest path defaults to the host path, access to `ro`.
    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let bad = || GrantError::BadDirSpec(spec.to_string());
        let parts: Vec<&str> = spec.split(':').collect();
        let (host, guest, access) = match parts.as_slice() {
            [host] => (*host, None, None),
            [host, last] if matches!(*last, "ro" | "rw") => (*host, None, Some(*last)),
            [host, guest] => (*host, Some(*guest), None),
            [host, guest, access] => (*host, Some(*guest), Some(*access)),
            _ => return Err(bad()),
        };
        if host.is_empty() || guest.is_some_and(str::is_empty) {
            return Err(bad());
        }
        Ok(DirGrant {
            host: PathBuf::from(host),
            guest: normalise_guest(guest.unwrap_or(host)),
            access: access.map_or(Ok(Access::ReadOnly), str::parse)?,
        })
    }
}

impl fmt::Display for DirGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.host.display(), self.guest, self.access)
    }
}

/// Drops trailing slashes so `/log/` and `/log` are the same guest path.
fn normalise_guest(guest: &str) -> String {
    let trimmed = guest.trim_end_matches('/');
    if trimmed.is_empty() && guest.starts_with('/') {
        "/".to_string()
    } else {
        trimmed.to_string()
    }
}

impl Grants {
    /// Create-time checks: host dirs absolute and existing, guest paths absolute and distinct,
    /// environment names well-formed.
    pub fn validate(&self) -> Result<(), GrantError> {
        let mut guests = HashSet::new();
        let fixed = [
            self.bundle.map(|_| BUNDLE_GUEST),
            self.rootfs.map(|_| ROOTFS_GUEST),
        ];
        for guest in fixed.into_iter().flatten() {
            guests.insert(guest.to_string());
        }
        for dir in &self.dirs {
            check_host_dir(&dir.host)?;
            check_guest_path(&dir.guest)?;
            if !guests.insert(dir.guest.clone()) {
                return Err(GrantError::DuplicateGuest(dir.guest.clone()));
            }
        }
        self.env.iter().try_for_each(|name| check_env_name(name))
    }

    /// What the hook's stages forbid: the bundle read-write at precreate.
    pub fn validate_for(&self, stages: &[hookhost_types::Stage]) -> Result<(), GrantError> {
        let writable = self.bundle.is_some_and(Access::is_writable);
        if writable && stages.contains(&hookhost_types::Stage::Precreate) {
            return Err(GrantError::PrecreateBundleWritable);
        }
        Ok(())
    }

    /// Run time: the preopens and the granted environment for one container.
    ///
    /// `bundle` and `rootfs` are the container's directories, if known; a grant that needs one
    /// that is not known is an error rather than a silently missing directory. `host_env` looks
    /// up host variables (`|k| std::env::var(k).ok()`); unset ones are simply not passed.
    pub fn resolve(
        &self,
        bundle: Option<&Path>,
        rootfs: Option<&Path>,
        host_env: impl Fn(&str) -> Option<String>,
    ) -> Result<Resolved, GrantError> {
        let mut preopens: Vec<Preopen> = self
            .dirs
            .iter()
            .map(|dir| preopen(&dir.host, &dir.guest, dir.access))
            .collect();
        if let Some(access) = self.bundle {
            let path = bundle.ok_or_else(|| unresolved("bundle", "no bundle is known"))?;
            preopens.push(preopen(path, BUNDLE_GUEST, access));
        }
        if let Some(access) = self.rootfs {
            let path = rootfs.ok_or_else(|| unresolved("root filesystem", "none is known"))?;
            preopens.push(preopen(path, ROOTFS_GUEST, access));
        }
        let env = self
            .env
            .iter()
            .filter_map(|name| host_env(name).map(|value| (name.clone(), value)))
            .collect();
        Ok(Resolved { preopens, env })
    }

    pub fn is_empty(&self) -> bool {
        self == &Grants::default()
    }
}

/// The container's root filesystem: `root.path` of the bundle's `config.json`, relative to the
/// bundle unless absolute.
pub fn rootfs_of_bundle(bundle: &Path) -> Result<PathBuf, GrantError> {
    let config = bundle.join("config.json");
    let text = std::fs::read_to_string(&config)
        .map_err(|e| unresolved("root filesystem", format!("{}: {e}", config.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| unresolved("root filesystem", format!("{}: {e}", config.display())))?;
    let root = value
        .pointer("/root/path")
        .and_then(|p| p.as_str())
        .ok_or_else(|| {
            unresolved(
                "root filesystem",
                format!("{} has no root.path", config.display()),
            )
        })?;
    Ok(bundle.join(root))
}

fn unresolved(what: &'static str, why: impl Into<String>) -> GrantError {
    GrantError::Unresolved {
        what,
        why: why.into(),
    }
}

fn preopen(host: &Path, guest: &str, access: Access) -> Preopen {
    Preopen {
        host: host.to_path_buf(),
        guest: guest.to_string(),
        writable: access.is_writable(),
    }
}

fn check_host_dir(host: &Path) -> Result<(), GrantError> {
    if !host.is_absolute() {
        return Err(GrantError::HostNotAbsolute(host.to_path_buf()));
    }
    let unusable = |reason: String| GrantError::HostUnusable {
        path: host.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(host).map_err(|e| unusable(e.to_string()))?;
    if !meta.is_dir() {
        return Err(unusable("not a directory".into()));
    }
    Ok(())
}

fn check_guest_path(guest: &str) -> Result<(), GrantError> {
    let path = Path::new(guest);
    let clean = path
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    if !path.is_absolute() || !clean || guest.contains("/./") || guest.ends_with("/.") {
        return Err(GrantError::BadGuestPath(guest.to_string()));
    }
    Ok(())
}

fn check_env_name(name: &str) -> Result<(), GrantError> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if first_ok && chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        Ok(())
    } else {
        Err(GrantError::BadEnvName(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(host: &str, guest: &str, access: Access) -> DirGrant {
        DirGrant {
            host: host.into(),
            guest: guest.into(),
            access,
        }
    }

    #[test]
    fn parses_dir_specs() {
        let parse = |s: &str| s.parse::<DirGrant>();
        assert_eq!(
            parse("/var/log"),
            Ok(dir("/var/log", "/var/log", Access::ReadOnly))
        );
        assert_eq!(
            parse("/var/log:rw"),
            Ok(dir("/var/log", "/var/log", Access::ReadWrite))
        );
        assert_eq!(
            parse("/var/log:/log"),
            Ok(dir("/var/log", "/log", Access::ReadOnly))
        );
        assert_eq!(
            parse("/var/log:/log/:rw"),
            Ok(dir("/var/log", "/log", Access::ReadWrite))
        );
        assert_eq!(parse("/a:/b:xx"), Err(GrantError::BadAccess("xx".into())));
        for bad in ["", ":/b", "/a::rw", "/a:/b:rw:x"] {
            assert_eq!(parse(bad), Err(GrantError::BadDirSpec(bad.into())), "{bad}");
        }
    }

    #[test]
    fn access_flag_defaults_to_read_only() {
        assert_eq!(Access::from_flag_value(None), Ok(Access::ReadOnly));
        assert_eq!(Access::from_flag_value(Some("rw")), Ok(Access::ReadWrite));
        assert!(Access::from_flag_value(Some("yes")).is_err());
    }

    #[test]
    fn validate_refuses_bad_grants() {
        let tmp = tempfile::tempdir().unwrap();
        let host = tmp.path().to_str().unwrap().to_string();
        let file = tmp.path().join("file");
        std::fs::write(&file, "x").unwrap();
        let with_dir = |d: DirGrant| Grants {
            dirs: vec![d],
            ..Grants::default()
        };
        assert_eq!(
            with_dir(dir(&host, "/log", Access::ReadOnly)).validate(),
            Ok(())
        );
        let cases = [
            (dir("rel/dir", "/log", Access::ReadOnly), "not absolute"),
            (
                dir(&format!("{host}/missing"), "/log", Access::ReadOnly),
                "No such file",
            ),
            (
                dir(file.to_str().unwrap(), "/log", Access::ReadOnly),
                "not a directory",
            ),
            (dir(&host, "log", Access::ReadOnly), "must be absolute"),
            (dir(&host, "/a/../b", Access::ReadOnly), "must be absolute"),
            (dir(&host, "/bundle", Access::ReadOnly), "granted twice"),
        ];
        for (grant, message) in cases {
            let mut grants = with_dir(grant);
            grants.bundle = Some(Access::ReadOnly);
            let err = grants.validate().unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
        let env = Grants {
            env: vec!["OK_1".into(), "1BAD".into()],
            ..Grants::default()
        };
        assert_eq!(env.validate(), Err(GrantError::BadEnvName("1BAD".into())));
    }

    #[test]
    fn resolves_preopens_and_env() {
        let grants = Grants {
            dirs: vec![dir("/srv/log", "/log", Access::ReadWrite)],
            bundle: Some(Access::ReadOnly),
            rootfs: Some(Access::ReadWrite),
            env: vec!["GIVEN".into(), "UNSET".into()],
        };
        let host_env = |k: &str| (k == "GIVEN").then(|| "v".to_string());
        let Resolved { preopens, env } = grants
            .resolve(
                Some(Path::new("/b")),
                Some(Path::new("/b/rootfs")),
                host_env,
            )
            .unwrap();
        let guests: Vec<_> = preopens
            .iter()
            .map(|p| (p.guest.as_str(), p.writable))
            .collect();
        assert_eq!(
            guests,
            [("/log", true), ("/bundle", false), ("/rootfs", true)]
        );
        assert_eq!(preopens[2].host, Path::new("/b/rootfs"));
        assert_eq!(env, [("GIVEN".to_string(), "v".to_string())]);
        let err = grants.resolve(None, None, host_env).unwrap_err();
        assert!(err.to_string().contains("bundle"), "{err}");
    }

    #[test]
    fn rootfs_comes_from_config_json() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        assert_eq!(
            rootfs_of_bundle(tmp.path()).unwrap(),
            tmp.path().join("rootfs")
        );
        std::fs::write(
            tmp.path().join("config.json"),
            r#"{"root":{"path":"/abs"}}"#,
        )
        .unwrap();
        assert_eq!(rootfs_of_bundle(tmp.path()).unwrap(), Path::new("/abs"));
        std::fs::write(tmp.path().join("config.json"), "{}").unwrap();
        assert!(rootfs_of_bundle(tmp.path()).is_err());
    }

    #[test]
    fn serde_round_trip() {
        let grants = Grants {
            dirs: vec![dir("/srv", "/srv", Access::ReadOnly)],
            bundle: Some(Access::ReadWrite),
            ..Grants::default()
        };
        let json = serde_json::to_string(&grants).unwrap();
        assert!(json.contains(r#""bundle":"rw""#), "{json}");
        assert_eq!(serde_json::from_str::<Grants>(&json).unwrap(), grants);
        assert_eq!(
            serde_json::from_str::<Grants>("{}").unwrap(),
            Grants::default()
        );
    }
}
