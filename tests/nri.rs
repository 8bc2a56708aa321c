//! hookhost's NRI plugin runtime (crates/hookhost-nri) on the wire with containerd 2.1 (NRI 0.8,
//! scripts/engines.sh), CRI and NRI on the test's own sockets, driven by the CRI client of
//! tests/cri: the plugin registers; a CRI CreateContainer reaches the handler with the pod and
//! the container; the env var the handler adds is seen by the container's command; a refusal
//! fails CRI CreateContainer with its message; and after containerd restarts, the plugin
//! connects again by itself, is synchronized with the pods that survived, and adjusts the next
//! container. The handler is this test's own: the NRI transport is under test, not hookhost's
//! hook selection. Needs root, runc and python3-grpcio (scripts/setup.sh).

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::containerd::{Containerd, Cri, stdout_ok};
use common::engines::wait_for;
use hookhost_nri::api::{
    Container, ContainerAdjustment, CreateContainerResponse, KeyValue, PodSandbox,
};
use hookhost_nri::{Config, Handler, Plugin, Refusal};
use serde_json::{Value, json};

/// A pod annotation that makes the test handler refuse the pod's containers with its value.
const REFUSE: &str = "hookhost.test/refuse";
/// The variable the test handler adds to every container it lets through.
const ADDED: &str = "NRI_ADDED";

/// What the handler saw.
#[derive(Default)]
struct Recorder {
    /// The pod and container of each CreateContainer.
    created: Mutex<Vec<(PodSandbox, Container)>>,
    /// The pod ids of each Synchronize.
    synchronized: Mutex<Vec<Vec<String>>>,
}

impl Handler for Recorder {
    fn synchronize(
        &self,
        pods: &[PodSandbox],
        _: &[Container],
    ) -> Result<Vec<hookhost_nri::api::ContainerUpdate>, Refusal> {
        let ids = pods.iter().map(|p| p.id.clone()).collect();
        self.synchronized.lock().unwrap().push(ids);
        Ok(Vec::new())
    }

    fn create_container(
        &self,
        pod: &PodSandbox,
        ctr: &Container,
    ) -> Result<CreateContainerResponse, Refusal> {
        self.created
            .lock()
            .unwrap()
            .push((pod.clone(), ctr.clone()));
        if let Some(why) = pod.annotations.get(REFUSE) {
            return Err(Refusal::new(why.clone()));
        }
        let mut adjust = ContainerAdjustment::new();
        adjust.env.push(KeyValue {
            key: ADDED.into(),
            value: format!("for-{}", pod.name),
            ..Default::default()
        });
        Ok(adjust.into())
    }
}

/// The app container's command: prints the variable the handler adds.
const PRINT_ADDED: &str = "echo NRI_ADDED=$NRI_ADDED";

/// A pod with `annotations` and its container `app` running [`PRINT_ADDED`].
fn pod_and_app(cri: &Cri, annotations: Value) -> (String, String, std::process::Output) {
    cri.pod_and_app(annotations, PRINT_ADDED)
}

/// Starts the app container of `pod` and returns the line its command printed (its CRI log).
fn started_output(cri: &Cri, created: &std::process::Output, pod: &str) -> String {
    stdout_ok(&cri.call(&["start", &stdout_ok(created)]));
    let log = cri.pod_log_dir(pod).join("app.log");
    let printed = || std::fs::read_to_string(&log).unwrap_or_default();
    wait_for(
        "the app container's output",
        Duration::from_secs(60),
        || printed().contains("NRI_ADDED="),
    );
    // CRI log lines: TIME STREAM TAG MESSAGE.
    let line = printed()
        .lines()
        .find(|l| l.contains("NRI_ADDED="))
        .unwrap()
        .to_string();
    line.splitn(4, ' ').nth(3).unwrap_or_default().to_string()
}

fn wait_health(health: &Path, present: bool, what: &str) {
    wait_for(what, Duration::from_secs(60), || health.exists() == present);
}

#[test]
fn an_nri_plugin_on_containerd_2_adjusts_refuses_and_reconnects_after_a_restart() {
    common::require("runc");
    // The plugin's log (connections, registrations), shown when the test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("hookhost_nri=debug")
        .with_test_writer()
        .try_init();
    let mut containerd = Containerd::start_cri_nri(&[]);
    containerd.import_cri_image();
    let health = containerd.dir.path().join("plugin-registered");
    let recorder = Arc::new(Recorder::default());
    let mut config = Config::new("hookhosttest", "50");
    config.socket = containerd.nri_socket();
    config.health_file = Some(health.clone());
    let plugin = Plugin::new(config)
        .unwrap()
        .spawn(recorder.clone())
        .unwrap();
    wait_health(&health, true, "the plugin to register with containerd");
    assert_eq!(
        *recorder.synchronized.lock().unwrap(),
        [Vec::<String>::new()]
    );

    // The handler's adjustment reaches the container's command.
    let cri = Cri {
        containerd: &containerd,
    };
    let (kept_pod, name, created) = pod_and_app(&cri, json!({"team": "a"}));
    assert_eq!(
        started_output(&cri, &created, &name),
        format!("NRI_ADDED=for-{name}")
    );
    {
        let created = recorder.created.lock().unwrap();
        let (pod, ctr) = created.last().unwrap();
        assert_eq!(
            (pod.name.as_str(), pod.namespace.as_str(), ctr.name.as_str()),
            (name.as_str(), "hookhost-test", "app")
        );
        assert_eq!(ctr.pod_sandbox_id, pod.id);
        assert_eq!(ctr.args, ["sh", "-c", PRINT_ADDED]);
        assert_eq!(
            ctr.annotations["io.kubernetes.cri.container-type"],
            "container"
        );
    }

    // A refusal fails CRI CreateContainer with its message.
    let why = "policy refuses this container: set team to fix";
    let (refused_pod, _, created) = pod_and_app(&cri, json!({REFUSE: why}));
    assert!(
        !created.status.success(),
        "the refused container was created"
    );
    let stderr = common::text(&created.stderr);
    assert!(stderr.contains(why), "{stderr}");
    stdout_ok(&cri.call(&["remove-pod", &refused_pod]));

    // containerd restarted: the plugin connects again by itself, is synchronized with the pod
    // that kept running, and adjusts the next container.
    containerd.stop_daemon();
    wait_health(&health, false, "the plugin to see containerd gone");
    containerd.start_again("containerd-restarted.log");
    wait_health(&health, true, "the plugin to register again");
    let synchronized = recorder.synchronized.lock().unwrap().clone();
    assert_eq!(synchronized.len(), 2, "{synchronized:?}");
    assert!(synchronized[1].contains(&kept_pod), "{synchronized:?}");
    let cri = Cri {
        containerd: &containerd,
    };
    let (_, name, created) = pod_and_app(&cri, json!({}));
    assert_eq!(
        started_output(&cri, &created, &name),
        format!("NRI_ADDED=for-{name}")
    );
    plugin.stop().unwrap();
    assert!(!health.exists(), "a stopped plugin leaves no health file");
}

/// `hookhost` installed as a pre-registered plugin (`NN-NAME` in containerd's plugin dir) is
/// started by containerd without arguments, on the connection containerd passes on fd 3, and
/// registers under the name and index containerd gives it.
#[test]
fn hookhost_as_a_pre_installed_plugin_registers_on_the_connection_containerd_passes() {
    common::require("runc");
    let hookhost = Path::new(common::HOOKHOST);
    let containerd = Containerd::start_cri_nri(&[("10-hookhost", hookhost)]);
    wait_for(
        "containerd to register the plugin it started",
        Duration::from_secs(60),
        || {
            containerd
                .log()
                .contains(r#"registered as \"10-hookhost\""#)
        },
    );
    let log = containerd.log();
    assert!(
        log.contains(r#"plugin \"pre-connected:10-hookhost["#),
        "{log}"
    );
    // With no hook registered under its (default) registry root, containers go through unchanged.
    containerd.import_cri_image();
    let cri = Cri {
        containerd: &containerd,
    };
    let (pod, _, created) = pod_and_app(&cri, json!({}));
    stdout_ok(&created);
    stdout_ok(&cri.call(&["remove-pod", &pod]));
}
