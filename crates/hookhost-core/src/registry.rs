//! The persistent registry: one JSON document per hook, plus content-addressed WASM modules.
//!
//! Writers serialise on an exclusive lock on `ROOT/lock` and replace files atomically, so
//! concurrent CLI calls and a `kill -9` at any moment leave every entry whole. Readers take no
//! lock: a rename is atomic, so they always see a complete document.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hookhost_exec::fs::sha256_hex;
use thiserror::Error;

use crate::hook::{self, Hook, InvalidName};
use crate::paths::Paths;
use hookhost_exec::fs as fsutil;

#[derive(Debug, Error)]
pub enum RegistryError {
    #[error("no such hook: {0}")]
    NotFound(String),
    #[error("hook {0:?} already exists (remove it first with `hookhost rm {0}`)")]
    AlreadyExists(String),
    #[error(transparent)]
    InvalidName(#[from] InvalidName),
    #[error("registry entry {file} is corrupt: {reason}")]
    Corrupt { file: PathBuf, reason: String },
    #[error(transparent)]
    Untrusted(#[from] fsutil::Untrusted),
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> RegistryError {
    let path = path.to_path_buf();
    move |source| RegistryError::Io {
        action,
        path,
        source,
    }
}

/// A handle on a registry root.
#[derive(Debug, Clone)]
pub struct Registry {
    paths: Paths,
}

/// Held while writing; released on drop.
struct WriteLock {
    _file: File,
}

impl Registry {
    /// Opens the registry at `root`, creating its directories (mode 0700) when missing. Refuses
    /// a registry that another user could write (see [`fsutil::check_trusted_path`]): its
    /// entries say what runs as root.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let paths = Paths::new(root);
        let fresh = !paths.hooks_dir().is_dir();
        for dir in [
            paths.root().to_path_buf(),
            paths.hooks_dir(),
            paths.modules_dir(),
            paths.cache_dir(),
        ] {
            fsutil::create_dir_all(&dir, 0o700).map_err(io_err("create directory", &dir))?;
            fsutil::check_trusted_path(&dir)?;
        }
        let registry = Registry { paths };
        if fresh {
            // Without an index every reader of the global hooks (the runtime wrapper, at each
            // container start) would have to scan all entries.
            let _lock = registry.lock()?;
            if registry.read_global_index()?.is_none() {
                let (hooks, _) = registry.scan_global()?;
                let names: Vec<String> = hooks.into_iter().map(|h| h.name).collect();
                registry.write_global_index(&names)?;
            }
        }
        Ok(registry)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    fn lock(&self) -> Result<WriteLock, RegistryError> {
        let path = self.paths.lock_file();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        // Nobody else is writing now: temp files of a killed writer are garbage.
        let _ = fsutil::remove_stale_temps(&self.paths.hooks_dir());
        Ok(WriteLock { _file: file })
    }

    /// Adds a new hook; fails if the name is taken.
    pub fn create(&self, hook: &Hook) -> Result<(), RegistryError> {
        hook::validate_name(&hook.name)?;
        let _lock = self.lock()?;
        let file = self.paths.hook_file(&hook.name);
        if file.exists() {
            return Err(RegistryError::AlreadyExists(hook.name.clone()));
        }
        let mut doc = serde_json::to_vec_pretty(hook).expect("a hook always serialises");
        doc.push(b'\n');
        fsutil::write_atomic(&file, &doc, 0o600).map_err(io_err("write", &file))?;
        self.update_global_index(&hook.name, hook.when.is_some())
    }

    /// Reads one hook: costs the same whatever the registry's size.
    pub fn get(&self, name: &str) -> Result<Hook, RegistryError> {
        hook::validate_name(name)?;
        let file = self.paths.hook_file(name);
        let mut handle = match File::open(&file) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err("read", &file)(e)),
        };
        // The directories were checked by `open`; the entry itself is checked on the open file,
        // so it cannot be swapped between the check and the read.
        let meta = handle.metadata().map_err(io_err("read", &file))?;
        fsutil::check_trusted_meta(&file, &meta)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        handle
            .read_to_end(&mut bytes)
            .map_err(io_err("read", &file))?;
        parse_entry(&file, &bytes)
    }

    /// Every hook, sorted by name, and the entries that could not be read (each names its
    /// file) so that one corrupt entry does not hide the others.
    ///
    /// Entries are read on all cores: with 10,000 hooks `ls` is bound by reading and parsing.
    pub fn list(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        let names = self.names()?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = names.len().div_ceil(workers).max(64);
        let results: Vec<Result<Hook, RegistryError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = names
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|n| self.get(n)).collect::<Vec<_>>())
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a registry reader panicked"))
                .collect()
        });
        let mut hooks = Vec::new();
        let mut errors = Vec::new();
        for result in results {
            match result {
                Ok(hook) => hooks.push(hook),
                Err(RegistryError::NotFound(_)) => {} // removed while we listed
                Err(e) => errors.push(e),
            }
        }
        Ok((hooks, errors))
    }

    /// Names of all registered hooks, sorted, without reading their documents.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        let dir = self.paths.hooks_dir();
        let mut names = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err("read directory", &dir))? {
            let entry = entry.map_err(io_err("read directory", &dir))?;
            let file_name = entry.file_name();
            let file_name = file_name.to_string_lossy();
            if let Some(name) = file_name.strip_suffix(".json")
                && hook::validate_name(name).is_ok()
            {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Removes a hook. Containers created before keep their snapshot. A corrupt entry can be
    /// removed too: that is how a user repairs it.
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        hook::validate_name(name)?;
        let _lock = self.lock()?;
        let file = self.paths.hook_file(name);
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err("remove", &file)(e)),
        }
        fsutil::sync_dir(&self.paths.hooks_dir()).map_err(io_err("sync", &file))?;
        self.update_global_index(name, false)
    }

    /// The global hooks (registered with `when` conditions), sorted by name, and the entries
    /// that could not be read. Reads only the hooks the index names, so selecting a
    /// container's global hooks does not scan the registry; without an index (a registry
    /// written by an older hookhost) it falls back to a scan.
    pub fn global_hooks(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        let names = match self.read_global_index()? {
            Some(names) => names,
            None => return self.scan_global(),
        };
        let mut hooks = Vec::new();
        let mut errors = Vec::new();
        for name in names {
            match self.get(&name) {
                Ok(hook) if hook.when.is_some() => hooks.push(hook),
                Ok(_) | Err(RegistryError::NotFound(_)) => {}
                Err(e) => errors.push(e),
            }
        }
        Ok((hooks, errors))
    }

    fn scan_global(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        let (mut hooks, errors) = self.list()?;
        hooks.retain(|h| h.when.is_some());
        Ok((hooks, errors))
    }

    fn read_global_index(&self) -> Result<Option<Vec<String>>, RegistryError> {
        let file = self.paths.global_index_file();
        match fs::read(&file) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| RegistryError::Corrupt {
                        file,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read", &file)(e)),
        }
    }

    /// Records whether `name` is global; call with the writers' lock held. A missing or
    /// corrupt index is rebuilt from the entries.
    fn update_global_index(&self, name: &str, global: bool) -> Result<(), RegistryError> {
        let (mut names, rebuilt) = match self.read_global_index() {
            Ok(Some(names)) => (names, false),
            _ => {
                let (hooks, _) = self.scan_global()?;
                (hooks.into_iter().map(|h| h.name).collect(), true)
            }
        };
        let had = names.iter().any(|n| n == name);
        if global && !had {
            names.push(name.to_string());
        } else if !global && had {
            names.retain(|n| n != name);
        } else if !rebuilt {
            return Ok(());
        }
        names.sort();
        names.dedup();
        self.write_global_index(&names)
    }

    fn write_global_index(&self, names: &[String]) -> Result<(), RegistryError> {
        let file = self.paths.global_index_file();
        let doc = serde_json::to_vec(names).expect("names serialise");
        fsutil::write_atomic(&file, &doc, 0o600).map_err(io_err("write", &file))
    }

    /// Stores a WASM module under its sha256 and returns the digest. Modules are immutable
    /// and shared; they stay after `rm` because created containers may still run them.
    pub fn store_module(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = sha256_hex(bytes);
        let file = self.paths.module_file(&digest);
        if fs::read(&file).is_ok_and(|stored| sha256_hex(&stored) == digest) {
            return Ok(digest);
        }
        fsutil::write_atomic(&file, bytes, 0o600).map_err(io_err("write", &file))?;
        Ok(digest)
    }

    pub fn module_path(&self, digest: &str) -> PathBuf {
        self.paths.module_file(digest)
    }
}

fn parse_entry(file: &Path, bytes: &[u8]) -> Result<Hook, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::Corrupt {
        file: file.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::{HookKind, HookSpec, Stage};

    fn sample(name: &str) -> Hook {
        Hook {
            name: name.into(),
            stages: vec![Stage::Prestart],
            spec: HookSpec {
                kind: HookKind::Native,
                path: "/bin/true".into(),
                args: vec!["true".into()],
                env: vec![],
                timeout: 5,
                digest: None,
                limits: None,
                grants: None,
            },
            when: None,
            created: chrono::Utc::now(),
        }
    }

    #[test]
    fn create_get_list_remove_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        reg.create(&sample("b")).unwrap();
        reg.create(&sample("a")).unwrap();
        assert_eq!(
            reg.get("a").unwrap(),
            sample_like(&reg.get("a").unwrap(), "a")
        );
        let (hooks, errors) = reg.list().unwrap();
        assert!(errors.is_empty());
        assert_eq!(
            hooks.iter().map(|h| h.name.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert!(matches!(
            reg.create(&sample("a")),
            Err(RegistryError::AlreadyExists(_))
        ));
        reg.remove("a").unwrap();
        assert!(matches!(reg.get("a"), Err(RegistryError::NotFound(_))));
        assert!(matches!(reg.remove("a"), Err(RegistryError::NotFound(_))));
    }

    fn sample_like(got: &Hook, name: &str) -> Hook {
        Hook {
            created: got.created,
            ..sample(name)
        }
    }

    #[test]
    fn a_corrupt_entry_is_named_and_does_not_hide_others() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        reg.create(&sample("good")).unwrap();
        fs::write(reg.paths().hook_file("bad"), "{not json").unwrap();
        let (hooks, errors) = reg.list().unwrap();
        assert_eq!(hooks.len(), 1);
        let msg = errors[0].to_string();
        assert!(msg.contains("bad.json") && msg.contains("corrupt"), "{msg}");
        reg.remove("bad").unwrap();
        assert!(!reg.paths().hook_file("bad").exists());
    }

    #[test]
    fn global_hooks_come_from_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        // A new registry starts with an (empty) index, so no reader ever has to scan it.
        let index = fs::read_to_string(reg.paths().global_index_file()).unwrap();
        assert_eq!(index, "[]");
        let mut global = sample("g");
        global.when = Some(crate::when::When::from_flags(true, &[], &[], false).unwrap());
        reg.create(&sample("plain")).unwrap();
        reg.create(&global).unwrap();
        let names = |reg: &Registry| -> Vec<String> {
            let (hooks, errors) = reg.global_hooks().unwrap();
            assert!(errors.is_empty());
            hooks.into_iter().map(|h| h.name).collect()
        };
        assert_eq!(names(&reg), ["g"]);
        let index = fs::read_to_string(reg.paths().global_index_file()).unwrap();
        assert_eq!(index, r#"["g"]"#);
        // Without an index, a scan gives the same answer, and the next write rebuilds it.
        fs::remove_file(reg.paths().global_index_file()).unwrap();
        assert_eq!(names(&reg), ["g"]);
        reg.remove("plain").unwrap();
        assert!(reg.paths().global_index_file().exists());
        reg.remove("g").unwrap();
        assert!(names(&reg).is_empty());
    }

    #[test]
    fn an_entry_others_can_write_is_refused_and_a_writable_registry_is_not_opened() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        reg.create(&sample("shared")).unwrap();
        let file = reg.paths().hook_file("shared");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o662)).unwrap();
        let err = reg.get("shared").unwrap_err();
        assert!(matches!(err, RegistryError::Untrusted(_)), "{err}");
        assert!(err.to_string().contains("chmod go-w"), "{err}");
        let (hooks, errors) = reg.list().unwrap();
        assert!(hooks.is_empty() && errors.len() == 1);
        reg.remove("shared").unwrap();
        let hooks_dir = reg.paths().hooks_dir();
        fs::set_permissions(&hooks_dir, fs::Permissions::from_mode(0o770)).unwrap();
        let err = Registry::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("its group") && err.contains("chmod go-w"),
            "{err}"
        );
    }

    #[test]
    fn modules_are_content_addressed() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let digest = reg.store_module(b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(digest, sha256_hex(b"\0asm\x01\0\0\0"));
        assert_eq!(
            fs::read(reg.module_path(&digest)).unwrap(),
            b"\0asm\x01\0\0\0"
        );
    }
}
