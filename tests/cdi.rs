//! CDI devices (issue "Devices the ecosystem's way: CDI"): a precreate hook granted
//! `--may-adjust cdi=example.com/gpu=*` requests a device of a fake vendor's spec, hookhost
//! resolves it through the runtime wrapper on plain runc — and the engines that resolve CDI
//! themselves are the reference: the CDI-derived parts of the config.json Podman 4.3 and 5.8
//! and Docker 28 hand their runtime for `--device example.com/gpu=0` must be what hookhost
//! makes. Under Podman's hooks.d export hookhost resolves a hook's request itself (Podman does
//! not), under Podman 4.3 and 5.8.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use common::engines::{Dockerd, Engines, Setup, Wrapper};
use common::forky::Stack;
use common::podman::Podman;
use common::{Bundle, Host, text, unique};
use serde_json::{Value, json};

/// The fake vendor: a spec directory whose device `example.com/gpu=0` has two device nodes
/// (the host's null and zero devices under other paths), env, a read-only bind mount of a
/// host directory holding libgpu.so, a createContainer hook appending to a marker file and,
/// from CDI 0.7.0 on, additional groups.
struct Vendor {
    dir: tempfile::TempDir,
}

const GIDS: [u32; 2] = [44, 4242];

impl Vendor {
    /// `gids`: the spec is CDI 0.7.0 with additionalGids (Podman 4.3's CDI library knows only
    /// versions up to 0.5.0, so its spec has none).
    fn new(gids: bool) -> Vendor {
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let driver = dir.path().join("driver");
        fs::create_dir(&driver).unwrap();
        fs::write(driver.join("libgpu.so"), "driver\n").unwrap();
        let hook = dir.path().join("cdi-hook.sh");
        fs::write(&hook, "#!/bin/sh\necho \"cdi-hook $1\" >> \"$2\"\n").unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        let specs = dir.path().join("cdi");
        fs::create_dir(&specs).unwrap();
        let vendor = Vendor { dir };
        let mut edits = json!({
            "env": ["GPU_VISIBLE=0", "GPU_DRIVER_CAPABILITIES=compute,utility"],
            "deviceNodes": [
                {"path": "/dev/gpu0", "hostPath": "/dev/null"},
                {"path": "/dev/gpu-ctl", "hostPath": "/dev/zero", "permissions": "rw"}
            ],
            "mounts": [{
                "hostPath": driver,
                "containerPath": "/opt/gpu",
                "options": ["ro", "nosuid", "nodev", "bind"]
            }],
            "hooks": [{
                "hookName": "createContainer",
                "path": hook,
                "args": ["cdi-hook.sh", "gpu0", vendor.marker()]
            }]
        });
        if gids {
            edits["additionalGids"] = json!(GIDS);
        }
        let spec = json!({
            "cdiVersion": if gids { "0.7.0" } else { "0.5.0" },
            "kind": "example.com/gpu",
            "devices": [{"name": "0", "containerEdits": edits}]
        });
        vendor.write("example.json", &spec);
        vendor
    }

    fn specs(&self) -> PathBuf {
        self.dir.path().join("cdi")
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("hook-marker")
    }

    fn write(&self, name: &str, spec: &Value) -> PathBuf {
        let file = self.specs().join(name);
        fs::write(&file, serde_json::to_string_pretty(spec).unwrap()).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        file
    }

    fn spec(&self) -> Value {
        serde_json::from_slice(&fs::read(self.specs().join("example.json")).unwrap()).unwrap()
    }
}

/// The wrapper reading the vendor's specs, and a precreate hook `name` granted `grant` that
/// asks for `devices` with the standard annotation key, as a native hook would (the SDK's
/// `add_cdi_device` writes `cdi.k8s.io/hookhost`).
fn with_requester(vendor: &Vendor, name: &str, grant: &str, devices: &str) -> Setup {
    let s = Setup::with_config(json!({"cdiSpecDirs": [vendor.specs()]}));
    requester(&s.host, name, grant, devices);
    s
}

/// [`with_requester`]: `gpu-picker`, granted `cdi=example.com/gpu=*`, asks for
/// `example.com/gpu=0`.
fn gpu_picker(vendor: &Vendor) -> Setup {
    with_requester(
        vendor,
        "gpu-picker",
        "cdi=example.com/gpu=*",
        "example.com/gpu=0",
    )
}

/// Registers a precreate hook `name` granted `grant` that asks for `devices`.
fn requester(host: &Host, name: &str, grant: &str, devices: &str) {
    host.cdi_requester(name, grant, devices, &[]);
}

fn select(bundle: &Bundle, hooks: &str) {
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": hooks}));
}

/// What the device brought to a config: the parts the CDI spec names, by its own keys.
fn cdi_parts(config: &Value, spec: &Value) -> Value {
    let edits = &spec["devices"][0]["containerEdits"];
    let strs = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect()
    };
    let names: Vec<String> = strs(&edits["env"])
        .iter()
        .map(|e| e.split_once('=').unwrap().0.to_string())
        .collect();
    let env: Vec<String> = strs(&config["process"]["env"])
        .into_iter()
        .filter(|e| {
            names
                .iter()
                .any(|n| e.split_once('=').is_some_and(|(k, _)| k == n))
        })
        .collect();
    let node_paths: Vec<&Value> = edits["deviceNodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["path"])
        .collect();
    let devices: Vec<&Value> = (config["linux"]["devices"].as_array().into_iter().flatten())
        .filter(|d| node_paths.contains(&&d["path"]))
        .collect();
    // The rule that decides each node's access: the last for its numbers (engines put their
    // default rules, which may name the same numbers, before the CDI ones).
    let rules: Vec<&Value> = (devices.iter())
        .filter_map(|d| {
            (config["linux"]["resources"]["devices"]
                .as_array()
                .into_iter()
                .flatten())
            .rfind(|r| r["major"] == d["major"] && r["minor"] == d["minor"])
        })
        .collect();
    let destinations: Vec<&Value> = (edits["mounts"].as_array().unwrap().iter())
        .map(|m| &m["containerPath"])
        .collect();
    let mounts: Vec<&Value> = (config["mounts"].as_array().into_iter().flatten())
        .filter(|m| destinations.contains(&&m["destination"]))
        .collect();
    let hook_path = &edits["hooks"][0]["path"];
    let hooks: Vec<&Value> = (config["hooks"]["createContainer"]
        .as_array()
        .into_iter()
        .flatten())
    .filter(|h| &h["path"] == hook_path)
    .collect();
    let gids: Vec<&Value> = (config["process"]["user"]["additionalGids"]
        .as_array()
        .into_iter()
        .flatten())
    .filter(|g| {
        edits["additionalGids"]
            .as_array()
            .is_some_and(|s| s.contains(g))
    })
    .collect();
    json!({"env": env, "devices": devices, "rules": rules, "mounts": mounts, "hooks": hooks, "gids": gids})
}

/// hookhost through the wrapper on runc: the config.json it leaves in the bundle after a
/// container that requested the device through a granted precreate hook ran.
fn through_hookhost(vendor: &Vendor, script: &str) -> (Value, String) {
    let s = gpu_picker(vendor);
    let bundle = Bundle::new(script);
    select(&bundle, "gpu-picker");
    let out = s.run(&bundle, &unique("cdi"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    (bundle.config(), text(&out.stdout))
}

/// The container sees the device nodes, the env and the read-only mount; the spec's hook ran;
/// the audit trail says which hook asked for which device and what it brought; unknown keys of
/// config.json survive.
#[test]
fn a_granted_precreate_hook_gives_a_runc_container_a_cdi_device() {
    let vendor = Vendor::new(true);
    let s = gpu_picker(&vendor);
    let bundle = Bundle::new(
        "echo \"$GPU_VISIBLE $GPU_DRIVER_CAPABILITIES\"; cat /opt/gpu/libgpu.so; \
         test -c /dev/gpu0 && echo char-device; test -c /dev/gpu-ctl && echo ctl; \
         touch /opt/gpu/x 2>/dev/null && echo writable || echo read-only; id -G",
    );
    select(&bundle, "gpu-picker");
    bundle.edit(|c| c["x-vendor"] = json!({"keep": [1, 2]}));
    let id = unique("cdi");
    let out = s.run(&bundle, &id);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "0 compute,utility\ndriver\nchar-device\nctl\nread-only\n0 44 4242\n"
    );
    assert_eq!(
        fs::read_to_string(vendor.marker()).unwrap(),
        "cdi-hook gpu0\n"
    );
    let config = bundle.config();
    assert_eq!(config["x-vendor"], json!({"keep": [1, 2]}));
    let events: Vec<Value> = s
        .host
        .ok(&["events", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let cdi: Vec<&Value> = events.iter().filter(|e| e.get("cdi").is_some()).collect();
    assert_eq!(cdi.len(), 1, "{events:?}");
    assert_eq!(cdi[0]["hook"], "gpu-picker");
    assert_eq!(cdi[0]["container"], id.as_str());
    assert_eq!(cdi[0]["cdi"]["device"], "example.com/gpu=0");
    assert_eq!(
        cdi[0]["cdi"]["spec"],
        vendor.specs().join("example.json").to_str().unwrap()
    );
    let edits: Vec<&str> = cdi[0]["cdi"]["edits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(edits.contains(&"env GPU_VISIBLE=0"), "{edits:?}");
    assert!(
        edits.contains(&"device /dev/gpu0 c 1:3 allow \"rwm\""),
        "{edits:?}"
    );
    assert!(edits.contains(&"additionalGid 4242"), "{edits:?}");
    let text_view = s.host.ok(&["events"]);
    assert!(text_view.contains("cdi=example.com/gpu=0"), "{text_view}");
}

/// Out of the grant, the container is refused naming the hook and the grant it needs; a
/// device the spec files do not define, and one the container's own annotation asks for
/// (resolved too), likewise name the device.
#[test]
fn requests_outside_the_grant_or_the_specs_refuse_the_container() {
    let vendor = Vendor::new(true);
    let s = with_requester(
        &vendor,
        "nic-picker",
        "cdi=example.com/gpu=*",
        "example.com/nic=0",
    );
    let bundle = Bundle::new("echo started");
    select(&bundle, "nic-picker");
    let out = s.run(&bundle, &unique("cdi"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("nic-picker")
            && err.contains("added cdi device example.com/nic=0")
            && err.contains("--may-adjust cdi=example.com/nic=0"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("started"));

    requester(&s.host, "gpu9", "cdi", "example.com/gpu=9");
    select(&bundle, "gpu9");
    let out = s.run(&bundle, &unique("cdi"));
    let err = text(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("unknown CDI device example.com/gpu=9 (annotation cdi.k8s.io/gpu9)"),
        "{err}"
    );

    // The container's own request, with no hook at all: resolved, and refused when unknown.
    let own = Bundle::new("echo $GPU_VISIBLE");
    own.edit(|c| c["annotations"] = json!({"cdi.k8s.io/ctr": "example.com/gpu=0"}));
    let out = s.run(&own, &unique("cdi"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\n");
    own.edit(|c| c["annotations"] = json!({"cdi.k8s.io/ctr": "gpu0"}));
    let out = s.run(&own, &unique("cdi"));
    let err = text(&out.stderr);
    assert!(
        !out.status.success() && err.contains("invalid CDI device name \"gpu0\""),
        "{err}"
    );
}

/// `hookhost cdi list` with the wrapper's config file.
fn cdi_list(s: &Setup) -> std::process::Output {
    let mut cmd = s.host.cmd();
    cmd.env("HOOKHOST_CONFIG", s.wrapper.config());
    cmd.args(["cdi", "list"]).output().unwrap()
}

/// Bad spec files refuse every container that asks for a CDI device, naming the file and the
/// problem (the CDI specification's rules: versions, names, conflicting devices, edits), and
/// `hookhost cdi list` flags them.
#[test]
fn bad_specs_are_refused_with_clear_errors() {
    let vendor = Vendor::new(true);
    let s = Setup::with_config(json!({"cdiSpecDirs": [vendor.specs()]}));
    let list = cdi_list(&s);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let listed = text(&list.stdout);
    assert!(
        listed.contains("example.com/gpu=0") && listed.contains("example.json"),
        "{listed}"
    );
    let node = json!({"deviceNodes": [{"path": "/dev/null"}]});
    let cases = [
        (
            json!({"cdiVersion": "9.9.9", "kind": "example.com/other", "devices": [{"name": "a", "containerEdits": node}]}),
            "invalid cdiVersion \"9.9.9\"",
        ),
        (
            json!({"cdiVersion": "0.6.0", "kind": "example.com/other", "devices": [{"name": "a", "containerEdits": {"additionalGids": [5]}}]}),
            "additionalGids needs at least 0.7.0",
        ),
        (
            json!({"cdiVersion": "0.6.0", "kind": "example/other", "devices": [{"name": "-a", "containerEdits": node}]}),
            "invalid device name",
        ),
        (
            json!({"cdiVersion": "0.6.0", "kind": "other", "devices": [{"name": "a", "containerEdits": node}]}),
            "must be vendor/class",
        ),
        (
            json!({"cdiVersion": "0.6.0", "kind": "example.com/gpu", "devices": [{"name": "0", "containerEdits": node}]}),
            "device example.com/gpu=0 is also defined by",
        ),
        (
            json!({"cdiVersion": "0.6.0", "kind": "example.com/other", "devices": [{"name": "a", "containerEdits": {"hooks": [{"hookName": "later", "path": "/x"}]}}]}),
            "invalid hook name \"later\"",
        ),
    ];
    let bundle = Bundle::new("echo started");
    bundle.edit(|c| c["annotations"] = json!({"cdi.k8s.io/ctr": "example.com/gpu=0"}));
    for (spec, why) in cases {
        let file = vendor.write("zz-bad.json", &spec);
        let out = s.run(&bundle, &unique("bad"));
        let err = text(&out.stderr);
        assert!(
            !out.status.success() && err.contains(file.to_str().unwrap()) && err.contains(why),
            "{spec}: {err}"
        );
        let list = cdi_list(&s);
        assert!(!list.status.success());
        assert!(text(&list.stderr).contains(why), "{}", text(&list.stderr));
    }
    // A spec file others may write is refused like a hooks.d file.
    let file = vendor.write("zz-bad.json", &json!({"cdiVersion": "0.6.0", "kind": "example.com/other", "devices": [{"name": "a", "containerEdits": node}]}));
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let out = s.run(&bundle, &unique("bad"));
    let err = text(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod go-w"), "{err}");
    fs::remove_file(&file).unwrap();
    let out = s.run(&bundle, &unique("good"));
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Writes the spec into Podman 4.3's own spec directory (it has no setting for another) for
/// the life of the value.
struct InVarRunCdi(PathBuf);

impl InVarRunCdi {
    fn new(spec: &Value) -> InVarRunCdi {
        let dir = Path::new("/var/run/cdi");
        fs::create_dir_all(dir).unwrap();
        let file = dir.join(format!("{}.json", unique("hookhost-test")));
        fs::write(&file, spec.to_string()).unwrap();
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
        InVarRunCdi(file)
    }
}

impl Drop for InVarRunCdi {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// A runtime that saves the config.json of each bundle it creates to `saved`, then runs runc.
fn recording_runtime(dir: &Path, saved: &Path) -> PathBuf {
    let script = dir.join("recording-runtime");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprev=\nfor a in \"$@\"; do\n  if [ \"$prev\" = --bundle ] || [ \"$prev\" = -b ]; then cp \"$a/config.json\" {saved}; fi\n  prev=\"$a\"\ndone\nexec runc \"$@\"\n",
            saved = saved.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Podman 4.3 `--device example.com/gpu=0` (its own CDI resolution) and hookhost make the same
/// CDI-derived config.json parts.
#[test]
fn podman_and_hookhost_apply_a_cdi_device_alike() {
    let vendor = Vendor::new(false);
    let _installed = InVarRunCdi::new(&vendor.spec());
    podman_device_alike(&vendor, &Podman::new(), &[]);
}

/// `podman GLOBAL… --runtime (recording) run --device example.com/gpu=0`: the container sees
/// the env and the mount, and the config.json Podman handed the runtime is alike hookhost's
/// ([`alike_hookhost`]).
fn podman_device_alike(vendor: &Vendor, podman: &Podman, global: &[&str]) {
    let saved = podman.dir.path().join("podman-config.json");
    let runtime = recording_runtime(podman.dir.path(), &saved);
    let global = [&["--runtime", runtime.to_str().unwrap()], global].concat();
    let (out, _) = podman.run(
        &global,
        &["--device", "example.com/gpu=0"],
        &["sh", "-c", "echo $GPU_VISIBLE; cat /opt/gpu/libgpu.so"],
    );
    assert!(out.status.success(), "podman: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\ndriver\n");
    alike_hookhost(vendor, &saved);
}

/// The config.json a recording runtime saved at `saved` has the CDI-derived parts hookhost
/// makes through the wrapper for the vendor's device.
fn alike_hookhost(vendor: &Vendor, saved: &Path) {
    let engine: Value = serde_json::from_slice(&fs::read(saved).unwrap()).unwrap();
    let (ours, _) = through_hookhost(vendor, "true");
    let spec = vendor.spec();
    assert_eq!(cdi_parts(&ours, &spec), cdi_parts(&engine, &spec));
}

/// Podman 5.8 (forky) `--device example.com/gpu=0`, the vendor's directory its
/// `--cdi-spec-dir`, and hookhost make the same CDI-derived config.json parts, additional
/// groups included (its CDI library reads CDI 0.7.0).
#[test]
fn podman_5_and_hookhost_apply_a_cdi_device_alike() {
    let vendor = Vendor::new(true);
    let specs = vendor.specs();
    let dir = ["--cdi-spec-dir", specs.to_str().unwrap()];
    podman_device_alike(&vendor, &Podman::on(Stack::Forky), &dir);
}

/// One dockerd of this file at a time.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

/// Docker 28 (CDI on) `--device example.com/gpu=0` and hookhost make the same CDI-derived
/// config.json parts, additional groups included.
#[test]
fn docker_28_and_hookhost_apply_a_cdi_device_alike() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let vendor = Vendor::new(true);
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("docker-config.json");
    let runtime = recording_runtime(dir.path(), &saved);
    let daemon_json = dir.path().join("daemon.json");
    let settings = json!({
        "features": {"cdi": true},
        "cdi-spec-dirs": [vendor.specs()],
        "runtimes": {"recording": {"path": runtime}},
    });
    fs::write(&daemon_json, settings.to_string()).unwrap();
    let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
    let daemon = Dockerd::start(
        Engines::Today,
        tempfile::tempdir().unwrap(),
        &daemon_json,
        &wrapper.config(),
        &["--bridge=none"],
    );
    let tar = common::engines::busybox_tar(daemon.dir.path());
    let import = daemon
        .docker(&["import", tar.to_str().unwrap(), "busybox"])
        .output()
        .unwrap();
    assert!(import.status.success(), "{}", text(&import.stderr));
    let out = daemon
        .docker(&[
            "run",
            "--rm",
            "--runtime",
            "recording",
            "--network",
            "none",
            "--device",
            "example.com/gpu=0",
            "busybox",
            "sh",
            "-c",
            "echo $GPU_VISIBLE; cat /opt/gpu/libgpu.so",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "docker: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "0\ndriver\n");
    let docker_config: Value = serde_json::from_slice(&fs::read(&saved).unwrap()).unwrap();
    let (ours, _) = through_hookhost(&vendor, "true");
    let spec = vendor.spec();
    let (mut ours, mut docker) = (cdi_parts(&ours, &spec), cdi_parts(&docker_config, &spec));
    // The one difference (README, "CDI devices"): Docker 28 sets process.user after applying
    // the CDI edits, which drops the spec's additional groups; hookhost keeps them, as the CDI
    // specification says and Podman does.
    assert_eq!(ours["gids"], json!(GIDS));
    assert_eq!(
        docker["gids"],
        json!([]),
        "Docker 28 now keeps CDI additionalGids: drop this difference from the README ({})",
        docker_config["process"]["user"]
    );
    ours["gids"] = Value::Null;
    docker["gids"] = Value::Null;
    assert_eq!(ours, docker);
}

/// Docker 20.10 knows nothing of CDI: through the wrapper, a precreate hook selected with
/// HOOKHOST_HOOKS gives its container the device, and the CDI-derived parts of the config.json
/// the runtime gets are those of plain runc's.
#[test]
fn docker_20_10_gets_a_cdi_device_through_the_wrapper() {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let vendor = Vendor::new(true);
    let host = Host::new();
    requester(
        &host,
        "gpu-picker",
        "cdi=example.com/gpu=*",
        "example.com/gpu=0",
    );
    let (daemon, wrapper) = Dockerd::with_hookhost(Engines::Debian12, &host, &["--bridge=none"]);
    wrapper.set_config(&json!({
        "runtime": "runc", "root": host.root(), "cdiSpecDirs": [vendor.specs()]
    }));
    let run = daemon
        .docker(&[
            "run",
            "-d",
            "--runtime",
            "hookhost",
            "--network",
            "none",
            "-e",
            "HOOKHOST_HOOKS=gpu-picker",
            "busybox",
            "sleep",
            "60",
        ])
        .output()
        .unwrap();
    assert!(run.status.success(), "docker run: {}", text(&run.stderr));
    let id = text(&run.stdout).trim().to_string();
    let probe = daemon
        .docker(&[
            "exec",
            &id,
            "sh",
            "-c",
            "grep -ao GPU_VISIBLE=0 /proc/1/environ; grep Groups /proc/1/status; \
             cat /opt/gpu/libgpu.so; test -c /dev/gpu0 && echo char-device",
        ])
        .output()
        .unwrap();
    let config = daemon.bundle_config(&id);
    let rm = daemon.docker(&["rm", "-f", &id]).output().unwrap();
    assert!(rm.status.success(), "docker rm: {}", text(&rm.stderr));
    assert!(
        probe.status.success(),
        "docker exec: {}",
        text(&probe.stderr)
    );
    // The container's own process: an exec'd one gets Docker's env and groups, not the config's.
    let says = text(&probe.stdout);
    assert!(
        says.starts_with("GPU_VISIBLE=0\nGroups:")
            && says.contains(" 44 4242")
            && says.ends_with("driver\nchar-device\n"),
        "{says}"
    );
    let (ours, _) = through_hookhost(&vendor, "true");
    let spec = vendor.spec();
    assert_eq!(cdi_parts(&config, &spec), cdi_parts(&ours, &spec));
}

/// Under Podman's hooks.d precreate export (`hookhost export hooks.d`, Podman running
/// `hookhost stage precreate` itself, runc its runtime): Podman resolves its own `--device`
/// names before it runs precreate hooks and never the `cdi.k8s.io/` annotations (measured with
/// 4.3 and 5.8), so hookhost resolves the names the exported hook requested — from the
/// directories of the config the export was made with — and the container starts with the
/// device nodes, env, mount and groups, the spec's hook runs, the audit trail says which
/// hook asked for which device, and the CDI-derived parts of the config.json Podman hands
/// the runtime are those the wrapper makes.
fn exported_precreate_hook_gets_a_cdi_device(stack: Stack) {
    let vendor = Vendor::new(true);
    let s = Setup::on(stack, json!({"cdiSpecDirs": [vendor.specs()]}));
    s.host.cdi_requester(
        "gpu-picker",
        "cdi=example.com/gpu=*",
        "example.com/gpu=0",
        &["--when-annotation", "pick=gpu"],
    );
    s.host.cdi_requester(
        "gpu9",
        "cdi",
        "example.com/gpu=9",
        &["--when-annotation", "pick=gpu9"],
    );
    let hooksd = tempfile::tempdir().unwrap();
    let hooks_dir = hooksd.path().to_str().unwrap();
    let mut export = s.host.cmd();
    export.env("HOOKHOST_CONFIG", s.wrapper.config());
    let out = export
        .args(["export", "hooks.d", hooks_dir])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let podman = Podman::on(stack);
    let saved = podman.dir.path().join("podman-config.json");
    let runtime = recording_runtime(podman.dir.path(), &saved);
    let runtime = runtime.to_str().unwrap();
    let (out, _) = podman.run(
        &["--runtime", runtime, "--hooks-dir", hooks_dir],
        &["--annotation", "pick=gpu"],
        &["sh", "-c", &format!("{}; id -G", common::GPU_PROBE)],
    );
    assert!(out.status.success(), "podman: {}", text(&out.stderr));
    let says = text(&out.stdout);
    assert!(
        says.starts_with(common::GPU_PROBE_SAYS) && says.contains(" 44 4242"),
        "{says}"
    );
    assert_eq!(
        fs::read_to_string(vendor.marker()).unwrap(),
        "cdi-hook gpu0\n"
    );
    let events = s.host.ok(&["events", "--format", "json"]);
    let cdi: Vec<Value> = (events.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e.get("cdi").is_some())
        .collect();
    assert_eq!(cdi.len(), 1, "{events}");
    assert_eq!(cdi[0]["hook"], "gpu-picker");
    assert_eq!(cdi[0]["cdi"]["device"], "example.com/gpu=0");
    // The same resolution as through the wrapper.
    alike_hookhost(&vendor, &saved);

    // A device no spec defines refuses `podman run`, which shows only the call's exit status:
    // the reason is in the audit trail, with the hook that asked.
    let (out, _) = podman.run(
        &["--runtime", runtime, "--hooks-dir", hooks_dir],
        &["--annotation", "pick=gpu9"],
        &["sh", "-c", "echo started"],
    );
    assert!(!out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("hookhost stage precreate"));
    let failed = s.host.ok(&["events", "--failed", "--format", "json"]);
    let refusal: Value = (failed.lines())
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|e| e["hook"] == "gpu9")
        .unwrap_or_else(|| panic!("no refusal of gpu9 in {failed}"));
    assert_eq!(refusal["cdi"]["device"], "example.com/gpu=9", "{refusal}");
    let reason = refusal["error"].as_str().unwrap();
    assert!(
        reason.contains("unknown CDI device example.com/gpu=9"),
        "{reason}"
    );
}

#[test]
fn an_exported_precreate_hook_gives_a_podman_4_container_a_cdi_device() {
    exported_precreate_hook_gets_a_cdi_device(Stack::Debian12);
}

#[test]
fn an_exported_precreate_hook_gives_a_podman_5_container_a_cdi_device() {
    exported_precreate_hook_gets_a_cdi_device(Stack::Forky);
}

/// `hookhost try` on a precreate hook that requests a CDI device shows, after the hook's
/// changes, the device's spec file and every edit it would bring; an unknown device is the
/// refusal the container would get.
#[test]
fn try_shows_the_cdi_edits_a_hooks_request_brings() {
    let vendor = Vendor::new(true);
    let s = gpu_picker(&vendor);
    requester(&s.host, "gpu9", "cdi", "example.com/gpu=9");
    let try_hook = |name: &str| {
        let mut cmd = s.host.cmd();
        cmd.env("HOOKHOST_CONFIG", s.wrapper.config());
        cmd.args(["try", name]).output().unwrap()
    };
    let out = try_hook("gpu-picker");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    let spec = vendor.specs().join("example.json");
    for line in [
        "+ cdi device example.com/gpu=0".to_string(),
        format!("--- CDI device example.com/gpu=0 ({})", spec.display()),
        "env GPU_VISIBLE=0".to_string(),
        "device /dev/gpu0 c 1:3 allow \"rwm\"".to_string(),
        "additionalGid 4242".to_string(),
        "--- hook gpu-picker (precreate, native): accepted".to_string(),
    ] {
        assert!(shown.contains(&line), "{line:?} not in:\n{shown}");
    }
    let out = try_hook("gpu9");
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown CDI device example.com/gpu=9"),
        "{err}"
    );
}
