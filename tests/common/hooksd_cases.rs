//! containers/common `pkg/hooks` peer cases as hooks.d files: each runs through the runtime
//! wrapper (tests/hooksd_parity.rs) and, the same files, under Podman itself (the reference:
//! Podman 4.3 on Debian 12, Podman 5 on forky), and must run the same hooks in the same order.

use serde_json::{Value, json};

/// One case: the hooks.d files (name, document) of a directory, the container's annotations,
/// and the labels of the hooks that must run, in order (each file's hook is the recorder with
/// `args: ["rec", LABEL]`).
pub struct Case {
    /// The containers/common test (or behaviour) it mirrors.
    pub mirrors: &'static str,
    pub files: Vec<(String, Value)>,
    /// Files of a directory of lower precedence, given before the other (usually none).
    pub lower: Vec<(String, Value)>,
    pub annotations: Value,
    pub ran: Vec<&'static str>,
    /// What Podman 4.3 runs instead, where its older containers/common differs.
    pub podman_4_3_ran: Option<Vec<&'static str>>,
}

/// A 1.0.0 document running `hook` (an OCI hook object) at `stages` when `when` holds.
pub fn doc(hook: Value, when: Value, stages: &[&str]) -> Value {
    json!({"version": "1.0.0", "hook": hook, "when": when, "stages": stages})
}

/// A createRuntime file `LABEL.json` running the recorder `rec` with LABEL when `when` holds.
fn labelled(rec: &str, label: &str, when: Value) -> (String, Value) {
    let hook = json!({"path": rec, "args": ["rec", label]});
    (format!("{label}.json"), doc(hook, when, &["createRuntime"]))
}

/// `when.go`: all conditions must hold; within `annotations` every pair must match, within
/// `commands` any regex (unanchored) matching `process.args[0]` is enough; a file without
/// conditions never runs. The container runs `sh` with `team=db`.
pub fn when_conditions(rec: &str) -> Case {
    let cases = [
        ("always", json!({"always": true})),
        (
            "always-and-annotation",
            json!({"always": true, "annotations": {"^team$": "^web$"}}),
        ),
        (
            "command-and-annotation",
            json!({"commands": ["^sh$"], "annotations": {"^team$": "^db$"}}),
        ),
        ("any-command", json!({"commands": ["^nomatch$", "s"]})),
        (
            "every-pair",
            json!({"annotations": {"^team$": "^db$", "^tier$": "^x$"}}),
        ),
        ("unanchored", json!({"annotations": {"ea": "d"}})),
        ("no-condition", json!({})),
    ];
    Case {
        mirrors: "when_test.go",
        files: cases
            .into_iter()
            .map(|(label, when)| labelled(rec, label, when))
            .collect(),
        annotations: json!({"team": "db"}),
        ran: vec![
            "always",
            "any-command",
            "command-and-annotation",
            "unanchored",
        ],
        podman_4_3_ran: None,
        lower: Vec::new(),
    }
}

/// `when.go` compiles conditions with Go's `regexp` (RE2): `\Q…\E`, octal escapes, a `{` that
/// starts no repetition and `&&` in a class are Go syntax that Rust's `regex` refuses or reads
/// otherwise, and `\d` is ASCII there (ARABIC-INDIC DIGIT THREE is no digit).
pub fn go_regexp(rec: &str) -> Case {
    let cases = [
        (
            "quoted",
            json!({"annotations": {r"^\Qio.example/gpu\E$": r"^\d+$"}}),
        ),
        ("octal", json!({"commands": [r"^\163h$"]})),
        ("brace", json!({"annotations": {"^tag$": "^v{x}$"}})),
        ("class", json!({"annotations": {"^set$": "^[a&&b]+$"}})),
        ("ascii", json!({"annotations": {"^num$": r"^\d$"}})),
    ];
    Case {
        mirrors: "when.go (Go regexp)",
        files: cases
            .into_iter()
            .map(|(label, when)| labelled(rec, label, when))
            .collect(),
        annotations: json!({"io.example/gpu": "12", "tag": "v{x}", "set": "a&&b", "num": "\u{663}"}),
        ran: vec!["brace", "class", "octal", "quoted"],
        podman_4_3_ran: None,
        lower: Vec::new(),
    }
}

/// hooks_test.go `TestGoodNew`: files are ordered by lower-cased name (`01-my-hook` before
/// `01-UPPERCASE`) and — since containers/common moved prestart to createRuntime (2024;
/// containers/common#2540) — a prestart file runs at createRuntime, in one list with the
/// createRuntime files. Podman 4.3's containers/common (2022) still ran prestart files at
/// prestart, so before every createRuntime file there.
pub fn file_order(rec: &str) -> Case {
    let files = [
        ("01-my-hook", "prestart"),
        ("01-UPPERCASE", "createRuntime"),
        ("02-another-hook", "prestart"),
    ];
    Case {
        mirrors: "hooks_test.go TestGoodNew",
        files: files
            .into_iter()
            .map(|(label, stage)| {
                let hook = json!({"path": rec, "args": ["rec", label]});
                let when = json!({"always": true});
                (format!("{label}.json"), doc(hook, when, &[stage]))
            })
            .collect(),
        annotations: json!({}),
        ran: vec!["01-my-hook", "01-UPPERCASE", "02-another-hook"],
        podman_4_3_ran: Some(vec!["01-my-hook", "02-another-hook", "01-UPPERCASE"]),
        lower: Vec::new(),
    }
}

/// read.go reads every `*.json` file whatever its name, ordered by lower-cased name.
pub fn any_name(rec: &str) -> Case {
    let names = [
        "01-my-hook",
        "01-UPPERCASE",
        "02-another-hook",
        "my hook",
        "unicode-é",
    ];
    Case {
        mirrors: "read.go, hooks_test.go TestGoodNew",
        files: names
            .iter()
            .map(|name| {
                let hook = json!({"path": rec, "args": ["rec", name]});
                (
                    format!("{name}.json"),
                    doc(hook, json!({"always": true}), &["prestart"]),
                )
            })
            .collect(),
        annotations: json!({}),
        ran: names.to_vec(),
        podman_4_3_ran: None,
        lower: Vec::new(),
    }
}

/// What containers/common drops without refusing (issue #21): `New` ignores a directory's error
/// when it is a single not-exist error, so a file whose hook path does not exist is dropped and
/// the container runs — and a same-named file of a lower-precedence directory stays in force;
/// 1.0.0 `Validate` rejects only a missing `stages`, so `"stages": []` is a valid file that never
/// runs.
pub fn dropped_files(rec: &str) -> Case {
    let always = json!({"always": true});
    let missing = json!({"path": "/does/not/exist", "args": ["rec", "upper-shared"]});
    let (no_stages, _) = labelled(rec, "no-stages", always.clone());
    Case {
        mirrors: "hooks.go New, read.go ReadDir, 1.0.0/hook.go Validate",
        files: vec![
            labelled(rec, "kept", always.clone()),
            (
                "shared.json".to_string(),
                doc(missing, always.clone(), &["createRuntime"]),
            ),
            (
                no_stages,
                doc(
                    json!({"path": rec, "args": ["rec", "no-stages"]}),
                    always.clone(),
                    &[],
                ),
            ),
        ],
        lower: vec![(
            "shared.json".to_string(),
            doc(
                json!({"path": rec, "args": ["rec", "lower-shared"]}),
                always,
                &["createRuntime"],
            ),
        )],
        annotations: json!({}),
        ran: vec!["kept", "lower-shared"],
        podman_4_3_ran: None,
    }
}
