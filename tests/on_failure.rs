//! `create --on-failure fail|warn|ignore`: a failing hook's effect, per hook, in real runc.

mod common;

use common::{Bundle, Host, Runc, text, unique};
use serde_json::Value;

fn failing(host: &Host, name: &str, stage: &str, policy: Option<&str>) {
    let mut args = vec![
        "create",
        "--type",
        stage,
        "--args",
        "sh,-c,echo broken >&2; exit 3",
    ];
    if let Some(policy) = policy {
        args.extend(["--on-failure", policy]);
    }
    args.extend([name, "/bin/sh"]);
    host.ok(&args);
}

fn events(host: &Host, id: &str) -> Vec<Value> {
    host.ok(&["events", "--container", id, "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// warn and ignore let the container start at a fatal stage; the audit trail records the
/// failure and what it did; fail (the default there) stops it.
#[test]
fn a_failing_hook_does_what_its_policy_says() {
    let host = Host::new();
    let runc = Runc::new();
    for (policy, starts) in [(Some("warn"), true), (Some("ignore"), true), (None, false)] {
        let name = format!("h-{}", policy.unwrap_or("default"));
        failing(&host, &name, "createRuntime", policy);
        let bundle = Bundle::new("echo started");
        host.inject(&bundle, &[&name]);
        let id = unique("onfail");
        let out = runc.run(&bundle, &id);
        assert_eq!(
            out.status.success(),
            starts,
            "{policy:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stdout).contains("started"), starts);
        let runs = events(&host, &id);
        let run = runs.iter().find(|e| e["hook"] == name.as_str()).unwrap();
        assert_eq!(run["exit"], 3);
        assert_eq!(run["on_failure"], policy.unwrap_or("fail"), "{run}");
        assert!(run["error"].as_str().unwrap().contains("broken"), "{run}");
    }
    let text_events = host.ok(&["events"]);
    assert!(text_events.contains("on-failure=warn"), "{text_events}");
    assert!(text_events.contains("on-failure=ignore"), "{text_events}");
    let inspect = host.ok(&["inspect", "h-warn"]);
    assert!(inspect.contains("\"OnFailure\": \"warn\""), "{inspect}");
}

/// poststop can never stop anything: `--on-failure fail` there is refused at create.
#[test]
fn fail_at_poststop_is_refused() {
    let host = Host::new();
    let err = host.fails(&[
        "create",
        "--type",
        "prestart,poststop",
        "--on-failure",
        "fail",
        "x",
        "/bin/true",
    ]);
    assert!(
        err.contains("--on-failure fail cannot apply at poststop"),
        "{err}"
    );
    let err = host.fails(&["create", "--on-failure", "maybe", "x", "/bin/true"]);
    assert!(err.contains("one of fail, warn, ignore"), "{err}");
}

/// The runtime discards a succeeding hook's stderr: through the wrapper, a warned failure (an
/// `--on-failure warn` hook, a failing poststop hook) is written to the runtime's log file.
#[test]
fn warnings_reach_the_runtime_log_through_the_wrapper() {
    let setup = common::engines::Setup::new();
    failing(&setup.host, "soft", "createRuntime", Some("warn"));
    failing(&setup.host, "late", "poststop", None);
    let bundle = Bundle::new("echo started");
    bundle.edit(|c| c["annotations"] = serde_json::json!({"io.hookhost.hooks": "soft,late"}));
    let out = setup.run(&bundle, &unique("warnlog"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "started\n");
    let log = std::fs::read_to_string(setup.log()).unwrap();
    let warnings: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["level"] == "warning")
        .collect();
    let said = |what: &str| {
        warnings
            .iter()
            .any(|w| w["msg"].as_str().unwrap().contains(what))
    };
    assert!(
        said("hook soft (createRuntime): exit status 3: broken"),
        "{log}"
    );
    assert!(said("hook late (poststop): exit status 3: broken"), "{log}");
}
