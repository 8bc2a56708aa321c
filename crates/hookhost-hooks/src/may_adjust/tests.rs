use serde_json::{Value, json};

use super::*;
use crate::diff::ChangeKind;
use crate::diff::tests::{change, doc};

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

#[test]
fn cdi_requests_are_changes_of_device_names_that_only_cdi_grants_allow() {
    let before = json!({"annotations": {"a": "1", "cdi.k8s.io/ctr": "example.com/gpu=0"}});
    let after = json!({"annotations": {
        "a": "1",
        "cdi.k8s.io/ctr": "example.com/gpu=0",
        "cdi.k8s.io/hookhost": "example.com/gpu=1,other.com/nic=eth0"
    }});
    let changes = crate::diff::diff(&before, &after);
    assert_eq!(
        changes,
        [
            change(Field::Cdi("example.com/gpu=1".into()), ChangeKind::Added),
            change(Field::Cdi("other.com/nic=eth0".into()), ChangeKind::Added),
        ]
    );
    let gpu = MayAdjust::parse_all(&["cdi=example.com/gpu=*".into()]).unwrap();
    assert!(gpu.allows(&Field::Cdi("example.com/gpu=1".into())));
    let denied = check(Some(&gpu), &changes, &after).unwrap_err();
    assert_eq!(denied.to_string(), "added cdi device other.com/nic=eth0");
    assert_eq!(denied.needed_grant().unwrap(), "cdi=other.com/nic=eth0");
    let annotations = MayAdjust::parse_all(&["annotations".into()]).unwrap();
    assert!(check(Some(&annotations), &changes, &after).is_err());
    let cdi = MayAdjust::parse_all(&["cdi".into()]).unwrap();
    check(Some(&cdi), &changes, &after).unwrap();
    // The same names under other keys: no change; dropping one: a removal.
    let moved = json!({"annotations": {"a": "1", "cdi.k8s.io/x": "example.com/gpu=0"}});
    assert!(crate::diff::diff(&before, &moved).is_empty());
    let dropped = json!({"annotations": {"a": "1"}});
    assert_eq!(
        crate::diff::diff(&before, &dropped),
        [change(
            Field::Cdi("example.com/gpu=0".into()),
            ChangeKind::Removed
        )]
    );
}
