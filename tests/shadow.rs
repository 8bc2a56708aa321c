//! Shadow hooks (issue 23, item 4): a candidate version of a WASM hook runs beside the enforced
//! one on real runc containers through the runtime wrapper, without effect on them; its runs
//! and their agreement are in `hookhost events` and `hookhost stats`; `promote` makes it the
//! enforced hook.

mod common;

use std::fs;

use common::engines::Setup;
use common::{Bundle, Host, text, unique, wat_module};
use serde_json::{Value, json};

fn s(path: &std::path::Path) -> &str {
    path.to_str().unwrap()
}

fn select(bundle: &Bundle, hooks: &str) {
    bundle.edit(|c| {
        let annotations = c["annotations"].as_object().cloned().unwrap_or_default();
        let mut annotations = Value::Object(annotations);
        annotations["io.hookhost.hooks"] = hooks.into();
        c["annotations"] = annotations;
    });
}

/// The shadow runs of the trail.
fn shadow_events(host: &Host) -> Vec<Value> {
    host.ok(&["events", "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e.get("shadow").is_some())
        .collect()
}

/// A container deny-privileged lets through: read-only root filesystem, not uid 0.
fn plain(script: &str) -> Bundle {
    let bundle = Bundle::new(script);
    bundle.edit(|c| {
        c["root"]["readonly"] = true.into();
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000});
    });
    bundle
}

/// The enforced policy accepts every container; its shadow, deny-privileged, refuses one more
/// case (a privileged container). Both containers start; the shadow's refusal is recorded and
/// counted; after `promote`, the policy refuses the next privileged container.
#[test]
fn a_shadow_that_refuses_more_is_recorded_and_promote_makes_it_enforce() {
    let s_ = Setup::new();
    let host = &s_.host;
    let noop = common::example_wasm("noop");
    let deny = common::example_wasm("deny-privileged");
    host.ok(&["create", "--type", "precreate", "policy", s(&noop)]);
    host.ok(&["create", "--shadow-of", "policy", "policy-v2", s(&deny)]);
    let ls = host.ok(&["ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("policy-v2") && l.contains("shadow of policy")),
        "{ls}"
    );
    let inspect = host.ok(&["inspect", "policy-v2"]);
    assert!(inspect.contains("\"Of\": \"policy\""), "{inspect}");
    assert!(inspect.contains("\"Type\": \"precreate\""), "{inspect}");

    let ok = plain("echo plain ran");
    select(&ok, "policy");
    let out = s_.run(&ok, &unique("plain"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let privileged = Bundle::new("echo privileged ran");
    select(&privileged, "policy");
    let out = s_.run(&privileged, &unique("priv"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "privileged ran\n");

    let runs = shadow_events(host);
    assert_eq!(runs.len(), 2, "{runs:?}");
    let verdicts: Vec<&Value> = runs.iter().map(|e| &e["shadow"]["verdict"]).collect();
    assert_eq!(verdicts, [&json!("accepted"), &json!("refused")]);
    let refused = &runs[1];
    assert_eq!(refused["hook"], "policy-v2");
    assert_eq!(refused["shadow"]["of"], "policy");
    assert_eq!(refused["shadow"]["enforcedVerdict"], "accepted");
    assert_eq!(refused["shadow"]["sameVerdict"], false);
    assert!(refused.get("error").is_none(), "{refused}");
    let reason = refused["shadow"]["reason"].as_str().unwrap();
    assert!(reason.contains("deny-privileged"), "{reason}");
    assert_eq!(runs[0]["shadow"]["sameVerdict"], true);
    assert_eq!(runs[0]["shadow"]["sameEdits"], true);
    let events = host.ok(&["events"]);
    assert!(
        events
            .contains("shadow-of=policy shadow-verdict=refused enforced-verdict=accepted differs"),
        "{events}"
    );

    let stats: Value =
        serde_json::from_str(&host.ok(&["stats", "--shadows", "--format", "json"])).unwrap();
    assert_eq!(
        stats,
        json!([{"Shadow": "policy-v2", "Of": "policy", "Runs": 2, "SameVerdict": 1,
                "SameEdits": 2, "Differing": 1, "Skipped": 0, "RefusedMore": 1}])
    );
    let table = host.ok(&["stats"]);
    // A shadow's refusal is not the container's: the hook table counts no refusal for it.
    let (hooks, agreement) = table.split_once("\n\n").unwrap();
    assert!(
        !hooks.lines().any(|l| l.starts_with("policy-v2 ")),
        "{table}"
    );
    assert!(agreement.starts_with("SHADOW"), "{table}");

    assert_eq!(host.ok(&["promote", "policy-v2"]), "policy\n");
    assert_eq!(host.ok(&["ls", "-q"]), "policy\n");
    let promoted: Value = serde_json::from_str(&host.ok(&["inspect", "policy"])).unwrap();
    assert_eq!(promoted[0]["Type"], "precreate");
    assert!(promoted[0].get("Shadow").is_none(), "{promoted}");
    assert_eq!(promoted[0]["Args"], json!(["policy"]));
    let again = Bundle::new("echo privileged ran");
    select(&again, "policy");
    let out = s_.run(&again, &unique("priv"));
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(err.contains("hook policy (precreate)"), "{err}");
    assert!(
        err.contains("CAP_SYS_ADMIN") || err.contains("uid 0"),
        "{err}"
    );
    assert!(!text(&out.stdout).contains("ran"));
}

/// A shadow granted a directory read-write (the enforced hook's grant) writes into a scratch
/// copy: the granted directory is untouched, and the shadow's write succeeded there.
#[test]
fn a_writable_grants_files_are_untouched_by_the_shadow() {
    let s_ = Setup::new();
    let host = &s_.host;
    let files = tempfile::tempdir().unwrap();
    let granted = files.path().join("data");
    fs::create_dir(&granted).unwrap();
    fs::write(granted.join("victim"), "original").unwrap();
    let grant = format!("{}:/data:rw", granted.display());
    let noop = common::example_wasm("noop");
    host.ok(&[
        "create",
        "--type",
        "createRuntime",
        "--allow-dir",
        &grant,
        "keeper",
        s(&noop),
    ]);
    let probe = wat_module(files.path(), "fs");
    host.ok(&[
        "create",
        "--shadow-of",
        "keeper",
        "--args",
        "fs,write,victim",
        "writer",
        s(&probe),
    ]);
    let bundle = plain("echo ran");
    select(&bundle, "keeper");
    let out = s_.run(&bundle, &unique("rw"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(granted.join("victim")).unwrap(),
        "original"
    );
    assert_eq!(fs::read_dir(&granted).unwrap().count(), 1);
    let runs = shadow_events(host);
    assert_eq!(runs.len(), 1, "{runs:?}");
    // It wrote: into its copy.
    assert_eq!(runs[0]["shadow"]["verdict"], "accepted", "{runs:?}");
    assert_eq!(runs[0]["exit"], 0);
}

/// A shadow still running at its budget is stopped and recorded as skipped, with the reason;
/// the container starts.
#[test]
fn a_shadow_over_its_budget_is_skipped_with_the_reason() {
    let s_ = Setup::new();
    let host = &s_.host;
    let files = tempfile::tempdir().unwrap();
    let noop = common::example_wasm("noop");
    host.ok(&["create", "--type", "precreate", "quick", s(&noop)]);
    let sleep = wat_module(files.path(), "sleep");
    host.ok(&[
        "create",
        "--shadow-of",
        "quick",
        "--shadow-budget",
        "300",
        "slow",
        s(&sleep),
    ]);
    let inspect = host.ok(&["inspect", "slow"]);
    assert!(inspect.contains("\"BudgetMs\": 300"), "{inspect}");
    let bundle = plain("echo started");
    select(&bundle, "quick");
    let out = s_.run(&bundle, &unique("slow"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "started\n");
    let runs = shadow_events(host);
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["shadow"]["verdict"], "skipped");
    assert_eq!(runs[0]["shadow"]["budgetMs"], 300);
    let reason = runs[0]["shadow"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("stopped at its budget of 300 ms"),
        "{reason}"
    );
    let stats: Value =
        serde_json::from_str(&host.ok(&["stats", "--shadows", "--format", "json"])).unwrap();
    assert_eq!(stats[0]["Skipped"], 1);
    assert_eq!(stats[0]["Differing"], 0);
}

/// Every bad shadow is refused with an error naming the problem, and changes nothing.
#[test]
fn bad_shadows_are_refused_with_clear_errors() {
    let host = Host::new();
    let noop = common::example_wasm("noop");
    let noop = s(&noop);
    host.ok(&["create", "--type", "precreate", "policy", noop]);
    host.ok(&["create", "native", "/bin/true"]);
    host.ok(&["create", "--shadow-of", "policy", "v2", noop]);
    let before = host.snapshot();
    let cases: [(&[&str], &str); 10] = [
        (
            &["create", "--shadow-of", "nope", "x", noop],
            "cannot shadow nope: no such hook: nope",
        ),
        (
            &["create", "--shadow-of", "v2", "x", noop],
            "v2 is itself a shadow (of policy)",
        ),
        (
            &["create", "--shadow-of", "native", "x", noop],
            "native is a native hook: shadows run only beside WASM hooks",
        ),
        (
            &["create", "--shadow-of", "policy", "x", "/bin/true"],
            "is not a WebAssembly module: a shadow must be one",
        ),
        (
            &[
                "create",
                "--shadow-of",
                "policy",
                "--type",
                "prestart",
                "x",
                noop,
            ],
            "a shadow takes policy's stages, conditions, grants, --may-adjust and --on-failure",
        ),
        (
            &[
                "create",
                "--shadow-of",
                "policy",
                "--shadow-budget",
                "0",
                "x",
                noop,
            ],
            "invalid shadow budget 0 ms",
        ),
        (&["rm", "policy"], "hook policy has shadow hooks (v2)"),
        (&["promote", "policy"], "policy is not a shadow hook"),
        (
            &["create", "--replace", "policy", "/bin/true"],
            "policy is a native hook: shadows run only beside WASM hooks",
        ),
        (
            &["create", "--shadow-budget", "10", "x", noop],
            "--shadow-of",
        ),
    ];
    for (args, want) in cases {
        let err = host.fails(args);
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(
        host.snapshot(),
        before,
        "a refused command changed the registry"
    );
    let err = host.fails(&["create", "--shadow-of", "policy", "policy", noop]);
    assert!(err.contains("already exists"), "{err}");
    // Selected by name, a shadow is refused: it never runs on its own.
    let bundle = Bundle::new("true");
    select(&bundle, "v2");
    let err = host.fails(&["inject", "--bundle", bundle.path_str()]);
    assert!(err.contains("v2 is a shadow of policy"), "{err}");
}

/// What `inspect` prints of a hook and its shadow, applied on another node, registers the same
/// pair; applied again, it changes nothing. A file whose shadow has no hook to shadow is
/// refused and changes nothing.
#[test]
fn apply_files_carry_shadows() {
    let host = Host::new();
    let noop = common::example_wasm("noop");
    let deny = common::example_wasm("deny-privileged");
    host.ok(&["create", "--type", "precreate", "policy", s(&noop)]);
    host.ok(&[
        "create",
        "--shadow-of",
        "policy",
        "--shadow-budget",
        "150",
        "policy-v2",
        s(&deny),
    ]);
    // The enforced hook changes stage: what inspect prints of the shadow is what it took at
    // registration, and an apply takes the enforced hook's again.
    host.ok(&["update", "policy", "--type", "createRuntime"]);
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("hooks.json");
    fs::write(&file, host.ok(&["inspect"])).unwrap();
    let other = Host::new();
    let applied = other.ok(&["apply", "-f", s(&file)]);
    assert!(applied.contains("created policy-v2"), "{applied}");
    let ls = other.ok(&["ls"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("policy-v2") && l.contains("shadow of policy")),
        "{ls}"
    );
    let again = other.ok(&["apply", "-f", s(&file)]);
    assert!(again.contains("unchanged policy-v2"), "{again}");
    let shadow: Value = serde_json::from_str(&other.ok(&["inspect", "policy-v2"])).unwrap();
    assert_eq!(
        shadow[0]["Shadow"],
        json!({"Of": "policy", "BudgetMs": 150})
    );

    // A hand-written file: the shadow without stages or grants takes its enforced hook's.
    let short = files.path().join("short.json");
    let doc = json!([
        {"Name": "gate", "Type": "createRuntime", "Path": s(&noop)},
        {"Name": "gate-v2", "Path": s(&deny), "Shadow": {"Of": "gate"}}
    ]);
    fs::write(&short, doc.to_string()).unwrap();
    other.ok(&["apply", "-f", s(&short)]);
    let gate: Value = serde_json::from_str(&other.ok(&["inspect", "gate-v2"])).unwrap();
    assert_eq!(gate[0]["Type"], "createRuntime");

    let orphan = files.path().join("orphan.json");
    let doc = json!([{"Name": "lonely", "Path": s(&deny), "Shadow": {"Of": "missing"}}]);
    fs::write(&orphan, doc.to_string()).unwrap();
    let before = other.snapshot();
    let err = other.fails(&["apply", "-f", s(&orphan)]);
    assert!(
        err.contains("shadow hook lonely: cannot shadow missing: no such hook: missing"),
        "{err}"
    );
    // Pruned, the hook a listed shadow shadows would be gone.
    let alone = files.path().join("alone.json");
    let doc = json!([{"Name": "policy-v2", "Path": s(&deny), "Shadow": {"Of": "policy"}}]);
    fs::write(&alone, doc.to_string()).unwrap();
    let err = other.fails(&["apply", "--prune", "-f", s(&alone)]);
    assert!(err.contains("cannot shadow policy: no such hook"), "{err}");
    assert_eq!(other.snapshot(), before);
}
