//! Precreate hooks (issue "Hooks that shape the container"): Podman's protocol (config.json on
//! stdin, the whole document on stdout, chained), edits limited by `--may-adjust`, conflicts,
//! through the runtime wrapper on real runc, `hookhost inject`, `hookhost try`, and Podman 4.3
//! with hooks.d files.

mod common;

use std::fs;

use common::engines::Setup;
use common::podman::Podman;
use common::{Bundle, Host, text, unique};
use serde_json::{Value, json};

/// A Podman-style native precreate hook, as people write them today: reads the config, adds
/// one variable, writes the whole document back (python's json keeps the key order).
fn add_env_script(host: &Host, name: &str, pair: &str) -> String {
    host.python_precreate(name, &format!("c[\"process\"][\"env\"].append(\"{pair}\")"))
}

/// Registers `program` as the precreate hook `name` granted `grants` (`--may-adjust`).
fn register(host: &Host, name: &str, grants: &str, program: &str) {
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        grants,
        name,
        program,
    ]);
}

fn select(bundle: &Bundle, hooks: &str) {
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": hooks}));
}

fn events(host: &Host) -> Vec<Value> {
    host.ok(&["events", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A granted edit reaches the container's process; fields hookhost does not know survive in
/// config.json, and the run is in the audit trail under the container's id.
#[test]
fn a_granted_native_precreate_hook_shapes_the_container_through_the_wrapper() {
    let s = Setup::new();
    let script = add_env_script(&s.host, "greet", "GREETING=hello from precreate");
    register(&s.host, "greet", "env=GREETING", &script);
    let inspect = s.host.ok(&["inspect", "greet"]);
    assert!(inspect.contains("\"MayAdjust\": [\n"), "{inspect}");
    assert!(inspect.contains("\"env=GREETING\""), "{inspect}");
    let bundle = Bundle::new("echo \"$GREETING\"");
    select(&bundle, "greet");
    bundle.edit(|c| c["x-vendor"] = json!({"keep": [1, 2]}));
    let id = unique("pre");
    let out = s.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from precreate\n");
    let config = bundle.config();
    assert_eq!(config["x-vendor"], json!({"keep": [1, 2]}));
    let keys: Vec<&String> = config.as_object().unwrap().keys().collect();
    assert_eq!(keys.last().map(|k| k.as_str()), Some("x-vendor"));
    let run = events(&s.host);
    assert_eq!(run.len(), 1, "{run:?}");
    assert_eq!(run[0]["stage"], "precreate");
    assert_eq!(run[0]["container"], id.as_str());
}

/// Without the grant the container is refused before anything is created: the message names
/// the hook and the field, the command never runs, config.json is left as it was.
#[test]
fn edits_outside_the_grants_refuse_the_container() {
    let s = Setup::new();
    let mount = s.host.python_precreate(
        "mounter",
        "c[\"mounts\"].append({\"destination\": \"/opt/gpu\", \"type\": \"bind\", \
         \"source\": \"/tmp\", \"options\": [\"rbind\", \"ro\"]})",
    );
    register(&s.host, "mounter", "env=GPU_*", &mount);
    let args = s.host.python_precreate(
        "argser",
        "c[\"process\"][\"args\"] = [\"sh\", \"-c\", \"echo evil\"]",
    );
    register(&s.host, "argser", "env", &args);
    let policy = s
        .host
        .python_precreate("policy", "c[\"hostname\"] = \"changed\"");
    s.host
        .ok(&["create", "--type", "precreate", "policy", &policy]);
    let cases = [
        (
            "mounter",
            "added mounts /opt/gpu",
            "needs --may-adjust mounts=/opt/gpu",
        ),
        (
            "argser",
            "changed args (process.args)",
            "needs --may-adjust args",
        ),
        (
            "policy",
            "changed /hostname",
            "registered without --may-adjust",
        ),
    ];
    for (hook, what, hint) in cases {
        let bundle = Bundle::new("echo ran");
        select(&bundle, hook);
        let before = fs::read(bundle.config_file()).unwrap();
        let out = s.run(&bundle, &unique("deny"));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{hook}: {}", text(&out.stdout));
        assert!(!text(&out.stdout).contains("ran"), "{hook}");
        assert!(err.contains(&format!("hook {hook} (precreate)")), "{err}");
        assert!(err.contains(what), "{err}");
        assert!(err.contains(hint), "{err}");
        assert_eq!(fs::read(bundle.config_file()).unwrap(), before, "{hook}");
    }
}

/// Two hooks setting the same variable differently: refused, naming both, unless the later
/// one may adjust `all`.
#[test]
fn conflicting_precreate_hooks_refuse_the_container_naming_both() {
    let s = Setup::new();
    let first = add_env_script(&s.host, "first", "GPU_VISIBLE=0");
    let second = s.host.python_precreate(
        "second",
        "c[\"process\"][\"env\"] = [e for e in c[\"process\"][\"env\"] if not \
         e.startswith(\"GPU_VISIBLE=\")] + [\"GPU_VISIBLE=1\"]",
    );
    for (name, path) in [("first", &first), ("second", &second)] {
        register(&s.host, name, "env=GPU_*", path);
    }
    register(&s.host, "override", "all", &second);
    let bundle = Bundle::new("echo \"$GPU_VISIBLE\"");
    select(&bundle, "first,second");
    let out = s.run(&bundle, &unique("conflict"));
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("hook second (precreate)"), "{err}");
    assert!(
        err.contains("changed env GPU_VISIBLE, which precreate hook first set"),
        "{err}"
    );
    let bundle = Bundle::new("echo \"$GPU_VISIBLE\"");
    select(&bundle, "first,override");
    let out = s.run(&bundle, &unique("override"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1\n");
}

/// A precreate hook granted `annotations=io.hookhost.hooks` selects a further hook: the other
/// stages are selected from the config it returned.
#[test]
fn a_precreate_edit_can_select_further_hooks() {
    let s = Setup::new();
    let marker = Bundle::new("cat /marker");
    let selector = s.host.python_precreate(
        "selector",
        "c[\"annotations\"][\"io.hookhost.hooks\"] += \",late\"",
    );
    register(&s.host, "selector", "annotations=io.hookhost.*", &selector);
    s.recorder("late", &marker, &["--type", "createRuntime"]);
    select(&marker, "selector");
    let out = s.run(&marker, &unique("chain"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "late \n");
}

/// The Podman-style script works unchanged from a hooks.d directory the wrapper reads (such
/// a file may change anything, as under Podman) and, the same file, under Podman itself.
#[test]
fn an_existing_podman_precreate_hook_works_unchanged_through_the_wrapper_and_podman() {
    let dir = tempfile::tempdir().unwrap();
    let hooks = dir.path().join("hooks.d");
    fs::create_dir(&hooks).unwrap();
    let host = Host::new();
    let script = add_env_script(&host, "podman-style", "FROM_HOOKSD=1");
    let file = json!({"version": "1.0.0", "hook": {"path": script},
                      "when": {"always": true}, "stages": ["precreate"]});
    fs::write(hooks.join("add-env.json"), file.to_string()).unwrap();
    let s = Setup::with_config(json!({"hooksDirs": [hooks]}));
    let bundle = Bundle::new("echo \"FROM_HOOKSD=$FROM_HOOKSD\"");
    let out = s.run(&bundle, &unique("hooksd"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "FROM_HOOKSD=1\n");

    let podman = Podman::new();
    let hooks_dir = hooks.to_str().unwrap();
    let (out, _) = podman.run(
        &["--runtime", "runc", "--hooks-dir", hooks_dir],
        &[],
        &["sh", "-c", "echo \"FROM_HOOKSD=$FROM_HOOKSD\""],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "FROM_HOOKSD=1\n");

    // Imported, it keeps what it could do under Podman.
    host.ok(&["import", "hooks.d", hooks_dir]);
    let inspect = host.ok(&["inspect", "add-env"]);
    assert!(inspect.contains("\"all\""), "{inspect}");
}

/// `hookhost export hooks.d` writes a registered precreate hook as a file Podman runs itself,
/// calling `hookhost stage precreate` with Podman's protocol: the granted edits (of a native
/// hook, and of the WASM gpu-env) reach the container, an ungranted one refuses `podman run` (the reason is in the audit trail).
#[test]
fn exported_precreate_hooks_and_their_grants_work_under_podman() {
    let podman = Podman::new();
    let host = Host::new();
    let granted = add_env_script(&host, "granted", "EXPORTED=yes");
    let denied = add_env_script(&host, "denied", "LD_PRELOAD=/evil.so");
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "env=EXPORTED",
        "--when-annotation",
        "pick=granted",
        "granted",
        &granted,
    ]);
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "env=GPU_*",
        "--when-annotation",
        "pick=denied",
        "denied",
        &denied,
    ]);
    let driver = tempfile::tempdir().unwrap();
    let gpu_grants = "env=GPU_*,mounts=/opt/gpu/**:from={driver}/**,devices=/dev/gpu*";
    host.gpu_env(
        "gpu-env",
        gpu_grants,
        driver.path(),
        &["--when-annotation", "pick=gpu"],
    );
    let dir = tempfile::tempdir().unwrap();
    let hooks_dir = dir.path().to_str().unwrap();
    host.ok(&["export", "hooks.d", hooks_dir]);
    let exported: Value =
        serde_json::from_slice(&fs::read(dir.path().join("granted.json")).unwrap()).unwrap();
    assert_eq!(exported["stages"], json!(["precreate"]));
    assert_eq!(exported["hook"]["args"][2], "precreate");

    let global = ["--runtime", "runc", "--hooks-dir", hooks_dir];
    let (out, _) = podman.run(
        &global,
        &["--annotation", "pick=granted"],
        &["sh", "-c", "echo \"EXPORTED=$EXPORTED\""],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "EXPORTED=yes\n");
    // The WASM hook, its grants checked by `hookhost stage precreate` with no wrapper.
    let (out, _) = podman.run(
        &global,
        &["--annotation", "pick=gpu"],
        &["sh", "-c", common::GPU_PROBE],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), common::GPU_PROBE_SAYS);
    let (out, _) = podman.run(
        &global,
        &["--annotation", "pick=denied"],
        &["sh", "-c", "echo ran"],
    );
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("ran"));
    // Podman 4.3 discards a precreate hook's stderr: it names the call, the audit trail the
    // reason.
    assert!(err.contains("hookhost stage precreate"), "{err}");
    let refusal = events(&host)
        .into_iter()
        .find(|e| e["hook"] == "denied")
        .expect("the refusal is in the audit trail");
    assert_eq!(refusal["failure"], "adjust", "{refusal}");
    let reason = refusal["error"].as_str().unwrap();
    assert!(reason.contains("added env LD_PRELOAD"), "{reason}");
    assert!(reason.contains("--may-adjust env=GPU_*"), "{reason}");
}

/// `hookhost inject` runs the precreate hooks into config.json and says what they changed;
/// `hookhost try` shows the diff a precreate hook makes on a sample config, or its refusal.
#[test]
fn inject_and_try_show_what_a_precreate_hook_changed() {
    let host = Host::new();
    let script = add_env_script(&host, "gpu", "GPU_VISIBLE=0");
    register(&host, "gpu", "env=GPU_*", &script);
    let bundle = Bundle::new("true");
    let out = host.inject(&bundle, &["gpu"]);
    assert!(out.contains("precreate: gpu"), "{out}");
    assert!(out.contains("gpu added env GPU_VISIBLE"), "{out}");
    let env = bundle.config()["process"]["env"].clone();
    assert!(
        env.as_array().unwrap().contains(&json!("GPU_VISIBLE=0")),
        "{env}"
    );

    let tried = host.ok(&["try", "gpu"]);
    assert!(tried.contains("--- changes"), "{tried}");
    assert!(
        tried.contains(r#"+ env GPU_VISIBLE: "GPU_VISIBLE=0""#),
        "{tried}"
    );
    assert!(tried.contains("accepted"), "{tried}");
    let strict = add_env_script(&host, "strict", "PATH=/evil");
    host.ok(&["create", "--type", "precreate", "strict", &strict]);
    let err = host.fails(&["try", "strict"]);
    assert!(err.contains("hook strict (precreate)"), "{err}");
    assert!(err.contains("without --may-adjust"), "{err}");
}

/// `--may-adjust` is checked at registration.
#[test]
fn bad_may_adjust_values_are_refused_at_create() {
    let host = Host::new();
    let err = host.fails(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "environment",
        "x",
        "/bin/cat",
    ]);
    assert!(
        err.contains("unknown --may-adjust area \"environment\""),
        "{err}"
    );
    let err = host.fails(&["create", "--may-adjust", "env", "x", "/bin/cat"]);
    assert!(
        err.contains("--may-adjust applies to precreate hooks only"),
        "{err}"
    );
    let err = host.fails(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "args=x",
        "x",
        "/bin/cat",
    ]);
    assert!(err.contains("args takes no pattern"), "{err}");
    host.fails(&["inspect", "x"]);
}

/// gpu-env, a WASM hook on the guest SDK's precreate API, granted exactly what a GPU runtime
/// adds: the container's command sees the variables, the device node and the read-only
/// mount. Registered without the mount grant it refuses the container, naming `mounts`.
#[test]
fn a_wasm_precreate_hook_gives_a_container_a_gpu_within_its_grants() {
    let s = Setup::new();
    let driver = tempfile::tempdir().unwrap();
    s.host.gpu_env(
        "gpu-env",
        "env=GPU_*,mounts=/opt/gpu/**:from={driver}/**,devices=/dev/gpu*",
        driver.path(),
        &[],
    );
    s.host.gpu_env(
        "gpu-nomount",
        "env=GPU_*,devices=/dev/gpu*",
        driver.path(),
        &[],
    );
    let bundle = Bundle::new(common::GPU_PROBE);
    select(&bundle, "gpu-env");
    let out = s.run(&bundle, &unique("gpu"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), common::GPU_PROBE_SAYS);
    let bundle = Bundle::new(common::GPU_PROBE);
    select(&bundle, "gpu-nomount");
    let out = s.run(&bundle, &unique("nogpu"));
    let err = text(&out.stderr);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(err.contains("hook gpu-nomount (precreate)"), "{err}");
    assert!(err.contains("added mounts /opt/gpu"), "{err}");
    assert!(err.contains("needs --may-adjust mounts=/opt/gpu"), "{err}");
}

/// deny-privileged at precreate refuses a privileged container before anything is created
/// (the WASM hook reads the proposed config on stdin) and lets a plain one through unchanged.
#[test]
fn deny_privileged_refuses_before_anything_is_created() {
    let s = Setup::new();
    let module = common::example_wasm("deny-privileged");
    s.host.ok(&[
        "create",
        "--type",
        "precreate",
        "deny",
        module.to_str().unwrap(),
    ]);
    let plain = Bundle::new("echo plain ran");
    plain.edit(|c| {
        c["root"]["readonly"] = true.into();
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    select(&plain, "deny");
    let out = s.run(&plain, &unique("plain"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "plain ran\n");
    let privileged = Bundle::new("echo privileged ran");
    privileged.edit(|c| {
        c["process"]["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
    });
    select(&privileged, "deny");
    let id = unique("priv");
    let out = s.run(&privileged, &id);
    let err = text(&out.stderr);
    assert!(!out.status.success());
    assert!(!text(&out.stdout).contains("ran"));
    assert!(err.contains("hook deny (precreate)"), "{err}");
    assert!(err.contains("CAP_SYS_ADMIN"), "{err}");
    // Refused before the runtime was called: runc never heard of the container.
    let state = s.runc.cmd(&["state", &id]).output().unwrap();
    assert!(!state.status.success());
}

/// `inspect` output applied elsewhere registers the same grants; a bad grant in an apply file
/// is refused with the reason.
#[test]
fn apply_keeps_precreate_grants() {
    let host = Host::new();
    let script = add_env_script(&host, "greet", "GREETING=hi");
    register(&host, "greet", "env=GREETING", &script);
    let shown = host.ok(&["inspect", "greet"]);
    let other = Host::new();
    let file = other.dir.path().join("hooks.json");
    fs::write(&file, &shown).unwrap();
    other.ok(&["apply", "-f", file.to_str().unwrap()]);
    let applied: Value = serde_json::from_str(&other.ok(&["inspect", "greet"])).unwrap();
    assert_eq!(
        applied[0]["MayAdjust"],
        json!(["env=GREETING"]),
        "{applied}"
    );
    fs::write(&file, shown.replace("env=GREETING", "envv=GREETING")).unwrap();
    let err = other.fails(&["apply", "-f", file.to_str().unwrap()]);
    assert!(err.contains("unknown --may-adjust area \"envv\""), "{err}");
}

/// A precreate hook selected only by another precreate hook's edit does not run, and the
/// warning says why, in one readable sentence.
#[test]
fn a_precreate_hook_selected_by_an_edit_does_not_run_and_says_so() {
    let host = Host::new();
    let selector = host.python_precreate(
        "selector",
        "c[\"annotations\"][\"io.hookhost.hooks\"] = \"late\"",
    );
    register(&host, "selector", "annotations=io.hookhost.*", &selector);
    let late = add_env_script(&host, "late", "LATE=1");
    register(&host, "late", "env=LATE", &late);
    let bundle = Bundle::new("true");
    select(&bundle, "selector");
    let out = host.run(&["inject", "--bundle", bundle.path_str()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "Warning: precreate hook late was selected by a precreate hook's edit and did not \
             run: precreate hooks are selected from the config as proposed\n"
        ),
        "{}",
        text(&out.stderr)
    );
    let env = bundle.config()["process"]["env"].to_string();
    assert!(!env.contains("LATE"), "{env}");
}

/// `try` of a precreate hook that refuses: its stderr is shown once, and the config it was
/// given is not echoed back as output.
#[test]
fn try_shows_a_refusing_precreate_hooks_reason_once() {
    let host = Host::new();
    let deny = host.script(
        "deny.sh",
        "cat >/dev/null; echo 'no GPUs today' >&2; exit 3",
    );
    register(&host, "deny", "env", deny.to_str().unwrap());
    let out = host.run(&["try", "deny"]);
    assert!(!out.status.success());
    let shown = text(&out.stdout);
    assert_eq!(shown.matches("no GPUs today").count(), 1, "{shown}");
    assert!(shown.contains("exit status 3"), "{shown}");
}
