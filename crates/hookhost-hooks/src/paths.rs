//! Where hookhost keeps its files, all under one root directory.
//!
//! ```text
//! ROOT/hooks/NAME.json          one document per plain hook (containers select it by name)
//! ROOT/global/NAME.json         one document per global hook (with `when` conditions)
//! ROOT/modules/SHA256.wasm      WebAssembly modules, content-addressed
//! ROOT/cache/                   precompiled modules (safe to delete)
//! ROOT/events.jsonl             the audit trail, one JSON line per hook run
//! ROOT/lock                     serialises registry writers
//! ROOT/generations/N/           a whole hook set written by `apply` (see [`crate::generation`])
//! ROOT/current                  the symlink naming the generation in use
//! ROOT/fleet/status.json        what `apply --watch` last did (a directory of its own: the
//!                               writers' lock does not cover it, and no writer cleans it)
//! ```
//!
//! Once an `apply` has run, `hooks/` and `global/` are symlinks into `current`, and a
//! [`Paths`] opened through the registry reads the entries of the generation it pinned.
//!
//! A hook's directory is what makes it global: there is no index to disagree with the entries.
//! Registries of the old layout kept every entry in `hooks/` and listed the global ones in an
//! index, `ROOT/global.json`; the registry, when it opens, upgrades them.

use std::path::{Path, PathBuf};

/// The environment variable that overrides the default root.
pub const ROOT_ENV: &str = "HOOKHOST_ROOT";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    root: PathBuf,
    /// Where `hooks/` and `global/` are: the root, or a generation's directory.
    entries: PathBuf,
}

impl Paths {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Paths {
            entries: root.clone(),
            root,
        }
    }

    /// The paths of `root` whose hook entries are those of the generation in `dir`.
    pub fn in_generation(root: impl Into<PathBuf>, dir: impl Into<PathBuf>) -> Self {
        Paths {
            root: root.into(),
            entries: dir.into(),
        }
    }

    /// `/var/lib/hookhost` for root, `$XDG_DATA_HOME/hookhost` (or `~/.local/share/hookhost`)
    /// for everyone else.
    pub fn default_root() -> PathBuf {
        if nix::unistd::geteuid().is_root() {
            return PathBuf::from("/var/lib/hookhost");
        }
        let data_home = std::env::var_os("XDG_DATA_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/tmp"));
        data_home.join("hookhost")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn hooks_dir(&self) -> PathBuf {
        self.entries.join("hooks")
    }

    pub fn hook_file(&self, name: &str) -> PathBuf {
        self.hooks_dir().join(format!("{name}.json"))
    }

    /// Global hooks: those with `when` conditions, which the runtime wrapper checks against
    /// every container.
    pub fn global_dir(&self) -> PathBuf {
        self.entries.join("global")
    }

    pub fn global_hook_file(&self, name: &str) -> PathBuf {
        self.global_dir().join(format!("{name}.json"))
    }

    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("modules")
    }

    pub fn module_file(&self, digest: &str) -> PathBuf {
        self.modules_dir().join(format!("{digest}.wasm"))
    }

    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub fn events_file(&self) -> PathBuf {
        self.root.join("events.jsonl")
    }

    pub fn lock_file(&self) -> PathBuf {
        self.root.join("lock")
    }

    /// Every generation's directory, `N` counting up.
    pub fn generations_dir(&self) -> PathBuf {
        self.root.join("generations")
    }

    /// The symlink naming the current generation, relative to the root.
    pub fn current_link(&self) -> PathBuf {
        self.root.join("current")
    }

    /// What `apply --watch` last did (see `hookhost_hooks::generation::Status`).
    pub fn fleet_status_file(&self) -> PathBuf {
        self.root.join("fleet").join("status.json")
    }

    /// The old layout's index of global hooks; now only the mark of an unfinished upgrade.
    pub fn old_global_index_file(&self) -> PathBuf {
        self.root.join("global.json")
    }
}
