use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, MountBuilder};
use serde_json::json;

use super::*;
use hookhost_types::STAGE_ENV;

/// Keys in no sorted order, fields oci-spec does not know at three levels, and a number
/// oci-spec would not write back as given.
const CONFIG: &str = r#"{
  "ociVersion": "1.2.0",
  "x-vendor": {"zeta": 1, "alpha": [true, null]},
  "process": {
    "x-process-extra": "kept",
    "user": {"uid": 0, "gid": 0},
    "args": ["sh"],
    "env": ["PATH=/bin", "GPU_VISIBLE=1", "HOME=/root", "GPU_VISIBLE=2", "GPU_VISIBLEX=3", "GPU_VISIBLE"],
    "cwd": "/"
  },
  "root": {"readonly": true, "path": "rootfs"},
  "mounts": [{"destination": "/proc", "type": "proc", "source": "proc", "x-mount-extra": 7}],
  "linux": {"namespaces": [{"type": "mount"}], "x-linux-extra": 1.50},
  "annotations": {"b": "1", "a": "2"}
}"#;

fn config() -> Precreate {
    Precreate::parse(CONFIG.as_bytes()).unwrap()
}

/// The document as it came in, to compare outputs with (key order kept: preserve_order).
fn input() -> Map<String, Value> {
    serde_json::from_str(CONFIG).unwrap()
}

/// What the hook writes, read back.
fn output(config: &Precreate) -> Map<String, Value> {
    serde_json::from_slice(&config.to_json()).unwrap()
}

fn keys(map: &Map<String, Value>) -> Vec<&str> {
    map.keys().map(String::as_str).collect()
}

#[test]
fn an_unchanged_document_comes_out_as_it_came_in() {
    let mut out = Vec::new();
    apply(config(), |_| Ok(()), &mut out).unwrap();
    let expected = [serde_json::to_vec(&input()).unwrap(), b"\n".to_vec()].concat();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        String::from_utf8(expected).unwrap()
    );
}

#[test]
fn unknown_fields_and_key_order_survive_an_edit() {
    let mut config = config();
    config
        .set_env("GPU_DRIVER_CAPABILITIES", "compute")
        .unwrap();
    let out = output(&config);
    assert_eq!(keys(&out), keys(&input()));
    assert_eq!(out["x-vendor"], input()["x-vendor"]);
    assert_eq!(
        keys(out["x-vendor"].as_object().unwrap()),
        ["zeta", "alpha"]
    );
    assert_eq!(out["process"]["x-process-extra"], "kept");
    assert_eq!(
        keys(out["process"].as_object().unwrap()),
        ["x-process-extra", "user", "args", "env", "cwd"]
    );
    assert_eq!(out["mounts"][0]["x-mount-extra"], 7);
    assert_eq!(out["linux"]["x-linux-extra"], json!(1.5));
    // Only the edited field differs.
    let mut expected = input();
    expected["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push("GPU_DRIVER_CAPABILITIES=compute".into());
    assert_eq!(out, expected);
}

#[test]
fn set_env_replaces_the_first_entry_in_place_and_drops_the_others() {
    let mut config = config();
    config.set_env("GPU_VISIBLE", "0").unwrap();
    assert_eq!(
        output(&config)["process"]["env"],
        json!(["PATH=/bin", "GPU_VISIBLE=0", "HOME=/root", "GPU_VISIBLEX=3"])
    );
    assert_eq!(config.container_env("GPU_VISIBLE"), Some("0"));
    assert_eq!(config.container_env("GPU_VISIBLEX"), Some("3"));
    assert!(config.remove_env("HOME").unwrap());
    assert!(!config.remove_env("HOME").unwrap());
    assert_eq!(config.container_env("HOME"), None);
    assert_eq!(
        output(&config)["process"]["env"],
        json!(["PATH=/bin", "GPU_VISIBLE=0", "GPU_VISIBLEX=3"])
    );
}

#[test]
fn set_env_creates_the_list_and_refuses_bad_names_or_a_missing_process() {
    let mut config = Precreate::parse(
        br#"{"ociVersion":"1.2.0","process":{"cwd":"/","user":{"uid":0,"gid":0}}}"#,
    )
    .unwrap();
    config.set_env("A", "b=c").unwrap();
    assert_eq!(output(&config)["process"]["env"], json!(["A=b=c"]));
    for bad in ["", "A=B"] {
        let err = config.set_env(bad, "x").unwrap_err();
        assert!(matches!(err, PrecreateError::BadEnvName(_)), "{err}");
    }
    let mut bare = Precreate::parse(br#"{"ociVersion":"1.2.0"}"#).unwrap();
    let err = bare.set_env("A", "1").unwrap_err().to_string();
    assert!(err.contains("no `process`"), "{err}");
    assert!(!bare.remove_env("A").unwrap());
}

#[test]
fn mounts_are_appended_as_oci_spec_writes_them() {
    let mount = MountBuilder::default()
        .destination("/opt/gpu")
        .typ("bind")
        .source("/opt/gpu-host")
        .options(vec!["rbind".to_string(), "ro".to_string()])
        .build()
        .unwrap();
    let mut config = config();
    config.add_mount(&mount).unwrap();
    let mounts = &output(&config)["mounts"];
    assert_eq!(mounts[0], input()["mounts"][0]);
    assert_eq!(
        mounts[1],
        json!({"destination": "/opt/gpu", "type": "bind", "source": "/opt/gpu-host",
               "options": ["rbind", "ro"]})
    );
    assert_eq!(config.spec().mounts().as_ref().unwrap()[1], mount);

    let mut bare = Precreate::parse(br#"{"ociVersion":"1.2.0","mounts":null}"#).unwrap();
    bare.add_mount(&mount).unwrap();
    assert_eq!(output(&bare)["mounts"].as_array().unwrap().len(), 1);
}

fn device(path: &str, minor: i64) -> LinuxDevice {
    LinuxDeviceBuilder::default()
        .path(path)
        .typ(LinuxDeviceType::C)
        .major(1)
        .minor(minor)
        .build()
        .unwrap()
}

#[test]
fn devices_go_into_linux_devices_and_replace_one_at_the_same_path() {
    let mut config = config();
    config.add_device(&device("/dev/gpu0", 3)).unwrap();
    let out = output(&config);
    assert_eq!(
        keys(out["linux"].as_object().unwrap()),
        ["namespaces", "x-linux-extra", "devices"]
    );
    assert_eq!(
        out["linux"]["devices"],
        json!([{"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3}])
    );
    config.add_device(&device("/dev/gpu1", 5)).unwrap();
    config.add_device(&device("/dev/gpu0", 7)).unwrap();
    let devices = config.spec().linux().as_ref().unwrap().devices().clone();
    let minors: Vec<_> = devices.unwrap().iter().map(|d| d.minor()).collect();
    assert_eq!(minors, [7, 5]);

    let mut bare = Precreate::parse(br#"{"ociVersion":"1.2.0"}"#).unwrap();
    bare.add_device(&device("/dev/gpu0", 3)).unwrap();
    assert_eq!(keys(&output(&bare)), ["ociVersion", "linux"]);
}

#[test]
fn annotations_keep_their_place_and_can_be_removed() {
    let mut config = config();
    config
        .set_annotation("a", "3")
        .unwrap()
        .set_annotation("c", "4")
        .unwrap();
    assert_eq!(
        output(&config)["annotations"],
        json!({"b": "1", "a": "3", "c": "4"})
    );
    assert_eq!(
        keys(output(&config)["annotations"].as_object().unwrap()),
        ["b", "a", "c"]
    );
    assert!(config.remove_annotation("b").unwrap());
    assert!(!config.remove_annotation("b").unwrap());
    assert_eq!(output(&config)["annotations"], json!({"a": "3", "c": "4"}));
}

#[test]
fn a_refusal_writes_nothing_and_keeps_the_reason() {
    let mut out = Vec::new();
    let err = apply(config(), |_| Err("no GPU left".into()), &mut out).unwrap_err();
    assert_eq!(err.to_string(), "no GPU left");
    assert!(out.is_empty());
}

#[test]
fn an_edit_that_breaks_the_spec_is_refused_and_undone() {
    let mut config = config();
    let err = config
        .edit(|doc| {
            doc.insert("process".into(), json!({"env": []}));
            Ok(())
        })
        .unwrap_err();
    assert!(matches!(err, PrecreateError::EditBrokeSpec(_)), "{err}");
    assert_eq!(output(&config), input());
}

#[test]
fn malformed_input_is_explained() {
    let err = |input: &str| Precreate::parse(input.as_bytes()).unwrap_err();
    assert!(matches!(err(" \n"), PrecreateError::NoConfig));
    assert!(err("").to_string().contains("--type precreate"));
    assert!(err("[1]").to_string().contains("not a JSON object"));
    let not_spec = err(r#"{"ociVersion":"1.2.0","mounts":"x"}"#).to_string();
    assert!(not_spec.contains("not an OCI runtime config"), "{not_spec}");
}

#[test]
fn only_the_precreate_stage_is_accepted() {
    let env = |stage: &str| BTreeMap::from([(STAGE_ENV.to_string(), stage.to_string())]);
    assert!(check_stage(&env("precreate")).is_ok());
    assert!(check_stage(&BTreeMap::new()).is_ok());
    let err = check_stage(&env("createRuntime")).unwrap_err().to_string();
    assert!(err.contains("run at the createRuntime stage"), "{err}");
    assert!(err.contains("--type precreate"), "{err}");
}

#[test]
fn args_and_the_hooks_own_environment() {
    let config = config()
        .with_args(["gpu-env", "--device", "/dev/gpu0=c:1:3"])
        .with_env([("X", "1")]);
    assert_eq!(config.extra_args(), ["--device", "/dev/gpu0=c:1:3"]);
    assert_eq!(config.var("X"), Some("1"));
    assert_eq!(config.spec().version(), "1.2.0");
}

#[test]
fn add_cdi_device_appends_each_name_once_to_the_sdk_annotation() {
    let mut config = config();
    config.add_cdi_device("example.com/gpu=0").unwrap();
    config.add_cdi_device("example.com/gpu=1").unwrap();
    config.add_cdi_device("example.com/gpu=0").unwrap();
    let out = output(&config);
    assert_eq!(
        out["annotations"][CDI_SDK_ANNOTATION],
        json!("example.com/gpu=0,example.com/gpu=1")
    );
    // The other annotations keep their places.
    assert_eq!(
        keys(out["annotations"].as_object().unwrap()),
        ["b", "a", CDI_SDK_ANNOTATION]
    );
    assert_eq!(
        config.cdi_devices(),
        ["example.com/gpu=0", "example.com/gpu=1"]
    );
    for bad in ["", "gpu0", "example.com/gpu", "a/b=c,d/e=f"] {
        let err = config.add_cdi_device(bad).unwrap_err().to_string();
        assert!(err.contains("vendor.com/class=name"), "{err}");
    }
}
