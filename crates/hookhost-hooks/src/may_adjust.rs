//! `--may-adjust`: what a precreate hook may change in the container's configuration.
//!
//! A precreate hook gets the proposed config.json and returns the whole document; hookhost
//! compares the two ([`crate::diff`]) and refuses the container when a change is outside the
//! hook's grants ([`check`]). Grants are fixed by whoever registers the hook (`hookhost create
//! --may-adjust`), never by the container. Without any, a precreate hook may only accept or
//! refuse.
//!
//! ```text
//! env[=NAME-GLOB]            process.env entries, by variable name
//! mounts[=DESTINATION-GLOB[:from=SOURCE-GLOB[:rw]]]
//!                            mounts, by destination; bind mounts (and every other mount of a
//!                            host path) also by host source, read-only unless `:rw`
//! devices[=PATH-GLOB]        linux.devices, by path
//! annotations[=KEY-GLOB]     annotations, by key (not the cdi.k8s.io/ ones: see cdi)
//! cdi[=NAME-GLOB]            CDI devices requested through the cdi.k8s.io/ annotations, by
//!                            fully qualified name (cdi=example.com/gpu=*); hookhost resolves
//!                            them from the CDI spec files (crate::cdi)
//! rlimits                    process.rlimits
//! hooks                      the OCI hooks lists
//! resources                  linux.resources (cgroup limits and device rules)
//! args                       process.args
//! all                        anything in the document
//! ```
//!
//! Globs: `*` and `?` match within one path component for mounts and devices (`**` matches
//! across them: `mounts=/opt/gpu/**` covers `/opt/gpu` and everything below it), and anything
//! for names and keys (`env=GPU_*`).
//!
//! Paths are matched only in their normal form: a mount destination, device path or mount
//! source that is relative or holds a `.` or `..` component, a repeated or a trailing slash is
//! never granted (`/data/../etc` is not under `/data/**`). A mount of a host path needs its
//! source granted too: without `from=`, a hook may add only mounts of kernel file systems
//! (tmpfs, proc, sysfs, …) that have no host source. Sources are matched both as written and
//! as the host resolves them (symlinks followed), so a link under a granted directory does not
//! lead out of it.

use std::fmt;
use std::str::FromStr;

use globset::{Glob, GlobBuilder, GlobMatcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use thiserror::Error;

use crate::diff::{Change, Field, member_text};

/// A part of the configuration a grant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Area {
    Env,
    Mounts,
    Devices,
    Annotations,
    Cdi,
    Rlimits,
    Hooks,
    Resources,
    Args,
    All,
}

impl Area {
    const ALL: [Area; 10] = [
        Area::Env,
        Area::Mounts,
        Area::Devices,
        Area::Annotations,
        Area::Cdi,
        Area::Rlimits,
        Area::Hooks,
        Area::Resources,
        Area::Args,
        Area::All,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Area::Env => "env",
            Area::Mounts => "mounts",
            Area::Devices => "devices",
            Area::Annotations => "annotations",
            Area::Cdi => "cdi",
            Area::Rlimits => "rlimits",
            Area::Hooks => "hooks",
            Area::Resources => "resources",
            Area::Args => "args",
            Area::All => "all",
        }
    }

    /// Whether a grant of this area may name a glob of keys.
    fn keyed(self) -> bool {
        matches!(
            self,
            Area::Env | Area::Mounts | Area::Devices | Area::Annotations | Area::Cdi
        )
    }

    /// Whether its keys are paths, where `*` stays within one component.
    fn paths(self) -> bool {
        matches!(self, Area::Mounts | Area::Devices)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AdjustError {
    #[error(
        "unknown --may-adjust area {given:?}: use {}",
        Area::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")
    )]
    UnknownArea { given: String },
    #[error(
        "--may-adjust {area}={pattern}: {area} takes no pattern (only env, mounts, devices, annotations and cdi do)"
    )]
    NoPattern { area: &'static str, pattern: String },
    #[error(
        "--may-adjust {area}=: the pattern is empty (give a glob, or just {area} for all of them)"
    )]
    EmptyPattern { area: &'static str },
    #[error("--may-adjust {area}={pattern}: invalid glob: {reason}")]
    BadGlob {
        area: &'static str,
        pattern: String,
        reason: String,
    },
    #[error("--may-adjust: the list is empty")]
    Empty,
}

/// One grant: an area, optionally narrowed to the keys a glob matches.
#[derive(Debug, Clone)]
pub struct Adjust {
    pub area: Area,
    pattern: Option<(String, Vec<GlobMatcher>)>,
    /// `mounts=…:from=GLOB[:rw]`: the host sources its mounts may come from.
    from: Option<Sources>,
}

/// The host paths a mounts grant may mount from, and whether writable.
#[derive(Debug, Clone)]
struct Sources {
    text: String,
    globs: Vec<GlobMatcher>,
    writable: bool,
}

impl PartialEq for Adjust {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

impl Eq for Adjust {}

impl Adjust {
    pub fn pattern(&self) -> Option<&str> {
        self.pattern.as_ref().map(|(text, _)| text.as_str())
    }

    fn allows(&self, field: &Field) -> bool {
        if self.area == Area::All {
            return true;
        }
        let Some((area, key)) = field.area() else {
            return false;
        };
        area == self.area
            && match (&self.pattern, key) {
                (_, Some(key)) if area.paths() && !is_normal_path(key) => false,
                (None, _) => true,
                (Some((_, globs)), Some(key)) => globs.iter().any(|g| g.is_match(key)),
                (Some(_), None) => false,
            }
    }

    /// Whether this grant lets a mount come from `source` (as written and as resolved).
    fn allows_source(&self, source: &MountSource) -> bool {
        self.from.as_ref().is_some_and(|from| {
            (from.writable || !source.writable)
                && [&source.path, &source.resolved]
                    .iter()
                    .all(|p| from.globs.iter().any(|g| g.is_match(p.as_str())))
        })
    }
}

impl FromStr for Adjust {
    type Err = AdjustError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (name, pattern) = match text.trim().split_once('=') {
            Some((name, pattern)) => (name.trim(), Some(pattern.trim())),
            None => (text.trim(), None),
        };
        let area = Area::ALL
            .into_iter()
            .find(|a| a.as_str() == name)
            .ok_or_else(|| AdjustError::UnknownArea {
                given: name.to_string(),
            })?;
        let pattern = match pattern {
            None => None,
            Some(p) if !area.keyed() => {
                return Err(AdjustError::NoPattern {
                    area: area.as_str(),
                    pattern: p.to_string(),
                });
            }
            Some("") => {
                return Err(AdjustError::EmptyPattern {
                    area: area.as_str(),
                });
            }
            Some(p) => Some(p),
        };
        let (pattern, from) = match pattern.map(|p| split_from(area, p)).transpose()? {
            Some((pattern, from)) => (Some(pattern), from),
            None => (None, None),
        };
        let pattern = match pattern {
            Some(p) => Some((p.to_string(), matcher(area, p, p)?)),
            None => None,
        };
        Ok(Adjust {
            area,
            pattern,
            from,
        })
    }
}

/// `DEST-GLOB:from=SOURCE-GLOB[:rw]` of a mounts grant: the destination pattern and the
/// sources.
fn split_from(area: Area, text: &str) -> Result<(&str, Option<Sources>), AdjustError> {
    let Some((pattern, from)) = text.split_once(":from=") else {
        return Ok((text, None));
    };
    let bad = |reason: &str| AdjustError::BadGlob {
        area: area.as_str(),
        pattern: text.to_string(),
        reason: reason.to_string(),
    };
    if area != Area::Mounts {
        return Err(bad("only mounts grants name sources (:from=)"));
    }
    let (glob, writable) = match from.strip_suffix(":rw") {
        Some(glob) => (glob, true),
        None => (from.strip_suffix(":ro").unwrap_or(from), false),
    };
    if !glob.starts_with('/') {
        return Err(bad(
            "a source glob is an absolute host path (from=/usr/lib/gpu/**)",
        ));
    }
    if pattern.is_empty() {
        return Err(bad(
            "name the destinations before :from= (mounts=/opt/gpu/**:from=…)",
        ));
    }
    let sources = Sources {
        text: from.to_string(),
        globs: matcher(area, glob, text)?,
        writable,
    };
    Ok((pattern, Some(sources)))
}

/// The pattern's matchers: a path pattern ending in `/**` also matches the directory itself
/// (`mounts=/opt/gpu/**` covers a mount at `/opt/gpu`).
fn matcher(area: Area, pattern: &str, whole: &str) -> Result<Vec<GlobMatcher>, AdjustError> {
    let compile = |text: &str| -> Result<GlobMatcher, AdjustError> {
        let glob: Result<Glob, _> = GlobBuilder::new(text)
            .literal_separator(area.paths())
            .build();
        glob.map(|g| g.compile_matcher())
            .map_err(|e| AdjustError::BadGlob {
                area: area.as_str(),
                pattern: whole.to_string(),
                reason: e.kind().to_string(),
            })
    };
    let mut matchers = vec![compile(pattern)?];
    if let Some(dir) = pattern
        .strip_suffix("/**")
        .filter(|d| area.paths() && !d.is_empty())
    {
        matchers.push(compile(dir)?);
    }
    Ok(matchers)
}

impl fmt::Display for Adjust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.pattern(), &self.from) {
            (Some(pattern), Some(from)) => {
                write!(f, "{}={pattern}:from={}", self.area.as_str(), from.text)
            }
            (Some(pattern), None) => write!(f, "{}={pattern}", self.area.as_str()),
            (None, _) => f.write_str(self.area.as_str()),
        }
    }
}

/// A hook's grants: `--may-adjust env=GPU_*,mounts=/opt/gpu/**` (comma-separated, the flag
/// may be repeated). Stored as the list of its items' text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MayAdjust(pub Vec<Adjust>);

impl MayAdjust {
    /// Parses every `--may-adjust` value given.
    pub fn parse_all(values: &[String]) -> Result<MayAdjust, AdjustError> {
        let mut grants = Vec::new();
        for value in values {
            for item in value.split(',').filter(|i| !i.trim().is_empty()) {
                let grant: Adjust = item.parse()?;
                if !grants.contains(&grant) {
                    grants.push(grant);
                }
            }
        }
        if grants.is_empty() {
            return Err(AdjustError::Empty);
        }
        Ok(MayAdjust(grants))
    }

    /// `all`: may change anything, and overrides what an earlier hook set.
    pub fn is_all(&self) -> bool {
        self.0.iter().any(|a| a.area == Area::All)
    }

    pub fn allows(&self, field: &Field) -> bool {
        self.0.iter().any(|a| a.allows(field))
    }

    /// Everything, as a hooks.d precreate file runs under Podman.
    pub fn all() -> MayAdjust {
        MayAdjust(vec![Adjust {
            area: Area::All,
            pattern: None,
            from: None,
        }])
    }
}

/// Why a change is outside a hook's grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No grant names the field.
    NotGranted(Change),
    /// A path that is not in normal form: never granted.
    NotNormal { change: Change, path: String },
    /// A mount of a host path no grant names as a source.
    Source {
        change: Change,
        mount: String,
        source: MountSource,
    },
}

impl Denied {
    pub fn change(&self) -> &Change {
        match self {
            Denied::NotGranted(change)
            | Denied::NotNormal { change, .. }
            | Denied::Source { change, .. } => change,
        }
    }

    /// The grant that would allow the change, if any would.
    pub fn needed_grant(&self) -> Option<String> {
        match self {
            Denied::NotGranted(change) => Some(change.field.needed_grant()),
            Denied::NotNormal { .. } => None,
            Denied::Source { change, source, .. } => Some(format!(
                "{}:from={}{}",
                change.field.needed_grant(),
                source.path,
                if source.writable { ":rw" } else { "" }
            )),
        }
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::NotGranted(change) => write!(f, "{change}"),
            Denied::NotNormal { change, path } => write!(
                f,
                "{change}, whose path {path:?} is not a normal path (absolute, without `.` or \
                 `..` components, repeated or trailing slashes): grants match normal paths only"
            ),
            Denied::Source {
                change,
                mount,
                source,
            } => {
                write!(f, "{change} as a {mount} of the host's {:?}", source.path)?;
                if source.resolved != source.path {
                    write!(f, " (which is {:?})", source.resolved)?;
                }
                if source.writable {
                    f.write_str(", writable")?;
                }
                Ok(())
            }
        }
    }
}

/// The host path a mount comes from: as written, as the host resolves it, and whether the
/// container may write to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSource {
    pub path: String,
    pub resolved: String,
    pub writable: bool,
}

/// Kernel file systems: mounts of these have no host source (unless bound).
const SOURCELESS: [&str; 8] = [
    "tmpfs", "proc", "sysfs", "devpts", "mqueue", "cgroup", "cgroup2", "ramfs",
];

/// The host source of a mount entry (`None` for a kernel file system that is not bound).
fn mount_source(entry: &Value) -> Option<(String, MountSource)> {
    let options: Vec<&str> = entry
        .get("options")
        .and_then(Value::as_array)
        .map(|o| o.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let kind = entry.get("type").and_then(Value::as_str).unwrap_or("");
    let bound = kind == "bind" || options.iter().any(|o| matches!(*o, "bind" | "rbind"));
    if !bound && SOURCELESS.contains(&kind) {
        return None;
    }
    let path = entry.get("source").and_then(Value::as_str).unwrap_or("");
    let resolved = match std::fs::canonicalize(path) {
        Ok(real) => real.to_string_lossy().into_owned(),
        Err(_) => String::new(),
    };
    let writable = options
        .iter()
        .rev()
        .find_map(|o| match *o {
            "ro" | "rro" => Some(false),
            "rw" => Some(true),
            _ => None,
        })
        .unwrap_or(true);
    let mount = match bound {
        true => "bind mount".to_string(),
        false if kind.is_empty() => "mount".to_string(),
        false => format!("{kind} mount"),
    };
    let source = MountSource {
        path: path.to_string(),
        resolved,
        writable,
    };
    Some((mount, source))
}

/// Whether `path` is absolute and in normal form: no `.` or `..` component, no repeated or
/// trailing slash (`/` itself is normal).
pub fn is_normal_path(path: &str) -> bool {
    path == "/"
        || path
            .strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(|part| !matches!(part, "" | "." | "..")))
}

impl MayAdjust {
    /// Whether `change` (with `after` the document it leads to) is within these grants.
    pub fn check(&self, change: &Change, after: &Value) -> Result<(), Denied> {
        if self.is_all() {
            return Ok(());
        }
        if let Field::Mount(key) | Field::Device(key) = &change.field
            && !is_normal_path(key)
        {
            return Err(Denied::NotNormal {
                change: change.clone(),
                path: key.clone(),
            });
        }
        if !self.allows(&change.field) {
            return Err(Denied::NotGranted(change.clone()));
        }
        let Field::Mount(destination) = &change.field else {
            return Ok(());
        };
        let entries = after
            .pointer("/mounts")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let granted: Vec<&Adjust> = self.0.iter().filter(|a| a.allows(&change.field)).collect();
        for entry in entries
            .iter()
            .filter(|e| member_text(e, "destination") == *destination)
        {
            let Some((mount, source)) = mount_source(entry) else {
                continue;
            };
            let normal = is_normal_path(&source.path);
            if !normal || !granted.iter().any(|g| g.allows_source(&source)) {
                return Err(match normal {
                    true => Denied::Source {
                        change: change.clone(),
                        mount,
                        source,
                    },
                    false => Denied::NotNormal {
                        change: change.clone(),
                        path: source.path,
                    },
                });
            }
        }
        Ok(())
    }
}

/// The first change outside `grants` (none: a hook may only accept or refuse).
pub fn check(grants: Option<&MayAdjust>, changes: &[Change], after: &Value) -> Result<(), Denied> {
    changes.iter().try_for_each(|change| match grants {
        Some(grants) => grants.check(change, after),
        None => Err(Denied::NotGranted(change.clone())),
    })
}

impl fmt::Display for MayAdjust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&items.join(","))
    }
}

impl Serialize for MayAdjust {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(ToString::to_string))
    }
}

impl<'de> Deserialize<'de> for MayAdjust {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(deserializer)?;
        MayAdjust::parse_all(&items).map_err(serde::de::Error::custom)
    }
}

impl Field {
    /// The area and key a grant is checked against; `None` for [`Field::Other`] (only `all`).
    fn area(&self) -> Option<(Area, Option<&str>)> {
        Some(match self {
            Field::Env(k) => (Area::Env, Some(k.as_str())),
            Field::Mount(k) => (Area::Mounts, Some(k.as_str())),
            Field::Device(k) => (Area::Devices, Some(k.as_str())),
            Field::Annotation(k) => (Area::Annotations, Some(k.as_str())),
            Field::Cdi(name) => (Area::Cdi, Some(name.as_str())),
            Field::Rlimits => (Area::Rlimits, None),
            Field::Hooks => (Area::Hooks, None),
            Field::Resources => (Area::Resources, None),
            Field::Args => (Area::Args, None),
            Field::Other(_) => return None,
        })
    }

    /// The grant that would allow this change, for error messages.
    pub fn needed_grant(&self) -> String {
        match self.area() {
            Some((area, Some(key))) => format!("{}={key}", area.as_str()),
            Some((area, None)) => area.as_str().to_string(),
            None => Area::All.as_str().to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
