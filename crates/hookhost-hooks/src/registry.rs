//! The persistent registry: one JSON document per hook, plus content-addressed WASM modules.
//!
//! Where an entry lives says whether it is global: `hooks/NAME.json` for a plain hook,
//! `global/NAME.json` for one with `when` conditions (see [`crate::paths`]). One atomic write
//! (temp file, fsync, rename, fsync of the directory) therefore decides both that a hook exists
//! and whether it is global: no index can disagree with the entries after a `kill -9` or a full
//! disk, and the runtime wrapper finds a container's global hooks by reading `global/` alone.
//!
//! Writers serialise on an exclusive lock on `ROOT/lock`. Holding it, a writer first removes
//! the temp files killed writers left behind and upgrades a registry of the old layout. Readers
//! take no lock: a rename is atomic, so they always see a complete document.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hookhost_exec::fs::sha256_hex;
use hookhost_exec::wasm::CompileLimits;
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
    #[error("registry entry {} is corrupt", file.display())]
    Corrupt {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "registry entry {file} {problem}, so containers would not get what `hookhost inspect` \
         shows; remove it with `hookhost rm {name}` and create it again"
    )]
    Misplaced {
        file: PathBuf,
        name: String,
        problem: &'static str,
    },
    #[error(
        "registry {root} has the old layout (global hooks listed in global.json) and could not \
         be upgraded, so its global hooks are refused; make {root} writable and run \
         `hookhost ls` as its owner to upgrade it"
    )]
    NotUpgraded {
        root: PathBuf,
        #[source]
        source: Box<RegistryError>,
    },
    #[error(
        "hook {name} has shadow hooks ({}): promote one (`hookhost promote SHADOW`) or remove \
         them (`hookhost rm SHADOW`) first", shadows.join(", ")
    )]
    HasShadows { name: String, shadows: Vec<String> },
    #[error(transparent)]
    Untrusted(#[from] fsutil::Untrusted),
    #[error(transparent)]
    Generation(#[from] crate::generation::GenerationError),
    #[error("cannot {action} {}", path.display())]
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

/// What the writers' lock leaves in an old-layout `global.json` while upgrading: anything but
/// a list of names, so that an older hookhost refuses it instead of trusting it as an index.
const UPGRADE_MARK: &[u8] = b"{\"upgrading\": \"global hooks are moving to global/\"}\n";

/// Temp files in `cache/` younger than this may still be being written: the compile cache is
/// filled by `hookhost stage` at container start, which takes no lock.
const CACHE_TEMP_GRACE: Duration = Duration::from_secs(600);

/// A handle on a registry root.
#[derive(Debug, Clone)]
pub struct Registry {
    paths: Paths,
    /// `open` could not upgrade an old-layout registry (read-only, say): entries are read
    /// wherever they are, and [`Registry::global_hooks`] refuses.
    old_layout: bool,
    /// The bounds on compiling a module that is registered (see
    /// [`hookhost_exec::wasm::compile`]).
    compile_limits: CompileLimits,
    /// The NRI plugin's budget on this node (`"nri"` in the config file), which a precreate
    /// hook's timeout must fit when it is registered; None: the node does not say it runs the
    /// plugin.
    nri_budget: Option<std::time::Duration>,
    /// The generation whose entries this handle reads (see [`crate::generation`]).
    generation: Option<std::sync::Arc<crate::generation::Pinned>>,
    /// Entries parsed by earlier handles of a long-lived process (see [`EntryCache`]).
    entry_cache: Option<std::sync::Arc<EntryCache>>,
}

/// The entries a long-lived reader (the NRI plugin, which opens the registry for each
/// container) has parsed, each kept with the identity of the file it was read from: device,
/// inode, size, and modification and change times to the nanosecond. An entry is read and
/// parsed again when any of them differ; registry writes replace entries by rename (a new
/// inode), and a change of owner or mode changes the change time, so the trust check is never
/// skipped for a changed file. A file changed less than [`EntryCache::SETTLE`] ago is not kept:
/// file times advance in clock ticks, so a same-size rewrite within one tick of the last change
/// would look unchanged. Bounded: emptied when it reaches [`EntryCache::MAX`] entries.
#[derive(Debug, Default)]
pub struct EntryCache {
    entries: std::sync::Mutex<std::collections::HashMap<PathBuf, (FileId, Hook)>>,
}

/// What tells one version of an entry file from another (see [`EntryCache`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId([i64; 7]);

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        FileId([
            meta.dev() as i64,
            meta.ino() as i64,
            meta.size() as i64,
            meta.mtime(),
            meta.mtime_nsec(),
            meta.ctime(),
            meta.ctime_nsec(),
        ])
    }
}

impl EntryCache {
    /// The most entries kept.
    pub const MAX: usize = 4096;
    /// How long after its last change an entry file is first kept.
    pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(1);

    /// The entry `file` parsed earlier, when `meta` (the file's own, not a symlink's) says it
    /// is unchanged since.
    fn get(&self, file: &Path, meta: &fs::Metadata) -> Option<Hook> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let (id, hook) = entries.get(file)?;
        (*id == FileId::of(meta)).then(|| hook.clone())
    }

    fn put(&self, file: &Path, meta: &fs::Metadata, hook: &Hook) {
        use std::os::unix::fs::MetadataExt;
        let changed = std::time::UNIX_EPOCH
            + std::time::Duration::new(
                u64::try_from(meta.ctime()).unwrap_or(0),
                u32::try_from(meta.ctime_nsec()).unwrap_or(0),
            );
        let settled = std::time::SystemTime::now()
            .duration_since(changed)
            .is_ok_and(|age| age >= Self::SETTLE);
        if !settled {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= Self::MAX {
            entries.clear();
        }
        entries.insert(file.to_path_buf(), (FileId::of(meta), hook.clone()));
    }

    /// How many entries are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Held while writing; released on drop.
pub(crate) struct WriteLock {
    _file: File,
}

impl Registry {
    /// Opens the registry at `root`, creating its directories (mode 0700) when missing. Refuses
    /// a registry that another user could write (see [`fsutil::check_trusted_path`]): its
    /// entries say what runs as root.
    ///
    /// A registry of the old layout (every entry in `hooks/`, the global ones listed in
    /// `global.json`) is upgraded under the writers' lock: each entry with `when` conditions
    /// is renamed into `global/`, then `global.json` is deleted. The index itself is never
    /// read (a killed writer may have left it stale). An upgrade cut short is resumed by the
    /// next `open`; one that cannot run (a read-only registry) leaves every entry readable but
    /// makes [`Registry::global_hooks`] fail until it is done.
    ///
    /// The handle reads the entries of the generation current when it was opened, whatever
    /// applies switch meanwhile ([`crate::generation`]).
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, RegistryError> {
        let (paths, generation) = crate::generation::pin(&root.into())?;
        let old_layout = has_old_layout(&paths);
        let global = paths.global_dir();
        let root = paths.root();
        fsutil::create_dir_all(root, 0o700).map_err(io_err("create directory", root))?;
        fsutil::check_trusted_path(root)?;
        // `global/` before `hooks/`: a registry with `hooks/` and no `global/` is an old one,
        // so `global/` is left to the upgrade there.
        for dir in [
            global.clone(),
            paths.hooks_dir(),
            paths.modules_dir(),
            paths.cache_dir(),
        ] {
            if old_layout && dir == global && !dir.is_dir() {
                continue;
            }
            fsutil::create_dir_all(&dir, 0o700).map_err(io_err("create directory", &dir))?;
            // In the root just checked: the directory itself (or, if a symlink, its target).
            fsutil::check_trusted_entry(&dir)?;
        }
        let mut registry = Registry {
            paths,
            old_layout,
            compile_limits: CompileLimits::default(),
            nri_budget: None,
            generation: generation.map(std::sync::Arc::new),
            entry_cache: None,
        };
        if old_layout {
            // A reader that cannot take the lock still reads every entry.
            registry.old_layout = registry.lock().is_err();
        }
        Ok(registry)
    }

    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// The registry, compiling the modules registered into it under `limits` (hookhost's
    /// config file sets them) instead of the defaults.
    pub fn with_compile_limits(mut self, limits: CompileLimits) -> Self {
        self.compile_limits = limits;
        self
    }

    /// The bounds on compiling a module that is registered.
    pub fn compile_limits(&self) -> &CompileLimits {
        &self.compile_limits
    }

    /// The registry, refusing precreate hooks whose timeout cannot fit `budget` (the NRI
    /// plugin's, see [`crate::config::NriSettings::budget`]).
    pub fn with_nri_budget(mut self, budget: Option<std::time::Duration>) -> Self {
        self.nri_budget = budget;
        self
    }

    /// The registry, reusing the entries `cache` holds when their files are unchanged (see
    /// [`EntryCache`]) and adding those it reads.
    pub fn with_entry_cache(mut self, cache: std::sync::Arc<EntryCache>) -> Self {
        self.entry_cache = Some(cache);
        self
    }

    /// See [`Registry::with_nri_budget`].
    pub fn nri_budget(&self) -> Option<std::time::Duration> {
        self.nri_budget
    }

    /// The generation this handle reads; `None` on a registry never applied to.
    pub fn generation(&self) -> Option<&crate::generation::Record> {
        self.generation.as_ref().map(|pinned| &pinned.record)
    }

    /// The writers' lock, for a write into this handle's generation: refused when an apply
    /// switched to another one since the handle was opened.
    pub(crate) fn lock(&self) -> Result<WriteLock, RegistryError> {
        let lock = self.lock_root()?;
        if let Some(pinned) = &self.generation {
            crate::generation::check_current(self.paths.root(), pinned)?;
        }
        Ok(lock)
    }

    /// The writers' lock, whatever generation this handle reads.
    pub(crate) fn lock_root(&self) -> Result<WriteLock, RegistryError> {
        let path = self.paths.lock_file();
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        file.lock().map_err(io_err("lock", &path))?;
        self.remove_stale_temps();
        if has_old_layout(&self.paths) {
            self.upgrade()?;
        }
        Ok(WriteLock { _file: file })
    }

    /// Nobody else is writing now: temp files of a killed writer are garbage (but see
    /// [`CACHE_TEMP_GRACE`]). Best effort: a temp file left now goes at the next write.
    fn remove_stale_temps(&self) {
        let p = &self.paths;
        for dir in [p.root(), &p.hooks_dir(), &p.global_dir(), &p.modules_dir()] {
            let _ = fsutil::remove_stale_temps(dir);
        }
        remove_old_temps(&p.cache_dir(), CACHE_TEMP_GRACE);
    }

    /// Moves an old-layout registry to the current one; call with the writers' lock held. Safe
    /// to cut short at any point and idempotent: `global.json` (written first if the old
    /// registry had none) marks an unfinished upgrade and goes last.
    fn upgrade(&self) -> Result<(), RegistryError> {
        let (root, mark, global) = (
            self.paths.root(),
            self.paths.old_global_index_file(),
            self.paths.global_dir(),
        );
        if !mark.exists() {
            fsutil::write_atomic(&mark, UPGRADE_MARK, 0o600).map_err(io_err("write", &mark))?;
        }
        fsutil::create_dir_all(&global, 0o700).map_err(io_err("create directory", &global))?;
        fsutil::check_trusted_path(&global)?;
        fsutil::sync_dir(root).map_err(io_err("sync", root))?;
        let hooks = self.paths.hooks_dir();
        for (name, file) in entries_in(&hooks)? {
            // By content, whatever its permissions (every read checks them); an entry that
            // cannot be parsed stays, and `ls` reports it.
            let global_entry = fs::read(&file)
                .ok()
                .and_then(|bytes| parse_entry(&file, &bytes).ok())
                .is_some_and(|hook| hook.in_global_dir());
            if global_entry {
                let to = self.paths.global_hook_file(&name);
                fs::rename(&file, &to).map_err(io_err("move", &file))?;
            }
        }
        fsutil::sync_dir(&global).map_err(io_err("sync", &global))?;
        fsutil::sync_dir(&hooks).map_err(io_err("sync", &hooks))?;
        match fs::remove_file(&mark) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &mark)(e)),
        }
        fsutil::sync_dir(root).map_err(io_err("sync", root))
    }

    /// Fails if the name is taken (a cheap check before building a hook: [`Registry::create`]
    /// checks again under the writers' lock).
    pub fn check_free(&self, name: &str) -> Result<(), RegistryError> {
        hook::validate_name(name)?;
        let taken =
            self.paths.hook_file(name).exists() || self.paths.global_hook_file(name).exists();
        match taken {
            true => Err(RegistryError::AlreadyExists(name.to_string())),
            false => Ok(()),
        }
    }

    /// Adds a new hook, to `global/` if it has `when` conditions; fails if the name is taken.
    pub fn create(&self, hook: &Hook) -> Result<(), RegistryError> {
        hook::validate_name(&hook.name)?;
        let _lock = self.lock()?;
        let plain = self.paths.hook_file(&hook.name);
        let global = self.paths.global_hook_file(&hook.name);
        if plain.exists() || global.exists() {
            return Err(RegistryError::AlreadyExists(hook.name.clone()));
        }
        let file = if hook.in_global_dir() { global } else { plain };
        write_entry(hook, &file)
    }

    /// Adds or replaces a hook (what `apply` does): its entry is written atomically where its
    /// `when` conditions put it, and a stale entry in the other place is removed.
    pub fn put(&self, hook: &Hook) -> Result<(), RegistryError> {
        hook::validate_name(&hook.name)?;
        let _lock = self.lock()?;
        let plain = self.paths.hook_file(&hook.name);
        let global = self.paths.global_hook_file(&hook.name);
        let (file, other) = match hook.in_global_dir() {
            true => (global, plain),
            false => (plain, global),
        };
        write_entry(hook, &file)?;
        match fs::remove_file(&other) {
            Ok(()) => {
                let dir = other.parent().unwrap_or(Path::new("/"));
                fsutil::sync_dir(dir).map_err(io_err("sync", dir))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err("remove", &other)(e)),
        }
    }

    /// Reads one hook: costs the same whatever the registry's size.
    pub fn get(&self, name: &str) -> Result<Hook, RegistryError> {
        hook::validate_name(name)?;
        match self.read_entry(name, &self.paths.hook_file(name), false) {
            Err(RegistryError::NotFound(_)) => {
                self.read_entry(name, &self.paths.global_hook_file(name), true)
            }
            found => found,
        }
    }

    /// Reads the entry `file` of hook `name`, stored in `global/` or not.
    fn read_entry(&self, name: &str, file: &Path, global: bool) -> Result<Hook, RegistryError> {
        let hook = match self.entry_cache.as_deref() {
            Some(cache) => self.read_cached(cache, name, file)?,
            None => self.read_file(name, file)?.0,
        };
        if self.old_layout || global == hook.in_global_dir() {
            return Ok(hook);
        }
        let problem = if global {
            "is in global/ but has no `When` conditions and shadows no hook"
        } else {
            "has `When` conditions or shadows a hook but is not in global/"
        };
        Err(RegistryError::Misplaced {
            file: file.to_path_buf(),
            name: name.to_string(),
            problem,
        })
    }

    /// [`Registry::read_file`] through `cache`: an unchanged entry file (itself, not a symlink
    /// to one) is checked for trust on its metadata and not read again.
    fn read_cached(
        &self,
        cache: &EntryCache,
        name: &str,
        file: &Path,
    ) -> Result<Hook, RegistryError> {
        // Only a plain file is kept: a symlink's target does not share its identity. Should the
        // path be swapped for a symlink after this, the next lookup sees the symlink's own
        // metadata, which matches nothing kept.
        let plain = match fs::symlink_metadata(file) {
            Ok(meta) if meta.is_file() => {
                if let Some(hook) = cache.get(file, &meta) {
                    fsutil::check_trusted_meta(file, &meta)?;
                    return Ok(hook);
                }
                true
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound(name.to_string()));
            }
            _ => false,
        };
        let (hook, meta) = self.read_file(name, file)?;
        if plain {
            cache.put(file, &meta, &hook);
        }
        Ok(hook)
    }

    /// Reads and parses the entry `file` of hook `name`, with the metadata of the file read.
    fn read_file(&self, name: &str, file: &Path) -> Result<(Hook, fs::Metadata), RegistryError> {
        let mut handle = match File::open(file) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(RegistryError::NotFound(name.to_string()));
            }
            Err(e) => return Err(io_err("read", file)(e)),
        };
        // The directories were checked by `open`; the entry itself is checked on the open file,
        // so it cannot be swapped between the check and the read.
        let meta = handle.metadata().map_err(io_err("read", file))?;
        fsutil::check_trusted_meta(file, &meta)?;
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        handle
            .read_to_end(&mut bytes)
            .map_err(io_err("read", file))?;
        Ok((parse_entry(file, &bytes)?, meta))
    }

    /// Every hook, sorted by name, and the entries that could not be read (each names its
    /// file) so that one corrupt entry does not hide the others.
    ///
    /// Entries are read on all cores: with 10,000 hooks `ls` is bound by reading and parsing.
    pub fn list(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        let entries = self.entries()?;
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = entries.len().div_ceil(workers).max(64);
        let results: Vec<Result<Hook, RegistryError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = entries
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|(name, file, global)| self.read_entry(name, file, *global))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a registry reader panicked"))
                .collect()
        });
        Ok(split_found(results))
    }

    /// Names of all registered hooks, sorted, without reading their documents.
    pub fn names(&self) -> Result<Vec<String>, RegistryError> {
        Ok(self.entries()?.into_iter().map(|(name, ..)| name).collect())
    }

    /// Every entry as (name, file, in `global/`), sorted by name; `hooks/` wins a name found
    /// in both directories, as in [`Registry::get`].
    fn entries(&self) -> Result<Vec<(String, PathBuf, bool)>, RegistryError> {
        let plain = entries_in(&self.paths.hooks_dir())?;
        // Missing only in a registry of the old layout.
        let global = match entries_in(&self.paths.global_dir()) {
            Err(RegistryError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Vec::new()
            }
            result => result?,
        };
        let plain = plain.into_iter().map(|(name, file)| (name, file, false));
        let global = global.into_iter().map(|(name, file)| (name, file, true));
        let mut entries: Vec<_> = plain.chain(global).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0)); // stable: `hooks/` first
        entries.dedup_by(|later, first| later.0 == first.0);
        Ok(entries)
    }

    /// Removes a hook. Containers created before keep their snapshot. A corrupt entry can be
    /// removed too: that is how a user repairs it.
    /// A hook that has shadows is refused (see [`crate::shadow`]): they would shadow nothing.
    pub fn remove(&self, name: &str) -> Result<(), RegistryError> {
        hook::validate_name(name)?;
        let _lock = self.lock()?;
        let shadows = self.shadow_names_of(name)?;
        if !shadows.is_empty() {
            return Err(RegistryError::HasShadows {
                name: name.to_string(),
                shadows,
            });
        }
        for file in [
            self.paths.hook_file(name),
            self.paths.global_hook_file(name),
        ] {
            match fs::remove_file(&file) {
                Ok(()) => {
                    let dir = file.parent().expect("an entry is in a directory");
                    return fsutil::sync_dir(dir).map_err(io_err("sync", &file));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &file)(e)),
            }
        }
        Err(RegistryError::NotFound(name.to_string()))
    }

    /// The global hooks (registered with `when` conditions), sorted by name, and the entries
    /// that could not be read. Reads `global/` only, so selecting a container's global hooks
    /// costs the same whatever the number of other hooks. Fails on a registry of the old
    /// layout that cannot be upgraded: its global hooks cannot be told apart reliably.
    pub fn global_hooks(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        let (mut hooks, errors) = self.global_entries()?;
        hooks.retain(|hook| hook.shadow.is_none());
        Ok((hooks, errors))
    }

    /// Every entry of `global/`: the global hooks and the shadows (see [`crate::shadow`]),
    /// sorted by name, and the entries that could not be read.
    pub fn global_entries(&self) -> Result<(Vec<Hook>, Vec<RegistryError>), RegistryError> {
        if has_old_layout(&self.paths) {
            self.lock().map_err(|e| RegistryError::NotUpgraded {
                root: self.paths.root().to_path_buf(),
                source: Box::new(e),
            })?;
        }
        let results = entries_in(&self.paths.global_dir())?
            .into_iter()
            .map(|(name, file)| self.read_entry(&name, &file, true))
            .collect();
        Ok(split_found(results))
    }

    /// Stores a WASM module under its sha256 and returns the digest. Modules are immutable
    /// and shared; they stay after `rm` because created containers may still run them.
    pub fn store_module(&self, bytes: &[u8]) -> Result<String, RegistryError> {
        let digest = sha256_hex(bytes);
        let file = self.paths.module_file(&digest);
        // Under the lock: writers remove the temp files they find in `modules/`.
        let _lock = self.lock_root()?;
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

/// Entries of the old layout are in `hooks/`, listed in `global.json`, with no `global/`; an
/// unfinished upgrade still has `global.json`.
fn has_old_layout(paths: &Paths) -> bool {
    paths.old_global_index_file().exists()
        || (paths.hooks_dir().is_dir() && !paths.global_dir().is_dir())
}

/// The entries of one directory as (name, file), sorted by name; temp files and anything not
/// named like a hook are skipped.
fn entries_in(dir: &Path) -> Result<Vec<(String, PathBuf)>, RegistryError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err("read directory", dir))? {
        let entry = entry.map_err(io_err("read directory", dir))?;
        let file_name = entry.file_name();
        let file_name = file_name.to_string_lossy();
        if let Some(name) = file_name.strip_suffix(".json")
            && hook::validate_name(name).is_ok()
        {
            entries.push((name.to_string(), entry.path()));
        }
    }
    // Global hooks run in this order: hooks.d's, so that imported files keep theirs.
    entries.sort_by(|a, b| crate::hooksd::name_order(&a.0, &b.0));
    Ok(entries)
}

/// The hooks read and the errors, leaving out entries removed while they were being read.
fn split_found(results: Vec<Result<Hook, RegistryError>>) -> (Vec<Hook>, Vec<RegistryError>) {
    let mut hooks = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(hook) => hooks.push(hook),
            Err(RegistryError::NotFound(_)) => {}
            Err(e) => errors.push(e),
        }
    }
    (hooks, errors)
}

/// Removes the `.tmp-*` files in `dir` last modified at least `age` ago.
fn remove_old_temps(dir: &Path, age: Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(".tmp-")
            && entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|elapsed| elapsed >= age));
        if stale {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Writes `hook`'s entry to `file`, atomically and owner-only.
pub(crate) fn write_entry(hook: &Hook, file: &Path) -> Result<(), RegistryError> {
    fsutil::write_atomic(file, &entry_bytes(hook), 0o600).map_err(io_err("write", file))
}

/// An entry's document.
pub(crate) fn entry_bytes(hook: &Hook) -> Vec<u8> {
    let mut doc = serde_json::to_vec_pretty(hook).expect("a hook always serialises");
    doc.push(b'\n');
    doc
}
fn parse_entry(file: &Path, bytes: &[u8]) -> Result<Hook, RegistryError> {
    serde_json::from_slice(bytes).map_err(|source| RegistryError::Corrupt {
        file: file.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Hook {
        crate::hook::sample(name)
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
            source: None,
            ..sample(name)
        }
    }

    /// A long-lived reader's cache never serves an entry whose file changed: rewritten in place
    /// to the same size just after it was written (before it settled) or later, replaced by a
    /// write (a new inode), or made writable by others (refused as an uncached read is).
    #[test]
    fn the_entry_cache_serves_only_unchanged_trusted_files() {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(EntryCache::default());
        let open = || {
            Registry::open(dir.path())
                .unwrap()
                .with_entry_cache(cache.clone())
        };
        let rewrite = |from: u64, to: u64| {
            let file = open().paths().hook_file("a");
            let text = fs::read_to_string(&file).unwrap();
            let new = text.replace(
                &format!("\"Timeout\": {from}"),
                &format!("\"Timeout\": {to}"),
            );
            assert_ne!(new, text, "the entry names its timeout: {text}");
            let mut handle = fs::OpenOptions::new().write(true).open(&file).unwrap();
            handle.write_all(new.as_bytes()).unwrap();
        };
        open().create(&sample("a")).unwrap();
        assert_eq!(open().get("a").unwrap().spec.timeout, 5);
        assert!(cache.is_empty(), "a file changed just now is not kept");
        // Same size, same inode, likely the same clock tick as the write before it.
        rewrite(5, 7);
        assert_eq!(open().get("a").unwrap().spec.timeout, 7);

        std::thread::sleep(EntryCache::SETTLE + std::time::Duration::from_millis(50));
        assert_eq!(open().get("a").unwrap().spec.timeout, 7);
        assert_eq!(cache.len(), 1, "a settled entry is kept");
        assert_eq!(open().get("a").unwrap().spec.timeout, 7);
        rewrite(7, 8);
        assert_eq!(open().get("a").unwrap().spec.timeout, 8);

        // Replaced as `rm` + `create` replace it.
        open().remove("a").unwrap();
        assert!(matches!(open().get("a"), Err(RegistryError::NotFound(_))));
        let mut six = sample("a");
        six.spec.timeout = 6;
        open().create(&six).unwrap();
        assert_eq!(open().get("a").unwrap().spec.timeout, 6);

        // Made writable by other users: refused, cached or not.
        std::thread::sleep(EntryCache::SETTLE + std::time::Duration::from_millis(50));
        assert_eq!(open().get("a").unwrap().spec.timeout, 6);
        let file = open().paths().hook_file("a");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o602)).unwrap();
        let refused = open().get("a").unwrap_err();
        assert!(
            matches!(refused, RegistryError::Untrusted(_)),
            "{refused:?}"
        );
        let uncached = Registry::open(dir.path()).unwrap().get("a").unwrap_err();
        assert_eq!(refused.to_string(), uncached.to_string());
    }

    /// An entry that is a symlink is read through it every time: the cache keys on the entry
    /// file's own identity, which a symlink's target does not share.
    #[test]
    fn the_entry_cache_keeps_no_symlinked_entry() {
        let dir = tempfile::tempdir().unwrap();
        let cache = std::sync::Arc::new(EntryCache::default());
        let reg = Registry::open(dir.path())
            .unwrap()
            .with_entry_cache(cache.clone());
        reg.create(&sample("a")).unwrap();
        let file = reg.paths().hook_file("a");
        let target = dir.path().join("a-target.json");
        fs::rename(&file, &target).unwrap();
        std::os::unix::fs::symlink(&target, &file).unwrap();
        std::thread::sleep(EntryCache::SETTLE + std::time::Duration::from_millis(50));
        assert_eq!(reg.get("a").unwrap().name, "a");
        assert!(cache.is_empty(), "a settled symlinked entry is not kept");
        // A settled plain entry is, so the emptiness above is the symlink's doing.
        reg.create(&sample("b")).unwrap();
        std::thread::sleep(EntryCache::SETTLE + std::time::Duration::from_millis(50));
        assert_eq!(reg.get("b").unwrap().name, "b");
        assert_eq!(cache.len(), 1);
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

    fn global_sample(name: &str) -> Hook {
        Hook {
            when: Some(crate::when::When::from_flags(true, &[], &[], false).unwrap()),
            ..sample(name)
        }
    }

    fn global_names(reg: &Registry) -> Vec<String> {
        let (hooks, errors) = reg.global_hooks().unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        hooks.into_iter().map(|h| h.name).collect()
    }

    fn entry_doc(hook: &Hook) -> Vec<u8> {
        serde_json::to_vec_pretty(hook).unwrap()
    }

    #[test]
    fn a_hooks_directory_says_whether_it_is_global() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        reg.create(&sample("plain")).unwrap();
        reg.create(&global_sample("g")).unwrap();
        let paths = reg.paths();
        assert!(paths.hook_file("plain").is_file() && paths.global_hook_file("g").is_file());
        assert!(!paths.hook_file("g").exists() && !paths.global_hook_file("plain").exists());
        assert!(
            !paths.old_global_index_file().exists(),
            "no index is written"
        );
        assert!(reg.get("g").unwrap().when.is_some());
        assert!(reg.get("plain").unwrap().when.is_none());
        assert_eq!(reg.names().unwrap(), ["g", "plain"]);
        let (hooks, errors) = reg.list().unwrap();
        assert!(errors.is_empty());
        assert_eq!(hooks.len(), 2);
        // A name is taken whichever directory holds it.
        for hook in [global_sample("plain"), sample("g")] {
            let err = reg.create(&hook).unwrap_err();
            assert!(matches!(err, RegistryError::AlreadyExists(_)), "{err}");
        }
        // Global hooks are read from global/ alone: a corrupt plain entry is not even seen.
        fs::write(paths.hook_file("bad"), "{not json").unwrap();
        assert_eq!(global_names(&reg), ["g"]);
        reg.remove("g").unwrap();
        assert!(!paths.global_hook_file("g").exists());
        assert!(global_names(&reg).is_empty());
        reg.remove("plain").unwrap();
        assert_eq!(reg.names().unwrap(), ["bad"]);
    }

    #[test]
    fn an_entry_in_the_wrong_directory_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let paths = reg.paths();
        // Put there by hand, or by an older hookhost: `inspect` would show a global hook that
        // containers never get, or the reverse.
        fs::write(paths.hook_file("x"), entry_doc(&global_sample("x"))).unwrap();
        fs::write(paths.global_hook_file("y"), entry_doc(&sample("y"))).unwrap();
        for (name, want) in [("x", "not in global/"), ("y", "no `When`")] {
            let err = reg.get(name).unwrap_err();
            assert!(matches!(err, RegistryError::Misplaced { .. }), "{err}");
            let msg = err.to_string();
            assert!(
                msg.contains(want) && msg.contains(&format!("hookhost rm {name}")),
                "{msg}"
            );
        }
        let (_, errors) = reg.global_hooks().unwrap();
        assert_eq!(errors.len(), 1, "{errors:?}");
        reg.remove("x").unwrap();
        reg.remove("y").unwrap();
        assert!(reg.names().unwrap().is_empty());
    }

    /// Writes an old-layout registry somewhere.
    type MakeOld = fn(&Path);

    /// An old-layout registry under `root`: every entry in hooks/, an index that lists `a`
    /// only (`c` was created by a writer killed before its index write) and no global/.
    fn old_registry(root: &Path, index: Option<&str>) {
        let hooks = root.join("hooks");
        for sub in ["hooks", "modules", "cache"] {
            fsutil::create_dir_all(&root.join(sub), 0o700).unwrap();
        }
        fs::write(hooks.join("a.json"), entry_doc(&global_sample("a"))).unwrap();
        fs::write(hooks.join("b.json"), entry_doc(&sample("b"))).unwrap();
        fs::write(hooks.join("c.json"), entry_doc(&global_sample("c"))).unwrap();
        fs::write(hooks.join("bad.json"), "{\"Name\": ").unwrap();
        if let Some(index) = index {
            fs::write(root.join("global.json"), index).unwrap();
        }
    }

    fn assert_upgraded(reg: &Registry, context: &str) {
        let paths = reg.paths();
        assert!(!paths.old_global_index_file().exists(), "{context}");
        assert_eq!(global_names(reg), ["a", "c"], "{context}");
        for name in ["a", "c"] {
            assert!(paths.global_hook_file(name).is_file(), "{context}: {name}");
            assert!(!paths.hook_file(name).exists(), "{context}: {name}");
        }
        assert!(paths.hook_file("b").is_file(), "{context}");
        assert!(
            paths.hook_file("bad").is_file(),
            "{context}: unreadable, left in place"
        );
        let (hooks, errors) = reg.list().unwrap();
        let names: Vec<_> = hooks.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"], "{context}");
        assert_eq!(errors.len(), 1, "{context}: {errors:?}");
    }

    #[test]
    fn an_old_registry_is_upgraded_by_content_never_by_its_index() {
        let half_moved = |root: &Path| {
            // An upgrade killed after moving `a`: global/ exists, global.json still marks it.
            old_registry(root, Some(std::str::from_utf8(UPGRADE_MARK).unwrap()));
            fsutil::create_dir_all(&root.join("global"), 0o700).unwrap();
            fs::rename(root.join("hooks/a.json"), root.join("global/a.json")).unwrap();
        };
        let cases: [(&str, MakeOld); 5] = [
            ("stale index", |root| old_registry(root, Some(r#"["a"]"#))),
            ("half-written index", |root| {
                old_registry(root, Some(r#"["a","#))
            }),
            ("empty index", |root| old_registry(root, Some(""))),
            ("no index", |root| old_registry(root, None)),
            ("half upgraded", half_moved),
        ];
        for (context, setup) in cases {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let reg = Registry::open(dir.path()).unwrap();
            assert_upgraded(&reg, context);
            // Idempotent: opening again changes nothing.
            assert_upgraded(&Registry::open(dir.path()).unwrap(), context);
        }
    }

    #[test]
    fn an_old_registry_that_cannot_be_upgraded_is_read_but_its_global_hooks_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        old_registry(dir.path(), Some(r#"["a"]"#));
        // No writer can take the lock (as on a read-only filesystem).
        fs::create_dir(dir.path().join("lock")).unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        assert!(
            reg.get("c").unwrap().when.is_some(),
            "entries are still read"
        );
        assert_eq!(reg.names().unwrap(), ["a", "b", "bad", "c"]);
        let err = reg.global_hooks().unwrap_err();
        assert!(matches!(err, RegistryError::NotUpgraded { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("old layout") && msg.contains("hookhost ls"),
            "names the problem and the fix: {msg}"
        );
        let source = std::error::Error::source(&err).unwrap().to_string();
        assert!(source.contains("lock"), "keeps its cause: {source}");
        assert!(reg.create(&sample("d")).is_err(), "writers need the lock");
        // Once a writer can take the lock, the next reader of global hooks upgrades it.
        fs::remove_dir(dir.path().join("lock")).unwrap();
        assert_eq!(global_names(&reg), ["a", "c"]);
        assert_upgraded(&Registry::open(dir.path()).unwrap(), "after the repair");
    }

    #[test]
    fn the_next_writer_removes_temp_files_in_every_directory() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path()).unwrap();
        let paths = reg.paths();
        let dirs = [
            paths.root().to_path_buf(),
            paths.hooks_dir(),
            paths.global_dir(),
            paths.modules_dir(),
            paths.cache_dir(),
        ];
        for dir in &dirs {
            fs::write(dir.join(".tmp-killed"), "partial").unwrap();
        }
        // The compile cache is written without the lock: a young temp file may be in flight.
        let in_flight = paths.cache_dir().join(".tmp-in-flight");
        fs::write(&in_flight, "partial").unwrap();
        let old = std::time::SystemTime::now() - 2 * CACHE_TEMP_GRACE;
        File::options()
            .write(true)
            .open(paths.cache_dir().join(".tmp-killed"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        reg.create(&global_sample("g")).unwrap();
        for dir in &dirs {
            assert!(!dir.join(".tmp-killed").exists(), "{}", dir.display());
        }
        assert!(
            in_flight.exists(),
            "a cache temp file younger than the grace is kept"
        );
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
        fs::set_permissions(&hooks_dir, fs::Permissions::from_mode(0o700)).unwrap();

        // A directory of the registry that is a symlink is checked where it leads.
        let shared = tempfile::tempdir().unwrap();
        fs::set_permissions(shared.path(), fs::Permissions::from_mode(0o777)).unwrap();
        let modules = reg.paths().modules_dir();
        fs::remove_dir(&modules).unwrap();
        std::os::unix::fs::symlink(shared.path(), &modules).unwrap();
        let err = Registry::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains(&shared.path().display().to_string()) && err.contains("other users"),
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
