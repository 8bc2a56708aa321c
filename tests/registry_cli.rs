//! The registry through the CLI: the seed's commands, every bad input (a clear one-line error,
//! non-zero status, registry unchanged), and concurrent writers.

mod common;

use std::fs;
use std::thread;

use common::{Host, text};
use serde_json::Value;

#[test]
fn seed_commands_create_inspect_ls_rm() {
    let host = Host::new();
    let created = host.ok(common::SEED_CREATE);
    assert_eq!(created, "myFirstHook\n");

    let inspected: Value = serde_json::from_str(&host.ok(&["inspect", "myFirstHook"])).unwrap();
    let hook = &inspected[0];
    assert_eq!(hook["Name"], "myFirstHook");
    assert_eq!(hook["Type"], "prestart");
    assert_eq!(hook["Path"], "/bin/ls");
    assert_eq!(hook["Args"], serde_json::json!(["ls", "/tmp/a"]));
    assert_eq!(hook["Timeout"], 5);
    assert_eq!(hook["Env"], serde_json::json!(["platform=linux"]));
    assert_eq!(hook["Kind"], "native");

    let table = host.ok(&["ls"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "TYPE", "PATH", "ARGS"]);
    assert_eq!(
        lines[1],
        ["myFirstHook", "prestart", "/bin/ls", "ls", "/tmp/a"]
    );
    assert_eq!(host.ok(&["ls", "-q"]), "myFirstHook\n");
    let json: Value = serde_json::from_str(&host.ok(&["ls", "--format", "json"])).unwrap();
    assert_eq!(json[0]["Name"], "myFirstHook");

    assert_eq!(host.ok(&["rm", "myFirstHook"]), "myFirstHook\n");
    assert_eq!(host.ok(&["ls", "-q"]), "");
}

/// `ls`'s table shows a path or argument with spaces, newlines or terminal escapes quoted, as
/// every text view does (`events::text_field`): one row per hook, nothing a registered value
/// can forge or send to the terminal, and the arguments' boundaries visible.
#[test]
fn ls_quotes_paths_and_args_that_would_break_its_rows() {
    use std::os::unix::fs::PermissionsExt;
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("my hook");
    fs::write(&exe, "#!/bin/sh\n").unwrap();
    fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
    let exe = exe.to_str().unwrap();
    host.ok(&[
        "create",
        "--args",
        r#"["hook", "two words", "a\nb\u001b[2J"]"#,
        "odd",
        exe,
    ]);
    let table = host.ok(&["ls"]);
    assert_eq!(table.lines().count(), 2, "{table}");
    assert!(!table.contains('\u{1b}'), "{table:?}");
    let row = table.lines().nth(1).unwrap();
    assert!(row.starts_with("odd "), "{row}");
    assert!(row.contains(&format!("{exe:?}")), "{row}");
    assert!(
        row.ends_with(r#"hook "two words" "a\nb\u{1b}[2J""#),
        "{row}"
    );
}

#[test]
fn list_values_in_every_seed_spelling_agree() {
    let host = Host::new();
    host.ok(&[
        "create",
        "--env",
        r#"["platform=linux"]"#,
        "--args",
        r#"["ls", "/tmp/a"]"#,
        "json",
        "/bin/ls",
    ]);
    // What the shell passes for the unquoted `--args ["ls", "/tmp/a"]`.
    host.ok(&[
        "create",
        "--env",
        "[platform=linux]",
        "--args",
        "[ls,",
        "/tmp/a]",
        "shell",
        "/bin/ls",
    ]);
    host.ok(&[
        "create",
        "--env",
        "platform=linux",
        "--args",
        "ls",
        "--args",
        "/tmp/a",
        "repeated",
        "/bin/ls",
    ]);
    host.ok(&[
        "create",
        "--type",
        "prestart,poststop",
        "multi",
        "/bin/true",
    ]);
    for name in ["json", "shell", "repeated"] {
        let hook: Value = serde_json::from_str(&host.ok(&["inspect", name])).unwrap();
        assert_eq!(
            hook[0]["Args"],
            serde_json::json!(["ls", "/tmp/a"]),
            "{name}"
        );
        assert_eq!(
            hook[0]["Env"],
            serde_json::json!(["platform=linux"]),
            "{name}"
        );
    }
    let multi: Value = serde_json::from_str(&host.ok(&["inspect", "multi"])).unwrap();
    assert_eq!(multi[0]["Type"], "prestart,poststop");
    assert_eq!(
        multi[0]["Args"],
        serde_json::json!(["/bin/true"]),
        "argv0 defaults to the path"
    );
}

#[test]
fn every_bad_input_is_a_clear_error_and_changes_nothing() {
    let host = Host::new();
    host.ok(&["create", "taken", "/bin/true"]);
    let not_exec = host.dir.path().join("not-exec");
    fs::write(&not_exec, "#!/bin/sh\n").unwrap();
    let not_exec = not_exec.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["inspect", "ghost"], "no such hook: ghost"),
        (vec!["rm", "ghost"], "no such hook: ghost"),
        (
            vec!["create", "taken", "/bin/true"],
            "hook \"taken\" already exists",
        ),
        (vec!["create", "-bad", "/bin/true"], "unexpected argument"),
        (
            vec!["create", "bad/name", "/bin/true"],
            "invalid hook name \"bad/name\"",
        ),
        (
            vec!["create", ".hidden", "/bin/true"],
            "invalid hook name \".hidden\"",
        ),
        (
            vec!["create", "x", "bin/true"],
            // Resolved against the working directory, where there is no such file.
            "bin/true: No such file or directory",
        ),
        (
            vec!["create", "x", "/no/such/program"],
            "/no/such/program: No such file or directory",
        ),
        (vec!["create", "x", not_exec], "is not executable"),
        (vec!["create", "x", "/tmp"], "not a regular file"),
        (
            vec!["create", "--timeout", "-2", "x", "/bin/true"],
            "invalid --timeout -2: a hook timeout must be a whole number of seconds from 1 to 3600",
        ),
        (
            vec!["create", "--timeout", "soon", "x", "/bin/true"],
            "invalid --timeout \"soon\": a hook timeout must be a whole number of seconds",
        ),
        (
            vec!["create", "--type", "prestop", "x", "/bin/true"],
            "unknown stage \"prestop\": valid stages are precreate, prestart, createRuntime, createContainer, startRuntime, startContainer, poststart, poststop",
        ),
        (
            vec!["create", "--args", r#"["ls", "/tmp/a""#, "x", "/bin/true"],
            "must end with ']'",
        ),
        (
            vec!["create", "--args", r#"["ls" "/tmp/a"]"#, "x", "/bin/true"],
            "malformed JSON list",
        ),
        (
            vec!["create", "--env", "novalue", "x", "/bin/true"],
            "invalid env entry \"novalue\": expected KEY=VALUE",
        ),
    ];
    for (args, want) in cases {
        let before = host.snapshot();
        let err = host.fails(&args);
        assert!(err.contains(want), "{args:?}: wanted {want:?} in {err:?}");
        assert_eq!(host.snapshot(), before, "{args:?} changed the registry");
    }
}

/// Every timeout out of 1..=3600, however large, is one line naming the value and the range;
/// nothing is registered. 3600 itself is accepted.
#[test]
fn timeouts_out_of_range_are_refused_in_one_line() {
    let host = Host::new();
    host.ok(&["ls"]);
    for value in [
        "18446744073709551615", // u64::MAX
        "9223372036854775807",  // i64::MAX
        "0",
        "-1",
        "3601",
        "340282366920938463463374607431768211456", // beyond i128
    ] {
        let before = host.snapshot();
        let out = host.run(&["create", "--timeout", value, "x", "/bin/true"]);
        assert!(!out.status.success(), "--timeout {value} was accepted");
        let err = text(&out.stderr);
        assert_eq!(
            err.trim_end(),
            format!(
                "Error: invalid --timeout {value}: a hook timeout must be a whole number of \
                 seconds from 1 to 3600"
            ),
            "--timeout {value}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert_eq!(
            host.snapshot(),
            before,
            "--timeout {value} changed the registry"
        );
    }
    let err = host.fails(&["create", "--timeout=-1", "x", "/bin/true"]);
    assert!(err.contains("invalid --timeout -1: "), "{err}");
    assert_eq!(
        host.ok(&["create", "--timeout", "3600", "max", "/bin/true"]),
        "max\n"
    );
    let max: Value = serde_json::from_str(&host.ok(&["inspect", "max"])).unwrap();
    assert_eq!(max[0]["Timeout"], 3600);
}

/// A hand-edited entry with a timeout out of range is reported as corrupt, naming the value,
/// by every command that reads it: none panics, none runs the hook.
#[test]
fn a_stored_timeout_out_of_range_is_a_corrupt_entry_not_a_panic() {
    let host = Host::new();
    host.ok(&["create", "--timeout", "5", "huge", "/bin/true"]);
    let file = host.root().join("hooks/huge.json");
    for value in ["9223372036854775807", "18446744073709551615", "0"] {
        let mut entry: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        entry["Timeout"] = serde_json::from_str(value).unwrap();
        fs::write(&file, entry.to_string()).unwrap();
        for args in [vec!["try", "huge"], vec!["inspect", "huge"], vec!["ls"]] {
            let out = host.run(&args);
            let err = text(&out.stderr);
            assert!(!out.status.success(), "{args:?} with Timeout {value}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(
                err.contains("is corrupt")
                    && err.contains(&format!("invalid stored timeout {value}")),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn a_corrupt_entry_is_named_and_the_others_stay_usable() {
    let host = Host::new();
    host.ok(&["create", "good", "/bin/true"]);
    let bad_file = host.root().join("hooks/bad.json");
    fs::write(&bad_file, "{\"Name\": \"bad\", tru").unwrap();
    let out = host.run(&["ls"]);
    assert!(!out.status.success(), "ls reports the corrupt entry");
    assert!(text(&out.stdout).contains("good"));
    assert!(
        text(&out.stderr).contains(&format!("registry entry {} is corrupt", bad_file.display())),
        "{}",
        text(&out.stderr)
    );
    let err = host.fails(&["inspect", "bad"]);
    assert!(err.contains("bad.json is corrupt"), "{err}");
    assert!(host.ok(&["inspect", "good"]).contains("\"good\""));
    assert_eq!(
        host.ok(&["rm", "bad"]),
        "bad\n",
        "a corrupt entry can be removed"
    );
}

#[test]
fn fifty_parallel_creates_all_land() {
    let host = Host::new();
    host.ok(&["ls"]); // creates the root once, before the race
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let mut cmd = host.cmd();
            cmd.args([
                "create",
                "--args",
                &format!("true,{i}"),
                &format!("hook{i:02}"),
                "/bin/true",
            ]);
            thread::spawn(move || cmd.output().unwrap())
        })
        .collect();
    for handle in handles {
        let out = handle.join().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let names = host.ok(&["ls", "-q"]);
    let want: Vec<String> = (0..50).map(|i| format!("hook{i:02}")).collect();
    assert_eq!(names.lines().collect::<Vec<_>>(), want);
    for i in 0..50 {
        let hook: Value =
            serde_json::from_str(&host.ok(&["inspect", &format!("hook{i:02}")])).unwrap();
        assert_eq!(hook[0]["Args"][1], i.to_string());
    }
    let leftovers: Vec<_> = fs::read_dir(host.root().join("hooks"))
        .unwrap()
        .filter(|e| {
            !e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".json")
        })
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

#[test]
fn completions_and_man_page_are_generated() {
    let host = Host::new();
    let bash = host.ok(&["completions", "bash"]);
    assert!(bash.contains("hookhost") && bash.contains("--add-hook"));
    let man = host.ok(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH hookhost"),
        "{}",
        &man[..80.min(man.len())]
    );
}
