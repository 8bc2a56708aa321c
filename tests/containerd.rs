//! The runtime wrapper under containerd 1.6 (Debian 12) and containerd >= 2
//! (scripts/engines.sh), each started by this test with its own root, state and sockets: `ctr run --runc-binary hookhost-runtime --annotation io.hookhost.hooks=…`
//! runs the selected hooks, and a refused selection shows the wrapper's message in ctr's error
//! (the shim reads it from the runtime's --log file).
//! Needs root, containerd, ctr, runc and busybox-static (installed by .ci/run).

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::containerd::{CRI_IMAGE, Containerd, Cri, stdout_ok};
use common::engines::{Engines, Wrapper};
use common::{Bundle, Host, text, unique};
use serde_json::json;

/// `ctr run --runc-binary W --annotation A --rm --rootfs R ID /bin/echo ran`.
fn ctr_run(c: &Containerd, wrapper: &Path, rootfs: &Path, annotation: &str) -> Output {
    let id = unique("ctr");
    c.ctr(&["run", "--runc-binary", wrapper.to_str().unwrap()])
        .args(["--annotation", annotation, "--rm", "--rootfs"])
        .arg(rootfs)
        .args([id.as_str(), "/bin/echo", "ran"])
        .output()
        .unwrap()
}

#[test]
fn ctr_run_through_the_wrapper_on_containerd_1_6() {
    ctr_run_through_the_wrapper(Engines::Debian12);
}

#[test]
fn ctr_run_through_the_wrapper_on_containerd_2() {
    ctr_run_through_the_wrapper(Engines::Today);
}

fn ctr_run_through_the_wrapper(engines: Engines) {
    common::require("runc");
    let host = Host::new();
    let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
    let containerd = Containerd::start(engines, &wrapper.config());
    let bundle = Bundle::new("true");
    let marker = host.dir.path().join("marker");
    let rec = host.script("rec.sh", &format!("echo \"$*\" >> {}", marker.display()));
    host.ok(&[
        "create",
        "--args",
        "rec,registered",
        "named",
        rec.to_str().unwrap(),
    ]);

    let out = ctr_run(
        &containerd,
        &wrapper.path(),
        &bundle.rootfs(),
        r#"io.hookhost.hooks=named:["added"]"#,
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout).trim(), "ran");
    assert_eq!(fs::read_to_string(&marker).unwrap(), "registered added\n");

    let out = ctr_run(
        &containerd,
        &wrapper.path(),
        &bundle.rootfs(),
        "io.hookhost.hooks=nope",
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );
}

/// Kubernetes through CRI on containerd 2: a pod with the `hookhost` runtime handler and an
/// `io.hookhost.hooks` annotation runs the hook for its app container only, and its sandbox
/// runs what `io.hookhost.sandbox-hooks` selects; an unknown name fails the CRI call with
/// hookhost's reason.
#[test]
fn cri_pods_on_containerd_2() {
    common::require("runc");
    let host = Host::new();
    let wrapper = Wrapper::new(&json!({"runtime": "runc", "root": host.root()}));
    let containerd = Containerd::start_cri(&wrapper.config(), &wrapper.path());
    containerd.import_cri_image();
    let log = host.dir.path().join("types");
    // "NAME TYPE": the hook's registered argument and the CRI container type of its state.
    let rec = host.script(
        "type.sh",
        &format!(
            "t=$(tr -d '\\n' | grep -o 'container-type\": *\"[a-z]*' | grep -o '[a-z]*$')\n\
             echo \"$1 $t\" >> {}",
            log.display()
        ),
    );
    host.ok(&["create", "--args", "rec,app", "app", rec.to_str().unwrap()]);
    host.ok(&[
        "create",
        "--args",
        "rec,pause",
        "pause",
        rec.to_str().unwrap(),
    ]);
    let cri = Cri {
        containerd: &containerd,
    };

    let (out, pod) = cri.run_pod(&json!({"io.hookhost.hooks": "app"}));
    let pod_id = stdout_ok(&out);
    let container = stdout_ok(&cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]));
    stdout_ok(&cri.call(&["start", &container]));
    let types = fs::read_to_string(&log).unwrap_or_default();
    stdout_ok(&cri.call(&["remove-pod", &pod_id]));
    assert_eq!(types, "app container\n", "the app container only");

    let _ = fs::remove_file(&log);
    let (out, pod) =
        cri.run_pod(&json!({"io.hookhost.hooks": "app", "io.hookhost.sandbox-hooks": "pause"}));
    let pod_id = stdout_ok(&out);
    let container = stdout_ok(&cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]));
    stdout_ok(&cri.call(&["start", &container]));
    let types = fs::read_to_string(&log).unwrap_or_default();
    stdout_ok(&cri.call(&["remove-pod", &pod_id]));
    assert_eq!(types, "pause sandbox\napp container\n");

    let (out, _) = cri.run_pod(&json!({"io.hookhost.sandbox-hooks": "nope"}));
    assert!(!out.status.success(), "the pod ran");
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .contains("annotation io.hookhost.sandbox-hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );

    let (out, pod) = cri.run_pod(&json!({"io.hookhost.hooks": "nope"}));
    let pod_id = stdout_ok(&out);
    let container = cri.call(&["create", &pod_id, "app", CRI_IMAGE, &pod]);
    let started = match container.status.success() {
        true => cri.call(&["start", &stdout_ok(&container)]),
        false => container,
    };
    let _ = cri.call(&["remove-pod", &pod_id]);
    assert!(!started.status.success(), "the app container started");
    let stderr = text(&started.stderr);
    assert!(
        stderr.contains("annotation io.hookhost.hooks selects \"nope\": no such hook: nope"),
        "{stderr}"
    );
}
