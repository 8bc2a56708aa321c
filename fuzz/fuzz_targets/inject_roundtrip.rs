//! config.json injection is lossless: inject a fixed plan into any document that parses as an
//! OCI runtime config; every top-level field but `hooks` must come out equal, the hooks that
//! were there must stay first and in order, and injecting again must change nothing.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use hookhost_hooks::hook::Stage;
use hookhost_core::bundle::{BundleConfig, SelfCall};
use hookhost_core::plan::{ContainerPlan, PlannedHook};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fn plan() -> ContainerPlan {
    let mut plan = ContainerPlan::default();
    for (stage, name) in [
        (Stage::Prestart, "net"),
        (Stage::CreateRuntime, "gpu"),
        (Stage::StartContainer, "inside"),
        (Stage::Poststop, "audit"),
    ] {
        let args = vec!["true".into(), name.into()];
        let env = vec!["A=1".into()];
        let hook = PlannedHook::native(name.into(), "/usr/bin/true".into(), args, env, Some(5));
        plan.push(stage, hook);
    }
    plan
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    // The plan file is written beside config.json: one scratch bundle directory for the run.
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    let bundle = BUNDLE.get_or_init(|| tempfile::tempdir().unwrap().keep());
    let Ok(mut config) = BundleConfig::from_doc(bundle.join("config.json"), doc.clone()) else {
        return;
    };
    let call = SelfCall {
        exe: "/usr/local/bin/hookhost".into(),
        root: "/var/lib/hookhost".into(),
        // As `hookhost inject`: only `hooks` may change (the wrapper at create also sets its
        // start annotation).
        at_start: false,
        events_max_size: None,
        replay: None,
        runtime_log: None,
        absolute_plan: false,
        check_exe: false,
    };
    if config.inject(&plan(), &call).is_err() {
        return;
    }
    let (Value::Object(before), Value::Object(after)) = (&doc, &config.doc) else {
        panic!("inject changed the document's type");
    };
    for (key, value) in before {
        if key != "hooks" {
            assert_eq!(after.get(key), Some(value), "field {key:?} changed");
        }
    }
    for key in after.keys() {
        assert!(key == "hooks" || before.contains_key(key), "field {key:?} added");
    }
    // Hooks the engine put there stay first, in order; other keys of `hooks` are kept.
    if let Some(Value::Object(old_hooks)) = before.get("hooks") {
        let new_hooks = after["hooks"].as_object().expect("hooks stays an object");
        for (stage, old) in old_hooks {
            let new = &new_hooks[stage];
            match (old, new) {
                (Value::Array(old), Value::Array(new)) => {
                    let own = |e: &Value| hookhost_core::bundle::own_call(e).is_some();
                    let kept: Vec<&Value> = new.iter().filter(|e| !own(e)).collect();
                    let old_kept: Vec<&Value> = old.iter().filter(|e| !own(e)).collect();
                    assert!(kept.starts_with(&old_kept), "stage {stage}: engine hooks lost or moved");
                }
                _ => assert_eq!(old, new, "hooks.{stage} changed"),
            }
        }
    }
    let once = config.doc.clone();
    config.inject(&plan(), &call).expect("a second injection succeeds");
    assert_eq!(once, config.doc, "injecting twice is not idempotent");
});
