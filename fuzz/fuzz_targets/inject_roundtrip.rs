//! config.json injection is lossless: inject a fixed plan into any document that parses as an
//! OCI runtime config; every top-level field but `hooks` must come out equal, the hooks that
//! were there must stay first and in order, and injecting again must change nothing.
#![no_main]

use std::path::PathBuf;

use hookhost_core::hook::{HookKind, HookSpec, Stage};
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
        plan.push(
            stage,
            PlannedHook {
                name: name.into(),
                spec: HookSpec {
                    kind: HookKind::Native,
                    path: "/usr/bin/true".into(),
                    args: vec!["true".into(), name.into()],
                    env: vec!["A=1".into()],
                    timeout: 5,
                    digest: None,
                    limits: None,
                    grants: None,
                },
            },
        );
    }
    plan
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let mut config = BundleConfig {
        file: PathBuf::from("/fuzz/config.json"),
        doc: doc.clone(),
    };
    if config.typed().is_err() {
        return;
    }
    let call = SelfCall {
        exe: "/usr/local/bin/hookhost".into(),
        root: "/var/lib/hookhost".into(),
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
                    let own = |e: &Value| hookhost_core::bundle::own_plan(e).is_some();
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
