//! Writing hooks.d files: the document shape, and files that read back as written.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::hook::Stage;
use crate::hooksd::{Condition, read_dirs};
use crate::when::When;
use oci_spec::runtime::Hook;
use serde_json::json;
use tempfile::TempDir;

use super::{ExportError, v1_document, write_file};

#[test]
fn v1_document_has_the_hooksd_shape() {
    let mut hook = Hook::default();
    hook.set_path("/usr/local/bin/hookhost".into());
    hook.set_args(Some(vec![
        "hookhost".into(),
        "stage".into(),
        "prestart".into(),
    ]));
    hook.set_timeout(Some(30));
    let when = When::from_flags(true, &[], &[], false).unwrap();
    let doc = v1_document(&hook, &when, &[Stage::Prestart, Stage::CreateRuntime]);
    assert_eq!(
        doc,
        json!({"version": "1.0.0",
               "hook": {"path": "/usr/local/bin/hookhost", "args": ["hookhost", "stage", "prestart"], "timeout": 30},
               "when": {"always": true},
               "stages": ["prestart", "createRuntime"]})
    );
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["version", "hook", "when", "stages"]);
}

#[test]
fn write_file_round_trips_and_is_atomic() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("hooks.d");
    let mut hook = Hook::default();
    hook.set_path("/bin/sh".into());
    hook.set_args(Some(vec!["sh".into(), "-c".into(), "true".into()]));
    hook.set_env(Some(vec!["A=1".into()]));
    hook.set_timeout(Some(5));
    let annotations = [("^gpu$".to_string(), "yes".to_string())].into();
    let when = When::new(None, annotations, vec!["^/bin/top$".into()], Some(true)).unwrap();
    let stages = [Stage::CreateRuntime, Stage::Poststop];

    let path = write_file(&out, "my-hook", &v1_document(&hook, &when, &stages)).unwrap();
    assert_eq!(path, out.join("my-hook.json"));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o644
    );
    // Overwriting goes through rename too, and leaves no temporary file behind.
    write_file(&out, "my-hook.json", &v1_document(&hook, &when, &stages)).unwrap();
    let entries: Vec<_> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["my-hook.json"]);

    let set = read_dirs(&[out]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let [read] = &set.hooks[..] else {
        panic!("one hook expected")
    };
    assert_eq!(read.name, "my-hook");
    assert_eq!(read.hook, hook);
    assert_eq!(read.stages, stages);
    assert_eq!(read.condition, Condition::V1(when));
}

#[test]
fn write_file_rejects_unsafe_names() {
    let dir = TempDir::new().unwrap();
    for name in ["", ".json", "../x", "a/b", ".hidden"] {
        let err = write_file(dir.path(), name, &json!({})).unwrap_err();
        assert!(matches!(err, ExportError::InvalidName(_)), "{name}");
    }
}
