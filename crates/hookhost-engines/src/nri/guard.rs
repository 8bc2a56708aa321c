//! The guard: NRI lets a container start without a plugin that is down or too slow, so a policy
//! enforced by hookhost's NRI plugin would silently turn off. The guard closes that: a
//! createRuntime hook in containerd's `base_runtime_spec` (which applies to every app
//! container of that runtime handler) that refuses a container the plugin did not prepare —
//! the plugin marks each container it prepared with [`prepared_annotation`]. Namespaces the
//! administrator exempts (hookhost's own DaemonSet, kube-system) start without it.

use serde_json::{Value, json};
use thiserror::Error;

use hookhost_types::State;

/// The annotation (key prefix) the plugin named NAME sets on each container it prepared.
pub const PREPARED: &str = "prepared.nri.hookhost.io/";

/// The annotation containerd's CRI sets to the pod's namespace.
pub const SANDBOX_NAMESPACE: &str = "io.kubernetes.cri.sandbox-namespace";

/// The key of the plugin named `name`'s mark.
pub fn prepared_annotation(name: &str) -> String {
    format!("{PREPARED}{name}")
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum GuardError {
    #[error(
        "hookhost: container {id} (namespace {namespace}) refused: hookhost's NRI plugin {name:?} \
         did not prepare it, so its hooks would be skipped. Start the plugin (`hookhost nri`, \
         its DaemonSet) and check that it is registered (its --health-file, its log); or exempt \
         the namespace with \"nri\": {{\"exemptNamespaces\": [...]}} in hookhost's config file"
    )]
    NotPrepared {
        id: String,
        namespace: String,
        name: String,
    },
    #[error("the spec on stdin is not a JSON object with an object or no \"hooks\"")]
    BadSpec,
}

/// Where the guard entry finds what `hookhost nri` uses.
#[derive(Debug, Clone, Default)]
pub struct GuardEntry {
    /// hookhost's own executable.
    pub exe: String,
    /// The plugin's name (`--name`).
    pub name: String,
    /// `HOOKHOST_CONFIG` / `--config` in force, if any.
    pub config: Option<String>,
    /// `HOOKHOST_ROOT` / `--root` in force, if any.
    pub root: Option<String>,
}

/// `spec` with the guard appended to its createRuntime hooks (an earlier guard entry of
/// hookhost's is replaced, so running `guard-spec` twice gives one guard).
pub fn guard_spec(mut spec: Value, entry: &GuardEntry) -> Result<Value, GuardError> {
    let object = spec.as_object_mut().ok_or(GuardError::BadSpec)?;
    let hooks = object.entry("hooks").or_insert_with(|| json!({}));
    let hooks = hooks.as_object_mut().ok_or(GuardError::BadSpec)?;
    let list = hooks.entry("createRuntime").or_insert_with(|| json!([]));
    let list = list.as_array_mut().ok_or(GuardError::BadSpec)?;
    list.retain(|h| !is_guard(h));
    let mut args: Vec<String> = GUARD_ARGV.iter().map(|a| a.to_string()).collect();
    args.extend(["--name".into(), entry.name.clone()]);
    let mut env = Vec::new();
    if let Some(config) = &entry.config {
        env.push(format!("HOOKHOST_CONFIG={config}"));
    }
    if let Some(root) = &entry.root {
        env.push(format!("HOOKHOST_ROOT={root}"));
    }
    let mut hook = json!({"path": entry.exe, "args": args, "timeout": GUARD_TIMEOUT_SECS});
    if !env.is_empty() {
        hook["env"] = env.into();
    }
    list.push(hook);
    Ok(spec)
}

/// The guard entry's argv before its flags: argv0, then `hookhost nri guard`'s subcommands
/// (as the CLI names them); also how an earlier guard entry is recognised.
const GUARD_ARGV: [&str; 3] = ["hookhost", "nri", "guard"];

/// The guard's own bound: it reads one state and one config file.
const GUARD_TIMEOUT_SECS: u64 = 5;

fn is_guard(hook: &Value) -> bool {
    let args = hook.get("args").and_then(Value::as_array);
    let args: Vec<&str> = args
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    args.get(1..3) == Some(&GUARD_ARGV[1..])
}

/// The guard's decision for the container whose state the runtime passed.
pub fn check(state: &State, name: &str, exempt: &[String]) -> Result<(), GuardError> {
    if state.annotations.contains_key(&prepared_annotation(name)) {
        return Ok(());
    }
    let namespace = state
        .annotations
        .get(SANDBOX_NAMESPACE)
        .cloned()
        .unwrap_or_default();
    if exempt.contains(&namespace) {
        return Ok(());
    }
    Err(GuardError::NotPrepared {
        id: state.id.clone(),
        namespace,
        name: name.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> GuardEntry {
        GuardEntry {
            exe: "/usr/bin/hookhost".into(),
            name: "hookhost".into(),
            config: Some("/etc/hookhost/config.json".into()),
            root: Some("/var/lib/hookhost".into()),
        }
    }

    #[test]
    fn guard_spec_appends_one_guard_and_keeps_the_rest() {
        let spec = json!({"ociVersion": "1.1.0", "x-vendor": 1,
                          "hooks": {"createRuntime": [{"path": "/bin/other"}]}});
        let once = guard_spec(spec, &entry()).unwrap();
        let twice = guard_spec(once.clone(), &entry()).unwrap();
        assert_eq!(once, twice);
        let list = once["hooks"]["createRuntime"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["path"], "/bin/other");
        assert_eq!(
            list[1]["args"],
            json!(["hookhost", "nri", "guard", "--name", "hookhost"])
        );
        assert_eq!(
            list[1]["env"],
            json!([
                "HOOKHOST_CONFIG=/etc/hookhost/config.json",
                "HOOKHOST_ROOT=/var/lib/hookhost"
            ])
        );
        assert_eq!(once["x-vendor"], 1);
        assert_eq!(guard_spec(json!([]), &entry()), Err(GuardError::BadSpec));
        assert_eq!(
            guard_spec(json!({"hooks": 1}), &entry()),
            Err(GuardError::BadSpec)
        );
    }

    fn state(annotations: &[(&str, &str)]) -> State {
        let mut state = State {
            id: "c1".into(),
            ..State::default()
        };
        for (k, v) in annotations {
            state.annotations.insert(k.to_string(), v.to_string());
        }
        state
    }

    #[test]
    fn the_guard_lets_prepared_and_exempt_containers_through_and_refuses_the_rest() {
        let exempt = vec!["kube-system".to_string()];
        let prepared = state(&[(&prepared_annotation("hookhost"), "true")]);
        assert_eq!(check(&prepared, "hookhost", &[]), Ok(()));
        // Another plugin's mark is not this one's.
        assert!(check(&prepared, "other", &[]).is_err());
        let system = state(&[(SANDBOX_NAMESPACE, "kube-system")]);
        assert_eq!(check(&system, "hookhost", &exempt), Ok(()));
        let bare = state(&[(SANDBOX_NAMESPACE, "team-a")]);
        let err = check(&bare, "hookhost", &exempt).unwrap_err().to_string();
        assert!(
            err.starts_with("hookhost: container c1 (namespace team-a) refused"),
            "{err}"
        );
        assert!(err.contains("exemptNamespaces"), "{err}");
    }
}
