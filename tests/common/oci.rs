//! A real OCI registry (Debian's `docker-registry`, on a free loopback port with its own
//! storage) and the real `oras` and `cosign` (scripts/oci-tools.sh), for the OCI and fleet
//! tests.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use tempfile::TempDir;

use super::engines::wait_for;
use super::{require, text};

/// A `docker-registry` of this test: killed, and its storage removed, on drop.
pub struct Registry {
    pub dir: TempDir,
    pub addr: String,
    child: Child,
}

impl Registry {
    pub fn start() -> Registry {
        Registry::start_with("")
    }

    /// A registry whose config.yml ends with `extra` (YAML at the top level).
    pub fn start_with(extra: &str) -> Registry {
        require("docker-registry");
        require("curl");
        let dir = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let config = dir.path().join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: {addr}\n{extra}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = serve(&config);
        let registry = Registry { dir, addr, child };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let url = format!("http://{}/v2/", self.addr);
        wait_for("docker-registry", Duration::from_secs(20), || {
            // Any HTTP answer (401 when auth is on) means it is serving.
            curl(&["-s", "-o", "/dev/null", &url]).status.success()
        });
    }

    /// Stops serving (the storage stays).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Serves again, on the same address, from the same storage.
    pub fn restart(&mut self) {
        self.child = serve(&self.dir.path().join("config.yml"));
        self.wait_ready();
    }

    /// `oci://ADDR/hooks/NAME`, the reference hookhost takes.
    pub fn oci(&self, repo_tag: &str) -> String {
        format!("oci://{}/hooks/{repo_tag}", self.addr)
    }

    /// `ADDR/hooks/NAME`, the reference oras and cosign take.
    pub fn plain(&self, repo_tag: &str) -> String {
        format!("{}/hooks/{repo_tag}", self.addr)
    }

    /// Pushes `module` with oras in the Wasm artifact layout; returns the manifest digest.
    pub fn oras_push(&self, repo_tag: &str, module: &Path) -> String {
        let dir = tempfile::tempdir().unwrap();
        fs::copy(module, dir.path().join("module.wasm")).unwrap();
        fs::write(dir.path().join("cfg.json"), "{}").unwrap();
        tool(
            "oras",
            dir.path(),
            &[
                "push",
                "--plain-http",
                "--config",
                "cfg.json:application/vnd.wasm.config.v0+json",
                &self.plain(repo_tag),
                "module.wasm:application/wasm",
            ],
        );
        let digest = tool(
            "oras",
            dir.path(),
            &["resolve", "--plain-http", &self.plain(repo_tag)],
        );
        digest.trim().to_string()
    }

    /// The file of a blob in the registry's storage.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Uploads a blob from a file with the registry API (monolithic upload).
    pub fn upload(&self, repo: &str, file: &Path) -> String {
        let digest = format!("sha256:{}", sha256_file(file));
        let start = curl(&[
            "-sf",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "POST",
            &format!("http://{}/v2/hooks/{repo}/blobs/uploads/", self.addr),
        ]);
        let headers = text(&start.stdout);
        let location = headers
            .lines()
            .find_map(|l| {
                l.strip_prefix("Location: ")
                    .or(l.strip_prefix("location: "))
            })
            .unwrap()
            .trim();
        let url = if location.starts_with("http") {
            location.to_string()
        } else {
            format!("http://{}{location}", self.addr)
        };
        let sep = if url.contains('?') { '&' } else { '?' };
        // -T streams the file (--data-binary would read all of it into memory).
        let done = curl(&[
            "-sf",
            "-H",
            "Content-Type: application/octet-stream",
            "-T",
            file.to_str().unwrap(),
            &format!("{url}{sep}digest={digest}"),
        ]);
        assert!(done.status.success(), "{}", text(&done.stderr));
        digest
    }

    /// Pushes a manifest document under a tag.
    pub fn put_manifest(&self, repo_tag: &str, manifest: &Value) {
        let (repo, tag) = repo_tag.split_once(':').unwrap();
        let out = curl(&[
            "-sf",
            "-X",
            "PUT",
            "-H",
            "Content-Type: application/vnd.oci.image.manifest.v1+json",
            "--data-binary",
            &manifest.to_string(),
            &format!("http://{}/v2/hooks/{repo}/manifests/{tag}", self.addr),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(config: &Path) -> Child {
    Command::new("docker-registry")
        .arg("serve")
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn curl(args: &[&str]) -> Output {
    Command::new("curl").args(args).output().unwrap()
}

pub fn sha256_file(file: &Path) -> String {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut fs::File::open(file).unwrap(), &mut hasher).unwrap();
    hex::encode(hasher.finalize())
}

/// scripts/oci-tools.sh's bin directory.
pub fn tools_dir() -> PathBuf {
    let dir = std::env::var_os("HOOKHOST_OCI_TOOLS_DIR").map_or_else(
        || PathBuf::from("/var/cache/hookhost-oci-tools"),
        PathBuf::from,
    );
    let bin = dir.join("bin");
    assert!(
        bin.join("oras").exists() && bin.join("cosign").exists(),
        "this test needs oras and cosign: run scripts/oci-tools.sh (scripts/setup.sh does)"
    );
    bin
}

/// Runs oras or cosign in `dir`; panics with its output if it fails.
pub fn tool(name: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(tools_dir().join(name))
        .current_dir(dir)
        .args(args)
        .env("COSIGN_PASSWORD", "test")
        .env("HOME", dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} {args:?}: {}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A cosign key pair in its own directory: (dir, cosign.key, cosign.pub).
pub fn key_pair() -> (TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    tool("cosign", dir.path(), &["generate-key-pair"]);
    let key = dir.path().join("cosign.key");
    let public = dir.path().join("cosign.pub");
    (dir, key, public)
}

/// Signs `plain@digest` with cosign, offline, in the bundle format or the legacy one.
pub fn cosign_sign(key: &Path, target: &str, legacy: bool) {
    let mut args = vec![
        "sign",
        "--key",
        key.to_str().unwrap(),
        "--allow-http-registry",
        "--use-signing-config=false",
        "--tlog-upload=false",
        "-y",
    ];
    if legacy {
        args.push("--new-bundle-format=false");
    }
    args.push(target);
    tool("cosign", key.parent().unwrap(), &args);
}
