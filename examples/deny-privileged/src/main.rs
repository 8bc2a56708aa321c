//! deny-privileged: a policy hook for the precreate stage (no grant needed) or, on a runtime
//! hookhost does not run precreate hooks for, the createRuntime stage (`--allow-bundle=ro`).
//!
//! Refuses a container that has CAP_SYS_ADMIN in any capability set, or that runs as uid 0 with
//! a writable root filesystem, unless it carries the annotation
//! `io.hookhost.allow-privileged=true`. The reason is printed on stderr and the hook exits 1,
//! which stops the container. At precreate it reads the proposed config.json from stdin and
//! refuses before anything is created; a container it lets through gets its config back
//! unchanged. `HOOKHOST_STAGE` tells it which stage it runs at.

use std::process::ExitCode;

use hookhost_guest::oci_spec::runtime::{Capability, LinuxCapabilities, Spec};
use hookhost_guest::{Hook, Precreate, STAGE_ENV, Stage, precreate, run};

const ALLOW_ANNOTATION: &str = "io.hookhost.allow-privileged";

fn main() -> ExitCode {
    let stage = std::env::var(STAGE_ENV).ok().and_then(|s| s.parse().ok());
    if stage == Some(Stage::Precreate) {
        precreate(|config| check_proposed(config).map_err(Into::into))
    } else {
        run(|hook| check_bundle(hook, &hook.bundle_spec()?).map_err(Into::into))
    }
}

/// At precreate: the proposed config, before a container exists (so it has no id yet).
fn check_proposed(config: &Precreate) -> Result<(), String> {
    check(config.spec(), None, "container")
}

/// At createRuntime: the bundle's config; the state's annotations count too.
fn check_bundle(hook: &Hook, spec: &Spec) -> Result<(), String> {
    let container = format!("container {}", hook.state.id);
    check(spec, hook.state.annotation(ALLOW_ANNOTATION), &container)
}

/// `Ok` when the container may start, else the reason it may not.
fn check(spec: &Spec, state_allows: Option<&str>, container: &str) -> Result<(), String> {
    if allowed_by_annotation(spec, state_allows) {
        return Ok(());
    }
    let mut reasons = Vec::new();
    let sets = sys_admin_sets(spec);
    if !sets.is_empty() {
        reasons.push(format!(
            "it has CAP_SYS_ADMIN in the {} set",
            sets.join(", ")
        ));
    }
    if runs_as_root(spec) && !rootfs_readonly(spec) {
        reasons.push("it runs as uid 0 with a writable root filesystem".to_string());
    }
    if reasons.is_empty() {
        return Ok(());
    }
    Err(format!(
        "deny-privileged: {container} refused: {}; set annotation {ALLOW_ANNOTATION}=true to allow it",
        reasons.join(" and ")
    ))
}

/// The state's annotations come from `config.json`; read both in case a runtime omits them.
fn allowed_by_annotation(spec: &Spec, state_allows: Option<&str>) -> bool {
    let from_spec = spec
        .annotations()
        .as_ref()
        .and_then(|a| a.get(ALLOW_ANNOTATION))
        .map(String::as_str);
    state_allows.or(from_spec) == Some("true")
}

/// Names of the capability sets holding CAP_SYS_ADMIN.
fn sys_admin_sets(spec: &Spec) -> Vec<&'static str> {
    let Some(caps) = spec
        .process()
        .as_ref()
        .and_then(|p| p.capabilities().as_ref())
    else {
        return Vec::new();
    };
    capability_sets(caps)
        .into_iter()
        .filter(|(_, set)| set.is_some_and(|s| s.contains(&Capability::SysAdmin)))
        .map(|(name, _)| name)
        .collect()
}

fn capability_sets(
    caps: &LinuxCapabilities,
) -> [(
    &'static str,
    Option<&hookhost_guest::oci_spec::runtime::Capabilities>,
); 5] {
    [
        ("bounding", caps.bounding().as_ref()),
        ("effective", caps.effective().as_ref()),
        ("inheritable", caps.inheritable().as_ref()),
        ("permitted", caps.permitted().as_ref()),
        ("ambient", caps.ambient().as_ref()),
    ]
}

fn runs_as_root(spec: &Spec) -> bool {
    spec.process().as_ref().is_some_and(|p| p.user().uid() == 0)
}

/// A missing `root.readonly` means writable, as in the runtime-spec.
fn rootfs_readonly(spec: &Spec) -> bool {
    spec.root().as_ref().and_then(|r| r.readonly()) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookhost_guest::State;

    fn spec(json: &str) -> Spec {
        serde_json::from_str(json).unwrap()
    }

    fn hook(annotations: &[(&str, &str)]) -> Hook {
        let mut state = State {
            id: "c1".into(),
            ..State::default()
        };
        for (k, v) in annotations {
            state.annotations.insert(k.to_string(), v.to_string());
        }
        Hook::new(state)
    }

    const PLAIN: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
        "process":{"cwd":"/","user":{"uid":0,"gid":0},
          "capabilities":{"bounding":["CAP_KILL"],"effective":["CAP_KILL"]}}}"#;
    const SYS_ADMIN: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs","readonly":true},
        "process":{"cwd":"/","user":{"uid":1000,"gid":0},
          "capabilities":{"bounding":["CAP_SYS_ADMIN"],"permitted":["CAP_SYS_ADMIN","CAP_KILL"]}}}"#;
    const ROOT_RW: &str = r#"{"ociVersion":"1.0.2","root":{"path":"rootfs"},
        "process":{"cwd":"/","user":{"uid":0,"gid":0}}}"#;

    #[test]
    fn plain_container_passes() {
        assert_eq!(check_bundle(&hook(&[]), &spec(PLAIN)), Ok(()));
        let non_root_rw = ROOT_RW.replace(r#""uid":0"#, r#""uid":1000"#);
        assert_eq!(check_bundle(&hook(&[]), &spec(&non_root_rw)), Ok(()));
    }

    #[test]
    fn sys_admin_is_refused_with_the_sets_named() {
        let err = check_bundle(&hook(&[]), &spec(SYS_ADMIN)).unwrap_err();
        assert!(err.contains("container c1 refused"), "{err}");
        assert!(
            err.contains("CAP_SYS_ADMIN in the bounding, permitted set"),
            "{err}"
        );
    }

    #[test]
    fn root_with_writable_rootfs_is_refused() {
        let err = check_bundle(&hook(&[]), &spec(ROOT_RW)).unwrap_err();
        assert!(
            err.contains("uid 0 with a writable root filesystem"),
            "{err}"
        );
    }

    #[test]
    fn annotation_allows() {
        let allow = [(ALLOW_ANNOTATION, "true")];
        assert_eq!(check_bundle(&hook(&allow), &spec(SYS_ADMIN)), Ok(()));
        let with_spec_annotation = ROOT_RW.replace(
            r#""ociVersion":"1.0.2","#,
            r#""ociVersion":"1.0.2","annotations":{"io.hookhost.allow-privileged":"true"},"#,
        );
        assert_eq!(
            check_bundle(&hook(&[]), &spec(&with_spec_annotation)),
            Ok(())
        );
        let not_true = [(ALLOW_ANNOTATION, "yes")];
        assert!(check_bundle(&hook(&not_true), &spec(ROOT_RW)).is_err());
    }

    fn proposed(json: &str) -> Precreate {
        Precreate::parse(json.as_bytes()).unwrap()
    }

    #[test]
    fn at_precreate_the_proposed_config_is_checked_before_any_container_exists() {
        let err = check_proposed(&proposed(SYS_ADMIN)).unwrap_err();
        assert!(
            err.starts_with(
                "deny-privileged: container refused: it has CAP_SYS_ADMIN in the bounding, permitted set"
            ),
            "{err}"
        );
        let err = check_proposed(&proposed(ROOT_RW)).unwrap_err();
        assert!(
            err.contains("uid 0 with a writable root filesystem"),
            "{err}"
        );
        assert_eq!(check_proposed(&proposed(PLAIN)), Ok(()));
        let annotated = SYS_ADMIN.replace(
            r#""ociVersion":"1.0.2","#,
            r#""ociVersion":"1.0.2","annotations":{"io.hookhost.allow-privileged":"true"},"#,
        );
        assert_eq!(check_proposed(&proposed(&annotated)), Ok(()));
    }
}
