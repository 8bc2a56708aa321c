//! What a precreate hook changed: the difference between the config.json it was given and
//! the one it returned, by the fields grants name ([`crate::may_adjust`]): variables, mounts by
//! destination, devices by path, annotations by key, CDI devices by name (the `cdi.k8s.io/`
//! annotations, compared as the set of device names they request), a few parts as a whole,
//! and everything else by JSON pointer.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use hookhost_types::CDI_ANNOTATION_PREFIX;
use serde_json::Value;

/// Something a precreate hook changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    Env(String),
    Mount(String),
    Device(String),
    Annotation(String),
    /// A CDI device requested (or no longer requested) through the `cdi.k8s.io/` annotations,
    /// by its fully qualified name as written.
    Cdi(String),
    Rlimits,
    Hooks,
    Resources,
    Args,
    /// Anything else, as a JSON pointer into config.json (`/process/user/uid`).
    Other(String),
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Field::Env(k) => write!(f, "env {k}"),
            Field::Mount(k) => write!(f, "mounts {k}"),
            Field::Device(k) => write!(f, "devices {k}"),
            Field::Annotation(k) => write!(f, "annotations {k}"),
            Field::Cdi(name) => write!(f, "cdi device {name}"),
            Field::Rlimits => f.write_str("rlimits (process.rlimits)"),
            Field::Hooks => f.write_str("hooks"),
            Field::Resources => f.write_str("resources (linux.resources)"),
            Field::Args => f.write_str("args (process.args)"),
            Field::Other(pointer) => write!(f, "{pointer}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Changed,
    Removed,
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ChangeKind::Added => "added",
            ChangeKind::Changed => "changed",
            ChangeKind::Removed => "removed",
        })
    }
}

/// One change: what, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: Field,
    pub kind: ChangeKind,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.field)
    }
}

impl Change {
    /// One line of a diff: `+ env GPU_VISIBLE: "GPU_VISIBLE=0"`, `~ FIELD: OLD -> NEW`,
    /// `- FIELD: OLD`, with the values as compact JSON.
    pub fn diff_line(&self, before: &Value, after: &Value) -> String {
        let old = value_of(before, &self.field);
        let new = value_of(after, &self.field);
        match self.kind {
            ChangeKind::Added => format!("+ {}: {new}", self.field),
            ChangeKind::Removed => format!("- {}: {old}", self.field),
            ChangeKind::Changed => format!("~ {}: {old} -> {new}", self.field),
        }
    }
}

/// The value a field has in a document, as compact JSON (`null` when absent); the entries
/// with that key for a keyed list.
fn value_of(doc: &Value, field: &Field) -> String {
    let json = |value: Option<&Value>| value.map_or("null".into(), Value::to_string);
    if let Some((keyed, key)) = keyed_of(field) {
        let entries = grouped(doc.pointer(keyed.pointer), keyed.key)
            .into_iter()
            .find_map(|(k, entries)| (k == key).then_some(entries))
            .unwrap_or_default();
        return match entries.as_slice() {
            [one] => one.to_string(),
            [] => json(None),
            many => serde_json::to_string(many).expect("JSON values serialise"),
        };
    }
    match field {
        Field::Annotation(k) => json(doc.pointer(ANNOTATIONS).and_then(|a| a.get(k))),
        Field::Cdi(name) => json(
            cdi_names(doc)
                .contains(name)
                .then(|| Value::String(name.clone()))
                .as_ref(),
        ),
        Field::Other(pointer) => json(doc.pointer(pointer)),
        whole => json(
            WHOLE
                .iter()
                .find(|(_, f)| f == whole)
                .and_then(|(pointer, _)| doc.pointer(pointer)),
        ),
    }
}

/// The keyed list a field is an entry of, and its key.
fn keyed_of(field: &Field) -> Option<(&'static Keyed, &str)> {
    let (Field::Env(key) | Field::Mount(key) | Field::Device(key)) = field else {
        return None;
    };
    KEYED
        .iter()
        .find(|keyed| (keyed.field)(key.clone()) == *field)
        .map(|keyed| (keyed, key.as_str()))
}

/// The keyed lists compared entry by entry: where they are, how an entry's key is read, and
/// the field a change of one is.
struct Keyed {
    pointer: &'static str,
    key: fn(&Value) -> String,
    field: fn(String) -> Field,
}

const KEYED: [Keyed; 3] = [
    Keyed {
        pointer: "/process/env",
        key: env_name,
        field: Field::Env,
    },
    Keyed {
        pointer: "/mounts",
        key: |v| member_text(v, "destination"),
        field: Field::Mount,
    },
    Keyed {
        pointer: "/linux/devices",
        key: |v| member_text(v, "path"),
        field: Field::Device,
    },
];

/// The parts compared as a whole.
const WHOLE: [(&str, Field); 4] = [
    ("/process/rlimits", Field::Rlimits),
    ("/hooks", Field::Hooks),
    ("/linux/resources", Field::Resources),
    ("/process/args", Field::Args),
];

const ANNOTATIONS: &str = "/annotations";

fn env_name(entry: &Value) -> String {
    match entry.as_str() {
        Some(text) => text.split_once('=').map_or(text, |(k, _)| k).to_string(),
        None => entry.to_string(),
    }
}

pub(crate) fn member_text(entry: &Value, member: &str) -> String {
    entry
        .get(member)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// What changed from `before` to `after`, by the fields grants name; everything else by JSON
/// pointer. Reordering the entries of a list (env, mounts, devices) is a change of the first
/// entry that moved.
pub fn diff(before: &Value, after: &Value) -> Vec<Change> {
    // Most documents come back unchanged (every container the NRI plugin prepares without a
    // precreate edit); equal JSON — objects compared as maps, arrays in order — has no change.
    if before == after {
        return Vec::new();
    }
    let mut changes = Vec::new();
    for keyed in &KEYED {
        diff_keyed(keyed, before, after, &mut changes);
    }
    diff_annotations(before, after, &mut changes);
    for (pointer, field) in &WHOLE {
        let kind = kind_of(before.pointer(pointer), after.pointer(pointer));
        if let Some(kind) = kind {
            changes.push(Change {
                field: field.clone(),
                kind,
            });
        }
    }
    let (mut rest_before, mut rest_after) = (before.clone(), after.clone());
    let covered = KEYED
        .iter()
        .map(|k| k.pointer)
        .chain([ANNOTATIONS])
        .chain(WHOLE.iter().map(|(p, _)| *p));
    for pointer in covered {
        remove_pointer(&mut rest_before, pointer);
        remove_pointer(&mut rest_after, pointer);
    }
    diff_values("", Some(&rest_before), Some(&rest_after), &mut changes);
    changes
}

fn kind_of(before: Option<&Value>, after: Option<&Value>) -> Option<ChangeKind> {
    match (before, after) {
        (None, None) => None,
        (None, Some(_)) => Some(ChangeKind::Added),
        (Some(_), None) => Some(ChangeKind::Removed),
        (Some(b), Some(a)) => (b != a).then_some(ChangeKind::Changed),
    }
}

/// A list's entries grouped by key, keys in order of first appearance.
fn grouped(list: Option<&Value>, key: fn(&Value) -> String) -> Vec<(String, Vec<&Value>)> {
    let mut groups: Vec<(String, Vec<&Value>)> = Vec::new();
    let entries = list
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for entry in entries {
        let k = key(entry);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, values)) => values.push(entry),
            None => groups.push((k, vec![entry])),
        }
    }
    groups
}

fn diff_keyed(keyed: &Keyed, before: &Value, after: &Value, changes: &mut Vec<Change>) {
    let old = grouped(before.pointer(keyed.pointer), keyed.key);
    let new = grouped(after.pointer(keyed.pointer), keyed.key);
    let find = |groups: &[(String, Vec<&Value>)], k: &str| groups.iter().position(|(g, _)| g == k);
    let mut unchanged_old = Vec::new();
    for (k, values) in &old {
        let kind = match find(&new, k) {
            None => Some(ChangeKind::Removed),
            Some(i) if new[i].1 != *values => Some(ChangeKind::Changed),
            Some(_) => {
                unchanged_old.push(k.clone());
                None
            }
        };
        if let Some(kind) = kind {
            changes.push(Change {
                field: (keyed.field)(k.clone()),
                kind,
            });
        }
    }
    for (k, _) in new.iter().filter(|(k, _)| find(&old, k).is_none()) {
        changes.push(Change {
            field: (keyed.field)(k.clone()),
            kind: ChangeKind::Added,
        });
    }
    let unchanged_new: Vec<&String> = new
        .iter()
        .map(|(k, _)| k)
        .filter(|k| unchanged_old.contains(k))
        .collect();
    let moved = unchanged_old
        .iter()
        .zip(&unchanged_new)
        .find(|(a, b)| a != *b)
        .map(|(a, _)| a.clone());
    if let Some(k) = moved {
        changes.push(Change {
            field: (keyed.field)(k),
            kind: ChangeKind::Changed,
        });
    }
}

/// Annotations by key, except the CDI ones: those by the device names they request (a
/// rearrangement of the same names among keys changes nothing).
fn diff_annotations(before: &Value, after: &Value, changes: &mut Vec<Change>) {
    let map = |doc: &Value| -> BTreeMap<String, Value> {
        doc.pointer(ANNOTATIONS)
            .and_then(Value::as_object)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    };
    let (old, new) = (map(before), map(after));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for key in keys
        .into_iter()
        .filter(|k| !k.starts_with(CDI_ANNOTATION_PREFIX))
    {
        if let Some(kind) = kind_of(old.get(key), new.get(key)) {
            changes.push(Change {
                field: Field::Annotation(key.clone()),
                kind,
            });
        }
    }
    let (old, new) = (cdi_names(before), cdi_names(after));
    for (names, other, kind) in [
        (&new, &old, ChangeKind::Added),
        (&old, &new, ChangeKind::Removed),
    ] {
        changes.extend(names.difference(other).map(|name| Change {
            field: Field::Cdi(name.clone()),
            kind,
        }));
    }
}

/// The CDI device names a document's annotations request.
fn cdi_names(doc: &Value) -> BTreeSet<String> {
    crate::cdi::requested(doc)
        .into_iter()
        .map(|r| r.name)
        .collect()
}

fn remove_pointer(doc: &mut Value, pointer: &str) {
    let (parent, last) = pointer.rsplit_once('/').expect("pointers start with /");
    let parent = if parent.is_empty() {
        Some(doc)
    } else {
        doc.pointer_mut(parent)
    };
    if let Some(object) = parent.and_then(Value::as_object_mut) {
        object.shift_remove(last);
    }
}

/// Differences outside the named fields, as JSON pointers (objects are descended into, a
/// changed list or scalar is one change).
fn diff_values(
    pointer: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    out: &mut Vec<Change>,
) {
    if let (Some(Value::Object(b)), Some(Value::Object(a))) = (before, after) {
        let keys: Vec<&String> = b
            .keys()
            .chain(a.keys().filter(|k| !b.contains_key(*k)))
            .collect();
        for key in keys {
            let child = format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
            diff_values(&child, b.get(key), a.get(key), out);
        }
        return;
    }
    if let Some(kind) = kind_of(before, after) {
        let at = if pointer.is_empty() { "/" } else { pointer };
        out.push(Change {
            field: Field::Other(at.to_string()),
            kind,
        });
    }
}

#[cfg(test)]
pub(crate) mod tests;
