//! The spec directories, read: every `*.json` and `*.yaml` file directly in each (not below),
//! in name order, as the Go reference scans them; each checked like a hooks.d file (owned by
//! root or the current user, writable by no one else, nor any directory above it).

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hookhost_exec::fs as fsutil;

use super::spec::{self, Spec};
use super::{CdiError, Request, Resolved, names};

/// A valid spec file.
#[derive(Debug, Clone)]
pub struct SpecFile {
    pub path: PathBuf,
    /// Which directory it is in (the later, the higher its priority).
    pub dir: usize,
    pub spec: Spec,
}

/// A spec file hookhost cannot use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// A device defined in two directories: the later one's definition is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shadowed {
    pub device: String,
    pub used: PathBuf,
    pub ignored: PathBuf,
}

/// Every device of the spec directories.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub dirs: Vec<PathBuf>,
    pub specs: Vec<SpecFile>,
    /// Fully qualified name → (index in `specs`, index in its devices).
    pub devices: BTreeMap<String, (usize, usize)>,
    pub problems: Vec<Problem>,
    pub shadowed: Vec<Shadowed>,
}

impl Catalog {
    /// Reads `dirs` (lowest priority first); a missing directory has no devices.
    pub fn load(dirs: &[PathBuf]) -> Catalog {
        let mut catalog = Catalog {
            dirs: dirs.to_vec(),
            ..Catalog::default()
        };
        for (index, dir) in dirs.iter().enumerate() {
            for path in catalog.files(dir) {
                match read(&path) {
                    Ok(spec) => catalog.add(SpecFile {
                        path,
                        dir: index,
                        spec,
                    }),
                    Err(reason) => catalog.problems.push(Problem { file: path, reason }),
                }
            }
        }
        catalog
    }

    /// The candidate spec files of `dir`, in name order.
    fn files(&mut self, dir: &Path) -> Vec<PathBuf> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => {
                self.problem(dir, format!("cannot read the directory: {e}"));
                return Vec::new();
            }
        };
        if let Err(e) = fsutil::check_trusted_path(dir) {
            self.problem(dir, e.to_string());
            return Vec::new();
        }
        let mut files = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => files.push(entry.path()),
                Err(e) => self.problem(dir, format!("cannot read the directory: {e}")),
            }
        }
        files.retain(|p| {
            let spec_ext = matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml")
            );
            spec_ext && !p.is_dir()
        });
        files.sort();
        files
    }

    fn problem(&mut self, file: &Path, reason: String) {
        self.problems.push(Problem {
            file: file.to_path_buf(),
            reason,
        });
    }

    /// Adds a valid spec's devices: a device another file of the same directory defines is a
    /// conflict (a problem of both files); one of an earlier directory is shadowed.
    fn add(&mut self, file: SpecFile) {
        let index = self.specs.len();
        for (d, device) in file.spec.devices.iter().enumerate() {
            let name = format!("{}={}", file.spec.kind, device.name);
            match self.devices.get(&name).map(|(s, _)| &self.specs[*s]) {
                Some(other) if other.dir == file.dir => {
                    let other_path = other.path.clone();
                    let reason = |with: &Path| {
                        format!(
                            "device {name} is also defined by {} in the same directory: \
                             conflicting definitions refuse the device",
                            with.display()
                        )
                    };
                    self.problem(&file.path, reason(&other_path));
                    self.problem(&other_path, reason(&file.path));
                }
                Some(other) => {
                    self.shadowed.push(Shadowed {
                        device: name.clone(),
                        used: file.path.clone(),
                        ignored: other.path.clone(),
                    });
                    self.devices.insert(name, (index, d));
                }
                None => {
                    self.devices.insert(name, (index, d));
                }
            }
        }
        self.specs.push(file);
    }

    /// The devices `requests` name, in order; refused when a name is invalid or unknown, or
    /// when any spec file has a problem (fail closed: the file that cannot be read might be
    /// the one that defines, or conflicts with, a requested device).
    pub fn resolve<'a>(&'a self, requests: &'a [Request]) -> Result<Vec<Resolved<'a>>, CdiError> {
        for request in requests {
            names::Qualified::parse(&request.name).map_err(|reason| CdiError::BadName {
                name: request.name.clone(),
                key: request.key.clone(),
                reason,
            })?;
        }
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        if !self.problems.is_empty() {
            return Err(CdiError::Specs {
                problems: self.problems.clone(),
            });
        }
        requests
            .iter()
            .map(|request| {
                let (s, d) = self
                    .devices
                    .get(&request.name)
                    .ok_or_else(|| CdiError::Unknown {
                        name: request.name.clone(),
                        key: request.key.clone(),
                        dirs: self.dirs.clone(),
                    })?;
                let file = &self.specs[*s];
                Ok(Resolved {
                    name: &request.name,
                    file,
                    device: &file.spec.devices[*d],
                })
            })
            .collect()
    }
}

/// Reads, trust-checks and validates one spec file.
fn read(path: &Path) -> Result<Spec, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read it: {e}"))?;
    fsutil::check_trusted_path(path).map_err(|e| e.to_string())?;
    let spec = spec::parse(&bytes)?;
    spec.validate()?;
    Ok(spec)
}
