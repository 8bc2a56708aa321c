//! Shared helpers for the integration tests: a hookhost with its own registry, real OCI
//! bundles with a busybox-static rootfs, and real runc.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;
use tempfile::TempDir;

pub mod containerd;
pub mod engines;
pub mod forky;
pub mod hooksd_cases;
pub mod oci;
pub mod podman;

use forky::Stack;

pub const HOOKHOST: &str = env!("CARGO_BIN_EXE_hookhost");

/// Applets linked into every test rootfs.
const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "sleep", "touch", "grep", "top", "id", "env", "true", "false", "ip",
];

/// The stage executable beside the hookhost under test: built by `scripts/build-stage.sh dev`,
/// which scripts/test.sh runs before the tests, so that every engine test's containers run it.
pub fn stage_exe() -> PathBuf {
    small_exe(hookhost_types::STAGE_EXECUTABLE)
}

/// The small runtime wrapper beside the hookhost under test (built with the stage executable),
/// which every engine test's runtime calls go through.
pub fn runtime_exe() -> PathBuf {
    small_exe(hookhost_types::RUNTIME_EXECUTABLE)
}

/// `dir/hookhost-runtime`, a link to [`runtime_exe`]: the wrapper as engines are given it.
pub fn link_runtime_exe(dir: &Path) -> PathBuf {
    let link = dir.join(hookhost_types::RUNTIME_EXECUTABLE);
    symlink(runtime_exe(), &link).unwrap();
    link
}

fn small_exe(name: &str) -> PathBuf {
    let exe = Path::new(HOOKHOST).with_file_name(name);
    assert!(
        exe.is_file(),
        "{} is missing: build it with `scripts/build-stage.sh dev` (scripts/test.sh does)",
        exe.display()
    );
    exe
}

/// `cmd`'s output, whatever its status. An executable a test has just copied (as
/// [`Host::installed`] does) may still be open for writing in a child that another test's
/// thread forked during the copy, until that child execs: `ETXTBSY`, retried for a while.
pub fn output_of(cmd: &mut Command) -> Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            result => return result.unwrap(),
        }
    }
    panic!("{cmd:?}: executable busy for 2 s")
}

/// Fails loudly when a test that needs root or a system tool cannot run: in CI these must all
/// run, so a silent skip would hide a broken setup.
pub fn require(tool: &str) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (it runs real containers)"
    );
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "this test needs `{tool}` installed (see .ci/run)"
    );
}

/// A unique name for containers, hooks and files of one test.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// A hookhost with its own registry root.
pub struct Host {
    pub dir: TempDir,
    /// The hookhost it runs, where the stack under test can run it too (what `inject` and
    /// `export` write into config.json and hooks.d files).
    bin: PathBuf,
}

impl Host {
    pub fn new() -> Self {
        Host::on(Stack::under_test())
    }

    pub fn on(stack: Stack) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin = forky::visible_binary(stack, dir.path());
        Host { dir, bin }
    }

    /// A hookhost installed in a directory of its own, `dir/bin`: `hookhost` alone, or with
    /// the small executables beside it ([`stage_exe`], [`runtime_exe`]).
    pub fn installed(with_small: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let bin_dir = dir.path().join("bin");
        fs::create_dir(&bin_dir).unwrap();
        let bin = bin_dir.join("hookhost");
        fs::copy(HOOKHOST, &bin).unwrap();
        if with_small {
            fs::copy(stage_exe(), bin_dir.join(hookhost_types::STAGE_EXECUTABLE)).unwrap();
            fs::copy(
                runtime_exe(),
                bin_dir.join(hookhost_types::RUNTIME_EXECUTABLE),
            )
            .unwrap();
        }
        Host { dir, bin }
    }

    /// The hookhost executable it runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn cmd(&self) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.env("HOOKHOST_ROOT", self.root())
            .env_remove("HOOKHOST_LOG");
        cmd
    }

    /// Runs hookhost with `args`; returns the output whatever the status.
    pub fn run(&self, args: &[&str]) -> Output {
        output_of(self.cmd().args(args))
    }

    /// Runs hookhost and panics with its stderr if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "hookhost {args:?} failed: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Runs hookhost, expects failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "hookhost {args:?} should have failed: {}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// A snapshot of every file under the registry root, to prove a command changed nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        walk(&self.root(), &mut files);
        files.sort();
        files
    }

    /// Writes an executable shell script and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// A Podman-style precreate hook running `python3 -c CODE` with `c` the config it got on
    /// stdin, written back to stdout after CODE; its path.
    pub fn python_precreate(&self, name: &str, code: &str) -> String {
        let body = format!(
            "exec python3 -c 'import json, sys\nc = json.load(sys.stdin)\n{code}\njson.dump(c, sys.stdout)'"
        );
        self.script(&format!("{name}.sh"), &body)
            .to_str()
            .unwrap()
            .to_string()
    }

    /// Registers the `noop` example module as the precreate hook `noop` (it drains its input and
    /// changes nothing), global (`--when-always`) or selected by annotation only.
    pub fn noop_precreate(&self, global: bool) {
        let module = example_wasm("noop");
        let mut create = vec!["create", "--type", "precreate"];
        if global {
            create.push("--when-always");
        }
        self.ok(&[&create[..], &["noop", module.to_str().unwrap()]].concat());
    }

    /// Registers a precreate hook `name` granted `grant` that asks for the CDI `devices` with
    /// the standard annotation key `cdi.k8s.io/NAME`, as a native hook would (the SDK's
    /// `add_cdi_device` writes `cdi.k8s.io/hookhost`); `extra`: more `create` flags
    /// (conditions).
    pub fn cdi_requester(&self, name: &str, grant: &str, devices: &str, extra: &[&str]) {
        let script = self.python_precreate(
            name,
            &format!("c.setdefault(\"annotations\", {{}})[\"cdi.k8s.io/{name}\"] = \"{devices}\""),
        );
        let create = ["create", "--type", "precreate", "--may-adjust", grant];
        self.ok(&[&create[..], extra, &[name, &script]].concat());
    }

    /// Registers the shell script `body` as the hook `name` at `stage`.
    pub fn script_hook(&self, name: &str, stage: &str, body: &str) {
        let script = self.script(&format!("{name}.sh"), body);
        self.ok(&["create", "--type", stage, name, script.to_str().unwrap()]);
    }
}

/// Runs `cmd` whose children keep its stdio (a created container's init holds runc's): with
/// stdio closed, so that waiting for it does not wait for them; its status.
pub fn detached(cmd: &mut Command) -> std::process::ExitStatus {
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
}

/// The lines of a file a hook appends to; none when it was never written.
pub fn lines(file: &Path) -> Vec<String> {
    fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Every file under `dir` with its content, by path.
pub fn files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut all = Vec::new();
    walk(dir, &mut all);
    all.into_iter().collect()
}

/// Every regular file under `dir` with its bytes (symlinks are not followed).
pub fn walk(dir: &Path, files: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, files);
        } else {
            files.push((path.clone(), fs::read(&path).unwrap_or_default()));
        }
    }
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// An OCI bundle made by `runc spec`, with a busybox-static rootfs.
pub struct Bundle {
    pub dir: TempDir,
}

impl Bundle {
    /// A bundle whose container runs `sh -c SCRIPT`, with a writable rootfs.
    pub fn new(script: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rootfs = dir.path().join("rootfs");
        for sub in ["bin", "tmp", "etc", "proc", "dev", "sys"] {
            fs::create_dir_all(rootfs.join(sub)).unwrap();
        }
        fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", rootfs.join("bin").join(applet)).unwrap();
        }
        let spec = Command::new("runc")
            .arg("spec")
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(spec.status.success(), "runc spec: {}", text(&spec.stderr));
        let bundle = Bundle { dir };
        bundle.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = serde_json::json!(["sh", "-c", script]);
            c["root"]["readonly"] = false.into();
        });
        bundle
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> &str {
        self.dir.path().to_str().unwrap()
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    pub fn config_file(&self) -> PathBuf {
        self.dir.path().join("config.json")
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&fs::read(self.config_file()).unwrap()).unwrap()
    }

    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut config = self.config();
        f(&mut config);
        fs::write(
            self.config_file(),
            serde_json::to_vec_pretty(&config).unwrap(),
        )
        .unwrap();
    }
}

/// runc with its own state root, so tests never see each other's containers.
pub struct Runc {
    pub root: TempDir,
    pub stack: Stack,
}

impl Runc {
    pub fn new() -> Self {
        Runc::on(Stack::under_test())
    }

    pub fn on(stack: Stack) -> Self {
        stack.require("runc");
        Runc {
            root: tempfile::tempdir().unwrap(),
            stack,
        }
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("runc");
        cmd.arg("--root").arg(self.root.path()).args(args);
        self.stack.wrap(cmd)
    }

    /// `runc run --bundle B ID`, in the foreground; returns the output.
    pub fn run(&self, bundle: &Bundle, id: &str) -> Output {
        let out = self
            .cmd(&["run", "--bundle", bundle.path_str(), id])
            .output()
            .unwrap();
        // A failed run can leave a stopped container behind; never leak it.
        let _ = self.cmd(&["delete", "--force", id]).output();
        out
    }
}

/// Builds the example WASM hooks (once per test process) and returns the module's path.
pub fn example_wasm(name: &str) -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let dir = DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
        let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .current_dir(root)
            .args(["build", "--release", "--target", "wasm32-wasip1"])
            .args([
                "-p",
                "deny-privileged",
                "-p",
                "hosts-entry",
                "-p",
                "audit-log",
                "-p",
                "noop",
                "-p",
                "gpu-env",
                "-p",
                "sdk-minimal",
            ])
            .arg("--target-dir")
            .arg(&target)
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the example hooks for wasm32-wasip1 failed"
        );
        target.join("wasm32-wasip1/release")
    });
    dir.join(format!("{name}.wasm"))
}

/// Compiles a WAT fixture from tests/fixtures/wasm into a .wasm file under `dir`.
pub fn wat_module(dir: &Path, name: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/wasm")
        .join(format!("{name}.wat"));
    let bytes = wat::parse_file(&source).unwrap();
    let out = dir.join(format!("{name}.wasm"));
    fs::write(&out, bytes).unwrap();
    out
}

/// A WASI command whose `_start` is `depth` nested empty loops: a few bytes per level, and
/// quadratic work for Cranelift (20,000 levels took 65 s and 245 MB to compile).
pub fn nested_loops(dir: &Path, depth: usize) -> PathBuf {
    let mut body = vec![0u8]; // no locals
    for _ in 0..depth {
        body.extend([0x03, 0x40]); // loop (empty block type)
    }
    body.extend(std::iter::repeat_n(0x0b, depth + 1)); // end of each loop, then of the body
    let mut code = leb(1);
    code.extend(leb(body.len()));
    code.extend(body);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    let sections: [(u8, Vec<u8>); 4] = [
        (1, vec![1, 0x60, 0, 0]),                        // type 0: [] -> []
        (3, vec![1, 0]),                                 // function 0 has type 0
        (7, [&[1, 6][..], b"_start", &[0, 0]].concat()), // export "_start" = func 0
        (10, code),
    ];
    for (id, content) in sections {
        module.push(id);
        module.extend(leb(content.len()));
        module.extend(content);
    }
    let file = dir.join(format!("loops{depth}.wasm"));
    fs::write(&file, module).unwrap();
    file
}

fn leb(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// What a container given a GPU by the gpu-env example prints, and the command that prints it.
pub const GPU_PROBE: &str = "echo \"$GPU_VISIBLE $GPU_DRIVER_CAPABILITIES\"; cat /opt/gpu/libgpu.so; \
    test -c /dev/gpu0 && echo char-device; \
    touch /opt/gpu/x 2>/dev/null && echo writable || echo read-only";
pub const GPU_PROBE_SAYS: &str = "0 compute,utility\ndriver\nchar-device\nread-only\n";

impl Host {
    /// Registers the gpu-env example as precreate hook `name` with `grants` (where `{driver}`
    /// stands for the host directory it mounts): a device /dev/gpu0 (1:3, the null device) and
    /// a read-only mount at /opt/gpu of a host directory (made under `dir`) holding
    /// libgpu.so; `extra` flags for `create` (conditions).
    pub fn gpu_env(&self, name: &str, grants: &str, dir: &Path, extra: &[&str]) {
        let driver = dir.join("gpu");
        let grants = grants.replace("{driver}", driver.to_str().unwrap());
        let grants = grants.as_str();
        fs::create_dir_all(&driver).unwrap();
        fs::write(driver.join("libgpu.so"), "driver\n").unwrap();
        let args = format!(
            "gpu-env,--device,/dev/gpu0=c:1:3,--mount,{}:/opt/gpu",
            driver.display()
        );
        let module = example_wasm("gpu-env");
        let mut create = vec!["create", "--type", "precreate", "--may-adjust", grants];
        create.extend(["--args", &args]);
        create.extend_from_slice(extra);
        create.extend([name, module.to_str().unwrap()]);
        self.ok(&create);
    }

    /// `hookhost inject --bundle B --add-hook S…`, which must succeed.
    pub fn inject(&self, bundle: &Bundle, selections: &[&str]) -> String {
        let mut args = vec!["inject", "--bundle", bundle.path_str()];
        for selection in selections {
            args.extend(["--add-hook", selection]);
        }
        self.ok(&args)
    }
}

/// The seed's registration, word for word.
pub const SEED_CREATE: &[&str] = &[
    "create",
    "--type",
    "prestart",
    "--env",
    "platform=linux",
    "--timeout",
    "5",
    "--args",
    "ls,/tmp/a",
    "myFirstHook",
    "/bin/ls",
];

/// The stdout of a command that must have succeeded; its output in the panic otherwise.
pub fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A tmpfs mounted for one test, unmounted on drop.
pub struct Tmpfs {
    mount_point: PathBuf,
    _dir: Option<TempDir>,
}

impl Tmpfs {
    /// Mounted on a fresh temp dir.
    pub fn new(options: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let mut tmpfs = Tmpfs::at(dir.path(), options);
        tmpfs._dir = Some(dir);
        tmpfs
    }

    /// Mounted on `dir`, which must exist.
    pub fn at(dir: &Path, options: &str) -> Tmpfs {
        require("mount");
        mount(&["-t", "tmpfs", "-o", options, "tmpfs", dir.to_str().unwrap()]);
        Tmpfs {
            mount_point: dir.to_path_buf(),
            _dir: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.mount_point
    }

    /// `mount -o remount,OPTIONS`, e.g. `ro` or `rw`.
    pub fn remount(&self, options: &str) {
        mount(&[
            "-o",
            &format!("remount,{options}"),
            self.path().to_str().unwrap(),
        ]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount_point).status();
    }
}

fn mount(args: &[&str]) {
    let out = Command::new("mount").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "mount {args:?}: {}",
        text(&out.stderr)
    );
}

/// xorshift64*: enough randomness for delays and choices; the seed is printed so a failure can
/// be replayed with `HOOKHOST_FAULT_SEED`.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = std::env::var("HOOKHOST_FAULT_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                t.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        eprintln!("fault seed: HOOKHOST_FAULT_SEED={seed}");
        Rng(seed | 1)
    }

    /// A generator of its own, seeded from this one (one per thread).
    pub fn split(&mut self) -> Rng {
        Rng(self.next() | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The plan files hookhost wrote into a bundle directory (`hookhost-plan-SHA256.json`).
pub fn plan_files(bundle: &Path) -> Vec<PathBuf> {
    fs::read_dir(bundle)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with("hookhost-plan-") && name.ends_with(".json")
        })
        .collect()
}

/// Passes Prometheus text through `promtool check metrics`; panics with what it says otherwise.
pub fn check_metrics(metrics: &str) {
    use std::io::Write;
    use std::process::Stdio;
    require("promtool");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool: {}{}",
        text(&checked.stdout),
        text(&checked.stderr)
    );
}
