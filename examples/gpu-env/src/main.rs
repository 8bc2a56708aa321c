//! gpu-env: a precreate hook that gives a container a GPU, as a GPU runtime does, by editing the
//! proposed config.json before the container is created:
//!
//! - a device node per `--device PATH=TYPE:MAJOR:MINOR` (`c` or `b`), into `linux.devices`;
//! - `GPU_VISIBLE=<indexes>` (the trailing digits of the device names, `/dev/gpu0` → `0`) and
//!   `GPU_DRIVER_CAPABILITIES=<--capabilities, default compute,utility>` in `process.env`;
//! - a read-only bind mount per `--mount HOST-DIR:CONTAINER-DIR`.
//!
//! Register it so that it may change exactly that and nothing else:
//!
//! ```sh
//! hookhost create --type precreate --may-adjust 'env=GPU_*,mounts=/opt/gpu/**:from=/opt/gpu-host/**,devices=/dev/gpu*' \
//!     --args gpu-env,--device,/dev/gpu0=c:195:0,--mount,/opt/gpu-host:/opt/gpu \
//!     gpu-env gpu-env.wasm
//! ```
//!
//! Bad arguments refuse the container with a reason naming the fix.

use std::process::ExitCode;

use hookhost_guest::oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceType, Mount, MountBuilder,
};
use hookhost_guest::{Error, Precreate, precreate};

const DEFAULT_CAPABILITIES: &str = "compute,utility";
const USAGE: &str = "usage: gpu-env --device /dev/gpuN=c:MAJOR:MINOR [--device …] \
                     [--mount HOST-DIR:CONTAINER-DIR …] [--capabilities LIST]";

fn main() -> ExitCode {
    precreate(|config| {
        let gpu = Gpu::from_args(config.extra_args())?;
        gpu.apply(config)
    })
}

/// What the container is to get.
#[derive(Debug, PartialEq)]
struct Gpu {
    devices: Vec<LinuxDevice>,
    /// `GPU_VISIBLE`: the devices' indexes, comma-separated.
    visible: Vec<String>,
    mounts: Vec<Mount>,
    capabilities: String,
}

impl Gpu {
    /// Reads `--device`, `--mount` and `--capabilities`, each followed by its value.
    fn from_args(args: &[String]) -> Result<Gpu, String> {
        let mut gpu = Gpu {
            devices: Vec::new(),
            visible: Vec::new(),
            mounts: Vec::new(),
            capabilities: DEFAULT_CAPABILITIES.to_string(),
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .ok_or_else(|| format!("gpu-env: {flag} needs a value; {USAGE}"))?;
            match flag.as_str() {
                "--device" => gpu.add_device(value)?,
                "--mount" => gpu.mounts.push(parse_mount(value)?),
                "--capabilities" => gpu.capabilities = value.clone(),
                other => return Err(format!("gpu-env: unknown argument {other:?}; {USAGE}")),
            }
        }
        if gpu.devices.is_empty() {
            return Err(format!("gpu-env: no --device given; {USAGE}"));
        }
        Ok(gpu)
    }

    fn add_device(&mut self, spec: &str) -> Result<(), String> {
        let (device, index) = parse_device(spec)?;
        self.devices.push(device);
        self.visible.push(index);
        Ok(())
    }

    /// Edits the container's config; everything else stays as it was.
    fn apply(&self, config: &mut Precreate) -> Result<(), Error> {
        for device in &self.devices {
            config.add_device(device)?;
        }
        config.set_env("GPU_VISIBLE", &self.visible.join(","))?;
        config.set_env("GPU_DRIVER_CAPABILITIES", &self.capabilities)?;
        for mount in &self.mounts {
            config.add_mount(mount)?;
        }
        Ok(())
    }
}

/// `/dev/gpu0=c:195:0` → the device and its index (`0`).
fn parse_device(spec: &str) -> Result<(LinuxDevice, String), String> {
    let bad = |why: &str| {
        format!("gpu-env: --device {spec:?}: {why}; write it as /dev/gpuN=c:MAJOR:MINOR")
    };
    let (path, node) = spec.split_once('=').ok_or_else(|| bad("no '='"))?;
    if !path.starts_with("/dev/") {
        return Err(bad("the path must be under /dev/"));
    }
    let index = &path[path.trim_end_matches(|c: char| c.is_ascii_digit()).len()..];
    if index.is_empty() {
        return Err(bad("the device name must end in its index"));
    }
    let (typ, major, minor) = match node.split(':').collect::<Vec<_>>()[..] {
        ["c", major, minor] => (LinuxDeviceType::C, major, minor),
        ["b", major, minor] => (LinuxDeviceType::B, major, minor),
        _ => return Err(bad("the node must be c:MAJOR:MINOR or b:MAJOR:MINOR")),
    };
    let number = |n: &str| {
        n.parse::<u32>()
            .map_err(|_| bad("major and minor are numbers"))
    };
    let device = LinuxDeviceBuilder::default()
        .path(path)
        .typ(typ)
        .major(i64::from(number(major)?))
        .minor(i64::from(number(minor)?))
        .build()
        .map_err(|e| bad(&e.to_string()))?;
    Ok((device, index.to_string()))
}

/// `/opt/gpu-host:/opt/gpu` → a read-only bind mount of the host dir at the container dir.
fn parse_mount(spec: &str) -> Result<Mount, String> {
    let bad = |why: &str| {
        format!("gpu-env: --mount {spec:?}: {why}; write it as /HOST/DIR:/CONTAINER/DIR")
    };
    let (source, destination) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
    if !source.starts_with('/') || !destination.starts_with('/') {
        return Err(bad("both paths must be absolute"));
    }
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(
            ["rbind", "ro", "nosuid", "nodev"]
                .map(String::from)
                .to_vec(),
        )
        .build()
        .map_err(|e| bad(&e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_guest::serde_json::{Map, Value, json};

    const SAMPLE: &str = r#"{"ociVersion":"1.2.0",
      "process":{"user":{"uid":0,"gid":0},"args":["sh"],"env":["PATH=/bin","GPU_VISIBLE=7"],"cwd":"/"},
      "root":{"path":"rootfs"},
      "mounts":[{"destination":"/proc","type":"proc","source":"proc"}],
      "linux":{"namespaces":[{"type":"mount"}]},
      "x-engine":{"kept":true}}"#;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn run(list: &[&str]) -> Result<Map<String, Value>, String> {
        let gpu = Gpu::from_args(&args(list))?;
        let mut config = Precreate::parse(SAMPLE.as_bytes()).unwrap();
        gpu.apply(&mut config).map_err(|e| e.to_string())?;
        Ok(hookhost_guest::serde_json::from_slice(&config.to_json()).unwrap())
    }

    #[test]
    fn adds_the_device_the_variables_and_a_read_only_mount_and_nothing_else() {
        let out = run(&[
            "--device",
            "/dev/gpu0=c:1:3",
            "--mount",
            "/opt/gpu-host:/opt/gpu",
        ])
        .unwrap();
        let mut expected: Map<String, Value> =
            hookhost_guest::serde_json::from_str(SAMPLE).unwrap();
        expected["linux"]["devices"] =
            json!([{"path": "/dev/gpu0", "type": "c", "major": 1, "minor": 3}]);
        expected["process"]["env"] = json!([
            "PATH=/bin",
            "GPU_VISIBLE=0",
            "GPU_DRIVER_CAPABILITIES=compute,utility"
        ]);
        expected["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/opt/gpu", "type": "bind", "source": "/opt/gpu-host",
            "options": ["rbind", "ro", "nosuid", "nodev"]
        }));
        assert_eq!(out, expected);
    }

    #[test]
    fn several_devices_are_all_visible_and_a_second_run_changes_nothing_more() {
        let list = [
            "--device",
            "/dev/gpu0=c:195:0",
            "--device",
            "/dev/gpu12=c:195:12",
            "--capabilities",
            "compute",
        ];
        let once = run(&list).unwrap();
        assert_eq!(once["linux"]["devices"].as_array().unwrap().len(), 2);
        let env = &once["process"]["env"];
        assert_eq!(
            env,
            &json!([
                "PATH=/bin",
                "GPU_VISIBLE=0,12",
                "GPU_DRIVER_CAPABILITIES=compute"
            ])
        );
        let gpu = Gpu::from_args(&args(&list)).unwrap();
        let mut again =
            Precreate::parse(&hookhost_guest::serde_json::to_vec(&once).unwrap()).unwrap();
        gpu.apply(&mut again).unwrap();
        assert_eq!(again.document(), &once);
    }

    #[test]
    fn bad_arguments_are_refused_with_the_fix() {
        let err = |list: &[&str]| Gpu::from_args(&args(list)).unwrap_err();
        assert!(err(&[]).contains("no --device given"));
        assert!(err(&["--device"]).contains("--device needs a value"));
        assert!(err(&["--gpu", "0"]).contains("unknown argument \"--gpu\""));
        for (device, why) in [
            ("/dev/gpu0", "no '='"),
            ("/tmp/gpu0=c:1:3", "under /dev/"),
            ("/dev/gpu=c:1:3", "end in its index"),
            ("/dev/gpu0=p:1:3", "c:MAJOR:MINOR"),
            ("/dev/gpu0=c:x:3", "numbers"),
        ] {
            let e = err(&["--device", device]);
            assert!(
                e.contains(why) && e.contains("/dev/gpuN=c:MAJOR:MINOR"),
                "{e}"
            );
        }
        let e = err(&["--device", "/dev/gpu0=c:1:3", "--mount", "opt:/opt/gpu"]);
        assert!(
            e.contains("absolute") && e.contains("/HOST/DIR:/CONTAINER/DIR"),
            "{e}"
        );
    }
}
