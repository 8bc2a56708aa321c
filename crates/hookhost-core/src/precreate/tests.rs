//! The precreate chain with real (shell) hooks: grants, conflicts, output checks, policies.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::*;
use hookhost_hooks::diff::{ChangeKind, Field};
use hookhost_hooks::hook::OnFailure;

fn proposed() -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "root": {"path": "rootfs"},
        "x-vendor": {"keep": [1, 2, 3]}
    })
}

/// A native precreate hook: a shell script given the config on stdin.
fn hook(dir: &Path, name: &str, script: &str, grants: &[&str]) -> PlannedHook {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{script}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut hook = PlannedHook::native(name.into(), path, Vec::new(), Vec::new(), Some(5));
    if !grants.is_empty() {
        let grants: Vec<String> = grants.iter().map(|g| g.to_string()).collect();
        hook.spec.may_adjust = Some(MayAdjust::parse_all(&grants).unwrap());
    }
    hook
}

/// Adds `NAME=VALUE` at the front of process.env (the compact document has `"env":[`).
fn add_env(pair: &str) -> String {
    format!(r#"sed 's|"env":\[|"env":["{pair}",|'"#)
}

struct Setup {
    dir: tempfile::TempDir,
    root: PathBuf,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        Setup { dir, root }
    }

    fn run(&self, hooks: &[PlannedHook]) -> Result<Edited, StageError> {
        let at = Precreate {
            root: &self.root,
            events_max_size: events::DEFAULT_MAX_SIZE,
            replay: Default::default(),
            container: "c1",
            bundle: None,
            deadline: None,
            generation: None,
        };
        run_chain(&proposed(), hooks, &at)
    }

    fn events(&self) -> Vec<events::Event> {
        let mut all = Vec::new();
        let file = Paths::new(&self.root).events_file();
        events::read(&file, &events::Filter::default(), false, |e| {
            all.push(e.clone());
            true
        })
        .unwrap();
        all
    }
}

fn refusal(result: Result<Edited, StageError>) -> String {
    match result {
        Err(e @ StageError::HookFailed { .. }) => e.to_string(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_granted_edit_is_applied_and_recorded_and_unknown_fields_survive() {
    let s = Setup::new();
    let gpu = hook(
        s.dir.path(),
        "gpu",
        &add_env("GPU_VISIBLE=0"),
        &["env=GPU_*"],
    );
    let edited = s.run(&[gpu]).unwrap();
    assert_eq!(
        edited.doc["process"]["env"],
        json!(["GPU_VISIBLE=0", "PATH=/bin"])
    );
    assert_eq!(edited.doc["x-vendor"], json!({"keep": [1, 2, 3]}));
    assert_eq!(
        edited.changes,
        [(
            "gpu".to_string(),
            vec![Change {
                field: Field::Env("GPU_VISIBLE".into()),
                kind: ChangeKind::Added
            }]
        )]
    );
    let events = s.events();
    assert_eq!(events.len(), 1);
    assert_eq!(
        (events[0].stage, events[0].hook.as_str()),
        (Stage::Precreate, "gpu")
    );
    assert_eq!(events[0].container, "c1");
    assert!(events[0].error.is_none());
}

#[test]
fn an_edit_outside_the_grants_refuses_the_container_naming_hook_and_field() {
    let s = Setup::new();
    let gpu = hook(
        s.dir.path(),
        "gpu",
        &add_env("LD_PRELOAD=/x.so"),
        &["env=GPU_*"],
    );
    let err = refusal(s.run(&[gpu]));
    assert!(err.contains("hook gpu (precreate)"), "{err}");
    assert!(err.contains("added env LD_PRELOAD"), "{err}");
    assert!(err.contains("--may-adjust env=GPU_*"), "{err}");
    assert!(err.contains("needs --may-adjust env=LD_PRELOAD"), "{err}");
    let events = s.events();
    assert_eq!(events[0].failure, Some(Failure::Adjust));
}

#[test]
fn a_hook_without_grants_may_only_accept_or_refuse() {
    let s = Setup::new();
    let args = hook(
        s.dir.path(),
        "args",
        r#"sed 's/"args":\["sh"\]/"args":["sh","-c","id"]/'"#,
        &[],
    );
    let err = refusal(s.run(&[args]));
    assert!(err.contains("changed args (process.args)"), "{err}");
    assert!(err.contains("without --may-adjust"), "{err}");
    let accept = hook(s.dir.path(), "accept", "cat", &[]);
    let quiet = hook(s.dir.path(), "quiet", "exit 0", &[]);
    let edited = s.run(&[accept, quiet]).unwrap();
    assert_eq!(edited.doc, proposed());
    assert!(!edited.changed());
    let deny = hook(
        s.dir.path(),
        "deny",
        "echo 'no privileged containers' >&2; exit 3",
        &[],
    );
    let err = refusal(s.run(&[deny]));
    assert!(
        err.contains("hook deny (precreate): exit status 3: no privileged containers"),
        "{err}"
    );
}

#[test]
fn hooks_are_chained_and_conflicting_edits_name_both_hooks() {
    let s = Setup::new();
    let first = hook(
        s.dir.path(),
        "first",
        &add_env("GPU_VISIBLE=0"),
        &["env=GPU_*"],
    );
    let second = hook(
        s.dir.path(),
        "second",
        &add_env("GPU_OTHER=1"),
        &["env=GPU_*"],
    );
    let edited = s.run(&[first.clone(), second]).unwrap();
    assert_eq!(
        edited.doc["process"]["env"],
        json!(["GPU_OTHER=1", "GPU_VISIBLE=0", "PATH=/bin"])
    );
    let rival = hook(
        s.dir.path(),
        "rival",
        r#"sed 's/GPU_VISIBLE=0/GPU_VISIBLE=1/'"#,
        &["env=GPU_*"],
    );
    let err = refusal(s.run(&[first.clone(), rival]));
    assert!(err.contains("hook rival (precreate)"), "{err}");
    assert!(
        err.contains("changed env GPU_VISIBLE, which precreate hook first set"),
        "{err}"
    );
    let admin = hook(
        s.dir.path(),
        "admin",
        r#"sed 's/GPU_VISIBLE=0/GPU_VISIBLE=1/'"#,
        &["all"],
    );
    let edited = s.run(&[first, admin]).unwrap();
    assert_eq!(edited.doc["process"]["env"][0], json!("GPU_VISIBLE=1"));
}

#[test]
fn output_that_is_no_oci_config_is_a_failure_and_the_policy_decides() {
    let s = Setup::new();
    let junk = hook(s.dir.path(), "junk", "echo '{not json'", &["all"]);
    let err = refusal(s.run(std::slice::from_ref(&junk)));
    assert!(err.contains("its output is not a JSON document"), "{err}");
    let not_oci = hook(s.dir.path(), "notoci", r#"echo '{"process": 5}'"#, &["all"]);
    let err = refusal(s.run(&[not_oci]));
    assert!(err.contains("not a valid OCI runtime config"), "{err}");
    let mut warned = junk;
    warned.spec.on_failure = Some(OnFailure::Warn);
    let gpu = hook(
        s.dir.path(),
        "gpu",
        &add_env("GPU_VISIBLE=0"),
        &["env=GPU_*"],
    );
    let edited = s.run(&[warned, gpu]).unwrap();
    assert_eq!(edited.doc["process"]["env"][0], json!("GPU_VISIBLE=0"));
    assert_eq!(edited.report.warnings.len(), 1);
    assert!(edited.report.warnings[0].contains("hook junk (precreate)"));
    let failures: Vec<_> = s.events().iter().map(|e| e.failure).collect();
    assert_eq!(failures.last(), Some(&None));
    assert!(failures.contains(&Some(Failure::Output)));
}

#[test]
fn output_past_the_limit_is_refused() {
    let s = Setup::new();
    let big = hook(
        s.dir.path(),
        "big",
        &format!(
            "head -c {} /dev/zero | tr '\\0' ' '; cat",
            MAX_CONFIG_BYTES + 1
        ),
        &["all"],
    );
    let err = refusal(s.run(&[big]));
    assert!(err.contains("larger than 16777216 bytes"), "{err}");
}

/// `hook` with `shadow` as its shadow (at run time a shadow may be any hook: the registry
/// holds only WASM ones), with a budget of `budget_ms`.
fn shadowed(mut hook: PlannedHook, shadow: PlannedHook, budget_ms: u64) -> PlannedHook {
    hook.shadows.push(crate::shadow::PlannedShadow {
        hook: shadow,
        budget_ms,
    });
    hook
}

/// A shadow's edits and refusal are recorded with how they compare, never applied or enforced.
#[test]
fn a_shadows_edits_and_refusals_are_recorded_never_applied() {
    use crate::shadow::Verdict;
    let s = Setup::new();
    let dir = s.dir.path();
    let gpu = hook(dir, "gpu", &add_env("GPU_VISIBLE=0"), &["env=GPU_*"]);
    let other = hook(dir, "gpu-v2", &add_env("GPU_VISIBLE=1"), &["env=GPU_*"]);
    let same = hook(dir, "gpu-v3", &add_env("GPU_VISIBLE=0"), &["env=GPU_*"]);
    let refuses = hook(dir, "gpu-v4", "echo no GPU for you >&2; exit 1", &[]);
    let mut gpu = shadowed(gpu, other, 5000);
    gpu = shadowed(gpu, same, 5000);
    gpu = shadowed(gpu, refuses, 5000);
    let edited = s.run(&[gpu]).unwrap();
    assert_eq!(
        edited.doc["process"]["env"],
        json!(["GPU_VISIBLE=0", "PATH=/bin"])
    );
    let events = s.events();
    let records: Vec<_> = events.iter().filter_map(|e| e.shadow.clone()).collect();
    assert_eq!(events.len(), 4);
    assert!(events[0].shadow.is_none());
    let [other, same, refuses] = records.as_slice() else {
        panic!("{records:?}")
    };
    assert_eq!(other.verdict, Verdict::Accepted);
    assert!(other.same_verdict && !other.same_edits, "{other:?}");
    assert_eq!(other.edits, ["added env GPU_VISIBLE"]);
    assert_ne!(other.edits_digest, other.enforced_edits_digest);
    assert!(same.same_verdict && same.same_edits, "{same:?}");
    assert_eq!(refuses.verdict, Verdict::Refused);
    assert!(!refuses.same_verdict);
    assert!(
        refuses
            .reason
            .as_deref()
            .unwrap()
            .contains("no GPU for you")
    );
    assert!(events.iter().all(|e| e.error.is_none()), "{events:?}");
}

/// Under a deadline (the NRI plugin's), a shadow whose budget the time left cannot cover is
/// skipped, with the reason, and the enforced hook is not held up.
#[test]
fn a_shadow_the_deadline_cannot_cover_is_skipped() {
    use crate::shadow::Verdict;
    let s = Setup::new();
    let dir = s.dir.path();
    let policy = hook(dir, "policy", "exit 0", &[]);
    let candidate = hook(dir, "policy-v2", "exit 0", &[]);
    let at = Precreate {
        root: &s.root,
        events_max_size: events::DEFAULT_MAX_SIZE,
        container: "c1",
        bundle: None,
        deadline: Some(std::time::Instant::now() + std::time::Duration::from_secs(5)),
        generation: None,
        replay: Default::default(),
    };
    let hooks = [shadowed(policy, candidate, 10_000)];
    run_chain(&proposed(), &hooks, &at).unwrap();
    let events = s.events();
    let record = events[1].shadow.as_ref().unwrap();
    assert_eq!(record.verdict, Verdict::Skipped);
    assert_ne!(
        events[0].id, events[1].id,
        "a shadow's run has an id of its own"
    );
    let reason = record.reason.as_deref().unwrap();
    assert!(
        reason.contains("before the caller's deadline, less than its budget of 10000 ms"),
        "{reason}"
    );
    assert_eq!(events[1].exit, None);
}
