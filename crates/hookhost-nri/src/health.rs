//! The health file: present (with a line saying how the plugin is registered) while the plugin
//! is registered and synchronized with the runtime, absent otherwise, for a DaemonSet's probe
//! (`test -f FILE`). Written atomically, so a probe never reads half a file.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

/// The health file, if one was asked for.
pub(crate) struct Health {
    path: Option<PathBuf>,
    /// Went up since the last [`Health::was_up`].
    went_up: AtomicBool,
}

impl Health {
    /// The health file at `path`; a stale one (from a plugin that died) is removed at once.
    pub(crate) fn new(path: Option<PathBuf>) -> Health {
        let health = Health {
            path,
            went_up: AtomicBool::new(false),
        };
        health.down();
        health
    }

    /// Registered: writes `text` to the file.
    pub(crate) fn up(&self, text: &str) {
        self.went_up.store(true, Ordering::SeqCst);
        let Some(path) = &self.path else { return };
        if let Err(err) = write_atomically(path, text) {
            tracing::error!(
                "cannot write the health file {}: {err}; probes will see the plugin as down",
                path.display()
            );
        }
    }

    /// Not registered: removes the file.
    pub(crate) fn down(&self) {
        let Some(path) = &self.path else { return };
        match fs::remove_file(path) {
            Ok(()) => tracing::info!("health file {} removed", path.display()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => tracing::error!(
                "cannot remove the health file {}: {err}; probes will see the plugin as up",
                path.display()
            ),
        }
    }

    /// Whether the plugin went up since the last call.
    pub(crate) fn was_up(&self) -> bool {
        self.went_up.swap(false, Ordering::SeqCst)
    }
}

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_exists_while_up_and_a_stale_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("healthy");
        fs::write(&path, "stale").unwrap();
        let health = Health::new(Some(path.clone()));
        assert!(!path.exists(), "a stale file is removed at start");
        health.up("registered\n");
        assert_eq!(fs::read_to_string(&path).unwrap(), "registered\n");
        health.down();
        assert!(!path.exists());
        assert!(health.was_up());
        assert!(!health.was_up());
    }
}
