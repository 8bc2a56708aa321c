//! `hookhost inject`: lossless config.json edits, existing hooks kept first, refusals that
//! leave config.json byte-for-byte untouched, and `--hook-spec` files in a real container.

mod common;

use std::fs;

use common::{Bundle, Host, Runc, text, unique};
use serde_json::{Value, json};

/// Everything but `hooks`, to compare a config before and after injection.
fn without_hooks(mut config: Value) -> Value {
    config.as_object_mut().unwrap().remove("hooks");
    config
}

#[test]
fn injection_keeps_every_other_field_and_existing_hooks_first() {
    common::require("runc");
    let host = Host::new();
    host.ok(&["create", "--type", "prestart,poststop", "mine", "/bin/true"]);
    let bundle = Bundle::new("true");
    bundle.edit(|c| {
        c["x-vendor"] = json!({"nested": [1, 2.5, "three", null], "big": 18446744073709551615u64});
        c["process"]["x-unknown"] = json!(true);
        c["hooks"] = json!({"prestart": [{"path": "/usr/bin/libnetwork-setkey", "args": ["setkey", "abc"]}]});
    });
    let before = bundle.config();
    host.inject(&bundle, &["mine"]);
    let after = bundle.config();
    assert_eq!(without_hooks(after.clone()), without_hooks(before.clone()));
    let keys_before: Vec<&String> = before.as_object().unwrap().keys().collect();
    let keys_after: Vec<&String> = after.as_object().unwrap().keys().collect();
    assert_eq!(keys_after, keys_before, "key order is kept");
    let prestart = after["hooks"]["prestart"].as_array().unwrap();
    assert_eq!(prestart.len(), 2);
    assert_eq!(
        prestart[0], before["hooks"]["prestart"][0],
        "the engine's hook stays first"
    );
    assert_eq!(prestart[1]["args"][1], "stage");
    assert_eq!(after["hooks"]["poststop"].as_array().unwrap().len(), 1);
    assert!(
        after["hooks"].get("poststart").is_none(),
        "no entry for stages without work"
    );
    let timeout = prestart[1]["timeout"].as_u64().unwrap();
    assert!(
        timeout > 30,
        "the OCI timeout covers the hook's own 30 s default: {timeout}"
    );
}

#[test]
fn refusals_leave_config_json_untouched() {
    let host = Host::new();
    host.ok(&["create", "real", "/bin/true"]);
    let bundle = Bundle::new("true");
    let bad_spec = host.dir.path().join("bad-spec.json");
    fs::write(&bad_spec, r#"{"prestart": [{"path": "relative/hook"}]}"#).unwrap();
    let original = fs::read(bundle.config_file()).unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--add-hook", "ghost"], "no such hook: ghost"),
        (vec!["--add-hook", "real:/tmp/x"], "must be a JSON list"),
        (
            vec![
                "--add-hook",
                "real",
                "--hook-spec",
                bad_spec.to_str().unwrap(),
            ],
            "prestart[0]: path \"relative/hook\" must be absolute",
        ),
        (
            vec!["--hook-spec", "/no/such/spec.json"],
            "cannot read hook spec /no/such/spec.json",
        ),
    ];
    for (extra, want) in cases {
        let mut args = vec!["inject", "--bundle", bundle.path_str()];
        args.extend(extra.iter().copied());
        let err = host.fails(&args);
        assert!(err.contains(want), "{extra:?}: {err}");
        assert_eq!(
            fs::read(bundle.config_file()).unwrap(),
            original,
            "{extra:?}"
        );
    }

    let broken = Bundle::new("true");
    fs::write(
        broken.config_file(),
        b"{\"ociVersion\": \"1.0.2\", \"process\": ",
    )
    .unwrap();
    let err = host.fails(&[
        "inject",
        "--bundle",
        broken.path_str(),
        "--add-hook",
        "real",
    ]);
    assert!(err.contains("config.json is not valid JSON"), "{err}");
    assert_eq!(
        fs::read(broken.config_file()).unwrap(),
        b"{\"ociVersion\": \"1.0.2\", \"process\": "
    );

    let not_oci = Bundle::new("true");
    fs::write(not_oci.config_file(), br#"{"ociVersion": 3}"#).unwrap();
    let err = host.fails(&[
        "inject",
        "--bundle",
        not_oci.path_str(),
        "--add-hook",
        "real",
    ]);
    assert!(err.contains("is not a valid OCI runtime config"), "{err}");
}

#[test]
fn hook_spec_file_hooks_run_in_a_real_container() {
    let host = Host::new();
    let runc = Runc::new();
    let bundle = Bundle::new("cat /from-spec");
    let marker = bundle.rootfs().join("from-spec");
    let spec = host.dir.path().join("spec.json");
    let hooks = json!({
        "prestart": [{"path": "/bin/sh", "args": ["sh", "-c", format!("echo \"$GREETING from $HOOKHOST_STAGE\" > {}", marker.display())], "env": ["GREETING=hello"], "timeout": 5}]
    });
    fs::write(&spec, hooks.to_string()).unwrap();
    host.ok(&[
        "inject",
        "--bundle",
        bundle.path_str(),
        "--hook-spec",
        spec.to_str().unwrap(),
    ]);
    let out = runc.run(&bundle, &unique("spec"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from prestart\n");
}

/// A `--hook-spec` timeout out of 1..=3600 is one line naming the file, the entry, the value
/// and the range; config.json is untouched. 3600 itself is accepted.
#[test]
fn hook_spec_timeouts_out_of_range_are_refused() {
    let host = Host::new();
    let bundle = Bundle::new("true");
    let original = fs::read(bundle.config_file()).unwrap();
    let spec = host.dir.path().join("spec.json");
    let inject = |timeout: &str| {
        let doc = format!(r#"{{"prestart": [{{"path": "/bin/true", "timeout": {timeout}}}]}}"#);
        fs::write(&spec, doc).unwrap();
        host.run(&[
            "inject",
            "--bundle",
            bundle.path_str(),
            "--hook-spec",
            spec.to_str().unwrap(),
        ])
    };
    for value in [
        "18446744073709551615",
        "9223372036854775807",
        "0",
        "-1",
        "3601",
    ] {
        let out = inject(value);
        assert!(!out.status.success(), "timeout {value} was accepted");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        let want = format!(
            "hook spec {} is not valid: prestart[0]: invalid hook spec timeout {value}: a hook \
             timeout must be a whole number of seconds from 1 to 3600",
            spec.display()
        );
        assert!(err.contains(&want), "{value}: {err}");
        assert_eq!(fs::read(bundle.config_file()).unwrap(), original, "{value}");
    }
    assert!(inject("3600").status.success());
    let entry = &bundle.config()["hooks"]["prestart"][0];
    assert_eq!(
        entry["timeout"],
        3600 + 5,
        "the hook's timeout plus hookhost's slack"
    );
}
