//! Attacks on the grants of precreate hooks (issue "Grants that cannot be bypassed"), each
//! through the runtime wrapper on real runc and through `hookhost inject`: a hook that rewrites
//! config.json behind hookhost's back, paths that leave their granted directory, and bind
//! mounts of host paths nobody granted.

mod common;

use std::fs;

use common::engines::Setup;
use common::{Bundle, Host, text, unique, wat_module};
use serde_json::{Value, json};

/// A python precreate hook: `c` is the config it got on stdin; CODE runs; nothing is printed
/// unless CODE prints (an empty stdout means "unchanged").
fn python_hook(host: &Host, name: &str, code: &str) -> String {
    let body =
        format!("exec python3 -c 'import json, sys\nc = json.load(sys.stdin)\n{code}' \"$@\"");
    host.script(&format!("{name}.sh"), &body)
        .to_str()
        .unwrap()
        .to_string()
}

/// Registers a python precreate hook running CODE, granted `grants`; its name.
fn granted(host: &Host, prefix: &str, grants: &str, code: &str) -> String {
    let name = unique(prefix);
    let hook = python_hook(host, &name, code);
    host.ok(&[
        "create",
        "--type",
        "precreate",
        "--may-adjust",
        grants,
        &name,
        &hook,
    ]);
    name
}

/// What the hostile hooks write: the bundle's own config, running `echo EVIL` as uid 1234.
fn evil_config(bundle: &Bundle) -> Value {
    let mut config = bundle.config();
    config["process"]["args"] = json!(["sh", "-c", "echo EVIL"]);
    config["process"]["user"] = json!({"uid": 1234, "gid": 1234});
    config
}

fn select(bundle: &Bundle, hooks: &str) {
    bundle.edit(|c| c["annotations"] = json!({"io.hookhost.hooks": hooks}));
}

/// A native precreate hook with no grants rewrites config.json in the bundle and prints
/// nothing: the container is refused naming the hook, and config.json is as it was. With
/// `--on-failure ignore` the container runs the checked config, not the hook's.
#[test]
fn a_precreate_hook_rewriting_config_json_itself_is_refused() {
    let s = Setup::new();
    let rewrite = python_hook(
        &s.host,
        "rewrite",
        "c[\"process\"][\"args\"] = [\"sh\", \"-c\", \"echo EVIL\"]\n\
         open(sys.argv[1] + \"/config.json\", \"w\").write(json.dumps(c))",
    );
    for (flags, refused) in [(&[][..], true), (&["--on-failure", "ignore"][..], false)] {
        let name = unique("rewrite");
        let bundle = Bundle::new("echo ran");
        let mut create = vec!["create", "--type", "precreate"];
        create.extend_from_slice(flags);
        create.extend(["--args", "rewrite", "--args", bundle.path_str()]);
        create.extend([name.as_str(), rewrite.as_str()]);
        s.host.ok(&create);
        select(&bundle, &name);
        let before = fs::read(bundle.config_file()).unwrap();
        let out = s.run(&bundle, &unique("rw"));
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(!stdout.contains("EVIL"), "{stdout}{stderr}");
        if refused {
            assert!(!out.status.success(), "{stdout}");
            assert!(
                stderr.contains(&format!("hook {name} (precreate)")),
                "{stderr}"
            );
            assert!(stderr.contains("rewrote config.json"), "{stderr}");
            assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
        } else {
            assert!(out.status.success(), "{stderr}");
            assert_eq!(stdout, "ran\n");
            assert_eq!(bundle.config()["process"]["args"][2], "echo ran");
        }
    }
}

/// The reported escape: a WASM precreate hook granted the bundle read-write, with no
/// `--may-adjust`. `create` refuses the grant; a registry entry that has it anyway (made by an
/// older hookhost) refuses the container through the wrapper and through `inject`.
#[test]
fn a_wasm_precreate_hook_cannot_write_the_bundle() {
    let s = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let module = wat_module(dir.path(), "rewrite");
    let module = module.to_str().unwrap();
    let err = s.host.fails(&[
        "create",
        "--type",
        "precreate",
        "--allow-bundle=rw",
        "evil",
        module,
    ]);
    assert!(err.contains("--allow-bundle=rw"), "{err}");
    assert!(err.contains("precreate"), "{err}");
    assert!(!s.host.root().join("hooks/evil.json").exists());
    let bundle = Bundle::new("echo ran");
    let content = evil_config(&bundle).to_string();
    s.host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--allow-bundle=rw",
        "--args",
        &serde_json::to_string(&["rewrite", &content]).unwrap(),
        "evil",
        module,
    ]);
    // What an older hookhost let through: the same entry, at precreate.
    let entry = s.host.root().join("hooks/evil.json");
    let mut doc: Value = serde_json::from_slice(&fs::read(&entry).unwrap()).unwrap();
    doc["Stages"] = json!(["precreate"]);
    fs::write(&entry, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    select(&bundle, "evil");
    let before = fs::read(bundle.config_file()).unwrap();
    let out = s.run(&bundle, &unique("wasm"));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "{stdout}");
    assert!(!stdout.contains("EVIL"), "{stdout}");
    assert!(stderr.contains("hook evil (precreate)"), "{stderr}");
    assert!(stderr.contains("--allow-bundle=rw"), "{stderr}");
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
    let err = s.host.fails(&["inject", "--bundle", bundle.path_str()]);
    assert!(err.contains("--allow-bundle=rw"), "{err}");
    assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
}

/// Mount destinations and device paths that leave the granted directory lexically (`..`,
/// `.`, repeated slashes, relative) are never granted, whatever the glob says.
#[test]
fn paths_outside_their_grant_by_dot_dot_are_refused() {
    let s = Setup::new();
    let cases = [
        (
            "mounts=/data/**",
            "c[\"mounts\"].append({\"destination\": \"/data/../etc\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"})",
            "/data/../etc",
        ),
        (
            "mounts=/opt/gpu/*",
            "c[\"mounts\"].append({\"destination\": \"/opt/gpu/..\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"})",
            "/opt/gpu/..",
        ),
        (
            "mounts=/data/**",
            "c[\"mounts\"].append({\"destination\": \"/data//x\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"})",
            "/data//x",
        ),
        (
            "devices=/dev/gpu/**",
            "c[\"linux\"][\"devices\"] = [{\"path\": \"/dev/gpu/../../etc/evilnode\", \"type\": \"c\", \
             \"major\": 1, \"minor\": 3}]",
            "/dev/gpu/../../etc/evilnode",
        ),
    ];
    for (grants, code, path) in cases {
        let name = granted(
            &s.host,
            "dots",
            grants,
            &format!("{code}\njson.dump(c, sys.stdout)"),
        );
        let bundle = Bundle::new("echo ran");
        select(&bundle, &name);
        let before = fs::read(bundle.config_file()).unwrap();
        let out = s.run(&bundle, &unique("dots"));
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{grants}: {}", text(&out.stdout));
        assert!(err.contains(&format!("hook {name} (precreate)")), "{err}");
        assert!(
            err.contains(&format!("{path:?} is not a normal path")),
            "{err}"
        );
        assert_eq!(fs::read(bundle.config_file()).unwrap(), before);
        let err = s.host.fails(&["inject", "--bundle", bundle.path_str()]);
        assert!(err.contains("is not a normal path"), "{err}");
    }
}

/// A bind mount needs its host source granted (`mounts=DEST:from=SOURCE[:rw]`): the host's
/// `/` at a granted destination is refused; a granted source mounts read-only, and writable
/// only with `:rw`; a tmpfs needs no source grant. Sources are matched by their real path, so
/// a symlink under a granted directory does not lead out of it.
#[test]
fn bind_mount_sources_must_be_granted() {
    let s = Setup::new();
    let lib = tempfile::tempdir().unwrap();
    fs::write(lib.path().join("libgpu.so"), "driver\n").unwrap();
    std::os::unix::fs::symlink("/", lib.path().join("escape")).unwrap();
    let lib = lib.path().to_str().unwrap().to_string();
    let bind = |source: &str, options: &str| {
        format!(
            "c[\"mounts\"].append({{\"destination\": \"/opt/gpu/lib\", \"type\": \"bind\", \
             \"source\": \"{source}\", \"options\": [{options}]}})\njson.dump(c, sys.stdout)"
        )
    };
    let tmpfs = "c[\"mounts\"].append({\"destination\": \"/opt/gpu/lib\", \"type\": \"tmpfs\", \
                 \"source\": \"tmpfs\"})\njson.dump(c, sys.stdout)";
    let from = format!("mounts=/opt/gpu/**:from={lib}/**");
    let from_rw = format!("{from}:rw");
    let probe = "cat /opt/gpu/lib/libgpu.so 2>/dev/null; \
                 touch /opt/gpu/lib/x 2>/dev/null && echo writable || echo read-only";
    let cases: [(&str, String, Result<&str, &str>); 6] = [
        (
            "mounts=/opt/gpu/**",
            bind("/", "\"rbind\", \"rw\""),
            Err("bind mount of the host's \"/\""),
        ),
        (
            &from,
            bind(&format!("{lib}/escape"), "\"rbind\", \"ro\""),
            Err("bind mount of the host's"),
        ),
        (&from, bind(&lib, "\"rbind\", \"rw\""), Err(":rw")),
        (
            &from,
            bind(&lib, "\"rbind\", \"ro\""),
            Ok("driver\nread-only\n"),
        ),
        (
            &from_rw,
            bind(&lib, "\"rbind\", \"rw\""),
            Ok("driver\nwritable\n"),
        ),
        ("mounts=/opt/gpu/**", tmpfs.to_string(), Ok("writable\n")),
    ];
    for (grants, code, expected) in cases {
        let name = granted(&s.host, "bind", grants, &code);
        let inspect = s.host.ok(&["inspect", &name]);
        assert!(inspect.contains(&format!("{grants:?}")), "{inspect}");
        let bundle = Bundle::new(probe);
        select(&bundle, &name);
        let out = s.run(&bundle, &unique("bind"));
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        match expected {
            Ok(says) => {
                assert!(out.status.success(), "{grants} {code}: {stderr}");
                assert_eq!(stdout, says, "{grants}");
            }
            Err(reason) => {
                assert!(!out.status.success(), "{grants} {code}: {stdout}");
                assert!(
                    stderr.contains(&format!("hook {name} (precreate)")),
                    "{stderr}"
                );
                assert!(stderr.contains(reason), "{grants}: {stderr}");
                assert!(
                    stderr.contains("--may-adjust mounts=/opt/gpu/lib:from="),
                    "{stderr}"
                );
            }
        }
    }
}
