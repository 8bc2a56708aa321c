//! Generations: `apply` writes the node's complete new hook set beside the current one and
//! switches to it with one rename, so that a container being created gets the old set or the
//! new one, whole, and an apply killed at any point leaves the node on the old one.
//!
//! ```text
//! ROOT/generations/N/hooks/, global/   one complete set of entries (N counts up)
//! ROOT/generations/N/generation.json   what it is: the artifact's digest, where it came from
//! ROOT/current -> generations/N        the one pointer, replaced by a rename
//! ROOT/hooks -> current/hooks          and global -> current/global, for readers of paths
//! ```
//!
//! A set is built in `generations/.tmp-N-PID`, each entry fsynced, then renamed to
//! `generations/N`; a symlink `.tmp-current` to it is renamed over `current`: that rename is
//! the switch. Before it, the node is on the old generation; after it, on the new one; the
//! temp directories of a killed apply are removed by the next one. All of it happens under the
//! registry's writers' lock.
//!
//! [`crate::registry::Registry::open`] pins the generation `current` names: every entry it
//! reads comes from that one directory, whatever switches meanwhile, and it holds a shared
//! lock on the directory while it lives. A superseded generation is removed only when no
//! handle holds it (and never the one before the current, kept for `hookhost ls` of a node
//! mid-switch and for inspection).
//!
//! A registry that has never been applied to has no generations: its entries are in
//! `ROOT/hooks` and `ROOT/global` themselves, as before. The first switch turns those two into
//! the symlinks (an atomic exchange, so that they never go missing: the runtime wrapper takes a
//! missing `hooks/` for a missing registry).

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::hook::Hook;
use crate::paths::Paths;
use crate::registry::{Registry, RegistryError, entry_bytes};
use hookhost_exec::fs as fsutil;

/// The file of a generation's directory that says what it is; written last, removed first.
const RECORD_FILE: &str = "generation.json";
/// How often `open` follows `current` again when the generation it named was removed between
/// reading the link and locking the directory (each retry needs another whole apply to finish
/// in between).
const PIN_ATTEMPTS: usize = 32;
/// Prefix of everything an apply writes before it is complete; the next apply removes them.
const TEMP_PREFIX: &str = ".tmp-";

#[derive(Debug, Error)]
pub enum GenerationError {
    #[error("cannot {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("generation record {} is corrupt", file.display())]
    Corrupt {
        file: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{} keeps naming removed generations (applies are switching it faster than it can be \
         read); try again", link.display()
    )]
    Moving { link: PathBuf },
    #[error(
        "an apply switched the registry from generation {pinned} while this command ran; \
         run it again"
    )]
    Superseded { pinned: u64 },
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> GenerationError {
    let path = path.to_path_buf();
    move |source| GenerationError::Io {
        action,
        path,
        source,
    }
}

/// What one generation is, as `generation.json`, plans, events and `inspect` name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Record {
    /// What was applied: an artifact's manifest digest, or a file's (`sha256:…`).
    pub id: String,
    /// The node's count of generations: each switch makes the next one.
    pub number: u64,
    /// Where it came from: `oci://HOST/REPO:TAG`, or the file applied.
    pub source: String,
    /// When it became current.
    pub applied: DateTime<Utc>,
}

/// A generation pinned by a registry handle: its directory cannot be removed while this lives.
#[derive(Debug)]
pub struct Pinned {
    pub dir: PathBuf,
    pub record: Record,
    /// A shared lock on `dir` (a remover needs an exclusive one).
    _lock: File,
}

/// The paths of the generation `current` names, pinned; the root's own paths and `None` on a
/// registry that has never been applied to.
pub fn pin(root: &Path) -> Result<(Paths, Option<Pinned>), GenerationError> {
    let paths = Paths::new(root);
    let link = paths.current_link();
    for _ in 0..PIN_ATTEMPTS {
        let target = match fs::read_link(&link) {
            Ok(target) => target,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((paths, None)),
            Err(e) => return Err(io_err("read the link", &link)(e)),
        };
        let dir = root.join(target);
        let handle = match File::open(&dir) {
            Ok(handle) => handle,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("open", &dir)(e)),
        };
        handle.lock_shared().map_err(io_err("lock", &dir))?;
        // Removed between the link and the lock: its record goes first.
        let Some(record) = read_record(&dir)? else {
            continue;
        };
        return Ok((
            Paths::in_generation(root, &dir),
            Some(Pinned {
                dir,
                record,
                _lock: handle,
            }),
        ));
    }
    Err(GenerationError::Moving { link })
}

/// Fails when `current` no longer names `pinned`: a write into a superseded generation would
/// be lost. Call with the writers' lock held (no switch can happen then).
pub(crate) fn check_current(root: &Path, pinned: &Pinned) -> Result<(), GenerationError> {
    let link = Paths::new(root).current_link();
    let target = fs::read_link(&link).map_err(io_err("read the link", &link))?;
    match root.join(target) == pinned.dir {
        true => Ok(()),
        false => Err(GenerationError::Superseded {
            pinned: pinned.record.number,
        }),
    }
}

/// The record of the generation in `dir`; `None` when it is gone or being removed.
pub fn read_record(dir: &Path) -> Result<Option<Record>, GenerationError> {
    let file = dir.join(RECORD_FILE);
    let bytes = match fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read", &file)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|source| GenerationError::Corrupt { file, source })
}

/// The record `current` names now (unpinned: for reports); `None` before the first apply.
pub fn current(root: &Path) -> Result<Option<Record>, GenerationError> {
    Ok(pin(root)?.1.map(|pinned| pinned.record))
}

/// What the next generation is, before it is written.
#[derive(Debug, Clone)]
pub struct Next {
    pub id: String,
    pub source: String,
}

/// What the registry holds when an apply commits.
pub struct Current<'a> {
    /// Every entry that could be read.
    pub hooks: Vec<Hook>,
    /// The entries that could not (each names its file): they cannot be carried into the next
    /// generation.
    pub unreadable: Vec<RegistryError>,
    /// The generation they are in.
    pub generation: Option<&'a Record>,
}

/// Under the registry's writers' lock: hands `make` the current set (read then, so that no
/// concurrent `create` is lost), and unless it returns `None` (nothing to change),
/// writes what it returns as the next generation and switches to it.
pub fn commit<E: From<RegistryError>>(
    registry: &Registry,
    next: Next,
    make: impl FnOnce(Current) -> Result<Option<Vec<Hook>>, E>,
) -> Result<Option<Record>, E> {
    // Whichever generation the caller's handle pinned: the current set is read again here.
    let _lock = registry.lock_root()?;
    let root = registry.paths().root();
    let paths = Paths::new(root);
    remove_temps(root, &paths.generations_dir());
    // A first switch cut short between `current` and the links: finish it.
    if fs::symlink_metadata(paths.current_link()).is_ok() {
        link_entry_dirs(&paths).map_err(RegistryError::from)?;
    }
    let now = Registry::open(root)?;
    let (hooks, unreadable) = now.list()?;
    let current = Current {
        hooks,
        unreadable,
        generation: now.generation(),
    };
    let Some(hooks) = make(current)? else {
        return Ok(None);
    };
    drop(now);
    Ok(Some(
        switch(root, &hooks, next).map_err(RegistryError::from)?,
    ))
}

/// Writes `hooks` as the next generation and makes it current; then removes the generations
/// no handle holds. Call with the registry's writers' lock held, after [`remove_temps`].
fn switch(root: &Path, hooks: &[Hook], next: Next) -> Result<Record, GenerationError> {
    let paths = Paths::new(root);
    let generations = paths.generations_dir();
    mkdir(&generations)?;
    let number = numbers(&generations)?.last().copied().unwrap_or(0) + 1;
    let record = Record {
        id: next.id,
        number,
        source: next.source,
        applied: Utc::now(),
    };
    let staging = generations.join(format!("{TEMP_PREFIX}{number}-{}", std::process::id()));
    write_generation(&staging, hooks, &record)?;
    let done = generations.join(number.to_string());
    fs::rename(&staging, &done).map_err(io_err("rename", &staging))?;
    fsutil::sync_dir(&generations).map_err(io_err("sync", &generations))?;
    // The switch.
    let link = paths.current_link();
    let temp_link = root.join(format!("{TEMP_PREFIX}current"));
    let _ = fs::remove_file(&temp_link);
    let target = Path::new("generations").join(number.to_string());
    symlink(&target, &temp_link).map_err(io_err("create the link", &temp_link))?;
    fs::rename(&temp_link, &link).map_err(io_err("replace", &link))?;
    fsutil::sync_dir(root).map_err(io_err("sync", root))?;
    link_entry_dirs(&paths)?;
    remove_unused(&generations, number);
    Ok(record)
}

/// A complete generation in `dir`: every entry fsynced, then the record, then the directory.
fn write_generation(dir: &Path, hooks: &[Hook], record: &Record) -> Result<(), GenerationError> {
    let paths = Paths::in_generation(dir, dir);
    for sub in [dir.to_path_buf(), paths.hooks_dir(), paths.global_dir()] {
        mkdir(&sub)?;
    }
    for hook in hooks {
        let file = match hook.in_global_dir() {
            true => paths.global_hook_file(&hook.name),
            false => paths.hook_file(&hook.name),
        };
        write_synced(&file, &entry_bytes(hook)).map_err(io_err("write", &file))?;
    }
    for sub in [paths.hooks_dir(), paths.global_dir()] {
        fsutil::sync_dir(&sub).map_err(io_err("sync", &sub))?;
    }
    let mut doc = serde_json::to_vec_pretty(record).expect("a record serialises");
    doc.push(b'\n');
    let file = dir.join(RECORD_FILE);
    write_synced(&file, &doc).map_err(io_err("write", &file))?;
    fsutil::sync_dir(dir).map_err(io_err("sync", dir))
}

/// Writes a new file owner-only and fsyncs it (in a directory nobody reads yet: no rename).
fn write_synced(file: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut handle = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)?;
    handle.write_all(bytes)?;
    handle.sync_all()
}

fn mkdir(dir: &Path) -> Result<(), GenerationError> {
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err("create directory", dir)(e)),
    }
}

/// The numbers of the complete generations, ascending.
fn numbers(generations: &Path) -> Result<Vec<u64>, GenerationError> {
    let mut numbers: Vec<u64> = fs::read_dir(generations)
        .map_err(io_err("read directory", generations))?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    numbers.sort_unstable();
    Ok(numbers)
}

/// Removes what killed applies left: half-written generations, a temp link, and the old
/// entry directories an interrupted first switch exchanged out.
fn remove_temps(root: &Path, generations: &Path) {
    for dir in [root, generations] {
        let Ok(entries) = fs::read_dir(dir) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => {
                    let _ = fs::remove_dir_all(&path);
                }
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }
}

/// Makes `ROOT/hooks` and `ROOT/global` the symlinks into `current`. A directory there (a
/// registry's entries before its first apply) is exchanged with the symlink in one step, so
/// that the path never goes missing, then removed.
fn link_entry_dirs(paths: &Paths) -> Result<(), GenerationError> {
    let root = paths.root();
    for name in ["hooks", "global"] {
        let path = root.join(name);
        let meta = fs::symlink_metadata(&path);
        if meta.as_ref().is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        let temp = root.join(format!("{TEMP_PREFIX}{name}"));
        let _ = fs::remove_file(&temp);
        symlink(Path::new("current").join(name), &temp)
            .map_err(io_err("create the link", &temp))?;
        match meta {
            Ok(_) => {
                exchange(&temp, &path)?;
                // `temp` is now the old directory.
                fs::remove_dir_all(&temp).map_err(io_err("remove", &temp))?;
            }
            Err(_) => fs::rename(&temp, &path).map_err(io_err("create", &path))?,
        }
    }
    fsutil::sync_dir(root).map_err(io_err("sync", root))
}

/// Swaps two paths atomically (renameat2 RENAME_EXCHANGE).
fn exchange(a: &Path, b: &Path) -> Result<(), GenerationError> {
    fsutil::exchange(a, b).map_err(io_err("exchange with the link", b))
}

/// Removes the generations older than the one before `current` that no registry handle holds.
/// Best effort: one still held goes at a later apply.
fn remove_unused(generations: &Path, current: u64) {
    let Ok(numbers) = numbers(generations) else {
        return;
    };
    for number in numbers.into_iter().filter(|n| *n + 1 < current) {
        let dir = generations.join(number.to_string());
        let Ok(handle) = File::open(&dir) else {
            continue;
        };
        if handle.try_lock().is_err() {
            continue;
        }
        // The record first: a reader that locks the directory after this sees it is gone.
        if fs::remove_file(dir.join(RECORD_FILE)).is_err() {
            continue;
        }
        let doomed = generations.join(format!("{TEMP_PREFIX}removed-{number}"));
        if fs::rename(&dir, &doomed).is_ok() {
            let _ = fs::remove_dir_all(&doomed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(id: &str) -> Next {
        Next {
            id: id.into(),
            source: "test".into(),
        }
    }

    #[test]
    fn a_pinned_generation_outlives_later_switches_and_the_rest_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("hooks")).unwrap();
        assert!(pin(root).unwrap().1.is_none());
        let first = switch(root, &[], next("a")).unwrap();
        assert_eq!(first.number, 1);
        assert!(
            fs::symlink_metadata(root.join("hooks"))
                .unwrap()
                .is_symlink()
        );
        let (paths, pinned) = pin(root).unwrap();
        assert_eq!(pinned.as_ref().unwrap().record, first);
        assert_eq!(paths.hooks_dir(), root.join("generations/1/hooks"));
        for id in ["b", "c", "d"] {
            switch(root, &[], next(id)).unwrap();
        }
        // 1 is held; 2 is unused and old; 3 is the one before the current; 4 is current.
        let left = numbers(&root.join("generations")).unwrap();
        assert_eq!(left, [1, 3, 4]);
        drop(pinned);
        switch(root, &[], next("e")).unwrap();
        assert_eq!(numbers(&root.join("generations")).unwrap(), [4, 5]);
        assert_eq!(current(root).unwrap().unwrap().id, "e");
    }

    #[test]
    fn a_write_into_a_superseded_generation_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        switch(root, &[], next("a")).unwrap();
        let registry = Registry::open(root).unwrap();
        let (_, pinned) = pin(root).unwrap();
        let pinned = pinned.unwrap();
        check_current(root, &pinned).unwrap();
        commit(&registry, next("b"), |now| {
            assert_eq!(now.generation.unwrap().id, "a");
            Ok::<_, RegistryError>(Some(now.hooks))
        })
        .unwrap();
        let err = check_current(root, &pinned).unwrap_err();
        assert!(err.to_string().contains("run it again"), "{err}");
        // A handle opened before the switch cannot write into the old generation.
        let err = registry.remove("x").unwrap_err();
        assert!(matches!(err, RegistryError::Generation(_)), "{err}");
        assert!(matches!(
            Registry::open(root).unwrap().remove("x"),
            Err(RegistryError::NotFound(_))
        ));
    }

    #[test]
    fn what_a_killed_apply_left_is_removed_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        switch(root, &[], next("a")).unwrap();
        let generations = root.join("generations");
        fs::create_dir_all(generations.join(".tmp-2-1/hooks")).unwrap();
        symlink("generations/2", root.join(".tmp-current")).unwrap();
        // Killed after the first switch, before `hooks/` became a link.
        fs::remove_file(root.join("hooks")).unwrap();
        fs::create_dir(root.join("hooks")).unwrap();
        let registry = Registry::open(root).unwrap();
        commit(&registry, next("a"), |_| Ok::<_, RegistryError>(None)).unwrap();
        assert!(
            fs::symlink_metadata(root.join("hooks"))
                .unwrap()
                .is_symlink()
        );
        commit(&registry, next("b"), |now| {
            Ok::<_, RegistryError>(Some(now.hooks))
        })
        .unwrap();
        assert!(!generations.join(".tmp-2-1").exists());
        assert!(fs::symlink_metadata(root.join(".tmp-current")).is_err());
        assert_eq!(current(root).unwrap().unwrap().number, 2);
    }
}
