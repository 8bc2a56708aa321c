use std::fs;

use serde_json::json;
use tempfile::TempDir;

use super::*;
use crate::when::tests::facts;

const V1_GPU: &[u8] = include_bytes!("../../../../tests/fixtures/hooksd/v1-gpu.json");
const V010_UMOUNT: &[u8] = include_bytes!("../../../../tests/fixtures/hooksd/v010-umount.json");

fn parse_json(value: serde_json::Value) -> Result<HooksdHook, ErrorKind> {
    parse(Path::new("/d/test.json"), value.to_string().as_bytes())
}

fn write(dir: &Path, name: &str, value: serde_json::Value) {
    fs::write(dir.join(name), value.to_string()).unwrap();
}

fn always(path: &str, stages: &[&str]) -> serde_json::Value {
    json!({"version": "1.0.0", "hook": {"path": path}, "when": {"always": true}, "stages": stages})
}

#[test]
fn reads_a_1_0_0_file() {
    let h = parse(Path::new("/etc/hooks.d/10-GPU.json"), V1_GPU).unwrap();
    assert_eq!(h.name, "10-GPU");
    assert_eq!(h.hook.path(), Path::new("/usr/sbin/gpu-hook"));
    assert_eq!(
        h.hook.args().as_deref(),
        Some(&["gpu-hook".into(), "prestart".into()][..])
    );
    assert_eq!(
        h.hook.env().as_deref(),
        Some(&["GPU_REQUIRE=cuda>=9.1".to_string()][..])
    );
    assert_eq!(h.hook.timeout(), Some(10));
    assert_eq!(
        h.stages,
        [Stage::Prestart, Stage::CreateRuntime, Stage::Poststop]
    );
    let Condition::V1(when) = &h.condition else {
        panic!("expected 1.0.0")
    };
    assert_eq!(when.commands(), [".*/init$", ".*/systemd$"]);
    // AND: the annotation and the command must both hold.
    let dept = ("com.example.department", "cfd-fluid-dynamics");
    assert!(
        h.condition
            .matches(&facts(&[dept], Some("/sbin/init"), false))
    );
    assert!(!h.condition.matches(&facts(&[dept], Some("/bin/sh"), false)));
    assert!(!h.condition.matches(&facts(&[], Some("/sbin/init"), false)));
}

#[test]
fn reads_a_0_1_0_file_with_synonyms() {
    let h = parse(Path::new("/d/umount.json"), V010_UMOUNT).unwrap();
    assert_eq!(
        h.hook.path(),
        Path::new("/usr/libexec/oci/hooks.d/umount-hook")
    );
    // `arguments` are appended to the path, which becomes argv0.
    let args = [
        "/usr/libexec/oci/hooks.d/umount-hook".to_string(),
        "--debug".into(),
    ];
    assert_eq!(h.hook.args().as_deref(), Some(&args[..]));
    assert_eq!(h.stages, [Stage::Prestart]);
    let Condition::Legacy(legacy) = &h.condition else {
        panic!("expected 0.1.0")
    };
    assert_eq!(legacy.commands(), [".*/init$"]);
    assert_eq!(
        legacy.annotations(),
        Some(&["fluid".to_string(), "^gpu$".into()][..])
    );
    assert_eq!(legacy.has_bind_mounts(), Some(true));
    assert_eq!(h.hook.timeout(), None);
}

#[test]
fn legacy_conditions_are_ored() {
    let h = parse(Path::new("/d/umount.json"), V010_UMOUNT).unwrap();
    let c = &h.condition;
    assert!(c.matches(&facts(&[], None, true)), "bind mounts alone");
    assert!(
        c.matches(&facts(&[("any.key", "xfluidx")], None, false)),
        "annotation alone"
    );
    assert!(
        c.matches(&facts(&[("k", "gpu")], None, false)),
        "second annotation regex"
    );
    assert!(
        c.matches(&facts(&[], Some("/sbin/init"), false)),
        "command alone"
    );
    assert!(
        !c.matches(&facts(&[("k", "gpus")], Some("/bin/sh"), false)),
        "none"
    );
    // Legacy annotations only look at values, whatever the key.
    assert!(!c.matches(&facts(&[("fluid", "x")], None, false)));
}

#[test]
fn legacy_edge_cases_follow_containers_common() {
    // `hasbindmounts: false` is simply not a reason to match in OR mode.
    let h = parse_json(
        json!({"hook": "/bin/sh", "stages": ["poststop"], "hasbindmounts": false,
                              "cmds": ["^sh$"]}),
    )
    .unwrap();
    assert!(h.condition.matches(&facts(&[], Some("sh"), false)));
    assert!(!h.condition.matches(&facts(&[], Some("top"), true)));
    // An empty annotation list becomes the empty regex: any annotation at all matches.
    let h =
        parse_json(json!({"hook": "/bin/sh", "stages": ["prestart"], "annotations": []})).unwrap();
    assert!(h.condition.matches(&facts(&[("a", "b")], None, false)));
    assert!(!h.condition.matches(&facts(&[], None, false)));
    // No `arguments`: no args at all (not `[path]`).
    assert_eq!(h.hook.args(), &None);
    // version "0.1.0" is the legacy format too.
    let h = parse_json(
        json!({"version": "0.1.0", "hook": "/bin/sh", "stage": ["prestart"],
                              "cmd": ["x"]}),
    )
    .unwrap();
    assert!(matches!(h.condition, Condition::Legacy(_)));
}

#[test]
fn legacy_to_when_only_for_a_single_kind_of_condition() {
    let one = Legacy::new(vec![], Some(vec!["a".into(), "b".into()]), None).unwrap();
    let when = one.to_when().unwrap();
    assert_eq!(when.annotations().get(".*").unwrap(), "a|b");
    for f in [
        facts(&[("k", "b")], None, false),
        facts(&[("k", "c")], None, false),
    ] {
        assert_eq!(when.matches(&f), one.matches(&f));
    }
    let two = Legacy::new(vec!["sh".into()], None, Some(true)).unwrap();
    assert_eq!(two.to_when(), None);
}

#[test]
fn legacy_synonym_conflicts_and_missing_properties() {
    let both = |a: &str, b: &str| {
        let mut v = json!({"hook": "/bin/sh", "stages": ["prestart"], "cmds": ["x"]});
        v[a] = json!(["x"]);
        v[b] = json!(["x"]);
        parse_json(v).unwrap_err()
    };
    assert!(matches!(
        both("stage", "stages"),
        ErrorKind::Both("stage", "stages")
    ));
    assert!(matches!(
        both("cmd", "cmds"),
        ErrorKind::Both("cmd", "cmds")
    ));
    let err = both("annotation", "annotations");
    assert_eq!(
        err.to_string(),
        "cannot set both 'annotation' and 'annotations'"
    );
    let err = parse_json(json!({"stages": ["prestart"], "cmds": ["x"]})).unwrap_err();
    assert_eq!(err.to_string(), "missing required property: hook");
    let err = parse_json(json!({"hook": "/bin/sh", "cmds": ["x"]})).unwrap_err();
    assert_eq!(err.to_string(), "missing required property: stages");
}

#[test]
fn json_property_names_match_case_insensitively_like_go() {
    let h = parse_json(
        json!({"Version": "1.0.0", "HOOK": {"Path": "/bin/sh", "ARGS": ["sh"]},
                              "When": {"hasbindmounts": true}, "Stages": ["poststart"]}),
    )
    .unwrap();
    assert_eq!(h.hook.path(), Path::new("/bin/sh"));
    assert_eq!(h.hook.args().as_deref(), Some(&["sh".to_string()][..]));
    assert_eq!(h.stages, [Stage::Poststart]);
    assert!(h.condition.matches(&facts(&[], None, true)));
    // Annotation keys are data, not property names: they keep their case.
    let h = parse_json(json!({"version": "1.0.0", "hook": {"path": "/bin/sh"},
                              "when": {"annotations": {"^Key$": "v"}}, "stages": ["prestart"]}))
    .unwrap();
    assert!(h.condition.matches(&facts(&[("Key", "v")], None, false)));
    assert!(!h.condition.matches(&facts(&[("key", "v")], None, false)));
}

#[test]
fn stage_names_are_exact_oci_camel_case() {
    let all = [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ];
    let h = parse_json(always("/bin/sh", &all)).unwrap();
    let oci: Vec<Stage> = Stage::ALL.into_iter().filter(|s| s.is_oci()).collect();
    assert_eq!(h.stages, oci);
    let pre = parse_json(always("/bin/sh", &["precreate", "poststop"])).unwrap();
    assert_eq!(pre.stages, [Stage::Precreate, Stage::Poststop]);
    assert!(parse_json(always("/bin/sh", &["startRuntime"])).is_err());
    let err = parse_json(always("/bin/sh", &["createruntime"])).unwrap_err();
    assert!(matches!(&err, ErrorKind::UnknownStage { stage, .. } if stage == "createruntime"));
    assert!(
        err.to_string().contains("did you mean \"createRuntime\""),
        "{err}"
    );
    let dup = parse_json(always("/bin/sh", &["poststop", "prestart", "poststop"])).unwrap();
    assert_eq!(dup.stages, [Stage::Poststop, Stage::Prestart]);
}

#[test]
fn invalid_documents_are_rejected_with_a_reason() {
    let cases = [
        (
            json!({"version": "2.0.0", "hook": {"path": "/bin/sh"}}),
            "unrecognized hook version \"2.0.0\"",
        ),
        (
            json!({"version": "1.0.0", "when": {"always": true}, "stages": ["prestart"]}),
            "missing required property: hook.path",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "sh"}, "when": {"always": true}, "stages": ["prestart"]}),
            "not absolute",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"always": true}}),
            "missing required property: stages",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "timeout": 0}, "when": {"always": true}, "stages": ["prestart"]}),
            "invalid hooks.d timeout 0: a hook timeout must be a whole number of seconds from 1 to 3600",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "timeout": u64::MAX}, "when": {"always": true}, "stages": ["prestart"]}),
            "invalid hooks.d timeout 18446744073709551615: ",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "timeout": i64::MAX}, "when": {"always": true}, "stages": ["prestart"]}),
            "invalid hooks.d timeout 9223372036854775807: ",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "timeout": -1}, "when": {"always": true}, "stages": ["prestart"]}),
            "invalid hooks.d timeout -1: ",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "timeout": 3601}, "when": {"always": true}, "stages": ["prestart"]}),
            "invalid hooks.d timeout 3601: ",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "args": ["sh", "a\u{0}b"]}, "when": {"always": true}, "stages": ["prestart"]}),
            "the hook could never run: an argument or variable holds a NUL byte",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh", "env": ["A=".to_string() + &"x".repeat(200_000)]}, "when": {"always": true}, "stages": ["prestart"]}),
            "the hook could never run: one argument or variable is 200002 bytes",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"commands": ["(x"]}, "stages": ["prestart"]}),
            "invalid command regex \"(x\"",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"annotations": {"k": "[v"}}, "stages": ["prestart"]}),
            "invalid annotation value regex \"[v\"",
        ),
        (
            json!({"hook": "/bin/sh", "stages": ["prestart"], "annotations": ["ok", "(bad"]}),
            "\"(bad\"",
        ),
        (
            json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {"always": true}, "stages": "prestart"}),
            "not a hook definition",
        ),
        (json!({"version": 1}), "unrecognized hook version \"1\""),
        (json!([1]), "expected a JSON object"),
    ];
    for (doc, expected) in cases {
        let err = parse_json(doc.clone()).unwrap_err().to_string();
        assert!(err.contains(expected), "{doc}: {err:?} lacks {expected:?}");
    }
    let err = parse(Path::new("/d/x.json"), b"{\"version\": ").unwrap_err();
    assert!(matches!(err, ErrorKind::Syntax(_)));
}

/// containers/common validates no `when` at all: a file without conditions is valid, and
/// never matches (1.0.0 `When.Match` and the 0.1.0 "or" form both start from no match).
#[test]
fn a_file_without_conditions_is_valid_and_never_matches() {
    let all = facts(&[("a", "b")], Some("sh"), true);
    for doc in [
        json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "stages": ["prestart"]}),
        json!({"version": "1.0.0", "hook": {"path": "/bin/sh"}, "when": {}, "stages": ["prestart"]}),
        json!({"hook": "/bin/sh", "stages": ["prestart"]}),
    ] {
        let hook = parse_json(doc.clone()).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert!(hook.condition.is_empty(), "{doc}");
        assert!(!hook.condition.matches(&all), "{doc}");
    }
}

#[test]
fn read_file_requires_the_hook_path_to_exist() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "gone.json",
        always("/nonexistent/hookhost-test-hook", &["prestart"]),
    );
    let err = read_file(&dir.path().join("gone.json")).unwrap_err();
    assert_eq!(err.path, dir.path().join("gone.json"));
    assert!(matches!(err.kind, ErrorKind::PathNotFound { .. }));
    assert!(err.to_string().contains("gone.json"));
}

#[test]
fn read_dirs_precedence_order_and_errors() {
    let low = TempDir::new().unwrap();
    let high = TempDir::new().unwrap();
    write(
        low.path(),
        "b-shared.json",
        always("/bin/sh", &["prestart"]),
    );
    write(
        high.path(),
        "b-shared.json",
        always("/bin/true", &["poststop"]),
    );
    write(low.path(), "kept.json", always("/bin/sh", &["prestart"]));
    // An invalid file in the later dir does not mask the earlier valid one (containers/common).
    write(high.path(), "kept.json", json!({"version": "1.0.0"}));
    write(
        high.path(),
        "C-upper.json",
        always("/bin/sh", &["prestart"]),
    );
    // Precedence is by exact file name: a name differing only in case does not replace.
    write(low.path(), "c-UPPER.json", always("/bin/sh", &["prestart"]));
    write(
        high.path(),
        "a-first.json",
        always("/bin/sh", &["prestart"]),
    );
    write(
        high.path(),
        "bad-regex.json",
        json!({"version": "1.0.0", "hook": {"path": "/bin/sh"},
                                                "when": {"commands": ["["]}, "stages": ["prestart"]}),
    );
    write(
        high.path(),
        "bad-stage.json",
        always("/bin/sh", &["prestop"]),
    );
    fs::write(high.path().join("broken.json"), "{not json").unwrap();
    fs::write(high.path().join("README"), "not a hook").unwrap();
    write(
        high.path(),
        "ignored.json.bak",
        always("/bin/sh", &["prestart"]),
    );
    let missing = low.path().join("does-not-exist");

    let set = read_dirs(&[missing, low.path().into(), high.path().into()]);

    let names: Vec<&str> = set.hooks.iter().map(|h| h.name.as_str()).collect();
    assert_eq!(names, ["a-first", "b-shared", "C-upper", "c-UPPER", "kept"]);
    let shared = &set.hooks[1];
    assert_eq!(shared.file, high.path().join("b-shared.json"));
    assert_eq!(shared.hook.path(), Path::new("/bin/true"));
    assert_eq!(shared.stages, [Stage::Poststop]);
    assert_eq!(set.hooks[4].file, low.path().join("kept.json"));

    let mut failed: Vec<String> = set
        .errors
        .iter()
        .map(|e| e.path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    failed.sort();
    assert_eq!(
        failed,
        [
            "bad-regex.json",
            "bad-stage.json",
            "broken.json",
            "kept.json"
        ]
    );
    for e in &set.errors {
        assert!(
            e.to_string()
                .starts_with(&high.path().display().to_string()),
            "{e}"
        );
    }
}

#[test]
fn a_path_that_is_not_a_directory_is_reported() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("plain");
    fs::write(&file, "").unwrap();
    let set = read_dirs(std::slice::from_ref(&file));
    assert!(set.hooks.is_empty());
    assert_eq!(set.errors.len(), 1);
    assert_eq!(set.errors[0].path, file);
}

#[test]
fn matching_filters_by_stage_and_condition_in_file_name_order() {
    let dir = TempDir::new().unwrap();
    write(
        dir.path(),
        "20-top.json",
        json!({"version": "1.0.0", "hook": {"path": "/bin/sh"},
                                             "when": {"commands": ["top$"]}, "stages": ["prestart", "poststop"]}),
    );
    write(dir.path(), "10-all.json", always("/bin/sh", &["prestart"]));
    write(
        dir.path(),
        "05-legacy.json",
        json!({"hook": "/bin/sh", "stage": ["prestart"],
                                                "annotation": ["^on$"], "hasbindmounts": true}),
    );
    let set = read_dirs(&[dir.path().into()]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let names = |f: &ContainerFacts, s| -> Vec<String> {
        set.matching(f, s).iter().map(|h| h.name.clone()).collect()
    };
    let top = facts(&[], Some("/bin/top"), false);
    assert_eq!(names(&top, Stage::Prestart), ["10-all", "20-top"]);
    assert_eq!(names(&top, Stage::Poststop), ["20-top"]);
    assert!(names(&top, Stage::Poststart).is_empty());
    let bind = facts(&[], Some("sh"), true);
    assert_eq!(names(&bind, Stage::Prestart), ["05-legacy", "10-all"]);
}

/// containers/common rejects only a *missing* `stages` (`hook.Stages == nil`): an empty list is
/// a valid file that is never injected (issue #21; fuzzing had once made hookhost refuse it).
#[test]
fn an_empty_stage_list_is_valid_and_never_injected() {
    let all = facts(&[], Some("/bin/sh"), true);
    let v1 = json!({"version": "1.0.0", "hook": {"path": "/bin/true"},
                    "when": {"always": true}, "stages": []});
    let legacy = json!({"hook": "/bin/true", "stages": [], "cmds": [".*"]});
    let legacy_stage = json!({"hook": "/bin/true", "stage": [], "cmds": [".*"]});
    for doc in [v1, legacy, legacy_stage] {
        let hook = parse_json(doc.clone()).unwrap();
        assert!(hook.stages.is_empty(), "{doc}");
        assert!(hook.condition.matches(&all), "{doc}");
        let set = HooksdSet {
            hooks: vec![hook],
            ..HooksdSet::default()
        };
        assert!(set.injected(&all).is_empty(), "{doc}");
        assert!(Stage::ALL.iter().all(|&s| set.matching(&all, s).is_empty()));
    }
    let missing =
        json!({"version": "1.0.0", "hook": {"path": "/bin/true"}, "when": {"always": true}});
    let err = parse_json(missing).unwrap_err().to_string();
    assert_eq!(err, "missing required property: stages");
}

/// containers/common `New` ignores a directory's error when it is a not-exist error, and
/// `ReadDir` returns the single error of a directory unwrapped: a file whose hook path does not
/// exist is dropped (the other files and a lower-precedence file of the same name stay in
/// force), but not when another file of that directory is invalid too (the errors are then
/// wrapped together and `New` fails).
#[test]
fn a_missing_hook_path_alone_in_its_directory_is_dropped_as_containers_common_does() {
    let low = TempDir::new().unwrap();
    let high = TempDir::new().unwrap();
    write(low.path(), "shared.json", always("/bin/sh", &["prestart"]));
    write(
        high.path(),
        "shared.json",
        always("/nonexistent/hookhost-test-hook", &["poststop"]),
    );
    write(
        high.path(),
        "other.json",
        always("/bin/true", &["poststop"]),
    );
    let set = read_dirs(&[low.path().into(), high.path().into()]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!(set.ignored.len(), 1);
    assert_eq!(set.ignored[0].path, high.path().join("shared.json"));
    let files: Vec<&Path> = set.hooks.iter().map(|h| h.file.as_path()).collect();
    assert_eq!(
        files,
        [
            high.path().join("other.json").as_path(),
            low.path().join("shared.json").as_path()
        ]
    );

    // A second problem in the same directory: both are errors of the set.
    write(high.path(), "broken.json", json!({"version": "-1"}));
    let set = read_dirs(&[low.path().into(), high.path().into()]);
    assert!(set.ignored.is_empty());
    assert_eq!(set.errors.len(), 2);

    // Any other problem alone is still an error (containers/common fails on it).
    fs::remove_file(high.path().join("broken.json")).unwrap();
    fs::remove_file(high.path().join("shared.json")).unwrap();
    write(
        high.path(),
        "relative.json",
        always("bin/sh", &["prestart"]),
    );
    let set = read_dirs(&[high.path().into()]);
    assert!(set.ignored.is_empty());
    assert_eq!(set.errors.len(), 1);
}
