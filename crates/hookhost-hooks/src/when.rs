//! Conditions under which a global hook applies to a container (hooks.d 1.0.0 `when` semantics).
//!
//! The semantics follow containers/common `pkg/hooks/1.0.0/when.go`:
//! every condition that is set must hold (AND); within `annotations` every key/value regex pair must
//! match one annotation; within `commands` one regex matching `process.args[0]` is enough. Regexes
//! are unanchored, as Go's `regexp.MatchString`, and read with Go's syntax ([`crate::re2`]).
//!
//! A `When` is compiled when it is built (constructor, flags or deserialization), so a value with an
//! invalid regex cannot exist and matching — on the container-start hot path — never recompiles.

use std::collections::BTreeMap;
use std::path::Path;

use oci_spec::runtime::{Mount, Spec};
use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::re2::{self, PatternError};

/// Why a condition could not be built.
#[derive(Debug, Error)]
pub enum WhenError {
    #[error("invalid annotation key regex {pattern:?}: {source}")]
    AnnotationKey {
        pattern: String,
        source: PatternError,
    },
    #[error("invalid annotation value regex {pattern:?} (for key {key:?}): {source}")]
    AnnotationValue {
        key: String,
        pattern: String,
        source: PatternError,
    },
    #[error("invalid command regex {pattern:?}: {source}")]
    Command {
        pattern: String,
        source: PatternError,
    },
    #[error("--when-annotation {given:?}: expected KEY=REGEX with a non-empty KEY")]
    AnnotationFlag { given: String },
    #[error("--when-annotation: annotation {key:?} is given twice")]
    DuplicateAnnotation { key: String },
}

/// The serialized form, with hooks.d's JSON names; empty fields are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WhenSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    always: Option<bool>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    commands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    has_bind_mounts: Option<bool>,
}

/// A set of hooks.d 1.0.0 conditions, with its regexes compiled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "WhenSpec", into = "WhenSpec")]
pub struct When {
    spec: WhenSpec,
    /// (key regex, value regex) in the order of `spec.annotations`.
    annotation_res: Vec<(Regex, Regex)>,
    /// `None` when `commands` is empty.
    command_set: Option<RegexSet>,
}

impl PartialEq for When {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec
    }
}

impl Eq for When {}

impl TryFrom<WhenSpec> for When {
    type Error = WhenError;

    fn try_from(spec: WhenSpec) -> Result<Self, WhenError> {
        let annotation_res = compile_annotations(&spec.annotations)?;
        let command_set = compile_commands(&spec.commands)?;
        Ok(When {
            spec,
            annotation_res,
            command_set,
        })
    }
}

impl From<When> for WhenSpec {
    fn from(when: When) -> Self {
        when.spec
    }
}

fn compile_annotations(map: &BTreeMap<String, String>) -> Result<Vec<(Regex, Regex)>, WhenError> {
    map.iter()
        .map(|(key, value)| {
            let key_re = re2::compile(key).map_err(|source| WhenError::AnnotationKey {
                pattern: key.clone(),
                source,
            })?;
            let value_re = re2::compile(value).map_err(|source| WhenError::AnnotationValue {
                key: key.clone(),
                pattern: value.clone(),
                source,
            })?;
            Ok((key_re, value_re))
        })
        .collect()
}

/// Compiles each regex alone first so that an error names the faulty one, then all as one set.
pub(crate) fn compile_commands(patterns: &[String]) -> Result<Option<RegexSet>, WhenError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    for pattern in patterns {
        re2::compile(pattern).map_err(|source| WhenError::Command {
            pattern: pattern.clone(),
            source,
        })?;
    }
    re2::compile_set(patterns)
        .map(Some)
        .map_err(|source| WhenError::Command {
            pattern: patterns.join(", "),
            source,
        })
}

impl When {
    /// Builds and compiles a condition set. `None`/empty means "condition not set".
    pub fn new(
        always: Option<bool>,
        annotations: BTreeMap<String, String>,
        commands: Vec<String>,
        has_bind_mounts: Option<bool>,
    ) -> Result<When, WhenError> {
        When::try_from(WhenSpec {
            always,
            annotations,
            commands,
            has_bind_mounts,
        })
    }

    /// Builds a condition set from `hookhost create` flags.
    ///
    /// `--when-annotation KEY=REGEX`: KEY is a literal annotation name (split at the first `=`);
    /// it is stored as the anchored, escaped regex `^KEY$` so that it means exactly that name in
    /// hooks.d's key-regex model (and in an exported hooks.d file). REGEX is unanchored, as in
    /// hooks.d: write `^…$` to match a whole value. Absent boolean flags leave the condition unset.
    pub fn from_flags(
        always: bool,
        annotations: &[String],
        commands: &[String],
        bind_mounts: bool,
    ) -> Result<When, WhenError> {
        let mut map = BTreeMap::new();
        for given in annotations {
            let (key, value) = parse_annotation_flag(given)?;
            let key_re = format!("^{}$", regex::escape(key));
            if map.insert(key_re, value.to_string()).is_some() {
                return Err(WhenError::DuplicateAnnotation {
                    key: key.to_string(),
                });
            }
        }
        When::new(
            always.then_some(true),
            map,
            commands.to_vec(),
            bind_mounts.then_some(true),
        )
    }

    pub fn always(&self) -> Option<bool> {
        self.spec.always
    }

    /// Key regex → value regex.
    pub fn annotations(&self) -> &BTreeMap<String, String> {
        &self.spec.annotations
    }

    pub fn commands(&self) -> &[String] {
        &self.spec.commands
    }

    pub fn has_bind_mounts(&self) -> Option<bool> {
        self.spec.has_bind_mounts
    }

    /// No condition set: the hook is not a global hook (and a hooks.d file with it never runs).
    pub fn is_empty(&self) -> bool {
        self.spec == WhenSpec::default()
    }

    /// Whether this condition set selects the container (containers/common 1.0.0 semantics).
    ///
    /// Conditions set to `false` (`always: false`, `hasBindMounts: false`) never hold, exactly as
    /// in containers/common. An empty set never matches.
    pub fn matches(&self, facts: &ContainerFacts) -> bool {
        let mut held = 0;
        if let Some(always) = self.spec.always {
            if !always {
                return false;
            }
            held += 1;
        }
        if let Some(wanted) = self.spec.has_bind_mounts {
            if !(wanted && facts.has_bind_mounts) {
                return false;
            }
            held += 1;
        }
        for (key_re, value_re) in &self.annotation_res {
            if !facts.has_annotation(key_re, value_re) {
                return false;
            }
            held += 1;
        }
        // containers/common checks commands last and lets them decide alone once the others
        // held — and only when the container has a process: without one they are ignored.
        if let Some(set) = &self.command_set
            && facts.has_process
        {
            return facts
                .args0
                .as_deref()
                .is_some_and(|arg0| set.is_match(arg0));
        }
        held > 0
    }
}

fn parse_annotation_flag(given: &str) -> Result<(&str, &str), WhenError> {
    match given.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(WhenError::AnnotationFlag {
            given: given.to_string(),
        }),
    }
}

/// What conditions look at in a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFacts {
    pub annotations: BTreeMap<String, String>,
    /// `process.args[0]`; `None` when the spec has no process or no args.
    pub args0: Option<String>,
    /// Whether the spec has a `process`: without one, containers/common ignores `commands`
    /// (with one but empty args it errors; runc refuses such a spec anyway, so here a
    /// `commands` condition then simply does not hold).
    pub has_process: bool,
    pub has_bind_mounts: bool,
}

/// Bind mounts that engines add to every container on their own; they are not "host-to-container
/// bind mounts the caller requested" (Docker: resolv.conf/hostname/hosts/shm; Podman also
/// .containerenv and secrets; Kubernetes: termination-log).
const ENGINE_BIND_MOUNTS: &[&str] = &[
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
    "/dev/shm",
    "/run/.containerenv",
    "/run/secrets",
    "/dev/termination-log",
];

impl ContainerFacts {
    /// Facts from a bundle's `config.json`.
    ///
    /// `has_bind_mounts`: containers/common does not decide this itself; its callers pass
    /// "the user asked for volumes" (Podman: `len(UserVolumes) > 0`, CRI-O: CRI mounts). A runtime
    /// wrapper only sees the spec, so this counts bind mounts (type `bind`, or a `bind`/`rbind`
    /// option, as runc decides) other than those engines add by themselves. Callers that know
    /// better may overwrite the field.
    pub fn from_spec(spec: &Spec) -> ContainerFacts {
        let annotations = spec
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let args0 = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().as_ref())
            .and_then(|args| args.first())
            .cloned();
        let has_bind_mounts = spec
            .mounts()
            .as_ref()
            .is_some_and(|mounts| mounts.iter().any(is_requested_bind_mount));
        ContainerFacts {
            annotations,
            args0,
            has_process: spec.process().is_some(),
            has_bind_mounts,
        }
    }

    fn has_annotation(&self, key_re: &Regex, value_re: &Regex) -> bool {
        self.annotations
            .iter()
            .any(|(key, value)| key_re.is_match(key) && value_re.is_match(value))
    }
}

fn is_requested_bind_mount(mount: &Mount) -> bool {
    let is_bind = mount.typ().as_deref() == Some("bind")
        || mount
            .options()
            .as_ref()
            .is_some_and(|opts| opts.iter().any(|o| o == "bind" || o == "rbind"));
    is_bind && !is_engine_mount(mount.destination())
}

fn is_engine_mount(destination: &Path) -> bool {
    ENGINE_BIND_MOUNTS
        .iter()
        .any(|engine| destination == Path::new(engine))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn facts(
        annotations: &[(&str, &str)],
        args0: Option<&str>,
        bind: bool,
    ) -> ContainerFacts {
        ContainerFacts {
            annotations: annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args0: args0.map(str::to_string),
            has_process: true,
            has_bind_mounts: bind,
        }
    }

    fn when(value: serde_json::Value) -> When {
        serde_json::from_value(value).expect("valid when")
    }

    #[test]
    fn empty_when_is_empty_and_never_matches() {
        let w = When::default();
        assert!(w.is_empty());
        assert!(!w.matches(&facts(&[("a", "b")], Some("sh"), true)));
        assert!(!when(json!({"always": false})).is_empty());
    }

    #[test]
    fn always_true_matches_and_false_never() {
        assert!(when(json!({"always": true})).matches(&ContainerFacts::default()));
        let never = when(json!({"always": false, "commands": ["sh"]}));
        assert!(!never.matches(&facts(&[], Some("sh"), false)));
    }

    #[test]
    fn has_bind_mounts_true_requires_bind_mounts_and_false_never_holds() {
        let w = when(json!({"hasBindMounts": true}));
        assert!(w.matches(&facts(&[], None, true)));
        assert!(!w.matches(&facts(&[], None, false)));
        // containers/common: `hasBindMounts: false` fails the AND whatever the container has.
        let f = when(json!({"hasBindMounts": false, "always": true}));
        assert!(!f.matches(&facts(&[], None, false)));
        assert!(!f.matches(&facts(&[], None, true)));
    }

    #[test]
    fn every_annotation_pair_must_match_one_annotation() {
        let w = when(json!({"annotations": {"^com\\.example\\.dept$": "fluid", "gpu": "^yes$"}}));
        let both = facts(
            &[("com.example.dept", "cfd-fluid-x"), ("x.gpu", "yes")],
            None,
            false,
        );
        assert!(w.matches(&both));
        let one = facts(&[("com.example.dept", "fluid")], None, false);
        assert!(!w.matches(&one));
        // Key and value must hold on the same annotation.
        let split = facts(
            &[("com.example.dept", "yes"), ("gpu", "fluid")],
            None,
            false,
        );
        assert!(!w.matches(&split));
    }

    #[test]
    fn regexes_are_unanchored() {
        let w = when(json!({"annotations": {"dept": "fluid"}}));
        assert!(w.matches(&facts(&[("com.dept.x", "xx-fluid-yy")], None, false)));
        assert!(!w.matches(&facts(&[("com.dept.x", "FLUID")], None, false)));
    }

    #[test]
    fn any_command_regex_is_enough() {
        let w = when(json!({"commands": [".*/init$", ".*/systemd$"]}));
        assert!(w.matches(&facts(&[], Some("/usr/lib/systemd"), false)));
        assert!(w.matches(&facts(&[], Some("/sbin/init"), false)));
        assert!(!w.matches(&facts(&[], Some("/bin/sh"), false)));
        assert!(!w.matches(&facts(&[], None, false)));
    }

    #[test]
    fn conditions_are_anded() {
        let w = when(json!({
            "always": true,
            "annotations": {"^gpu$": "^yes$"},
            "commands": ["^top$"],
            "hasBindMounts": true
        }));
        assert!(w.matches(&facts(&[("gpu", "yes")], Some("top"), true)));
        assert!(!w.matches(&facts(&[("gpu", "yes")], Some("top"), false)));
        assert!(!w.matches(&facts(&[("gpu", "no")], Some("top"), true)));
        assert!(!w.matches(&facts(&[("gpu", "yes")], Some("sh"), true)));
    }

    #[test]
    fn serde_uses_hooksd_names_and_skips_empty_fields() {
        let w = When::new(Some(true), BTreeMap::new(), vec![], Some(true)).unwrap();
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            json!({"always": true, "hasBindMounts": true})
        );
        let full = json!({"always": true, "annotations": {"a": "b"}, "commands": ["c"], "hasBindMounts": false});
        assert_eq!(serde_json::to_value(when(full.clone())).unwrap(), full);
        assert_eq!(serde_json::to_value(When::default()).unwrap(), json!({}));
    }

    #[test]
    fn invalid_regexes_are_rejected_naming_the_regex() {
        let err = When::new(
            None,
            BTreeMap::new(),
            vec!["ok".into(), "(bad".into()],
            None,
        )
        .unwrap_err();
        assert!(matches!(&err, WhenError::Command { pattern, .. } if pattern == "(bad"));
        assert!(err.to_string().contains("\"(bad\""));
        let key = BTreeMap::from([("[k".to_string(), "v".to_string())]);
        let err = When::new(None, key, vec![], None).unwrap_err();
        assert!(matches!(err, WhenError::AnnotationKey { pattern, .. } if pattern == "[k"));
        let value = BTreeMap::from([("k".to_string(), "v)".to_string())]);
        let err = When::new(None, value, vec![], None).unwrap_err();
        assert!(matches!(err, WhenError::AnnotationValue { pattern, .. } if pattern == "v)"));
        let de = serde_json::from_value::<When>(json!({"commands": ["*"]})).unwrap_err();
        assert!(
            de.to_string().contains("invalid command regex \"*\""),
            "{de}"
        );
    }

    #[test]
    fn from_flags_builds_literal_keys_and_unanchored_values() {
        let w = When::from_flags(
            false,
            &["io.example.gpu=^(yes|true)$".into(), "team=infra".into()],
            &["^/bin/top$".into()],
            true,
        )
        .unwrap();
        assert_eq!(w.always(), None);
        assert_eq!(w.has_bind_mounts(), Some(true));
        assert_eq!(
            w.annotations().get("^io\\.example\\.gpu$").unwrap(),
            "^(yes|true)$"
        );
        let ok = facts(
            &[("io.example.gpu", "yes"), ("team", "my-infra")],
            Some("/bin/top"),
            true,
        );
        assert!(w.matches(&ok));
        // The key is literal: a `.` does not match any character, and no prefix matches.
        let wrong_key = facts(
            &[("ioXexample.gpu", "yes"), ("team", "infra")],
            Some("/bin/top"),
            true,
        );
        assert!(!w.matches(&wrong_key));
        let longer_key = facts(
            &[("io.example.gpu2", "yes"), ("team", "infra")],
            Some("/bin/top"),
            true,
        );
        assert!(!w.matches(&longer_key));
    }

    #[test]
    fn from_flags_value_may_contain_equals_and_errors_are_clear() {
        let w = When::from_flags(false, &["k=a=b".into()], &[], false).unwrap();
        assert_eq!(w.annotations().get("^k$").unwrap(), "a=b");
        assert!(When::from_flags(false, &[], &[], false).unwrap().is_empty());
        assert!(When::from_flags(true, &[], &[], false).unwrap().always() == Some(true));
        for bad in ["novalue", "=x"] {
            let err = When::from_flags(false, &[bad.into()], &[], false).unwrap_err();
            assert!(matches!(err, WhenError::AnnotationFlag { ref given } if given == bad));
        }
        let err = When::from_flags(false, &["k=a".into(), "k=b".into()], &[], false).unwrap_err();
        assert!(matches!(err, WhenError::DuplicateAnnotation { key } if key == "k"));
        let err = When::from_flags(false, &[], &["(".into()], false).unwrap_err();
        assert!(matches!(err, WhenError::Command { .. }));
    }

    fn spec(value: serde_json::Value) -> Spec {
        serde_json::from_value(value).expect("valid spec")
    }

    #[test]
    fn facts_from_spec() {
        let s = spec(json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/top", "-b"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
            "root": {"path": "rootfs"},
            "annotations": {"io.hookhost.hooks": "a,b"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {"destination": "/etc/hosts", "type": "bind", "source": "/x/hosts", "options": ["rbind"]}
            ]
        }));
        let f = ContainerFacts::from_spec(&s);
        assert_eq!(f.args0.as_deref(), Some("/bin/top"));
        assert_eq!(f.annotations.get("io.hookhost.hooks").unwrap(), "a,b");
        assert!(
            !f.has_bind_mounts,
            "engine-generated /etc/hosts is not a requested bind mount"
        );
    }

    #[test]
    fn facts_detect_bind_mounts_by_type_or_option() {
        for mount in [
            json!({"destination": "/data", "type": "bind", "source": "/srv"}),
            json!({"destination": "/data", "source": "/srv", "options": ["ro", "rbind"]}),
            json!({"destination": "/data", "type": "none", "source": "/srv", "options": ["bind"]}),
        ] {
            let s = spec(json!({"ociVersion": "1.0.2", "mounts": [mount.clone()]}));
            assert!(ContainerFacts::from_spec(&s).has_bind_mounts, "{mount}");
        }
        let s = spec(json!({"ociVersion": "1.0.2", "mounts": [
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]}
        ]}));
        let f = ContainerFacts::from_spec(&s);
        assert!(!f.has_bind_mounts);
        assert_eq!(f.args0, None);
        assert!(f.annotations.is_empty());
    }
}
