//! The runtime wrapper (`hookhost-runtime`) in front of real runc: hook selection by
//! annotation, by HOOKHOST_HOOKS (removed from the container's env), by global conditions and
//! by hooks.d; refusals with runc-style `--log` lines and config.json untouched; passthrough.
//! Needs root, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::process::Stdio;

use common::engines::{Setup, log_lines};
use common::{Bundle, Tmpfs, detached, succeeded as ok, text, unique, wat_module};
use serde_json::{Value, json};

#[test]
fn annotation_selects_registered_hooks_with_extra_args() {
    let s = Setup::new();
    let bundle = Bundle::new("cat /marker");
    s.recorder("rec", &bundle, &[]);
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": r#"rec:["x","y z"]"#}));
    let out = s.run(&bundle, &unique("ann"));
    assert_eq!(ok(&out).trim(), "rec x y z");
    let config = bundle.config();
    let prestart = config["hooks"]["prestart"].as_array().unwrap();
    assert_eq!(prestart.len(), 1);
    assert_eq!(prestart[0]["args"][1], "stage");
}

#[test]
fn hookhost_hooks_env_selects_and_is_removed_from_the_container() {
    let s = Setup::new();
    let bundle = Bundle::new("cat /marker; env");
    s.recorder("rec", &bundle, &[]);
    bundle.edit(|c| {
        let env = c["process"]["env"].as_array_mut().unwrap();
        env.push("HOOKHOST_HOOKS=rec:[\"from-env\"]".into());
        env.push("KEEP=me".into());
    });
    let out = ok(&s.run(&bundle, &unique("env")));
    assert!(out.contains("rec from-env"), "{out}");
    assert!(out.contains("KEEP=me"), "{out}");
    assert!(
        !out.contains("HOOKHOST_HOOKS"),
        "visible in the container: {out}"
    );
    let env = bundle.config()["process"]["env"].to_string();
    assert!(!env.contains("HOOKHOST_HOOKS"), "{env}");
}

#[test]
fn global_hooks_run_when_their_conditions_hold() {
    let s = Setup::new();
    let bundle = Bundle::new("cat /marker");
    s.recorder("always", &bundle, &["--when-always"]);
    s.recorder("shell", &bundle, &["--when-command", "^sh$"]);
    s.recorder(
        "both",
        &bundle,
        &["--when-command", "^sh$", "--when-annotation", "team=^db$"],
    );
    s.recorder("other", &bundle, &["--when-annotation", "team=^web$"]);
    s.recorder("named", &bundle, &[]);
    bundle.edit(|c| c["annotations"] = json!({"team": "db", "io.hookhost.hooks": "named"}));
    let out = ok(&s.run(&bundle, &unique("global")));
    let ran: Vec<&str> = out.lines().map(str::trim).collect();
    // Global hooks by name, then the container's own selection.
    assert_eq!(ran, ["always", "both", "shell", "named"]);
}

#[test]
fn hooksd_dirs_from_the_config_file_are_read() {
    let hooksd = tempfile::tempdir().unwrap();
    let s = Setup::with_config(json!({"hooksDirs": [hooksd.path()], "logLevel": "info",
                                      "hooksDirsSkipInvalid": true}));
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let script = s.host.script(
        "d.sh",
        &format!("echo \"hooksd $*\" >> {}", marker.display()),
    );
    let doc = json!({"version": "1.0.0", "hook": {"path": script, "args": ["d.sh", "arg"]},
                     "when": {"commands": ["^sh$"]}, "stages": ["prestart"]});
    fs::write(hooksd.path().join("10-d.json"), doc.to_string()).unwrap();
    fs::write(hooksd.path().join("20-bad.json"), r#"{"version":"1.0.0","hook":{"path":"/nope"},"when":{"always":true},"stages":["prestart"]}"#).unwrap();
    let out = ok(&s.run(&bundle, &unique("hooksd")));
    assert_eq!(out.trim(), "hooksd arg");
    let lines = log_lines(&s.log());
    let warning = lines
        .iter()
        .find(|l| l["level"] == "warning")
        .expect("a warning line");
    assert!(
        warning["msg"].as_str().unwrap().contains("20-bad.json"),
        "{warning}"
    );
    assert!(lines.iter().any(
        |l| l["level"] == "info" && l["msg"].as_str().unwrap().contains("createRuntime: 10-d")
    ));
}

/// A refused container: non-zero exit, the reason on stderr and as runc's JSON error line in
/// `--log`, config.json byte for byte as it was, and no container.
fn assert_refused(s: &Setup, bundle: &Bundle, want: &str) {
    assert_refused_call(s, &["create", "--bundle", bundle.path_str()], bundle, want);
}

/// [`assert_refused`] for any container-creating call: `call` is the command and its flags,
/// the container id is appended.
fn assert_refused_call(s: &Setup, call: &[&str], bundle: &Bundle, want: &str) {
    let before = fs::read(bundle.config_file()).unwrap();
    let id = unique("refused");
    // stderr goes to a file, not a pipe: a container created by mistake would hold a pipe open
    // and hang the test instead of failing it.
    let stderr_file = tempfile::NamedTempFile::new().unwrap();
    let mut args = call.to_vec();
    args.push(&id);
    let status = s
        .runtime(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr_file.reopen().unwrap())
        .status()
        .unwrap();
    let state = s.runc.cmd(&["state", &id]).output().unwrap();
    let _ = s.runc.cmd(&["delete", "--force", &id]).output();
    assert!(!status.success(), "the container was created");
    assert!(
        !state.status.success(),
        "a container exists: {}",
        text(&state.stdout)
    );
    let stderr = fs::read_to_string(stderr_file.path()).unwrap();
    assert!(stderr.contains(want), "stderr: {stderr}");
    let last = log_lines(&s.log()).pop().expect("an error line in --log");
    assert_eq!(last["level"], "error");
    assert!(last["msg"].as_str().unwrap().contains(want), "{last}");
    assert!(last["time"].is_string());
    assert_eq!(
        fs::read(bundle.config_file()).unwrap(),
        before,
        "config.json changed"
    );
}

#[test]
fn unregistered_names_and_inline_paths_are_refused() {
    let s = Setup::new();
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "nope"}));
    // No registry yet: the wrapper says where it looked (and does not create one).
    assert_refused(&s, &bundle, "there is no hook registry at");
    assert!(!s.host.root().exists());
    s.host.ok(&["ls"]);
    assert_refused(
        &s,
        &bundle,
        "annotation io.hookhost.hooks selects \"nope\": no such hook: nope",
    );

    let bundle = Bundle::new("true");
    bundle.edit(|c| {
        c["process"]["env"]
            .as_array_mut()
            .unwrap()
            .push("HOOKHOST_HOOKS=/bin/touch:[\"/tmp/pwned\"]".into())
    });
    assert_refused(&s, &bundle, "inline hook path \"/bin/touch\"");

    let bundle = Bundle::new("true");
    let spec = json!({"prestart": [{"path": "/bin/true"}]}).to_string();
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hook-spec": spec}));
    assert_refused(&s, &bundle, "allowInlineSpecs");
}

#[test]
fn inline_paths_run_when_the_administrator_allows_them() {
    let s = Setup::with_config(json!({"allowInlineSpecs": true}));
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let script = s.host.script(
        "inline.sh",
        &format!("echo \"inline $*\" >> {}", marker.display()),
    );
    bundle.edit(|c| {
        c["annotations"] = json!({"io.hookhost.hooks": format!("{}:[\"a\"]", script.display())})
    });
    assert_eq!(ok(&s.run(&bundle, &unique("inline"))).trim(), "inline a");
}

#[test]
fn other_commands_pass_straight_through() {
    let s = Setup::new();
    let version = ok(&s.wrapper.cmd(&["--version"]).output().unwrap());
    let runc_version = ok(&s
        .runc
        .stack
        .command("runc")
        .arg("--version")
        .output()
        .unwrap());
    assert_eq!(version, runc_version);
    let mut subcommand = s.host.cmd();
    subcommand.args(["runtime", "--version"]);
    let via_subcommand = s.runc.stack.wrap(subcommand).output().unwrap();
    assert_eq!(ok(&via_subcommand), runc_version);

    let bundle = Bundle::new("sleep 30");
    let id = unique("pass");
    let create = detached(&mut s.runtime(&["create", "--bundle", bundle.path_str(), &id]));
    assert!(create.success());
    let state: Value =
        serde_json::from_str(&ok(&s.runtime(&["state", &id]).output().unwrap())).unwrap();
    assert_eq!(state["status"], "created");
    ok(&s.runtime(&["start", &id]).output().unwrap());
    ok(&s.runtime(&["kill", &id, "9"]).output().unwrap());
    ok(&s.runtime(&["delete", "--force", &id]).output().unwrap());
    assert!(
        !s.runc
            .cmd(&["state", &id])
            .output()
            .unwrap()
            .status
            .success()
    );
}

/// A container that nothing selects hooks for is its runtime's business alone: the wrapper
/// neither rewrites its config.json nor holds it to hookhost's reading of the OCI schema (runc
/// 1.1 runs a container naming a capability it does not know, with a warning). Once a hook is
/// selected, hookhost must read the config to inject it, and refuses one it cannot.
#[test]
fn a_container_without_hooks_is_left_to_the_runtime_untouched() {
    use std::os::unix::fs::MetadataExt;
    let s = Setup::new();
    s.recorder("rec", &Bundle::new("true"), &[]);
    let bundle = Bundle::new("true");
    bundle.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push("CAP_NOT_YET_INVENTED".into())
    });
    let before = fs::read(bundle.config_file()).unwrap();
    let inode = fs::metadata(bundle.config_file()).unwrap().ino();
    ok(&s.run(&bundle, &unique("no-hooks")));
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    assert_eq!(
        fs::metadata(bundle.config_file()).unwrap().ino(),
        inode,
        "config.json was rewritten"
    );
    assert!(common::plan_files(bundle.path()).is_empty());

    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "rec"}));
    assert_refused(&s, &bundle, "is not a valid OCI runtime config");
}

#[test]
fn a_broken_config_file_is_reported_in_the_log() {
    let s = Setup::new();
    s.wrapper.set_config(&json!({"allowInlineSpec": true}));
    let bundle = Bundle::new("true");
    assert_refused(&s, &bundle, "unknown field `allowInlineSpec`");
}

#[test]
fn a_state_dir_that_cannot_be_written_refuses_the_container() {
    let s = Setup::new();
    fs::create_dir_all(s.host.root()).unwrap();
    let tmpfs = Tmpfs::at(&s.host.root(), "size=16m,mode=0700");
    let bundle = Bundle::new("cat /marker");
    s.recorder("rec", &bundle, &[]);
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "rec"}));
    tmpfs.remount("ro");
    assert_refused(&s, &bundle, "state directory");
    assert_refused(&s, &bundle, "Read-only file system");
    assert!(!bundle.rootfs().join("marker").exists(), "the hook ran");
    // The same container starts, with its hook, once the directory is writable again.
    tmpfs.remount("rw");
    assert_eq!(ok(&s.run(&bundle, &unique("rw"))).trim(), "rec");
}

#[test]
fn a_state_dir_that_cannot_be_created_refuses_the_container() {
    let hooksd = tempfile::tempdir().unwrap();
    let readonly = Tmpfs::new("size=1m,mode=0755");
    readonly.remount("ro");
    let root = readonly.path().join("hookhost");
    let s = Setup::with_config(json!({"hooksDirs": [hooksd.path()], "root": root}));
    let doc = json!({"version": "1.0.0", "hook": {"path": "/bin/true"},
                     "when": {"always": true}, "stages": ["prestart"]});
    fs::write(hooksd.path().join("10-t.json"), doc.to_string()).unwrap();
    let bundle = Bundle::new("true");
    assert_refused(&s, &bundle, "cannot create it");
    // A missing root that can be created is: hooks.d hooks run and are recorded there.
    let s = Setup::with_config(json!({"hooksDirs": [hooksd.path()]}));
    assert!(!s.host.root().exists());
    ok(&s.run(&bundle, &unique("created")));
    let events = fs::read_to_string(s.host.root().join("events.jsonl")).unwrap();
    assert!(events.contains("\"hook\":\"10-t\""), "{events}");
}

/// A WASM hook keeps the grants and limits its administrator registered, whatever a container
/// appends to its selection: extras are arguments, and every other spelling is refused.
#[test]
fn a_container_cannot_raise_a_wasm_hooks_grants_or_limits() {
    let s = Setup::new();
    let files = tempfile::tempdir().unwrap();
    let (granted, secret) = (files.path().join("granted"), files.path().join("secret"));
    for (dir, text) in [(&granted, "granted"), (&secret, "s3cret")] {
        fs::create_dir(dir).unwrap();
        fs::write(dir.join("key.txt"), text).unwrap();
    }
    let probe = wat_module(files.path(), "fs");
    let grant = format!("{}:/data:ro", granted.display());
    s.host.ok(&[
        "create",
        "--type",
        "prestart",
        "--allow-dir",
        &grant,
        "probe",
        probe.to_str().unwrap(),
    ]);
    let spin = wat_module(files.path(), "spin");
    s.host.ok(&[
        "create",
        "--type",
        "prestart",
        "--fuel",
        "1000",
        "spin",
        spin.to_str().unwrap(),
    ]);
    let with_annotation = |selection: &str| {
        let bundle = Bundle::new("true");
        bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": selection}));
        bundle
    };

    // Reading through the registered grant works: extras are the guest's argv.
    ok(&s.run(
        &with_annotation(r#"probe:["read","key.txt"]"#),
        &unique("read"),
    ));
    let out = s.run(
        &with_annotation(r#"probe:["read","../secret/key.txt"]"#),
        &unique("up"),
    );
    assert!(!out.status.success(), "read outside its grant");
    // Writing through a read-only grant fails the hook, whatever the arguments say.
    let write = with_annotation(r#"probe:["write","key.txt"]"#);
    let out = s.run(&write, &unique("write"));
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert_eq!(
        fs::read_to_string(granted.join("key.txt")).unwrap(),
        "granted"
    );
    // Flags that look like grants or limits are only arguments: the fuel budget stays 1000.
    let out = s.run(
        &with_annotation(r#"spin:["--fuel","1000000000000","--timeout","3600"]"#),
        &unique("fuel"),
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("ran out of fuel (1000 units)"),
        "{}",
        text(&out.stderr)
    );
    // Spellings that try to pass options instead of arguments are refused outright.
    let secret_dir = format!("{}:/data:rw", secret.display());
    assert_refused(
        &s,
        &with_annotation(&format!("probe:--allow-dir={secret_dir}")),
        "must be a JSON list",
    );
    assert_refused(
        &s,
        &with_annotation(&format!(r#"probe:{{"allow-dir":"{secret_dir}"}}"#)),
        "must be a JSON list",
    );
    let spec = json!({"prestart": [{"path": probe, "args": ["fs", "read", "key.txt"]}]});
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hook-spec": spec.to_string()}));
    assert_refused(&s, &bundle, "allowInlineSpecs");
    assert_eq!(
        fs::read_to_string(secret.join("key.txt")).unwrap(),
        "s3cret"
    );
}

/// `runc restore` creates its container from the bundle and runs its creation hooks, so the
/// wrapper injects exactly as for `create`. This machine has no criu (Debian 12 ships it, but
/// .ci/run does not install it): runc then fails its CRIU version check after the wrapper
/// exec'd it. The test proves the injection happened before that exec, and that the error is
/// runc's, not hookhost's. With criu installed, the restore of a missing image fails in criu.
#[test]
fn restore_injects_global_hooks_before_running_the_runtime() {
    let s = Setup::new();
    let bundle = Bundle::new("true");
    s.recorder("always", &bundle, &["--when-always"]);
    let images = tempfile::tempdir().unwrap();
    let id = unique("restore");
    let out = s
        .runtime(&[
            "restore",
            "--image-path",
            images.path().to_str().unwrap(),
            "--bundle",
            bundle.path_str(),
            &id,
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let _ = s.runc.cmd(&["delete", "--force", &id]).output();
    let prestart = &bundle.config()["hooks"]["prestart"];
    assert_eq!(prestart.as_array().map(Vec::len), Some(1), "{prestart}");
    assert_eq!(prestart[0]["args"][1], "stage", "{prestart}");
    let plan = bundle.path().join(prestart[0]["args"][4].as_str().unwrap());
    let plan = fs::read_to_string(plan).unwrap();
    assert!(plan.contains(r#""Name":"always""#), "{plan}");
    let stderr = text(&out.stderr);
    if !out.status.success() {
        assert!(!stderr.contains("hookhost"), "hookhost failed: {stderr}");
        assert!(stderr.to_lowercase().contains("criu"), "{stderr}");
        let last = log_lines(&s.log()).pop().expect("runc's error line");
        assert!(
            !last["msg"].as_str().unwrap().contains("hookhost"),
            "{last}"
        );
    }
}

/// A restore that selects an unknown hook is refused by hookhost, as a create would be, and
/// runc never runs.
#[test]
fn restore_with_an_unknown_hook_is_refused() {
    let s = Setup::new();
    s.host.ok(&["ls"]);
    let bundle = Bundle::new("true");
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": "ghost"}));
    let images = tempfile::tempdir().unwrap();
    let call = [
        "restore",
        "--image-path",
        images.path().to_str().unwrap(),
        "-b",
        bundle.path_str(),
    ];
    assert_refused_call(
        &s,
        &call,
        &bundle,
        "annotation io.hookhost.hooks selects \"ghost\": no such hook: ghost",
    );
}

/// hooks.d files with a timeout out of 1..=3600 are invalid as every invalid hooks.d file is:
/// with `hooksDirsSkipInvalid` the container starts with the valid ones, and the --log warning
/// names the file, the value and the range.
#[test]
fn hooksd_timeouts_out_of_range_are_skipped_with_a_warning_naming_the_file() {
    let hooksd = tempfile::tempdir().unwrap();
    let s = Setup::with_config(json!({"hooksDirs": [hooksd.path()], "hooksDirsSkipInvalid": true}));
    let bundle = Bundle::new("cat /marker");
    let marker = bundle.rootfs().join("marker");
    let script = s
        .host
        .script("d.sh", &format!("echo \"$1\" >> {}", marker.display()));
    let bad = [
        ("10-u64max.json", "18446744073709551615"),
        ("20-i64max.json", "9223372036854775807"),
        ("30-zero.json", "0"),
    ];
    for (file, timeout) in bad.iter().copied().chain([("40-max.json", "3600")]) {
        let doc = format!(
            r#"{{"version": "1.0.0", "hook": {{"path": {path}, "args": ["d.sh", "{file}"],
                "timeout": {timeout}}}, "when": {{"always": true}}, "stages": ["prestart"]}}"#,
            path = json!(script),
        );
        fs::write(hooksd.path().join(file), doc).unwrap();
    }
    let out = ok(&s.run(&bundle, &unique("hooksd-timeout")));
    assert_eq!(out.trim(), "40-max.json", "only the valid file ran");
    let warnings: Vec<String> = log_lines(&s.log())
        .iter()
        .filter(|l| l["level"] == "warning")
        .map(|l| l["msg"].as_str().unwrap().to_string())
        .collect();
    for (file, timeout) in bad {
        let want = format!(
            "{}: invalid hooks.d timeout {timeout}: a hook timeout must be a whole number of \
             seconds from 1 to 3600",
            hooksd.path().join(file).display()
        );
        assert!(
            warnings.iter().any(|w| w.contains(&want)),
            "{want} not in {warnings:?}"
        );
    }
    // A hooks.d prestart file runs at createRuntime, as in containers/common.
    let entry = &bundle.config()["hooks"]["createRuntime"][0];
    assert_eq!(entry["timeout"], 3600 + 5);
}
