//! hookhost with a real Docker daemon that this test starts with its own socket, data-root and
//! exec-root, vfs storage, iptables off and the default bridge network, and stops in Drop even
//! when a step fails. One daemon serves every step; the same steps run on Debian 12's Docker
//! 20.10 and on Docker >= 28 with containerd >= 2 (scripts/engines.sh), one daemon at a time
//! (both would use the default bridge `docker0`).
//! Needs root, dockerd, docker and runc (installed by .ci/run).

mod common;

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use common::engines::{Dockerd, Engines, wait_for};
use common::{Host, plan_files, succeeded, text, unique};
use serde_json::Value;
use tempfile::TempDir;

/// One Docker daemon at a time in this test binary: every one uses the default bridge.
static ONE_DAEMON: Mutex<()> = Mutex::new(());

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed: {}",
        text(&out.stdout)
    );
    text(&out.stderr)
}

/// Everything a step needs.
struct World {
    host: Host,
    daemon: Dockerd,
    /// A host directory bind-mounted at /m, where recording hooks write.
    shared: TempDir,
}

impl World {
    /// `hookhost run -H SOCK ARGS…`
    fn hookhost_run(&self, args: &[&str]) -> Output {
        let host = self.daemon.host_flag();
        let mut all = vec!["run", "-H", &host];
        all.extend_from_slice(args);
        self.host
            .cmd()
            .env("DOCKER_CONFIG", self.daemon.path("docker-config"))
            .env("PATH", self.daemon.engines.path())
            .args(&all)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn shared_mount(&self) -> String {
        format!("{}:/m", self.shared.path().display())
    }

    fn marker(&self) -> PathBuf {
        self.shared.path().join("marker")
    }
}

/// A named sub-step of the shared-daemon test.
type Step = (&'static str, fn(&World));

#[test]
fn docker_20_10() {
    docker_engine(Engines::Debian12);
}

#[test]
fn docker_28() {
    docker_engine(Engines::Today);
}

fn docker_engine(engines: Engines) {
    let _one = ONE_DAEMON.lock().unwrap_or_else(|e| e.into_inner());
    let host = Host::new();
    let (daemon, _wrapper) = Dockerd::with_hookhost(engines, &host, &[]);
    for d in ["/tmp/a", "/tmp/b", "/tmp/c"] {
        fs::create_dir_all(d).unwrap();
    }
    let world = World {
        host,
        daemon,
        shared: tempfile::tempdir().unwrap(),
    };
    let script = world.host.script(
        "rec.sh",
        &format!("echo \"rec $*\" >> {}", world.marker().display()),
    );
    world.host.ok(&["create", "rec", script.to_str().unwrap()]);
    world.host.ok(common::SEED_CREATE);

    let steps: &[Step] = &[
        (
            "install docker is idempotent and --reload reaches dockerd",
            install_and_reload,
        ),
        ("seed workflow through hookhost run", seed_via_hookhost_run),
        (
            "seed workflow through the docker hook CLI plugin",
            seed_via_plugin,
        ),
        (
            "default bridge: libnetwork-setkey (Docker <= 27) stays first",
            bridge_network_hook_stays_first,
        ),
        (
            "a failing fatal hook fails docker run with its message",
            failing_hook_fails_docker_run,
        ),
        (
            "removing the container runs poststop hooks",
            rm_runs_poststop,
        ),
        (
            "HOOKHOST_HOOKS is not visible inside the container",
            selection_env_is_hidden,
        ),
        (
            "a startRuntime hook adds a NIC and a route beside Docker's eth0",
            start_runtime_adds_a_nic,
        ),
        (
            "a failing startRuntime hook fails docker run before the command",
            failing_start_runtime_hook_fails_docker_run,
        ),
        (
            "a WASM precreate hook gives the container env, a device and a read-only mount",
            precreate_gpu_env,
        ),
    ];
    let mut failed = Vec::new();
    for (name, step) in steps {
        if catch_unwind(AssertUnwindSafe(|| step(&world))).is_err() {
            failed.push(*name);
        }
    }
    drop(world);
    assert!(failed.is_empty(), "failed steps: {failed:?}");
}

fn install_and_reload(w: &World) {
    let daemon_json = w.daemon.dir.path().join("daemon.json");
    let runtime = w.daemon.dir.path().join("alt-runtime");
    let args = |name: &str| {
        vec![
            "install".to_string(),
            "docker".into(),
            "--daemon-json".into(),
            daemon_json.to_str().unwrap().into(),
            "--runtime-path".into(),
            runtime.to_str().unwrap().into(),
            "--name".into(),
            name.into(),
            "--reload".into(),
            "--pidfile".into(),
            w.daemon.path("docker.pid").to_str().unwrap().into(),
        ]
    };
    let first: Vec<String> = args("hookhost-alt");
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let out = w.host.ok(&first);
    assert!(out.contains("sent SIGHUP to dockerd"), "{out}");
    let doc: Value = serde_json::from_slice(&fs::read(&daemon_json).unwrap()).unwrap();
    assert_eq!(doc["log-level"], "warn", "other keys kept");
    assert!(doc["runtimes"]["hookhost"]["path"].is_string());
    let backup =
        fs::read_to_string(w.daemon.dir.path().join("daemon.json.hookhost-backup")).unwrap();
    assert!(backup.contains("\"hookhost\""), "{backup}");
    wait_for(
        "dockerd to know hookhost-alt",
        Duration::from_secs(30),
        || {
            let info = w
                .daemon
                .docker(&["info", "--format", "{{json .Runtimes}}"])
                .output()
                .unwrap();
            text(&info.stdout).contains("hookhost-alt")
        },
    );
    let again = w.host.ok(&first);
    assert!(again.contains("already registered"), "{again}");
}

/// The seed's `docker run --add-hook 'myFirstHook:["/tmp/b","/tmp/c"]' busybox top`.
fn seed_via_hookhost_run(w: &World) {
    let hook = r#"myFirstHook:["/tmp/b","/tmp/c"]"#;
    let id = succeeded(&w.hookhost_run(&["-d", "--add-hook", hook, "busybox", "top"]));
    let id = id.trim();
    let annotations = w.daemon.bundle_config(id)["annotations"].clone();
    let status = succeeded(
        &w.daemon
            .docker(&["inspect", "--format", "{{.State.Status}}", id])
            .output()
            .unwrap(),
    );
    let events = w.host.ok(&["events", "--container", id]);
    succeeded(&w.daemon.docker(&["rm", "-f", id]).output().unwrap());
    assert_eq!(status.trim(), "running");
    assert!(
        events.contains("prestart myFirstHook (native) exit=0"),
        "{events}"
    );
    // API >= 1.43 (Docker 24+) carries the selection as an annotation, older ones in the env.
    assert_eq!(
        annotations.get("io.hookhost.hooks").is_some(),
        w.daemon.major >= 24,
        "{annotations}"
    );

    // Before the command: the hook's marker is there for the command to print.
    let _ = fs::remove_file(w.marker());
    let mount = w.shared_mount();
    let out = succeeded(&w.hookhost_run(&[
        "--rm",
        "-v",
        &mount,
        "--add-hook",
        r#"rec:["first"]"#,
        "busybox",
        "cat",
        "/m/marker",
    ]));
    assert_eq!(out.trim(), "rec first");
}

fn seed_via_plugin(w: &World) {
    let plugins = w.daemon.path("docker-config/cli-plugins");
    fs::create_dir_all(&plugins).unwrap();
    w.host.ok(&[
        "install",
        "docker-cli-plugin",
        "--dir",
        plugins.to_str().unwrap(),
    ]);
    let docker = |args: &[&str]| {
        let mut cmd = w.daemon.docker(args);
        cmd.env("HOOKHOST_ROOT", w.host.root()).stdin(Stdio::null());
        cmd.output().unwrap()
    };
    let help = succeeded(&docker(&["--help"]));
    assert!(help.contains("hook*"), "plugin not listed: {help}");
    let created = succeeded(&docker(&[
        "hook",
        "create",
        "--type",
        "poststop",
        "viaPlugin",
        "/bin/true",
    ]));
    assert_eq!(created.trim(), "viaPlugin");
    let ls = succeeded(&docker(&["hook", "ls"]));
    assert!(
        ls.contains("myFirstHook") && ls.contains("viaPlugin"),
        "{ls}"
    );
    let inspect: Value =
        serde_json::from_str(&succeeded(&docker(&["hook", "inspect", "viaPlugin"]))).unwrap();
    assert_eq!(inspect[0]["Type"], "poststop");
    assert_eq!(
        succeeded(&docker(&["hook", "rm", "viaPlugin"])).trim(),
        "viaPlugin"
    );

    // `docker -H … hook run`: Docker's global flag comes before the plugin name.
    let _ = fs::remove_file(w.marker());
    let mount = w.shared_mount();
    let out = succeeded(&docker(&[
        "hook",
        "run",
        "--rm",
        "-v",
        &mount,
        "--add-hook",
        r#"myFirstHook:["/tmp/b","/tmp/c"]"#,
        "--add-hook",
        r#"rec:["plugin"]"#,
        "busybox",
        "cat",
        "/m/marker",
    ]));
    assert_eq!(out.trim(), "rec plugin");
}

fn bridge_network_hook_stays_first(w: &World) {
    let id = succeeded(&w.hookhost_run(&["-d", "--add-hook", "rec", "busybox", "top"]));
    let id = id.trim();
    let config = w.daemon.bundle_config(id);
    let status = succeeded(
        &w.daemon
            .docker(&[
                "inspect",
                "--format",
                "{{.State.Status}} {{.NetworkSettings.IPAddress}}",
                id,
            ])
            .output()
            .unwrap(),
    );
    succeeded(&w.daemon.docker(&["rm", "-f", id]).output().unwrap());
    let prestart = config["hooks"]["prestart"].as_array().unwrap();
    let ours = prestart.last().unwrap();
    assert_eq!(ours["args"][1], "stage", "{prestart:?}");
    if w.daemon.major <= 27 {
        assert_eq!(prestart.len(), 2, "{prestart:?}");
        assert_eq!(prestart[0]["args"][0], "libnetwork-setkey");
    } else {
        // Docker 28 attaches networks between create and start, without a hook of its own.
        assert_eq!(prestart.len(), 1, "{prestart:?}");
    }
    let (state, ip) = status.trim().split_once(' ').unwrap();
    assert_eq!(state, "running");
    assert!(ip.starts_with("172."), "no bridge address: {status}");
}

fn failing_hook_fails_docker_run(w: &World) {
    let missing = format!("/tmp/{}", unique("missing"));
    let hook = format!(r#"myFirstHook:["{missing}"]"#);
    let name = unique("failing");
    let stderr = fails(w.hookhost_run(&["--name", &name, "--add-hook", &hook, "busybox", "true"]));
    assert!(stderr.contains("hook myFirstHook (prestart)"), "{stderr}");
    assert!(stderr.contains(&missing), "{stderr}");
    let _ = w.daemon.docker(&["rm", "-f", &name]).output();

    // The wrapper refuses an unregistered name even when docker run is called directly.
    let stderr = fails(
        w.daemon
            .docker(&[
                "run",
                "--rm",
                "--runtime",
                "hookhost",
                "-e",
                "HOOKHOST_HOOKS=nope",
                "busybox",
                "true",
            ])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("no such hook: nope"), "{stderr}");
    assert!(
        stderr.contains("environment variable HOOKHOST_HOOKS"),
        "{stderr}"
    );
    if w.daemon.major >= 24 {
        let stderr = fails(
            w.daemon
                .docker(&["run", "--rm", "--runtime", "hookhost"])
                .args(["--annotation", "io.hookhost.hooks=nope", "busybox", "true"])
                .output()
                .unwrap(),
        );
        assert!(
            stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
            "{stderr}"
        );
    }
}

fn rm_runs_poststop(w: &World) {
    let done = w.host.dir.path().join(unique("poststop-done"));
    let name = unique("post");
    w.host
        .script_hook(&name, "poststop", &format!("touch {}", done.display()));
    let id = succeeded(&w.hookhost_run(&["-d", "--add-hook", &name, "busybox", "top"]));
    let id = id.trim();
    assert!(!done.exists(), "poststop ran while the container runs");
    let bundle = w
        .daemon
        .path("exec/containerd/daemon/io.containerd.runtime.v2.task/moby")
        .join(id);
    assert_eq!(
        plan_files(&bundle).len(),
        1,
        "the plan lives in Docker's bundle"
    );
    succeeded(&w.daemon.docker(&["rm", "-f", id]).output().unwrap());
    wait_for("the poststop hook", Duration::from_secs(30), || {
        done.exists()
    });
    // Docker removes the bundle with the container, and the plan with it: nothing of the
    // container is left behind, neither there nor in hookhost's state directory.
    wait_for(
        "Docker to remove the bundle",
        Duration::from_secs(30),
        || !bundle.exists(),
    );
    let mut plans = Vec::new();
    for dir in [w.daemon.dir.path(), &w.host.root()] {
        plans_under(dir, &mut plans);
    }
    assert!(plans.is_empty(), "{plans:?}");
}

/// Plan files anywhere under `dir`, by name only (Docker's directories hold FIFOs and sockets,
/// which must not be read).
/// `hookhost run --add-hook gpu-env`: the example precreate hook, granted exactly what it adds,
/// edits Docker's config before runc sees it; the command sees the result.
fn precreate_gpu_env(w: &World) {
    let grants = "env=GPU_*,mounts=/opt/gpu/**:from={driver}/**,devices=/dev/gpu*";
    w.host.gpu_env("gpu-env", grants, w.shared.path(), &[]);
    let out = succeeded(&w.hookhost_run(&[
        "--rm",
        "--add-hook",
        "gpu-env",
        "busybox",
        "sh",
        "-c",
        common::GPU_PROBE,
    ]));
    assert_eq!(out, common::GPU_PROBE_SAYS);
}

fn plans_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            plans_under(&path, found);
        } else if path.to_string_lossy().contains("hookhost-plan-") {
            found.push(path);
        }
    }
}

fn selection_env_is_hidden(w: &World) {
    let env = succeeded(&w.hookhost_run(&[
        "--rm",
        "--add-hook",
        "rec",
        "-e",
        "KEEP=1",
        "busybox",
        "env",
    ]));
    assert!(env.contains("KEEP=1"), "{env}");
    assert!(!env.contains("HOOKHOST"), "{env}");
}

/// The seed's first scenario: a native startRuntime hook sees the engine's `eth0` (Docker 28
/// attaches it between create and start), moves one end of a veth pair into the container as
/// `net1`, and adds a route through eth0's gateway; the command sees both before it runs.
fn start_runtime_adds_a_nic(w: &World) {
    let name = unique("nic");
    w.host.script_hook(
        &name,
        "startRuntime",
        r#"export PATH=/usr/sbin:/usr/bin:/sbin:/bin
state=$(cat)
pid=$(echo "$state" | grep -o '"pid": *[0-9]*' | grep -o '[0-9]*$')
[ -n "$pid" ] || { echo "no pid in the state: $state" >&2; exit 1; }
inside() { nsenter -t "$pid" -n "$@"; }
inside ip link show eth0 >/dev/null || { echo "no eth0 at startRuntime" >&2; exit 1; }
gw=$(inside ip route show default | awk '{print $3}')
[ -n "$gw" ] || { echo "no default route at startRuntime" >&2; exit 1; }
ip link add "hh$pid" type veth peer name "hp$pid"
ip link set "hp$pid" netns "$pid"
inside ip link set "hp$pid" name net1
inside ip addr add 10.199.0.2/24 dev net1
inside ip link set net1 up
inside ip route add 10.201.0.0/16 via "$gw" dev eth0
"#,
    );
    let out = succeeded(&w.hookhost_run(&[
        "--rm",
        "--add-hook",
        &name,
        "busybox",
        "sh",
        "-c",
        "ip -o link; ip -o addr; ip route",
    ]));
    assert!(out.contains(": eth0@"), "{out}");
    assert!(out.contains(": net1@"), "{out}");
    assert!(out.contains("inet 10.199.0.2/24"), "{out}");
    assert!(out.contains("10.201.0.0/16 via 172."), "{out}");
}

fn failing_start_runtime_hook_fails_docker_run(w: &World) {
    let name = unique("deny");
    w.host.script_hook(
        &name,
        "startRuntime",
        "echo 'startRuntime says no' >&2; exit 4",
    );
    let ran = w.shared.path().join(unique("ran"));
    let mount = w.shared_mount();
    let touch = format!("/m/{}", ran.file_name().unwrap().to_str().unwrap());
    let container = unique("denied");
    let stderr = fails(w.hookhost_run(&[
        "--name",
        &container,
        "-v",
        &mount,
        "--add-hook",
        &name,
        "busybox",
        "touch",
        &touch,
    ]));
    let id = w
        .daemon
        .docker(&["inspect", "--format", "{{.Id}}", &container])
        .output()
        .unwrap();
    let id = text(&id.stdout).trim().to_string();
    let _ = w.daemon.docker(&["rm", "-f", &container]).output();
    // The refused container was killed, so its shim goes with it (none left behind).
    assert!(!id.is_empty());
    wait_for(
        "the refused container's shim to exit",
        Duration::from_secs(30),
        || !processes_naming(&id),
    );
    assert!(
        stderr.contains(&format!("hook {name} (startRuntime): exit status 4")),
        "{stderr}"
    );
    assert!(stderr.contains("startRuntime says no"), "{stderr}");
    assert!(!ran.exists(), "the command ran");
}

/// Whether a process's command line names `word` (a container id).
fn processes_naming(word: &str) -> bool {
    fs::read_dir("/proc").unwrap().flatten().any(|entry| {
        fs::read(entry.path().join("cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(word))
    })
}

/// A config.json Docker 20.10 generated (default bridge: libnetwork-setkey prestart hook), as
/// the runtime receives it: injection keeps every other field identical and that hook first.
#[test]
fn injection_keeps_every_non_hook_field_of_a_docker_config() {
    let host = Host::new();
    let bundle = tempfile::tempdir().unwrap();
    let fixture = fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/docker-config.json"
    ))
    .unwrap();
    fs::write(bundle.path().join("config.json"), &fixture).unwrap();
    host.ok(&["create", "--type", "prestart,poststop", "h", "/bin/true"]);
    host.ok(&[
        "inject",
        "--bundle",
        bundle.path().to_str().unwrap(),
        "--add-hook",
        "h",
    ]);
    let before: Value = serde_json::from_slice(&fixture).unwrap();
    let after: Value =
        serde_json::from_slice(&fs::read(bundle.path().join("config.json")).unwrap()).unwrap();
    let strip = |v: &Value| {
        let mut v = v.clone();
        v.as_object_mut().unwrap().remove("hooks");
        v
    };
    assert_eq!(strip(&after), strip(&before));
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&after), keys(&before), "key order kept");
    let prestart = after["hooks"]["prestart"].as_array().unwrap();
    assert_eq!(prestart[0], before["hooks"]["prestart"][0]);
    assert_eq!(prestart.len(), 2);
    assert_eq!(after["hooks"]["poststop"].as_array().unwrap().len(), 1);
}
