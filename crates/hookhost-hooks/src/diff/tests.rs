use serde_json::json;

use super::*;

pub(crate) fn doc() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "env": ["PATH=/bin", "TERM=xterm"], "user": {"uid": 0, "gid": 0},
                    "cwd": "/"},
        "root": {"path": "rootfs"},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}],
        "annotations": {"a": "1"},
        "linux": {"namespaces": [{"type": "pid"}], "x-unknown": {"keep": true}}
    })
}

fn edited(edit: impl FnOnce(&mut Value)) -> Vec<Change> {
    let before = doc();
    let mut after = before.clone();
    edit(&mut after);
    diff(&before, &after)
}

pub(crate) fn change(field: Field, kind: ChangeKind) -> Change {
    Change { field, kind }
}

#[test]
fn an_unchanged_document_has_no_changes_whatever_its_key_order() {
    let before = doc();
    assert!(diff(&before, &before).is_empty());
    // The same document with its first key moved to the end.
    let mut moved = before.clone();
    let object = moved.as_object_mut().unwrap();
    let (first, value) = object
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap();
    object.remove(&first);
    object.insert(first.clone(), value);
    let keys = |doc: &Value| doc.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_ne!(keys(&before), keys(&moved), "{first} moved");
    assert!(diff(&before, &moved).is_empty());
    assert!(diff(&moved, &before).is_empty());
}

#[test]
fn env_changes_are_named_by_variable() {
    let changes = edited(|d| {
        let env = d["process"]["env"].as_array_mut().unwrap();
        env.push(json!("GPU_VISIBLE=0"));
        env[1] = json!("TERM=dumb");
    });
    assert_eq!(
        changes,
        [
            change(Field::Env("TERM".into()), ChangeKind::Changed),
            change(Field::Env("GPU_VISIBLE".into()), ChangeKind::Added),
        ]
    );
    let removed = edited(|d| {
        d["process"]["env"].as_array_mut().unwrap().remove(0);
    });
    assert_eq!(
        removed,
        [change(Field::Env("PATH".into()), ChangeKind::Removed)]
    );
}

#[test]
fn mounts_devices_and_annotations_are_named_by_their_keys() {
    let changes = edited(|d| {
        d["mounts"].as_array_mut().unwrap().push(
            json!({"destination": "/opt/gpu", "type": "bind", "source": "/srv", "options": ["ro", "bind"]}),
        );
        d["linux"]["devices"] = json!([{"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3}]);
        d["annotations"]["b"] = json!("2");
        d["annotations"].as_object_mut().unwrap().shift_remove("a");
    });
    assert_eq!(
        changes,
        [
            change(Field::Mount("/opt/gpu".into()), ChangeKind::Added),
            change(Field::Device("/dev/gpu0".into()), ChangeKind::Added),
            change(Field::Annotation("a".into()), ChangeKind::Removed),
            change(Field::Annotation("b".into()), ChangeKind::Added),
        ]
    );
}

#[test]
fn reordering_mounts_is_a_change() {
    let changes = edited(|d| d["mounts"].as_array_mut().unwrap().swap(0, 1));
    assert_eq!(
        changes,
        [change(Field::Mount("/proc".into()), ChangeKind::Changed)]
    );
}

#[test]
fn whole_areas_and_everything_else_are_reported() {
    let changes = edited(|d| {
        d["process"]["args"] = json!(["sh", "-c", "evil"]);
        d["process"]["user"]["uid"] = json!(1000);
        d["linux"]["resources"] = json!({"devices": [{"allow": true}]});
        d["linux"]["x-unknown"]["keep"] = json!(false);
        d["hostname"] = json!("x");
    });
    assert_eq!(
        changes,
        [
            change(Field::Resources, ChangeKind::Added),
            change(Field::Args, ChangeKind::Changed),
            change(
                Field::Other("/process/user/uid".into()),
                ChangeKind::Changed
            ),
            change(
                Field::Other("/linux/x-unknown/keep".into()),
                ChangeKind::Changed
            ),
            change(Field::Other("/hostname".into()), ChangeKind::Added),
        ]
    );
}

#[test]
fn diff_lines_show_the_values() {
    let before = doc();
    let mut after = before.clone();
    after["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("GPU_VISIBLE=0"));
    after["annotations"]["a"] = json!("2");
    after["mounts"].as_array_mut().unwrap().remove(1);
    let lines: Vec<String> = diff(&before, &after)
        .iter()
        .map(|c| c.diff_line(&before, &after))
        .collect();
    assert_eq!(
        lines,
        [
            r#"+ env GPU_VISIBLE: "GPU_VISIBLE=0""#,
            r#"- mounts /dev: {"destination":"/dev","type":"tmpfs","source":"tmpfs"}"#,
            r#"~ annotations a: "1" -> "2""#,
        ]
    );
}
