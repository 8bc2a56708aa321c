//! WASM hooks from OCI registries, against a real registry (Debian's `docker-registry`,
//! started here on a free loopback port with its own storage) and the real `oras` and
//! `cosign` (scripts/oci-tools.sh): pull, push, signature policy, bad input, progress.

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::oci::{Registry, cosign_sign, curl, free_port, key_pair, sha256_file, tool};
use common::{Bundle, Host, Runc, example_wasm, nested_loops, require, text, unique};
use serde_json::Value;

fn inspect(host: &Host, name: &str) -> Value {
    let docs: Value = serde_json::from_str(&host.ok(&["inspect", name])).unwrap();
    docs[0].clone()
}

fn sha256_of(file: &Path) -> String {
    format!("sha256:{}", sha256_file(file))
}

#[test]
fn a_hook_pulled_by_tag_runs_in_runc_and_keeps_its_module_when_the_tag_moves() {
    let registry = Registry::start();
    let host = Host::new();
    let hosts_entry = example_wasm("hosts-entry");
    let digest = registry.oras_push("hosts:v1", &hosts_entry);
    let reference = registry.oci("hosts:v1");
    host.ok(&[
        "create",
        "--type",
        "createContainer",
        "--allow-rootfs=rw",
        "--args",
        "hosts-entry,db.internal=10.0.0.5",
        "hosts",
        &reference,
    ]);
    let registered = inspect(&host, "hosts");
    assert_eq!(registered["Path"], reference.as_str());
    assert_eq!(registered["Source"]["Reference"], reference.as_str());
    assert_eq!(registered["Source"]["ManifestDigest"], digest.as_str());
    assert_eq!(
        registered["Source"]["ModuleDigest"],
        sha256_of(&hosts_entry).as_str()
    );
    assert!(registered["Source"].get("Signer").is_none(), "{registered}");

    // The tag now names another module: the registered hook does not follow it.
    registry.oras_push("hosts:v1", &example_wasm("noop"));
    assert_eq!(inspect(&host, "hosts"), registered);

    let bundle = Bundle::new("cat /etc/hosts");
    host.inject(&bundle, &["hosts"]);
    let out = Runc::new().run(&bundle, &unique("oci"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let hosts = text(&out.stdout);
    assert!(
        hosts
            .lines()
            .any(|l| l.split_whitespace().eq(["10.0.0.5", "db.internal"])),
        "{hosts}"
    );
}

/// A hook from a registry that could never run (a NUL in an argument, 20 MB of arguments) is
/// refused by `create` and `apply` as a local one is, and nothing is registered or stored.
#[test]
fn a_pulled_hook_that_can_never_run_is_refused_and_nothing_is_stored() {
    let registry = Registry::start();
    let host = Host::new();
    registry.oras_push("noop:v1", &example_wasm("noop"));
    let reference = registry.oci("noop:v1");
    host.ok(&["ls"]);
    let before = host.snapshot();
    let nul = serde_json::json!(["noop", "a\0b"]);
    let err = host.fails(&["create", "--args", &nul.to_string(), "never", &reference]);
    assert!(err.contains("hook never could never run"), "{err}");
    assert!(err.contains("NUL"), "{err}");
    assert_eq!(host.snapshot(), before);
    let huge = serde_json::json!(vec!["A".repeat(100_000); 200]);
    let dir = tempfile::tempdir().unwrap();
    for (args, reason) in [(nul, "NUL"), (huge, "total")] {
        let file = dir.path().join("hooks.json");
        let entry = serde_json::json!([{"Name": "never", "Path": reference, "Args": args}]);
        fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
        let err = host.fails(&["apply", "-f", file.to_str().unwrap()]);
        assert!(err.contains("hook never could never run"), "{err}");
        assert!(err.contains(reason), "{err}");
        assert_eq!(host.snapshot(), before);
    }
}

#[test]
fn what_hookhost_push_writes_oras_pulls_identically_and_hookhost_pull_stores_unregistered() {
    let registry = Registry::start();
    let host = Host::new();
    let module = example_wasm("audit-log");
    host.ok(&["create", "audit", module.to_str().unwrap()]);
    let reference = registry.oci("audit:v2");
    let pushed = host.ok(&["push", "audit", &reference]);
    let digest = pushed.trim().rsplit_once('@').unwrap().1.to_string();

    let out = tempfile::tempdir().unwrap();
    tool(
        "oras",
        out.path(),
        &[
            "pull",
            "--plain-http",
            "-o",
            ".",
            &registry.plain("audit:v2"),
        ],
    );
    assert_eq!(
        fs::read(out.path().join("audit.wasm")).unwrap(),
        fs::read(&module).unwrap()
    );
    let resolved = tool(
        "oras",
        out.path(),
        &["resolve", "--plain-http", &registry.plain("audit:v2")],
    );
    assert_eq!(resolved.trim(), digest);

    let other = Host::new();
    let pulled: Value = serde_json::from_str(&other.ok(&["pull", &reference])).unwrap();
    assert_eq!(pulled["ManifestDigest"], digest.as_str());
    let module_digest = sha256_of(&module);
    assert_eq!(pulled["ModuleDigest"], module_digest.as_str());
    let stored = other.root().join("modules").join(format!(
        "{}.wasm",
        module_digest.strip_prefix("sha256:").unwrap()
    ));
    assert_eq!(
        fs::read(&stored).unwrap(),
        fs::read(&module).unwrap(),
        "{stored:?}"
    );
    assert_eq!(other.ok(&["ls", "-q"]).trim(), "");
}

#[test]
fn cosign_signatures_in_both_formats_verify_and_the_signer_is_recorded() {
    let registry = Registry::start();
    let (_keys, key, public) = key_pair();
    let module = example_wasm("noop");
    for (repo, legacy, format) in [
        ("bundle", false, "sigstore-bundle"),
        ("legacy", true, "simple-signing"),
    ] {
        let digest = registry.oras_push(&format!("{repo}:v1"), &module);
        cosign_sign(&key, &format!("{}@{digest}", registry.plain(repo)), legacy);
        let host = Host::new();
        host.ok(&[
            "create",
            "--verify-key",
            public.to_str().unwrap(),
            repo,
            &registry.oci(&format!("{repo}:v1")),
        ]);
        let signer = &inspect(&host, repo)["Source"]["Signer"];
        assert_eq!(signer["Format"], format, "{signer}");
        assert_eq!(signer["Key"], public.to_str().unwrap());
        assert!(signer["KeyDigest"].as_str().unwrap().starts_with("sha256:"));
    }
    // cosign itself agrees that both verify.
    for repo in ["bundle:v1", "legacy:v1"] {
        tool(
            "cosign",
            public.parent().unwrap(),
            &[
                "verify",
                "--key",
                public.to_str().unwrap(),
                "--insecure-ignore-tlog",
                "--allow-http-registry",
                &registry.plain(repo),
            ],
        );
    }
}

/// Runs a create that must be refused with `expected` in its message, and proves the
/// registry did not change.
fn refused(host: &Host, args: &[&str], expected: &str) -> String {
    let before = host.snapshot();
    let err = host.fails(args);
    assert!(err.contains(expected), "{args:?}: {err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert_eq!(host.snapshot(), before, "{args:?} changed the registry");
    err
}

/// [`refused`] for `create --verify-key KEY h REFERENCE`.
fn refused_with_key(host: &Host, key: &str, reference: &str, expected: &str) -> String {
    refused(
        host,
        &["create", "--verify-key", key, "h", reference],
        expected,
    )
}

#[test]
fn wrong_keys_unsigned_artifacts_and_tampered_layers_are_refused_and_nothing_is_written() {
    let registry = Registry::start();
    let (keys, key, public) = key_pair();
    let (_other_keys, _, wrong) = key_pair();
    let host = Host::new();
    host.ok(&["create", "kept", example_wasm("noop").to_str().unwrap()]);
    let digest = registry.oras_push("signed:v1", &example_wasm("deny-privileged"));
    cosign_sign(
        &key,
        &format!("{}@{digest}", registry.plain("signed")),
        false,
    );
    let public = public.to_str().unwrap();

    let err = refused_with_key(
        &host,
        wrong.to_str().unwrap(),
        &registry.oci("signed:v1"),
        "does not verify with the key",
    );
    assert!(err.contains(&digest), "{err}");

    registry.oras_push("unsigned:v1", &example_wasm("hosts-entry"));
    refused_with_key(
        &host,
        public,
        &registry.oci("unsigned:v1"),
        "it is unsigned: no cosign signature was found",
    );
    // The advice is a command the real cosign runs, offline, as printed (in the directory of
    // the key pair): then the artifact verifies.
    registry.oras_push("advice:v1", &example_wasm("hosts-entry"));
    let err = refused_with_key(&host, public, &registry.oci("advice:v1"), "it is unsigned");
    let advice = err.split('`').nth(1).unwrap_or_else(|| panic!("{err}"));
    assert!(
        advice.starts_with("cosign sign --key cosign.key "),
        "{advice}"
    );
    assert!(!advice.contains("oci://"), "{advice}");
    let words: Vec<&str> = advice.split_whitespace().skip(1).collect();
    tool("cosign", keys.path(), &words);
    host.ok(&[
        "create",
        "--verify-key",
        public,
        "advised",
        &registry.oci("advice:v1"),
    ]);

    // The signed manifest is intact; its module blob is rewritten in the registry's storage.
    let layer = sha256_of(&example_wasm("deny-privileged"));
    fs::write(
        registry.blob_file(&layer),
        fs::read(example_wasm("noop")).unwrap(),
    )
    .unwrap();
    refused_with_key(&host, public, &registry.oci("signed:v1"), "was altered");

    // A key file another user could replace is not trusted.
    let writable = keys.path().join("writable.pub");
    fs::copy(public, &writable).unwrap();
    fs::set_permissions(
        &writable,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    refused_with_key(
        &host,
        writable.to_str().unwrap(),
        &registry.oci("unsigned:v1"),
        "it is writable by its group and other users",
    );

    // A valid signature replayed for another manifest: the legacy .sig of `signed` copied
    // to the tag cosign would look under for `replayed`.
    cosign_sign(
        &key,
        &format!("{}@{digest}", registry.plain("signed")),
        true,
    );
    let other = registry.oras_push("signed:replayed", &example_wasm("hosts-entry"));
    let manifest = curl(&[
        "-sf",
        "-H",
        "Accept: application/vnd.oci.image.manifest.v1+json",
        &format!(
            "http://{}/v2/hooks/signed/manifests/{}.sig",
            registry.addr,
            digest.replacen(':', "-", 1)
        ),
    ]);
    let manifest: Value = serde_json::from_slice(&manifest.stdout).unwrap();
    registry.put_manifest(
        &format!("signed:{}.sig", other.replacen(':', "-", 1)),
        &manifest,
    );
    let err = refused_with_key(
        &host,
        public,
        &registry.oci("signed:replayed"),
        &format!("the signature is valid but signs {digest}, not {other}"),
    );
    assert!(
        err.contains("simple-signing") || err.contains(".sig"),
        "{err}"
    );

    // The config file's policy: every OCI hook must be signed.
    let config = host.dir.path().join("config.json");
    fs::write(
        &config,
        serde_json::json!({"verifyKeys": [public], "requireSignatures": true}).to_string(),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    refused(
        &host,
        &[
            "--config",
            config,
            "create",
            "h",
            &registry.oci("unsigned:v1"),
        ],
        "it is unsigned",
    );
    let digest = registry.oras_push("signed2:v1", &example_wasm("noop"));
    cosign_sign(
        &key,
        &format!("{}@{digest}", registry.plain("signed2")),
        false,
    );
    host.ok(&[
        "--config",
        config,
        "create",
        "h",
        &registry.oci("signed2:v1"),
    ]);
    assert_eq!(
        inspect(&host, "h")["Source"]["Signer"]["Format"],
        "sigstore-bundle"
    );
}

/// `pull` compiles under the config file's bounds as `create` does: a module too costly to
/// compile (20,000 nested loops) is refused with the bound, and nothing is written.
#[test]
fn a_pulled_module_too_costly_to_compile_is_refused() {
    let registry = Registry::start();
    let host = Host::new();
    let module = nested_loops(host.dir.path(), 20_000);
    registry.oras_push("loops:v1", &module);
    let config = host.dir.path().join("config.json");
    fs::write(&config, r#"{"compileCpuTime": 1}"#).unwrap();
    let reference = registry.oci("loops:v1");
    refused(
        &host,
        &["--config", config.to_str().unwrap(), "pull", &reference],
        "compiling it used more than its bound of 1s of CPU time and was stopped",
    );
}

#[test]
fn bad_references_and_registries_are_clear_errors_that_write_nothing() {
    let registry = Registry::start();
    let host = Host::new();
    host.ok(&["create", "kept", example_wasm("noop").to_str().unwrap()]);

    refused(
        &host,
        &["create", "h", "https://example.com/hooks/x:v1"],
        "unsupported reference \"https://example.com/hooks/x:v1\"",
    );
    refused(
        &host,
        &["create", "h", "oci://hooks/x:v1"],
        "name the registry host",
    );
    let nobody = format!("oci://127.0.0.1:{}/hooks/x:v1", free_port());
    refused(
        &host,
        &["create", "h", &nobody],
        "cannot fetch the manifest",
    );
    // Not loopback: HTTPS, and the error says how to allow plain HTTP.
    let remote = format!("oci://0.0.0.0:{}/hooks/x:v1", free_port());
    refused(&host, &["create", "h", &remote], "insecureRegistries");
    refused(
        &host,
        &["create", "h", &registry.oci("missing:v1")],
        "cannot fetch the manifest",
    );

    // Not a Wasm artifact: oras's default layout (empty config, a plain file).
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    tool(
        "oras",
        dir.path(),
        &[
            "push",
            "--plain-http",
            &registry.plain("notes:v1"),
            "notes.txt",
        ],
    );
    refused(
        &host,
        &["create", "h", &registry.oci("notes:v1")],
        "is not a WebAssembly artifact: its config has media type application/vnd.oci.empty.v1+json",
    );

    // A real 1 GiB layer (a sparse file uploaded through the registry API): refused from
    // its descriptor, and, when the manifest understates its size, after the limit.
    let big = dir.path().join("big.wasm");
    let file = fs::File::create(&big).unwrap();
    file.set_len(1 << 30).unwrap();
    drop(file);
    let config = dir.path().join("cfg.json");
    fs::write(&config, "{}").unwrap();
    let layer = registry.upload("big", &big);
    let config_digest = registry.upload("big", &config);
    for (tag, size) in [("v1", 1u64 << 30), ("v2", 8)] {
        registry.put_manifest(
            &format!("big:{tag}"),
            &serde_json::json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.wasm.config.v0+json",
                           "digest": config_digest, "size": 2},
                "layers": [{"mediaType": "application/wasm", "digest": layer, "size": size}],
            }),
        );
    }
    let err = refused(
        &host,
        &["create", "h", &registry.oci("big:v1")],
        "more than the limit",
    );
    assert!(err.contains("the module layer of"), "{err}");
    assert!(err.contains("is 1073741824 bytes"), "{err}");
    let err = refused(
        &host,
        &["create", "h", &registry.oci("big:v2")],
        "more than the limit",
    );
    assert!(err.contains(&format!("the blob {layer}")), "{err}");
    fs::remove_file(registry.blob_file(&layer)).unwrap();
}

#[test]
fn pulls_show_progress_on_a_terminal_only() {
    require("script");
    let registry = Registry::start();
    registry.oras_push("noop:v1", &example_wasm("noop"));
    let reference = registry.oci("noop:v1");
    let host = Host::new();
    // On a terminal (util-linux `script` gives hookhost a pty), with the delay shortened.
    let command = format!(
        "HOOKHOST_ROOT={} HOOKHOST_PROGRESS_DELAY_MS=0 {} create tty {reference}",
        host.root().display(),
        common::HOOKHOST
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stdout));
    let shown = text(&out.stdout);
    assert!(shown.contains(&format!("pulling {reference}")), "{shown:?}");
    assert!(shown.contains("\x1b[2K"), "{shown:?}");

    // Not a terminal: the same work prints nothing but the name.
    let out = host
        .cmd()
        .env("HOOKHOST_PROGRESS_DELAY_MS", "0")
        .args(["create", "piped", &reference])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    assert_eq!(text(&out.stdout), "piped\n");
}

/// bcrypt of "pw" (what `htpasswd -B` writes), the password of the user "ci".
const HTPASSWD: &str = "ci:$2b$12$EDu.yzallmoKnPHXspd66ePrtEoU8RjBV4NXgpyKh9VnSHUz4vHrC";
const PASSWORD: &str = "pw";

#[test]
fn credentials_come_from_the_docker_config_file() {
    let auth = tempfile::tempdir().unwrap();
    let htpasswd = auth.path().join("htpasswd");
    fs::write(&htpasswd, format!("{HTPASSWD}\n")).unwrap();
    let registry = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
        htpasswd.display()
    ));
    let host = Host::new();
    host.ok(&["create", "noop", example_wasm("noop").to_str().unwrap()]);
    let reference = registry.oci("private:v1");
    refused(
        &host,
        &["push", "noop", &reference],
        "log in with `docker login HOST`",
    );

    // What `docker login` writes: auths.HOST.auth = base64("user:password").
    use base64_like::encode;
    let docker = tempfile::tempdir().unwrap();
    fs::write(
        docker.path().join("config.json"),
        serde_json::json!({"auths": {registry.addr.clone(): {"auth": encode(&format!("ci:{PASSWORD}"))}}})
            .to_string(),
    )
    .unwrap();
    let with_login = |args: &[&str]| {
        host.cmd()
            .env("DOCKER_CONFIG", docker.path())
            .args(args)
            .output()
            .unwrap()
    };
    let out = with_login(&["push", "noop", &reference]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = with_login(&["create", "pulled", &reference]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    refused(
        &host,
        &["create", "anonymous", &reference],
        "log in with `docker login HOST`",
    );
}

/// Standard base64, enough for a test's `user:password`.
mod base64_like {
    pub fn encode(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in text.as_bytes().chunks(3) {
            let n =
                chunk.iter().fold(0u32, |n, b| n << 8 | u32::from(*b)) << (8 * (3 - chunk.len()));
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn encodes_like_base64() {
        assert_eq!(encode("ci:pw"), "Y2k6cHc=");
        assert_eq!(encode("user:pa:ss"), "dXNlcjpwYTpzcw==");
    }
}

/// `apply` of `inspect` output whose Path is an `oci://` reference: the other node pulls the
/// same module and ends with the same hook (apart from `Created`); a second run changes
/// nothing; `--dry-run` writes nothing.
#[test]
fn apply_pulls_oci_hooks_from_inspect_output() {
    let registry = Registry::start();
    let (a, b) = (Host::new(), Host::new());
    registry.oras_push("hosts:v2", &example_wasm("hosts-entry"));
    let reference = registry.oci("hosts:v2");
    a.ok(&[
        "create",
        "--type",
        "createContainer",
        "--allow-rootfs=rw",
        "hosts",
        &reference,
    ]);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hooks.json");
    std::fs::write(&file, a.ok(&["inspect", "hosts"])).unwrap();

    let dry = b.ok(&["apply", "-f", file.to_str().unwrap(), "--dry-run"]);
    assert!(dry.contains("would create hosts"), "{dry}");
    assert!(!b.root().join("hooks").exists() || b.ok(&["ls", "-q"]).is_empty());
    let first = b.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(first.contains("created hosts"), "{first}");
    let strip = |mut v: Value| {
        v.as_object_mut().unwrap().remove("Created");
        v.as_object_mut().unwrap().remove("Generation");
        v
    };
    assert_eq!(strip(inspect(&a, "hosts")), strip(inspect(&b, "hosts")));
    let second = b.ok(&["apply", "-f", file.to_str().unwrap()]);
    assert!(second.contains("no changes"), "{second}");
}

/// Issue 22, trap 11: a pushed hook's definition travels with its module (never its
/// variables' values); `pull` and `inspect` show it; `create NAME oci://…` takes what its
/// flags do not give, grants only with --accept-grants (or grants of the administrator's
/// own); a module file can be pushed too, with no definition.
#[test]
fn a_pushed_definition_travels_and_its_grants_need_the_administrators_yes() {
    let registry = Registry::start();
    let host = Host::new();
    let module = example_wasm("noop");
    let module = module.to_str().unwrap();
    host.ok(&[
        "create",
        "--type",
        "poststart,poststop",
        "--timeout",
        "7",
        "--env",
        "TOKEN=secret",
        "--allow-rootfs=rw",
        "audit",
        module,
    ]);
    let reference = registry.oci("defined:v1");
    host.ok(&["push", "audit", &reference]);

    let other = Host::new();
    let pulled = other.ok(&["pull", &reference]);
    assert!(!pulled.contains("secret"), "{pulled}");
    let pulled: Value = serde_json::from_str(&pulled).unwrap();
    let definition = &pulled["Definition"];
    assert_eq!(
        definition["Stages"],
        serde_json::json!(["poststart", "poststop"])
    );
    assert_eq!(definition["EnvNames"], serde_json::json!(["TOKEN"]));
    assert_eq!(definition["Grants"]["rootfs"], "rw");

    let err = refused(&other, &["create", "a", &reference], "--accept-grants");
    assert!(err.contains(r#""rootfs":"rw""#), "{err}");
    other.ok(&["create", "--accept-grants", "a", &reference]);
    let a = inspect(&other, "a");
    assert_eq!(a["Stages"], serde_json::json!(["poststart", "poststop"]));
    assert_eq!(a["Timeout"], 7);
    assert_eq!(a["Grants"]["rootfs"], "rw");
    assert_eq!(a["Env"], serde_json::json!([]), "values never travel");
    assert_eq!(a["Source"]["Definition"], *definition);
    // Grants of the administrator's own: the artifact's are not taken; given flags win.
    other.ok(&[
        "create",
        "--allow-bundle",
        "--type",
        "poststop",
        "b",
        &reference,
    ]);
    let b = inspect(&other, "b");
    assert_eq!(b["Grants"]["rootfs"], Value::Null);
    assert_eq!(b["Grants"]["bundle"], "ro");
    assert_eq!(b["Stages"], serde_json::json!(["poststop"]));

    // A module file: pushed alone, registered as any artifact without a definition.
    let file_ref = registry.oci("file:v1");
    host.ok(&["push", module, &file_ref]);
    let pulled: Value = serde_json::from_str(&other.ok(&["pull", &file_ref])).unwrap();
    assert_eq!(pulled.get("Definition"), None);
    other.ok(&["create", "c", &file_ref]);
    assert_eq!(
        inspect(&other, "c")["Stages"],
        serde_json::json!(["prestart"])
    );
    let err = host.fails(&["push", "/bin/true", &file_ref]);
    assert!(err.contains("not a WebAssembly module"), "{err}");
}
