//! The CDI specification's rules, case by case (names, versions, spec validation, conflicts),
//! and the edits as the Go reference applies them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::spec::{self, Spec};
use super::*;

fn spec_of(text: &str) -> Result<Spec, String> {
    let spec = spec::parse(text.as_bytes())?;
    spec.validate()?;
    Ok(spec)
}

fn gpu_spec(version: &str, edits: Value) -> String {
    named_spec(version, "0", edits)
}

fn named_spec(version: &str, name: &str, edits: Value) -> String {
    json!({
        "cdiVersion": version,
        "kind": "example.com/gpu",
        "devices": [{"name": name, "containerEdits": edits}],
    })
    .to_string()
}

#[test]
fn qualified_names_follow_the_spec() {
    for good in [
        "vendor.com/class=name",
        "example.com/gpu=0",
        "a-b_c.d/e_f-g=h.i:j-k_0",
        "nvidia.com/gpu=GPU-4cf8db2d-06c0-7d70-1a51-e59b25b2c16c",
        "v/c=all",
    ] {
        names::Qualified::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
    }
    for (bad, why) in [
        ("", "no '=name'"),
        ("example.com/gpu", "no '=name'"),
        ("gpu=0", "no 'vendor/'"),
        ("/gpu=0", "empty vendor"),
        ("example.com/=0", "empty class"),
        ("example.com/gpu=", "empty device name"),
        ("1example.com/gpu=0", "must start with a letter"),
        ("example.com-/gpu=0", "must end with a letter or digit"),
        ("example.com/g.pu=0", "invalid character '.' in class"),
        ("example.com/1gpu=0", "must start with a letter"),
        ("example.com/gpu=-0", "must start with a letter or digit"),
        ("example.com/gpu=0-", "must end with a letter or digit"),
        ("example.com/gpu=0/1", "invalid character '/'"),
        ("exa mple.com/gpu=0", "invalid character ' '"),
    ] {
        let err = names::Qualified::parse(bad).unwrap_err();
        assert!(err.contains(why), "{bad:?}: {err}");
    }
}

#[test]
fn versions_are_known_ones_and_new_enough_for_the_features_used() {
    let node = json!({"deviceNodes": [{"path": "/dev/null"}]});
    for version in &spec::VERSIONS[2..] {
        let spec = json!({
            "cdiVersion": version, "kind": "example.com/gpu",
            "devices": [{"name": "gpu0", "containerEdits": node}],
        });
        spec_of(&spec.to_string()).unwrap_or_else(|e| panic!("{version}: {e}"));
    }
    spec_of(&gpu_spec("v1.0.0", node.clone())).unwrap();
    for old in ["0.1.0", "0.2.0"] {
        let err = spec_of(&gpu_spec(old, node.clone())).unwrap_err();
        assert!(err.contains("the oldest version read is 0.3.0"), "{err}");
    }
    for bad in ["0.0.1", "1.2.0", "2.0.0", "", "1.0"] {
        let err = spec_of(&gpu_spec(bad, node.clone())).unwrap_err();
        assert!(err.contains("invalid cdiVersion"), "{bad}: {err}");
    }
    let too_old = [
        (
            "0.6.0",
            json!({"additionalGids": [44]}),
            "additionalGids needs at least 0.7.0",
        ),
        (
            "0.6.0",
            json!({"intelRdt": {"closID": "a"}}),
            "intelRdt needs at least 0.7.0",
        ),
        (
            "0.4.0",
            json!({"deviceNodes": [{"path": "/dev/x", "hostPath": "/dev/null"}]}),
            "hostPath needs at least 0.5.0",
        ),
        (
            "0.3.0",
            json!({"mounts": [{"hostPath": "/a", "containerPath": "/b", "type": "bind"}]}),
            "mounts type needs at least 0.4.0",
        ),
        (
            "1.0.0",
            json!({"netDevices": [{"hostInterfaceName": "eth1", "name": "x"}]}),
            "netDevices needs at least 1.1.0",
        ),
    ];
    for (version, edits, why) in too_old {
        let err = spec_of(&named_spec(version, "gpu0", edits.clone())).unwrap_err();
        assert!(err.contains(why), "{version} {edits}: {err}");
        let next = spec::VERSIONS.last().unwrap();
        spec_of(&named_spec(next, "gpu0", edits)).unwrap();
    }
    // A device name that does not start with a letter ("0") needs 0.5.0; annotations 0.6.0.
    let err = spec_of(&gpu_spec("0.4.0", node.clone())).unwrap_err();
    assert!(err.contains("needs at least 0.5.0"), "{err}");
    let annotated = json!({
        "cdiVersion": "0.5.0", "kind": "example.com/gpu", "annotations": {"a": "b"},
        "devices": [{"name": "gpu0", "containerEdits": node}],
    });
    let err = spec_of(&annotated.to_string()).unwrap_err();
    assert!(err.contains("annotations needs at least 0.6.0"), "{err}");
}

#[test]
fn invalid_specs_are_refused_with_the_reason() {
    let node = json!({"deviceNodes": [{"path": "/dev/null"}]});
    let device = |name: &str, edits: Value| json!({"name": name, "containerEdits": edits});
    let with = |kind: &str, devices: Value| {
        json!({"cdiVersion": "1.0.0", "kind": kind, "devices": devices}).to_string()
    };
    let cases = [
        (with("example.com/gpu", json!([])), "no devices"),
        (with("gpu", json!([device("a", node.clone())])), "must be vendor/class"),
        (with("example.com/g.p", json!([device("a", node.clone())])), "invalid character '.' in class"),
        (with("example.com/gpu", json!([device("a", node.clone()), device("a", node.clone())])), "defined twice"),
        (with("example.com/gpu", json!([device("a", json!({}))])), "no containerEdits"),
        (with("example.com/gpu", json!([{"name": "a"}])), "no containerEdits"),
        (with("example.com/gpu", json!([device("-a", node.clone())])), "invalid device name"),
        (with("example.com/gpu", json!([device("a", json!({"env": ["NOEQUALS"]}))])), "invalid environment variable \"NOEQUALS\""),
        (with("example.com/gpu", json!([device("a", json!({"env": ["=x"]}))])), "invalid environment variable"),
        (with("example.com/gpu", json!([device("a", json!({"hooks": [{"hookName": "prestop", "path": "/x"}]}))])), "invalid hook name \"prestop\""),
        (with("example.com/gpu", json!([device("a", json!({"hooks": [{"hookName": "poststop", "path": ""}]}))])), "empty path"),
        (with("example.com/gpu", json!([device("a", json!({"deviceNodes": [{"path": ""}]}))])), "empty path"),
        (with("example.com/gpu", json!([device("a", json!({"deviceNodes": [{"path": "/dev/x", "type": "x"}]}))])), "invalid type \"x\""),
        (with("example.com/gpu", json!([device("a", json!({"deviceNodes": [{"path": "/dev/x", "permissions": "rwx"}]}))])), "invalid permissions \"rwx\""),
        (with("example.com/gpu", json!([device("a", json!({"mounts": [{"hostPath": "", "containerPath": "/b"}]}))])), "empty hostPath"),
        (with("example.com/gpu", json!([device("a", json!({"mounts": [{"hostPath": "/a", "containerPath": ""}]}))])), "empty containerPath"),
        (with("example.com/gpu", json!([device("a", json!({"deviceNodes": [{"path": "/dev/x", "color": "red"}]}))])), "unknown field `color`"),
        ("{\"cdiVersion\": \"1.0.0\", \"kind\": \"example.com/gpu\", \"devices\": [], \"extra\": 1}".to_string(), "unknown field `extra`"),
        ("   ".to_string(), "empty"),
        ("[1, 2]".to_string(), "not a CDI spec"),
    ];
    for (text, why) in cases {
        let err = spec_of(&text).unwrap_err();
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn yaml_specs_read_like_json_ones() {
    let yaml = "cdiVersion: 0.6.0\nkind: example.com/gpu\ndevices:\n- name: gpu0\n  containerEdits:\n    env: [A=1]\n";
    let spec = spec_of(yaml).unwrap();
    assert_eq!(
        spec.devices[0].container_edits.as_ref().unwrap().env,
        ["A=1"]
    );
}

/// A spec directory with files, each 0644 in a 0755 directory.
fn spec_dir(files: &[(&str, String)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    for (name, text) in files {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    }
    dir
}

fn request(name: &str) -> Request {
    Request {
        name: name.into(),
        key: "cdi.k8s.io/test".into(),
    }
}

#[test]
fn a_device_two_files_of_one_directory_define_is_refused_and_a_later_directory_wins() {
    let node = json!({"env": ["FROM=etc"]});
    let a = gpu_spec("0.6.0", node);
    let b = gpu_spec("0.6.0", json!({"env": ["FROM=b"]}));
    let run = gpu_spec("0.6.0", json!({"env": ["FROM=run"]}));
    let etc = spec_dir(&[
        ("a.json", a.clone()),
        ("b.yaml", b),
        ("notes.txt", "x".into()),
    ]);
    let catalog = Catalog::load(&[etc.path().to_path_buf()]);
    assert_eq!(catalog.problems.len(), 2, "{:?}", catalog.problems);
    let requests = [request("example.com/gpu=0")];
    let err = catalog.resolve(&requests).unwrap_err().to_string();
    assert!(
        err.contains("a.json: device example.com/gpu=0 is also defined by")
            && err.contains("b.yaml"),
        "{err}"
    );

    let etc = spec_dir(&[("a.json", a)]);
    let var_run = spec_dir(&[("z.json", run)]);
    let dirs = [etc.path().to_path_buf(), var_run.path().to_path_buf()];
    let catalog = Catalog::load(&dirs);
    assert!(catalog.problems.is_empty(), "{:?}", catalog.problems);
    let resolved = catalog.resolve(&requests).unwrap();
    assert_eq!(resolved[0].spec_path(), var_run.path().join("z.json"));
    assert_eq!(catalog.shadowed.len(), 1);
    assert_eq!(catalog.shadowed[0].ignored, etc.path().join("a.json"));
}

#[test]
fn spec_files_get_the_trust_checks_of_hooks_d_files() {
    let dir = spec_dir(&[("gpu.json", gpu_spec("0.6.0", json!({"env": ["A=1"]})))]);
    let file = dir.path().join("gpu.json");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o666)).unwrap();
    let catalog = Catalog::load(&[dir.path().to_path_buf()]);
    let requests = [request("example.com/gpu=0")];
    let err = catalog.resolve(&requests).unwrap_err().to_string();
    assert!(
        err.contains("gpu.json") && err.contains("chmod go-w"),
        "{err}"
    );
    // Nothing requested: nothing refused.
    assert!(catalog.resolve(&[]).unwrap().is_empty());
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let catalog = Catalog::load(&[dir.path().to_path_buf()]);
    let err = catalog.resolve(&requests).unwrap_err().to_string();
    assert!(err.contains("chmod go-w"), "{err}");
}

#[test]
fn unknown_and_invalid_names_are_refused_naming_the_annotation() {
    let dir = spec_dir(&[("gpu.json", gpu_spec("0.6.0", json!({"env": ["A=1"]})))]);
    let catalog = Catalog::load(&[dir.path().to_path_buf(), PathBuf::from("/nonexistent/cdi")]);
    assert!(catalog.problems.is_empty());
    let err = catalog
        .resolve(&[request("example.com/gpu=1")])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unknown CDI device example.com/gpu=1 (annotation cdi.k8s.io/test)")
            && err.contains("/nonexistent/cdi"),
        "{err}"
    );
    let err = catalog.resolve(&[request("gpu0")]).unwrap_err().to_string();
    assert!(err.contains("invalid CDI device name \"gpu0\""), "{err}");
}

#[test]
fn requested_reads_every_cdi_annotation_in_order_once() {
    let doc = json!({"annotations": {
        "cdi.k8s.io/b": "example.com/gpu=1,example.com/gpu=0",
        "other": "example.com/gpu=9",
        "cdi.k8s.io/a": "example.com/gpu=0,example.com/nic=eth",
    }});
    let names: Vec<String> = requested(&doc).into_iter().map(|r| r.name).collect();
    assert_eq!(
        names,
        [
            "example.com/gpu=1",
            "example.com/gpu=0",
            "example.com/nic=eth"
        ]
    );
    assert!(requested(&json!({})).is_empty());
}

fn apply_to(doc: &mut Value, dir: &Path, names: &[&str]) -> Result<Vec<Applied>, CdiError> {
    let catalog = Catalog::load(&[dir.to_path_buf()]);
    let requests: Vec<Request> = names.iter().map(|n| request(n)).collect();
    let resolved = catalog.resolve(&requests)?;
    apply(doc, &resolved)
}

#[test]
fn edits_apply_as_the_go_reference_applies_them_and_keep_unknown_keys() {
    let spec = json!({
        "cdiVersion": "0.7.0",
        "kind": "example.com/gpu",
        "containerEdits": {"env": ["VENDOR=example"], "additionalGids": [0, 44]},
        "devices": [
            {"name": "0", "containerEdits": {
                "env": ["GPU=0", "PATH=/gpu/bin"],
                "deviceNodes": [
                    {"path": "/dev/gpu0", "hostPath": "/dev/null"},
                    {"path": "/dev/gpu-fifo", "type": "p"},
                    {"path": "/dev/gpu-ctl", "type": "c", "major": 10, "minor": 200, "permissions": "none", "fileMode": 432, "uid": 7}
                ],
                "mounts": [
                    {"hostPath": "/usr/lib/gpu", "containerPath": "/usr/lib/gpu", "options": ["ro", "bind"]},
                    {"hostPath": "/opt/a", "containerPath": "/opt"}
                ],
                "hooks": [{"hookName": "createContainer", "path": "/usr/bin/gpu-hook", "args": ["gpu-hook", "x"], "timeout": 5}],
                "additionalGids": [44, 45]
            }},
            {"name": "1", "containerEdits": {"env": ["GPU=1"], "deviceNodes": [{"path": "/dev/null"}]}}
        ]
    });
    let dir = spec_dir(&[("gpu.json", spec.to_string())]);
    let mut doc = json!({
        "ociVersion": "1.2.0",
        "x-unknown": {"kept": [1, 2.50]},
        "process": {"user": {"uid": 1000, "gid": 1000, "x-user": true}, "env": ["PATH=/bin", "HOME=/root"]},
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/opt/deep/er", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/opt", "type": "tmpfs", "source": "tmpfs"}
        ],
        "linux": {"devices": [{"path": "/dev/null", "type": "c", "major": 1, "minor": 3}], "x-linux": 1}
    });
    let applied = apply_to(
        &mut doc,
        dir.path(),
        &["example.com/gpu=0", "example.com/gpu=1"],
    )
    .unwrap();
    assert_eq!(doc["x-unknown"], json!({"kept": [1, 2.50]}));
    assert_eq!(doc["linux"]["x-linux"], json!(1));
    assert_eq!(doc["process"]["user"]["x-user"], json!(true));
    // env: replaced where it was, else appended; a later device's value wins.
    assert_eq!(
        doc["process"]["env"],
        json!(["PATH=/gpu/bin", "HOME=/root", "VENDOR=example", "GPU=1"])
    );
    // Device nodes: filled from the host, replacing one at the same path (moved last), owned
    // by the process's user unless the spec says; a cgroup rule for b and c nodes.
    assert_eq!(
        doc["linux"]["devices"],
        json!([
            {"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3, "uid": 1000, "gid": 1000},
            {"path": "/dev/gpu-fifo", "type": "p", "major": 0, "minor": 0, "uid": 1000, "gid": 1000},
            {"path": "/dev/gpu-ctl", "type": "c", "major": 10, "minor": 200, "fileMode": 432, "uid": 7, "gid": 1000},
            {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "uid": 1000, "gid": 1000}
        ])
    );
    assert_eq!(
        doc["linux"]["resources"]["devices"],
        json!([
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}
        ])
    );
    // Mounts: one at the same destination replaced, then all ordered by depth (stable).
    let destinations: Vec<&str> = doc["mounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["destination"].as_str().unwrap())
        .collect();
    assert_eq!(
        destinations,
        ["/proc", "/opt", "/opt/deep/er", "/usr/lib/gpu"]
    );
    assert_eq!(
        doc["mounts"][3],
        json!({"destination": "/usr/lib/gpu", "source": "/usr/lib/gpu", "options": ["ro", "bind"]})
    );
    assert_eq!(
        doc["hooks"]["createContainer"],
        json!([{"path": "/usr/bin/gpu-hook", "args": ["gpu-hook", "x"], "timeout": 5}])
    );
    assert_eq!(doc["process"]["user"]["additionalGids"], json!([44, 45]));
    // The audit: which device brought what (the spec's own edits with the first device).
    assert_eq!(applied[0].device, "example.com/gpu=0");
    assert_eq!(applied[0].spec, dir.path().join("gpu.json"));
    assert!(applied[0].edits.contains(&"env VENDOR=example".to_string()));
    assert!(
        applied[0]
            .edits
            .contains(&"device /dev/gpu0 c 1:3 allow \"rwm\"".to_string())
    );
    assert!(
        applied[0]
            .edits
            .contains(&"hook createContainer /usr/bin/gpu-hook".to_string())
    );
    assert_eq!(
        applied[1].edits,
        ["env GPU=1", "device /dev/null c 1:3 allow \"rwm\""]
    );

    // Applying again changes nothing but the cgroup rules (appended, as the Go reference does).
    let mut again = doc.clone();
    apply_to(
        &mut again,
        dir.path(),
        &["example.com/gpu=0", "example.com/gpu=1"],
    )
    .unwrap();
    again["linux"]["resources"] = doc["linux"]["resources"].clone();
    assert_eq!(again, doc);
}

#[test]
fn a_device_node_the_host_does_not_have_or_of_another_type_is_refused() {
    let spec = |node: Value| gpu_spec("0.5.0", json!({"deviceNodes": [node]}));
    let cases = [
        (
            json!({"path": "/dev/gpu9", "hostPath": "/nonexistent/gpu9"}),
            "cannot stat the host's /nonexistent/gpu9",
        ),
        (
            json!({"path": "/dev/gpu9", "hostPath": "/etc/passwd"}),
            "not a device node",
        ),
        (
            json!({"path": "/dev/gpu9", "hostPath": "/dev/null", "type": "b"}),
            "the spec says type b but the host's /dev/null is type c",
        ),
    ];
    for (node, why) in cases {
        let dir = spec_dir(&[("gpu.json", spec(node.clone()))]);
        let err = apply_to(&mut json!({}), dir.path(), &["example.com/gpu=0"])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("CDI device example.com/gpu=0")
                && err.contains("gpu.json")
                && err.contains(why),
            "{node}: {err}"
        );
    }
}

#[test]
fn mount_depth_counts_like_go_filepath_clean() {
    for (dest, depth) in [
        ("/", 1),
        ("/a", 1),
        ("/a/b/", 2),
        ("/a//b/./c", 3),
        ("/a/../b", 1),
        ("a/b", 1),
    ] {
        assert_eq!(edits::depth_for_tests(dest), depth, "{dest}");
    }
}
