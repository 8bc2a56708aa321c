use serde_json::json;

use super::*;

fn doc() -> Value {
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

fn change(field: Field, kind: ChangeKind) -> Change {
    Change { field, kind }
}

#[test]
fn an_unchanged_document_has_no_changes_whatever_its_key_order() {
    let before = doc();
    let reordered: Value = serde_json::from_str(
        &serde_json::to_string(&before)
            .unwrap()
            .replace("\"ociVersion\": \"1.0.2\",", ""),
    )
    .unwrap();
    assert!(diff(&before, &before).is_empty());
    let mut moved = reordered.clone();
    moved["ociVersion"] = json!("1.0.2");
    assert!(diff(&before, &moved).is_empty());
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
fn grants_allow_what_they_name_and_nothing_else() {
    let grants =
        MayAdjust::parse_all(&["env=GPU_*,mounts=/opt/gpu/**".into(), "devices".into()]).unwrap();
    assert_eq!(grants.to_string(), "env=GPU_*,mounts=/opt/gpu/**,devices");
    assert!(grants.allows(&Field::Env("GPU_VISIBLE".into())));
    assert!(!grants.allows(&Field::Env("PATH".into())));
    assert!(grants.allows(&Field::Mount("/opt/gpu/lib".into())));
    assert!(grants.allows(&Field::Mount("/opt/gpu".into())));
    assert!(!grants.allows(&Field::Mount("/opt/gpus".into())));
    assert!(grants.allows(&Field::Mount("/opt/gpu/lib/x".into())));
    assert!(!grants.allows(&Field::Mount("/etc".into())));
    assert!(grants.allows(&Field::Device("/dev/anything".into())));
    assert!(!grants.allows(&Field::Args));
    assert!(!grants.allows(&Field::Other("/process/user/uid".into())));
    assert!(!grants.is_all());
    let one_level = MayAdjust::parse_all(&["mounts=/opt/*".into()]).unwrap();
    assert!(one_level.allows(&Field::Mount("/opt/gpu".into())));
    assert!(!one_level.allows(&Field::Mount("/opt/gpu/lib".into())));
    let all = MayAdjust::parse_all(&["all".into()]).unwrap();
    assert!(all.is_all() && all.allows(&Field::Other("/root/path".into())));
    assert_eq!(Field::Env("X".into()).needed_grant(), "env=X");
    assert_eq!(Field::Other("/root".into()).needed_grant(), "all");
}

#[test]
fn bad_grants_name_the_problem() {
    let cases = [
        (
            "environment",
            "unknown --may-adjust area \"environment\": use env, mounts",
        ),
        ("args=x", "args takes no pattern"),
        ("env=", "the pattern is empty"),
        ("mounts=/a/[", "invalid glob"),
        (",", "the list is empty"),
        ("env=X:from=/usr/**", "only mounts grants name sources"),
        ("mounts=/a/**:from=usr/**", "absolute host path"),
        ("mounts=:from=/usr/**", "name the destinations"),
    ];
    for (given, want) in cases {
        let err = MayAdjust::parse_all(&[given.to_string()])
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{given}: {err}");
    }
}

#[test]
fn grants_serialise_as_their_text_and_are_checked_when_read() {
    let grants = MayAdjust::parse_all(&["env=GPU_*".into(), "args".into()]).unwrap();
    let text = serde_json::to_string(&grants).unwrap();
    assert_eq!(text, r#"["env=GPU_*","args"]"#);
    assert_eq!(serde_json::from_str::<MayAdjust>(&text).unwrap(), grants);
    assert!(serde_json::from_str::<MayAdjust>(r#"["bogus"]"#).is_err());
}

#[test]
fn a_later_hook_changing_what_an_earlier_one_set_conflicts_unless_granted_all() {
    let gpu = [change(Field::Env("GPU_VISIBLE".into()), ChangeKind::Added)];
    let again = [change(
        Field::Env("GPU_VISIBLE".into()),
        ChangeKind::Changed,
    )];
    let mut owners = Owners::default();
    owners.record("first", &gpu, false).unwrap();
    owners.record("first", &again, false).unwrap();
    let conflict = owners.record("second", &again, false).unwrap_err();
    assert_eq!(conflict.earlier, "first");
    assert_eq!(conflict.later, "second");
    assert_eq!(conflict.change, again[0]);
    owners.record("admin", &again, true).unwrap();
    let other = [change(Field::Env("OTHER".into()), ChangeKind::Added)];
    owners.record("second", &other, false).unwrap();
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

#[test]
fn only_normal_paths_are_normal() {
    for normal in [
        "/",
        "/data",
        "/data/x",
        "/opt/gpu/lib.so",
        "/a/.hidden",
        "/a/..b",
    ] {
        assert!(is_normal_path(normal), "{normal}");
    }
    for odd in [
        "",
        "data",
        "./data",
        "/data/",
        "//data",
        "/data//x",
        "/data/.",
        "/data/./x",
        "/data/..",
        "/data/../etc",
        "/..",
    ] {
        assert!(!is_normal_path(odd), "{odd}");
    }
}

/// The attacks of the red-team round: `..` out of a granted directory is never granted, by
/// any glob, and a plain area grant does not admit an odd path either.
#[test]
fn dot_dot_never_leaves_a_granted_directory() {
    for (grant, field) in [
        ("mounts=/data/**", Field::Mount("/data/../etc".into())),
        ("mounts=/opt/gpu/*", Field::Mount("/opt/gpu/..".into())),
        ("mounts", Field::Mount("/data/../etc".into())),
        (
            "devices=/dev/gpu/**",
            Field::Device("/dev/gpu/../../etc/evilnode".into()),
        ),
        ("devices=/dev/**", Field::Device("/dev//sda".into())),
    ] {
        let grants = MayAdjust::parse_all(&[grant.into()]).unwrap();
        assert!(!grants.allows(&field), "{grant} {field}");
        let change = change(field.clone(), ChangeKind::Added);
        let denied = grants.check(&change, &doc()).unwrap_err();
        assert!(matches!(denied, Denied::NotNormal { .. }), "{denied:?}");
        assert!(
            denied.to_string().contains("is not a normal path"),
            "{denied}"
        );
    }
}

fn with_mount(entry: Value) -> Value {
    let mut after = doc();
    after["mounts"].as_array_mut().unwrap().push(entry);
    after
}

#[test]
fn mounts_of_host_paths_need_their_source_granted() {
    let lib = tempfile::tempdir().unwrap();
    let lib = lib.path().to_str().unwrap().to_string();
    let dest = "/opt/gpu/lib";
    let added = change(Field::Mount(dest.into()), ChangeKind::Added);
    let bind = |source: &str, options: Value| json!({"destination": dest, "type": "bind", "source": source, "options": options});
    let grant = |text: &str| MayAdjust::parse_all(&[text.to_string()]).unwrap();
    let ro = grant(&format!("mounts=/opt/gpu/**:from={lib}/**"));
    let rw = grant(&format!("mounts=/opt/gpu/**:from={lib}/**:rw"));
    let dest_only = grant("mounts=/opt/gpu/**");
    assert_eq!(ro.to_string(), format!("mounts=/opt/gpu/**:from={lib}/**"));
    assert_eq!(
        rw.to_string(),
        format!("mounts=/opt/gpu/**:from={lib}/**:rw")
    );
    let read_only = with_mount(bind(&lib, json!(["rbind", "ro"])));
    let writable = with_mount(bind(&lib, json!(["rbind"])));
    let last_wins = with_mount(bind(&lib, json!(["ro", "rw"])));
    assert_eq!(ro.check(&added, &read_only), Ok(()));
    assert_eq!(rw.check(&added, &writable), Ok(()));
    for (grants, after, needed) in [
        (&dest_only, &read_only, format!("mounts={dest}:from={lib}")),
        (&ro, &writable, format!("mounts={dest}:from={lib}:rw")),
        (&ro, &last_wins, format!("mounts={dest}:from={lib}:rw")),
    ] {
        let denied = grants.check(&added, after).unwrap_err();
        assert!(matches!(denied, Denied::Source { .. }), "{denied:?}");
        assert_eq!(denied.needed_grant(), Some(needed));
    }
    let root = with_mount(bind("/", json!(["rbind", "rw"])));
    let denied = rw.check(&added, &root).unwrap_err();
    assert!(
        denied
            .to_string()
            .contains("bind mount of the host's \"/\""),
        "{denied}"
    );
    let dots = with_mount(bind(&format!("{lib}/../.."), json!(["rbind", "ro"])));
    assert!(matches!(
        ro.check(&added, &dots),
        Err(Denied::NotNormal { .. })
    ));
    // A bind by option, whatever the type, and a disk file system, are host mounts too.
    let by_option = with_mount(json!({"destination": dest, "type": "tmpfs", "source": "/",
                                      "options": ["bind"]}));
    assert!(dest_only.check(&added, &by_option).is_err());
    let disk = with_mount(json!({"destination": dest, "type": "ext4", "source": "/dev/sda1"}));
    let denied = dest_only.check(&added, &disk).unwrap_err();
    assert!(
        denied.to_string().contains("ext4 mount of the host's"),
        "{denied}"
    );
    let tmpfs = with_mount(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs"}));
    assert_eq!(dest_only.check(&added, &tmpfs), Ok(()));
    assert_eq!(MayAdjust::all().check(&added, &root), Ok(()));
}

#[test]
fn a_symlink_under_a_granted_source_does_not_lead_out_of_it() {
    let lib = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/etc", lib.path().join("escape")).unwrap();
    let lib = lib.path().to_str().unwrap();
    let grants = MayAdjust::parse_all(&[format!("mounts=/opt/**:from={lib}/**")]).unwrap();
    let after = with_mount(json!({"destination": "/opt/x", "type": "bind",
                                  "source": format!("{lib}/escape"), "options": ["rbind", "ro"]}));
    let added = change(Field::Mount("/opt/x".into()), ChangeKind::Added);
    let denied = grants.check(&added, &after).unwrap_err();
    assert!(
        denied.to_string().contains("(which is \"/etc\")"),
        "{denied}"
    );
}
