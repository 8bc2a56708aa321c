//! Files hookhost can rely on: crash-safe writes (a reader sees the old file or the new one,
//! never a mix, and a killed writer's temp files are collected), and sudo-style trust checks of
//! what decides which code runs as root.

use std::fs::{self, File, Metadata, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

/// Lower-case hex sha256 of some bytes: how hookhost names modules, pins binaries and plans.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `bytes` to `path` through a temp file in the same directory, fsync and rename, then
/// fsyncs the directory so the rename itself survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// Like [`write_atomic`], keeping the permissions of the file being replaced when it exists.
pub fn replace_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    write_atomic(path, bytes, mode)
}

/// Swaps two paths atomically (`renameat2` with `RENAME_EXCHANGE`). Called as the system
/// call itself, which every libc hookhost links has: glibc's wrapper is not in musl's.
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let path = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path holds a NUL byte"))
    };
    let (a, b) = (path(a)?, path(b)?);
    // SAFETY: both are NUL-terminated strings alive for the call; the kernel reads nothing else.
    let done = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    match done {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its missing parents with `mode` (existing directories are left as they are).
/// A directory that exists, the usual case, costs one `stat` (not a `mkdir` that fails with
/// `EEXIST` and then a `stat`).
pub fn create_dir_all(dir: &Path, mode: u32) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::DirBuilder::new().recursive(true).mode(mode).create(dir)
}

/// Removes the temp files a killed writer left behind. Only call while holding the writers'
/// lock, when no write can be in flight.
pub fn remove_stale_temps(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Why hookhost refuses to trust a file it would run or read hooks from.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Untrusted {
    #[error(
        "refusing to use {path}: it is writable by {who} (mode {mode:04o}), so another user could \
         change what runs as root; fix with `chmod go-w {path}`"
    )]
    Writable {
        path: PathBuf,
        who: &'static str,
        mode: u32,
    },
    #[error(
        "refusing to use {path}: it is owned by uid {uid}, not root or the current user; \
         fix with `chown root {path}`"
    )]
    Owner { path: PathBuf, uid: u32 },
    #[error("cannot check the permissions of {path}: {reason}")]
    Unreadable { path: PathBuf, reason: String },
}

/// sudo-style check of one file or directory: owned by root or the effective user, and not
/// writable by group or others. A directory that others may write is accepted only with the
/// sticky bit and a trusted owner (`/tmp`): nobody else can then rename or remove what is in it.
pub fn check_trusted_meta(path: &Path, meta: &Metadata) -> Result<(), Untrusted> {
    let euid = nix::unistd::geteuid().as_raw();
    let uid = meta.uid();
    if uid != 0 && uid != euid {
        return Err(Untrusted::Owner {
            path: path.to_path_buf(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    let sticky_dir = meta.is_dir() && mode & 0o1000 != 0;
    let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        _ if sticky_dir => return Ok(()),
        (true, true) => "its group and other users",
        (true, false) => "its group",
        (false, true) => "other users",
        (false, false) => return Ok(()),
    };
    Err(Untrusted::Writable {
        path: path.to_path_buf(),
        who,
        mode,
    })
}

/// [`check_trusted_meta`] on what `path` resolves to (symlinks followed) and on every directory
/// above it, up to `/`. After [`remember_trusted_dirs`], a path directly in a directory this
/// thread already found trusted is checked by its own `lstat` alone (unless it is a symlink).
pub fn check_trusted_path(path: &Path) -> Result<(), Untrusted> {
    let unreadable = |p: &Path, e: io::Error| Untrusted::Unreadable {
        path: p.to_path_buf(),
        reason: e.to_string(),
    };
    if let Some(checked) = check_in_trusted_dir(path) {
        return checked;
    }
    let path = fs::canonicalize(path).map_err(|e| unreadable(path, e))?;
    let mut current = Some(path.as_path());
    let mut dirs = Vec::new();
    while let Some(p) = current {
        let meta = fs::metadata(p).map_err(|e| unreadable(p, e))?;
        check_trusted_meta(p, &meta)?;
        if meta.is_dir() {
            dirs.push(p.to_path_buf());
        }
        current = p.parent();
    }
    TRUSTED_DIRS.with_borrow_mut(|known| {
        if let Some(known) = known {
            known.extend(dirs);
        }
    });
    Ok(())
}

thread_local! {
    /// The directories (resolved, so each names itself) this thread found trusted with every
    /// directory above them, once [`remember_trusted_dirs`] was called on it.
    static TRUSTED_DIRS: std::cell::RefCell<Option<std::collections::HashSet<PathBuf>>> =
        const { std::cell::RefCell::new(None) };
}

/// From now on, this thread's trust checks remember the directories they found trusted: a
/// remembered directory is not checked again, and a path directly in one neither resolves nor
/// walks up again but is checked by one `lstat` of its own (a symlink is still followed and
/// checked all the way up). For a short-lived process that checks many files in the same few
/// directories within milliseconds (`hookhost stage`: each hook's module and the compile
/// cache, ~25 system calls a hook): a directory that was trusted can only become untrusted by
/// its owner's hand (root or the current user), not a change this check guards against.
/// Long-lived callers (the NRI plugin) never call this, and check every path in full each time.
pub fn remember_trusted_dirs() {
    TRUSTED_DIRS.with_borrow_mut(|known| {
        known.get_or_insert_with(Default::default);
    });
}

/// The check of `path` when it names a plain entry of a directory this thread remembers as
/// trusted (`None`: check it in full). Only a path spelled without `.`, `..` or a trailing
/// slash, so that it names exactly that entry of that directory.
fn check_in_trusted_dir(path: &Path) -> Option<Result<(), Untrusted>> {
    use std::path::Component;
    let plain = path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !path.as_os_str().as_encoded_bytes().ends_with(b"/");
    let dir = path.parent().filter(|_| plain)?;
    let (itself, in_known) = TRUSTED_DIRS
        .with_borrow(|known| known.as_ref().map(|k| (k.contains(path), k.contains(dir))))?;
    if itself {
        return Some(Ok(()));
    }
    if !in_known {
        return None;
    }
    let meta = fs::symlink_metadata(path).ok()?;
    if meta.file_type().is_symlink() {
        return None;
    }
    let checked = check_trusted_meta(path, &meta);
    if checked.is_ok() && meta.is_dir() {
        TRUSTED_DIRS.with_borrow_mut(|known| {
            if let Some(known) = known {
                known.insert(path.to_path_buf());
            }
        });
    }
    Some(checked)
}

/// [`check_trusted_path`] for an entry of a directory that already passed it: the entry's
/// own metadata when it is not a symlink (its parents are that directory's, checked), else
/// the symlink's target all the way up. One `lstat` instead of a walk to `/`.
pub fn check_trusted_entry(path: &Path) -> Result<(), Untrusted> {
    match fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_symlink() => check_trusted_meta(path, &meta),
        _ => check_trusted_path(path),
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_or_other_writable_files_are_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("entry.json");
        fs::write(&file, "{}").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        check_trusted_path(&file).unwrap();
        for (mode, who) in [
            (0o620, "its group"),
            (0o602, "other users"),
            (0o666, "its group and other users"),
        ] {
            fs::set_permissions(&file, Permissions::from_mode(mode)).unwrap();
            let err = check_trusted_path(&file).unwrap_err().to_string();
            assert!(err.contains(who) && err.contains("chmod go-w"), "{err}");
        }
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        // A writable directory above the file is as bad as a writable file.
        fs::set_permissions(dir.path(), Permissions::from_mode(0o777)).unwrap();
        let err = check_trusted_path(&file).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        // …unless it is sticky, like /tmp.
        fs::set_permissions(dir.path(), Permissions::from_mode(0o1777)).unwrap();
        check_trusted_path(&file).unwrap();
    }

    #[test]
    fn an_entry_is_checked_itself_and_a_symlinked_one_all_the_way_up() {
        let dir = tempfile::tempdir().unwrap();
        check_trusted_path(dir.path()).unwrap();
        let entry = dir.path().join("global");
        fs::create_dir(&entry).unwrap();
        check_trusted_entry(&entry).unwrap();
        fs::set_permissions(&entry, Permissions::from_mode(0o777)).unwrap();
        let err = check_trusted_entry(&entry).unwrap_err().to_string();
        assert!(
            err.contains("other users") && err.contains("chmod go-w"),
            "{err}"
        );

        // A symlinked entry is as trusted as where it leads: here, a directory inside one
        // that others may write.
        let elsewhere = tempfile::tempdir().unwrap();
        fs::set_permissions(elsewhere.path(), Permissions::from_mode(0o777)).unwrap();
        let target = elsewhere.path().join("d");
        fs::create_dir(&target).unwrap();
        let link = dir.path().join("hooks");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let err = check_trusted_entry(&link).unwrap_err().to_string();
        assert!(
            err.contains(&elsewhere.path().display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn replaces_content_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("config.json");
        fs::write(&file, "old").unwrap();
        fs::set_permissions(&file, Permissions::from_mode(0o600)).unwrap();
        replace_atomic(&file, b"new").unwrap();
        assert_eq!(fs::read_to_string(&file).unwrap(), "new");
        assert_eq!(
            fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temp file left: {names:?}");
    }

    /// After `remember_trusted_dirs`, a file in a directory already found trusted is checked
    /// by its own metadata alone: still refused when writable by others, a symlink still
    /// followed all the way, and the directory itself not looked at again (the last check
    /// shows it: a directory made writable afterwards is what a thread without the memory
    /// refuses).
    #[test]
    fn remembered_directories_skip_the_walk_but_never_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let trusted = fs::canonicalize(dir.path()).unwrap().join("trusted");
        let open = trusted.with_file_name("open");
        for d in [&trusted, &open] {
            fs::create_dir(d).unwrap();
        }
        fs::set_permissions(&open, Permissions::from_mode(0o777)).unwrap();
        let write = |path: &Path, mode| {
            fs::write(path, "x").unwrap();
            fs::set_permissions(path, Permissions::from_mode(mode)).unwrap();
        };
        let (first, second, writable) = (
            trusted.join("first"),
            trusted.join("second"),
            trusted.join("writable"),
        );
        write(&first, 0o600);
        write(&second, 0o600);
        write(&writable, 0o666);
        write(&open.join("target"), 0o600);
        let link = trusted.join("link");
        std::os::unix::fs::symlink(open.join("target"), &link).unwrap();

        std::thread::scope(|s| {
            s.spawn(|| {
                remember_trusted_dirs();
                check_trusted_path(&first).unwrap();
                let err = check_trusted_path(&writable).unwrap_err().to_string();
                assert!(err.contains("other users"), "{err}");
                let err = check_trusted_path(&link).unwrap_err().to_string();
                assert!(err.contains(&open.display().to_string()), "{err}");
                fs::set_permissions(&trusted, Permissions::from_mode(0o777)).unwrap();
                check_trusted_path(&second).unwrap();
            });
        });
        let err = check_trusted_path(&second).unwrap_err().to_string();
        assert!(err.contains(&trusted.display().to_string()), "{err}");
    }
}
