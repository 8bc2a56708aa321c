//! hookhost's hooks through its NRI plugin (issue 20): `hookhost nri` on containerd 2.1 with
//! CRI and NRI on the test's own sockets, the default runtime plain runc (no hookhost handler),
//! driven by the CRI client of tests/cri. The same registry, selection, grants and audit trail
//! as through the runtime wrapper: a global precreate hook's env edit is seen by the container's
//! command; a pod annotation selects a createRuntime hook that runs with the container's state;
//! a refusing policy hook fails CRI CreateContainer with its message; an out-of-grant edit is
//! refused naming the field; an edit NRI cannot carry (process.args) is refused, never dropped;
//! a CDI request goes to containerd, which resolves it;
//! and every run is in `hookhost events`. Needs root, runc and python3-grpcio
//! (scripts/setup.sh).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::containerd::{Containerd, Cri, NRI_REQUEST_TIMEOUT_SECS, stdout_ok};
use common::engines::wait_for;
use common::{Host, text};
use serde_json::{Value, json};

/// containerd's default spec (`ctr oci spec`) with hookhost's guard (`hookhost nri
/// guard-spec` with hookhost's config file `config`), written to a file under `dir`.
fn guarded_base_spec(host: &Host, dir: &Path, config: &Path) -> PathBuf {
    let spec = Command::new(common::engines::Engines::Today.require("ctr"))
        .args(["oci", "spec"])
        .output()
        .unwrap();
    assert!(spec.status.success(), "{}", text(&spec.stderr));
    let mut guard = host.cmd();
    guard
        .args(["nri", "guard-spec"])
        .env("HOOKHOST_CONFIG", config);
    let guarded = pipe(guard, &spec.stdout);
    let file = dir.join("base-spec.json");
    std::fs::write(&file, guarded).unwrap();
    file
}

fn pipe(mut cmd: Command, input: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    out.stdout
}

/// `hookhost nri` as a child process on the test's registry; killed in Drop.
struct Plugin {
    child: Child,
    health: PathBuf,
}

impl Plugin {
    fn start(host: &Host, containerd: &Containerd, name: &str) -> Plugin {
        let health = containerd.dir.path().join(format!("{name}-registered"));
        let log = std::fs::File::create(containerd.dir.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(common::HOOKHOST)
            .args([
                "--root",
                host.root().to_str().unwrap(),
                "--log-level",
                "info",
                "nri",
            ])
            .arg("--socket")
            .arg(containerd.nri_socket())
            .args(["--name", name, "--health-file"])
            .arg(&health)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let plugin = Plugin { child, health };
        wait_for("hookhost nri to register", Duration::from_secs(60), || {
            plugin.health.exists()
        });
        plugin
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pod with `annotations` and its container `app` running `script`: the CRI
/// CreateContainer's output, and the pod's name.
fn create(cri: &Cri, annotations: Value, script: &str) -> (std::process::Output, String) {
    let (_, name, created) = cri.pod_and_app(annotations, script);
    (created, name)
}

/// Starts the created container and returns what its command printed (its CRI log).
fn output(cri: &Cri, created: &std::process::Output, pod: &str) -> String {
    stdout_ok(&cri.call(&["start", &stdout_ok(created)]));
    let log = cri.pod_log_dir(pod).join("app.log");
    let printed = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for("the app's output", Duration::from_secs(60), || {
        printed().contains("done")
    });
    printed()
        .lines()
        .filter_map(|l| l.splitn(4, ' ').nth(3))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registers `greet`: a global precreate hook setting GREETING=`text`, granted that variable.
fn greeting(host: &Host, text: &str) {
    let greet = host.python_precreate(
        "greet",
        &format!("c[\"process\"][\"env\"].append(\"GREETING={text}\")"),
    );
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "env=GREETING",
        "--when-always",
        "greet",
        &greet,
    ]);
}

fn refused(created: &std::process::Output, wants: &[&str]) {
    assert!(
        !created.status.success(),
        "created: {}",
        text(&created.stdout)
    );
    let err = text(&created.stderr);
    for want in wants {
        assert!(err.contains(want), "{want:?} not in: {err}");
    }
}

#[test]
fn hooks_reach_every_pod_through_the_nri_plugin() {
    common::require("runc");
    let host = Host::new();
    // A global precreate hook, granted its one variable, on every container.
    greeting(&host, "hello from nri");
    // A createRuntime hook pods select by annotation: records the state it got.
    let states_dir = tempfile::tempdir().unwrap();
    let states = states_dir.path();
    host.script_hook(
        "record",
        "createRuntime",
        &format!("cat > {}/$$.json", states.display()),
    );
    // A policy refusing pods that ask for it, one editing out of its grant, one editing args.
    host.script_hook(
        "policy",
        "precreate",
        "echo 'pods of team x are not allowed: ask the platform team' >&2; exit 1",
    );
    let mounter = host.python_precreate("mounter",
        "c[\"mounts\"].append({\"destination\": \"/opt/x\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"})",
    );
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "env=X",
        "mounter",
        &mounter,
    ]);
    let argser = host.python_precreate(
        "argser",
        "c[\"process\"][\"args\"] = [\"sh\", \"-c\", \"echo evil; echo done\"]",
    );
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        "args",
        "argser",
        &argser,
    ]);

    let containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let _plugin = Plugin::start(&host, &containerd, "hookhost");
    let cri = Cri {
        containerd: &containerd,
    };

    let (created, pod) = create(
        &cri,
        json!({"io.hookhost.hooks": "record"}),
        "echo \"$GREETING\"; echo done",
    );
    assert_eq!(output(&cri, &created, &pod), "hello from nri\ndone");
    let recorded: Vec<Value> = std::fs::read_dir(states)
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let id = stdout_ok(&created);
    assert_eq!(recorded[0]["id"], id.as_str());
    assert_eq!(recorded[0]["status"], "creating");
    // The container's plan is kept in the state directory until the container is removed.
    let plan_dir = host.root().join("nri").join(&id);
    assert!(plan_dir.is_dir(), "no plan kept for {id}");
    stdout_ok(&cri.call(&["remove-all-pods"]));
    wait_for("the plan's removal", Duration::from_secs(60), || {
        !plan_dir.exists()
    });

    let (created, _) = create(&cri, json!({"io.hookhost.hooks": "policy"}), "echo done");
    refused(
        &created,
        &[
            "hookhost",
            "hook policy (precreate)",
            "pods of team x are not allowed",
        ],
    );
    let (created, _) = create(&cri, json!({"io.hookhost.hooks": "mounter"}), "echo done");
    refused(
        &created,
        &[
            "hook mounter (precreate)",
            "added mounts /opt/x",
            "--may-adjust mounts=/opt/x",
        ],
    );
    // A hook that would run past NRI's deadline: the plugin refuses the container itself
    // within its budget (75 % of the request timeout) instead of being dropped and letting it
    // start bare.
    host.script_hook(
        "slow",
        "precreate",
        &format!("sleep {}", NRI_REQUEST_TIMEOUT_SECS + 2),
    );
    let (created, _) = create(&cri, json!({"io.hookhost.hooks": "slow"}), "echo done");
    let budget = format!(
        "did not finish within {} ms",
        NRI_REQUEST_TIMEOUT_SECS * 750
    );
    refused(&created, &["hookhost", &budget, "request_timeout"]);
    let slow_run_ms = Duration::from_secs(NRI_REQUEST_TIMEOUT_SECS + 2).as_millis() as f64;
    let (created, _) = create(&cri, json!({"io.hookhost.hooks": "argser"}), "echo done");
    refused(
        &created,
        &[
            "precreate hook argser",
            "args (process.args)",
            "NRI cannot carry",
        ],
    );

    let events = host.ok(&["events", "--format", "json"]);
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |hook: &str| events.iter().filter(|e| e["hook"] == hook).count();
    assert_eq!(count("record"), 1, "{events:?}");
    // Each run names its pod and container, at precreate (the plugin) and at createRuntime
    // (runc's state).
    for hook in ["record", "greet"] {
        let run = events.iter().find(|e| e["hook"] == hook).unwrap();
        assert_eq!(run["pod"], format!("hookhost-test/{pod}"), "{run}");
        assert_eq!(run["name"], "app", "{run}");
    }
    let text = host.ok(&["events"]);
    assert!(
        text.contains(&format!(" pod=hookhost-test/{pod} name=app")),
        "{text}"
    );
    assert_eq!(
        (
            count("policy"),
            count("mounter"),
            count("argser"),
            count("slow")
        ),
        (1, 1, 1, 1),
        "{events:?}"
    );
    // The slow hook was killed at the plugin's budget, not left to run its own course.
    let slow = events.iter().find(|e| e["hook"] == "slow").unwrap();
    assert_eq!(slow["failure"], "timeout", "{slow}");
    assert!(
        slow["duration_ms"].as_f64().unwrap() < slow_run_ms,
        "{slow}"
    );
    // greet ran for every container NRI described (5 creates).
    assert_eq!(count("greet"), 5, "{events:?}");
}

/// The guard in containerd's base runtime spec: with the plugin running, containers start;
/// with the plugin killed (-9), NRI creates the next container without it and the guard refuses
/// it, with hookhost's reason — except in a namespace the config file exempts; with the plugin
/// started again, containers start again — without restarting containerd.
#[test]
fn the_guard_refuses_containers_while_the_plugin_is_down() {
    common::require("runc");
    let host = Host::new();
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--when-always",
        "audit-all",
        "/bin/true",
    ]);
    let spec_dir = tempfile::tempdir().unwrap();
    let config = spec_dir.path().join("hookhost.json");
    std::fs::write(
        &config,
        json!({"nri": {"exemptNamespaces": ["kube-system"]}}).to_string(),
    )
    .unwrap();
    let base = guarded_base_spec(&host, spec_dir.path(), &config);
    let spec: Value = serde_json::from_slice(&std::fs::read(&base).unwrap()).unwrap();
    let guard = spec["hooks"]["createRuntime"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        guard["args"],
        json!(["hookhost", "nri", "guard", "--name", "hookhost"])
    );
    let containerd = Containerd::start_cri_nri_with(&[], Some(&base));
    containerd.import_cri_image();
    let cri = Cri {
        containerd: &containerd,
    };
    let plugin = Plugin::start(&host, &containerd, "hookhost");
    let (created, pod) = create(&cri, json!({}), "echo up; echo done");
    assert_eq!(output(&cri, &created, &pod), "up\ndone");

    let mut plugin = plugin;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(plugin.child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = plugin.child.wait();
    let (created, _) = create(&cri, json!({}), "echo bare; echo done");
    let id = stdout_ok(&created);
    let started = cri.call(&["start", &id]);
    assert!(
        !started.status.success(),
        "started without the plugin: {}",
        text(&started.stdout)
    );
    let err = text(&started.stderr);
    assert!(
        err.contains("hookhost's NRI plugin \"hookhost\" did not prepare it"),
        "{err}"
    );
    assert!(err.contains("hookhost nri"), "{err}");
    // The exempt namespace starts without the plugin.
    let (_, pod, created) = cri.pod_and_app_in("kube-system", json!({}), "echo exempt; echo done");
    assert_eq!(output(&cri, &created, &pod), "exempt\ndone");
    drop(plugin);

    let _plugin = Plugin::start(&host, &containerd, "hookhost");
    let (created, pod) = create(&cri, json!({}), "echo back; echo done");
    assert_eq!(output(&cri, &created, &pod), "back\ndone");
}

/// Two NRI plugins (two `hookhost nri`, each with its own registry) setting the same variable:
/// containerd refuses the container with NRI's own conflict error, naming both plugins.
#[test]
fn two_plugins_setting_the_same_variable_conflict() {
    common::require("runc");
    let (first, second) = (Host::new(), Host::new());
    for (host, value) in [(&first, "one"), (&second, "two")] {
        let set = host.python_precreate(
            "set",
            &format!("c[\"process\"][\"env\"].append(\"SHARED={value}\")"),
        );
        host.ok(&[
            "create",
            "--type",
            "precreate",
            "--may-adjust",
            "env=SHARED",
            "--when-always",
            "set",
            &set,
        ]);
    }
    let containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let _one = Plugin::start(&first, &containerd, "hookhost");
    let _two = Plugin::start(&second, &containerd, "other");
    let cri = Cri {
        containerd: &containerd,
    };
    let (created, _) = create(&cri, json!({}), "echo $SHARED; echo done");
    refused(
        &created,
        &[
            "\"50-other\"",
            "\"50-hookhost\"",
            "both tried to set env SHARED",
        ],
    );
}

/// containerd restarted under the plugin: the plugin sees it go (its health file goes away),
/// connects again by itself with backoff, and containers created afterwards get their hooks.
#[test]
fn the_plugin_reconnects_when_containerd_restarts() {
    common::require("runc");
    let host = Host::new();
    greeting(&host, "after the restart");
    let mut containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let plugin = Plugin::start(&host, &containerd, "hookhost");
    containerd.stop_daemon();
    wait_for(
        "the plugin to see containerd go",
        Duration::from_secs(60),
        || !plugin.health.exists(),
    );
    containerd.start_again("containerd-again.log");
    wait_for(
        "the plugin to register again",
        Duration::from_secs(60),
        || plugin.health.exists(),
    );
    let cri = Cri {
        containerd: &containerd,
    };
    let (created, pod) = create(&cri, json!({}), "echo \"$GREETING\"; echo done");
    assert_eq!(output(&cri, &created, &pod), "after the restart\ndone");
}

/// 50 pods created and started at once through the plugin: every container got its hooks,
/// and each run is recorded exactly once — the precreate hook's (in the plugin) and the
/// createRuntime hook's (runc, through the entry the plugin injected).
#[test]
fn fifty_pods_at_once_are_each_recorded_once() {
    common::require("runc");
    let host = Host::new();
    for (stage, name) in [("precreate", "pass"), ("createRuntime", "audit")] {
        host.ok(&[
            "create",
            "--type",
            stage,
            "--when-always",
            name,
            "/bin/true",
        ]);
    }
    let containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let _plugin = Plugin::start(&host, &containerd, "hookhost");
    let cri = Cri {
        containerd: &containerd,
    };
    let mut ids: Vec<String> = std::thread::scope(|scope| {
        let pods: Vec<_> = (0..50)
            .map(|_| {
                scope.spawn(|| {
                    let (_, _, created) = cri.pod_and_app(json!({}), "echo done");
                    let id = stdout_ok(&created);
                    stdout_ok(&cri.call(&["start", &id]));
                    id
                })
            })
            .collect();
        pods.into_iter().map(|pod| pod.join().unwrap()).collect()
    });
    ids.sort();
    let events = host.ok(&["events", "--format", "json"]);
    let events: Vec<Value> = events
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (hook, stage) in [("pass", "precreate"), ("audit", "createRuntime")] {
        let mut ran: Vec<String> = events
            .iter()
            .filter(|e| e["hook"] == hook)
            .inspect(|e| {
                assert_eq!(e["stage"], stage, "{e}");
                assert_eq!(e["exit"], 0, "{e}");
            })
            .map(|e| e["container"].as_str().unwrap().to_string())
            .collect();
        ran.sort();
        assert_eq!(ran, ids, "{hook}: one run per container");
    }
}

/// With an `"nri"` section in the config file (the node runs the plugin), `create` refuses a
/// precreate hook whose timeout cannot fit the plugin's budget, naming it and the fix; one
/// that fits, and hooks of the other stages, are registered; without the section nothing is
/// checked (hookhost cannot know the node runs the plugin).
#[test]
fn a_precreate_timeout_must_fit_the_nri_budget() {
    let host = Host::new();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hookhost.json");
    std::fs::write(
        &config,
        json!({"nri": {"requestTimeoutMs": 3000}}).to_string(),
    )
    .unwrap();
    let create = |args: &[&str]| {
        let mut cmd = host.cmd();
        cmd.env("HOOKHOST_CONFIG", &config).arg("create").args(args);
        cmd.output().unwrap()
    };
    let out = create(&["--type", "precreate", "slow", "/bin/true"]);
    assert!(!out.status.success(), "registered");
    let err = text(&out.stderr);
    for want in [
        "precreate hook's timeout (30 s)",
        "budget on this node (2250 ms",
        "--timeout 1",
        "nri.requestTimeoutMs",
    ] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    assert!(host.ok(&["ls", "-q"]).trim().is_empty());
    for args in [
        &["--type", "precreate", "--timeout", "2", "fits", "/bin/true"][..],
        &[
            "--type",
            "createRuntime",
            "--timeout",
            "30",
            "later",
            "/bin/true",
        ][..],
    ] {
        let out = create(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    host.ok(&["create", "--type", "precreate", "unchecked", "/bin/true"]);
}

/// A precreate hook's CDI request (`cdi.k8s.io/` annotation, granted `cdi=example.com/gpu=*`)
/// goes to containerd as the NRI adjustment's CDI device (NRI 0.8 has them), and containerd
/// resolves it from its own spec directories: the container sees the device node, the env and
/// the mount; a device no spec defines fails the create with containerd's own error.
#[test]
fn containerd_resolves_a_precreate_hooks_cdi_request() {
    use std::os::unix::fs::PermissionsExt;
    common::require("runc");
    let host = Host::new();
    let vendor = tempfile::tempdir().unwrap();
    let mode = |path: &Path, mode| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    mode(vendor.path(), 0o755);
    let (driver, specs) = (vendor.path().join("driver"), vendor.path().join("cdi"));
    for dir in [&driver, &specs] {
        std::fs::create_dir(dir).unwrap();
    }
    std::fs::write(driver.join("libgpu.so"), "driver\n").unwrap();
    let spec = json!({
        "cdiVersion": "0.6.0",
        "kind": "example.com/gpu",
        "devices": [{"name": "0", "containerEdits": {
            "env": ["GPU_VISIBLE=0"],
            "deviceNodes": [{"path": "/dev/gpu0", "hostPath": "/dev/null"}],
            "mounts": [{"hostPath": driver, "containerPath": "/opt/gpu",
                        "options": ["ro", "nosuid", "nodev", "bind"]}]
        }}]
    });
    let file = specs.join("example.json");
    std::fs::write(&file, spec.to_string()).unwrap();
    mode(&file, 0o644);
    for (name, device) in [("gpu0", "example.com/gpu=0"), ("gpu9", "example.com/gpu=9")] {
        let when = format!("pick={name}");
        host.cdi_requester(
            name,
            "cdi=example.com/gpu=*",
            device,
            &["--when-annotation", &when],
        );
    }
    let containerd = Containerd::start_cri_nri_cdi(&specs);
    containerd.import_cri_image();
    let _plugin = Plugin::start(&host, &containerd, "hookhost");
    let cri = Cri {
        containerd: &containerd,
    };
    let (created, pod) = create(
        &cri,
        json!({"pick": "gpu0"}),
        "echo \"$GPU_VISIBLE\"; cat /opt/gpu/libgpu.so; test -c /dev/gpu0 && echo char-device; \
         echo done",
    );
    assert_eq!(output(&cri, &created, &pod), "0\ndriver\nchar-device\ndone");
    let (created, _) = create(&cri, json!({"pick": "gpu9"}), "echo done");
    refused(
        &created,
        &["CDI device injection failed: unresolvable CDI devices example.com/gpu=9"],
    );
}
