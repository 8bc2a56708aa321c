//! A long-lived process that keeps the audit trail open between appends
//! (`events::keep_files_open`, the NRI plugin): every line still lands in the file its path
//! names when that file is rotated — by this process or by another one — or removed. Its own
//! test executable, since keeping files open is process-wide.

use std::path::Path;

use hookhost_core::events::{self, Event};

/// A run's event, as a stage writes it.
fn event(container: &str) -> Event {
    serde_json::from_value(serde_json::json!({
        "id": events::new_id(),
        "time": "2026-12-06T04:09:34.5Z",
        "container": container,
        "stage": "createRuntime",
        "hook": "h",
        "kind": "wasm",
        "exit": 0,
        "duration_ms": 1.0,
    }))
    .expect("an event")
}

/// The containers of the events in `file`, in order.
fn containers(file: &Path) -> Vec<String> {
    match std::fs::read_to_string(file) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str::<Event>(l).unwrap().container)
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn kept_files_follow_rotations_and_removals_by_anyone() {
    events::keep_files_open();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    let append = |c: &str| events::append(&file, &event(c), 1 << 20).unwrap();

    events::check_recordable(&file).unwrap();
    append("a");
    append("b");
    assert_eq!(containers(&file), ["a", "b"]);

    // Another process rotates the file: the next line goes to the new one at the path.
    std::fs::rename(&file, events::previous(&file)).unwrap();
    append("c");
    assert_eq!(containers(&events::previous(&file)), ["a", "b"]);
    assert_eq!(containers(&file), ["c"]);

    // Removed (an administrator's `rm`): recreated, with the mode of a new trail.
    std::fs::remove_file(&file).unwrap();
    events::check_recordable(&file).unwrap();
    append("d");
    assert_eq!(containers(&file), ["d"]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // Rotated by this process at its size bound: the kept file is the new one afterwards.
    let line = std::fs::metadata(&file).unwrap().len();
    events::append(&file, &event("e"), line + 1).unwrap();
    assert_eq!(containers(&events::previous(&file)), ["d"]);
    assert_eq!(containers(&file), ["e"]);
    append("f");
    assert_eq!(containers(&file), ["e", "f"]);

    // Its directory gone: refused, naming the file, as without kept files.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let error = events::append(&file, &event("g"), 1 << 20).unwrap_err();
    assert!(error.to_string().contains("events.jsonl"), "{error}");
    assert!(events::check_recordable(&file).is_err());
}
