//! The hook definition: what a registered hook is, independent of where it is stored or how it runs.

use std::fmt;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use serde::{Deserialize, Deserializer, Serialize};
use thiserror::Error;

pub use hookhost_types::{HookKind, Stage, UnknownStage};

use crate::grants::Grants;
use crate::when::When;
use hookhost_exec::limits::WasmLimits;

/// Wall-clock bound of a hook when its registration sets none, in seconds.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The longest timeout a hook may have, in seconds: one hour. Hooks run while the runtime
/// creates, starts or deletes the container, and the engine waits for that (Kubernetes gives a
/// whole CRI call 2 minutes by default): a hook still running after an hour is hung, not slow.
/// The bound keeps every sum of timeouts far from overflowing (see [`oci_timeout_secs`]).
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// The largest OCI `timeout` hookhost writes into config.json, in seconds: `i32::MAX`. The
/// field is a Go `int` (32 bits on some platforms), and runc multiplies it by
/// `time.Second` in an `int64` of nanoseconds, which wraps above about 9.2e9 seconds.
pub const MAX_OCI_TIMEOUT_SECS: u64 = i32::MAX as u64;

/// One argument the kernel passes to a program is at most this long (`MAX_ARG_STRLEN`,
/// including its NUL).
pub const MAX_ARG_BYTES: usize = 128 * 1024;

/// A native hook's arguments and environment together, at most, counted as `execve(2)` counts
/// them (each string with its NUL, plus its pointer): well under the kernel's total (a quarter
/// of the stack limit, 2 MiB with the usual 8 MiB stack). A WASM hook is not exec'd: a selection
/// may give it more, but its registration holds it to this bound too, as every container plan
/// that selects it carries them ([`check_registrable`]).
pub const MAX_EXEC_BYTES: usize = 1024 * 1024;

/// Why a hook could never be run, whatever the container: see [`check_runnable`].
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Unrunnable {
    #[error(
        "a WASM hook cannot run at startContainer: that stage runs inside the container, where \
         hookhost is not (register it at createContainer, which comes just before)"
    )]
    WasmInContainer,
    #[error(
        "an argument or variable holds a NUL byte ({value:?}…): a program is given its \
         arguments and environment as NUL-terminated strings; remove the NUL"
    )]
    Nul { value: String },
    #[error(
        "one argument or variable is {len} bytes; the kernel passes at most {} bytes per \
         argument to a program", MAX_ARG_BYTES - 1
    )]
    ArgTooLong { len: usize },
    #[error(
        "its arguments and environment total {total} bytes; at most {MAX_EXEC_BYTES} are \
         passed to a hook (pass large data in a file instead)"
    )]
    TooLarge { total: usize },
}

/// The one check that a hook of `kind` can run at `stages` with `args` and `env`, made when a
/// container's plan is made (with the arguments selections append) and when a hooks.d file is
/// read: a WASM hook cannot run inside the container (startContainer); no argument or variable
/// may hold a NUL (programs and WASI get NUL-terminated strings); a native hook's each must fit
/// the kernel's `MAX_ARG_STRLEN`, and all together [`MAX_EXEC_BYTES`].
pub fn check_runnable(
    kind: HookKind,
    stages: &[Stage],
    args: &[String],
    env: &[String],
) -> Result<(), Unrunnable> {
    if kind == HookKind::Wasm && stages.contains(&Stage::StartContainer) {
        return Err(Unrunnable::WasmInContainer);
    }
    let strings = || args.iter().chain(env);
    if let Some(s) = strings().find(|s| s.contains('\0')) {
        return Err(Unrunnable::Nul {
            value: s.chars().take(40).collect(),
        });
    }
    if kind == HookKind::Native {
        if let Some(long) = strings().find(|s| s.len() + 1 > MAX_ARG_BYTES) {
            return Err(Unrunnable::ArgTooLong { len: long.len() });
        }
        check_total(args, env)?;
    }
    Ok(())
}

/// What every way of registering a hook checks (`create`, `import`, `apply`, from an OCI
/// registry; see `define`): [`check_runnable`], and for either kind at most [`MAX_EXEC_BYTES`]
/// of arguments and environment, so that a hook registered as global cannot refuse every
/// container on the node (a WASM hook's arguments travel in each container's plan).
pub fn check_registrable(
    kind: HookKind,
    stages: &[Stage],
    args: &[String],
    env: &[String],
) -> Result<(), Unrunnable> {
    check_runnable(kind, stages, args, env)?;
    check_total(args, env)
}

/// `args` and `env` together, counted as `execve(2)` counts them, within [`MAX_EXEC_BYTES`].
fn check_total(args: &[String], env: &[String]) -> Result<(), Unrunnable> {
    let total: usize = args
        .iter()
        .chain(env)
        .map(|s| s.len() + 1 + std::mem::size_of::<usize>())
        .sum();
    match total > MAX_EXEC_BYTES {
        true => Err(Unrunnable::TooLarge { total }),
        false => Ok(()),
    }
}

/// Where a timeout was given, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutSource {
    /// `hookhost create --timeout`.
    Flag,
    /// A `--hook-spec` file or an inline hook spec.
    HookSpec,
    /// A Podman/CRI-O hooks.d file.
    HooksD,
    /// A registry entry or stage plan read back from disk.
    Stored,
    /// The `Timeout` field of a file of hooks (`hookhost apply -f`).
    Field,
}

impl fmt::Display for TimeoutSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeoutSource::Flag => "--timeout",
            TimeoutSource::HookSpec => "hook spec timeout",
            TimeoutSource::HooksD => "hooks.d timeout",
            TimeoutSource::Stored => "stored timeout",
            TimeoutSource::Field => "Timeout",
        })
    }
}

/// A hook timeout outside `1..=MAX_TIMEOUT_SECS`, or not a whole number.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error(
    "invalid {origin} {value}: a hook timeout must be a whole number of seconds from 1 to \
     {MAX_TIMEOUT_SECS}"
)]
pub struct TimeoutError {
    /// The value as it was given.
    pub value: String,
    pub origin: TimeoutSource,
}

/// The one check of a hook timeout, whatever its source: whole seconds in `1..=MAX_TIMEOUT_SECS`.
/// Takes any integer type (`i64` from JSON, `u64` from Rust callers) without truncating it first.
pub fn validate_timeout(
    value: impl Into<i128>,
    origin: TimeoutSource,
) -> Result<u64, TimeoutError> {
    let value: i128 = value.into();
    match u64::try_from(value) {
        Ok(secs @ 1..=MAX_TIMEOUT_SECS) => Ok(secs),
        _ => Err(TimeoutError {
            value: value.to_string(),
            origin,
        }),
    }
}

/// A timeout as it was given, before validation: any JSON number, or command-line text, so
/// that a value too large for `i64` or `u64`, a fraction or a typo gets the timeout message.
#[derive(Debug, Clone, PartialEq)]
pub enum RawTimeout {
    Int(i128),
    Float(f64),
    Text(String),
}

impl From<&str> for RawTimeout {
    fn from(text: &str) -> Self {
        text.trim()
            .parse::<i128>()
            .map_or_else(|_| RawTimeout::Text(text.to_string()), RawTimeout::Int)
    }
}

impl From<u64> for RawTimeout {
    fn from(secs: u64) -> Self {
        RawTimeout::Int(secs.into())
    }
}

impl From<i64> for RawTimeout {
    fn from(secs: i64) -> Self {
        RawTimeout::Int(secs.into())
    }
}

impl RawTimeout {
    /// Validates with [`validate_timeout`].
    pub fn validate(&self, origin: TimeoutSource) -> Result<u64, TimeoutError> {
        let invalid = |value: String| Err(TimeoutError { value, origin });
        match self {
            RawTimeout::Int(value) => validate_timeout(*value, origin),
            RawTimeout::Float(value) => invalid(value.to_string()),
            // An integer too large even for i128 is shown as the number it is.
            RawTimeout::Text(text) if is_integer(text.trim()) => invalid(text.trim().to_string()),
            RawTimeout::Text(text) => invalid(format!("{text:?}")),
        }
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

impl<'de> Deserialize<'de> for RawTimeout {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = RawTimeout;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a whole number of seconds")
            }
            fn visit_i64<E>(self, v: i64) -> Result<RawTimeout, E> {
                Ok(RawTimeout::Int(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<RawTimeout, E> {
                Ok(RawTimeout::Int(v.into()))
            }
            fn visit_i128<E>(self, v: i128) -> Result<RawTimeout, E> {
                Ok(RawTimeout::Int(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<RawTimeout, E> {
                Ok(i128::try_from(v).map_or(RawTimeout::Float(v as f64), RawTimeout::Int))
            }
            fn visit_f64<E>(self, v: f64) -> Result<RawTimeout, E> {
                Ok(RawTimeout::Float(v))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// Reads a stored `Timeout` (registry entries, stage plans) through [`validate_timeout`], so
/// that a hand-edited value is refused as corrupt instead of reaching the runner.
fn stored_timeout<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    RawTimeout::deserialize(deserializer)?
        .validate(TimeoutSource::Stored)
        .map_err(serde::de::Error::custom)
}

/// The OCI `timeout` of one entry that runs `timeouts` one after the other, plus `slack`:
/// their sum, saturating, capped at [`MAX_OCI_TIMEOUT_SECS`] so it stays a valid positive
/// Go `int` whatever the inputs.
pub fn oci_timeout_secs(timeouts: impl IntoIterator<Item = u64>, slack: u64) -> u64 {
    timeouts
        .into_iter()
        .fold(slack, u64::saturating_add)
        .clamp(1, MAX_OCI_TIMEOUT_SECS)
}

/// Everything needed to run a hook once: what a container snapshots when it is created, so that
/// later changes to the registry do not change what an existing container runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HookSpec {
    pub kind: HookKind,
    /// Native: the executable. WASM: the file the module was registered from (informational;
    /// the module itself is stored in the registry under `Digest`).
    pub path: PathBuf,
    /// OCI `execv` semantics: `args[0]` is argv0.
    pub args: Vec<String>,
    /// `KEY=VALUE` pairs; the hook's whole environment (plus `HOOKHOST_STAGE`).
    pub env: Vec<String>,
    /// Seconds, in `1..=MAX_TIMEOUT_SECS` (checked when read back).
    #[serde(deserialize_with = "stored_timeout")]
    pub timeout: u64,
    /// sha256 of the WASM module, or of the native binary when pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<WasmLimits>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Grants>,
    /// Native hooks: leave what is left of the hook's process group running after it exited
    /// successfully, as runc does, instead of killing it (`create --leave-helpers`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub leave_helpers: bool,
    /// What a failure of this hook does (`create --on-failure`); none: the stage's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Precreate hooks: what of the container's configuration the hook may change
    /// (`create --may-adjust`); none: it may only accept or refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub may_adjust: Option<crate::may_adjust::MayAdjust>,
}

impl HookSpec {
    /// What a failure of this hook does at `stage`: its own policy, else the stage's rule
    /// (fatal stages fail, poststop warns).
    pub fn failure_policy(&self, stage: Stage) -> OnFailure {
        self.on_failure.unwrap_or(if stage.is_fatal() {
            OnFailure::Fail
        } else {
            OnFailure::Warn
        })
    }
}

/// What a failing hook does to its container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop the container (fatal stages only; never poststop).
    Fail,
    /// Let it start; the failure is a warning in the runtime's log and in the audit trail.
    Warn,
    /// Let it start; the failure is only recorded in the audit trail.
    Ignore,
}

impl OnFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Fail => "fail",
            OnFailure::Warn => "warn",
            OnFailure::Ignore => "ignore",
        }
    }
}

impl std::str::FromStr for OnFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fail" => Ok(OnFailure::Fail),
            "warn" => Ok(OnFailure::Warn),
            "ignore" => Ok(OnFailure::Ignore),
            _ => Err(format!(
                "invalid --on-failure {s:?}: one of fail, warn, ignore"
            )),
        }
    }
}

/// A registered hook.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Hook {
    pub name: String,
    pub stages: Vec<Stage>,
    #[serde(flatten)]
    pub spec: HookSpec,
    /// Conditions that make this a global hook, run for every matching container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    pub created: DateTime<Utc>,
    /// Where the module came from when it was not a local file (an OCI registry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// A shadow hook: the enforced hook it runs beside, never selected on its own (see
    /// [`crate::shadow`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<crate::shadow::ShadowOf>,
}

/// The provenance of a module pulled from an OCI registry, as resolved at registration: the
/// hook keeps running this module whatever the reference's tag points at later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Source {
    /// The reference as given, `oci://HOST/REPO:TAG` or `oci://HOST/REPO@sha256:…`.
    pub reference: String,
    /// The digest of the manifest the reference resolved to, `sha256:…`.
    pub manifest_digest: String,
    /// The digest of the module (the artifact's one layer), `sha256:…`.
    pub module_digest: String,
    /// The key whose signature was verified, when one was required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<Signer>,
    /// The definition the artifact carries (`hookhost push` of a registered hook records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<crate::published::Published>,
}

/// A verified signature: which public key, and in which format it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct Signer {
    /// The public key file as given (`--verify-key` or the config file's `verifyKeys`).
    pub key: PathBuf,
    /// sha256 of the key's DER SubjectPublicKeyInfo, `sha256:…` (what `cosign public-key`
    /// prints, hashed): it names the key even when the file moves.
    pub key_digest: String,
    /// `sigstore-bundle` (cosign 3's default) or `simple-signing` (the legacy `.sig` tag).
    pub format: String,
}

impl Hook {
    /// Whether its entry is in `global/`: a global hook (with `when` conditions), or a shadow,
    /// which every container's selection must see beside the hook it shadows.
    pub fn in_global_dir(&self) -> bool {
        self.when.is_some() || self.shadow.is_some()
    }

    /// The stages as the seed's `Type` column shows them: `prestart` or `prestart,poststop`.
    pub fn type_label(&self) -> String {
        self.stages
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The document `hookhost inspect` prints: the stored fields plus the seed's `Type` key.
    pub fn inspect_view(&self) -> serde_json::Value {
        let mut doc = serde_json::Map::new();
        doc.insert("Name".into(), self.name.clone().into());
        doc.insert("Type".into(), self.type_label().into());
        if let Ok(serde_json::Value::Object(stored)) = serde_json::to_value(self) {
            for (key, value) in stored {
                doc.entry(key).or_insert(value);
            }
        }
        serde_json::Value::Object(doc)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error(
    "invalid hook name {0:?}: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]* and be at most 128 characters"
)]
pub struct InvalidName(pub String);

/// Hook names follow Docker's object-name rule, so they are also safe file names.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() <= 128 {
        Ok(())
    } else {
        Err(InvalidName(name.to_string()))
    }
}

/// A native prestart hook running `/bin/true`, for tests to change what they need.
#[cfg(test)]
pub(crate) fn sample(name: &str) -> Hook {
    Hook {
        name: name.into(),
        stages: vec![Stage::Prestart],
        spec: HookSpec {
            kind: HookKind::Native,
            path: "/bin/true".into(),
            args: vec!["true".into()],
            env: vec![],
            timeout: 5,
            digest: None,
            limits: None,
            grants: None,
            leave_helpers: false,
            on_failure: None,
            may_adjust: None,
        },
        when: None,
        created: chrono::Utc::now(),
        source: None,
        shadow: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_docker_rules() {
        for ok in ["myFirstHook", "a", "0.b_c-d"] {
            assert!(validate_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".hidden", "a/b", "a b", "é", &"x".repeat(129)] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    /// What runs is checked at the plan; what is registered is held to the exec bound too,
    /// WASM included, so that a global hook never refuses every container.
    #[test]
    fn hooks_that_could_never_run_are_not_registrable() {
        use HookKind::{Native, Wasm};
        let at = [Stage::Prestart];
        let big = vec!["a".repeat(100_000); 11];
        assert_eq!(check_runnable(Wasm, &at, &big, &[]), Ok(()));
        assert!(matches!(
            check_registrable(Wasm, &at, &big, &[]),
            Err(Unrunnable::TooLarge { .. })
        ));
        assert!(matches!(
            check_runnable(Native, &at, &big, &[]),
            Err(Unrunnable::TooLarge { .. })
        ));
        let nul = ["x\0y".to_string()];
        for kind in [Native, Wasm] {
            assert!(matches!(
                check_registrable(kind, &at, &[], &nul),
                Err(Unrunnable::Nul { .. })
            ));
        }
        let inside = [Stage::CreateContainer, Stage::StartContainer];
        assert_eq!(
            check_registrable(Wasm, &inside, &[], &[]),
            Err(Unrunnable::WasmInContainer)
        );
        assert_eq!(check_registrable(Native, &inside, &[], &[]), Ok(()));
    }

    #[test]
    fn timeouts_are_whole_seconds_from_one_to_the_maximum() {
        use TimeoutSource::*;
        assert_eq!(validate_timeout(1u64, Flag), Ok(1));
        assert_eq!(
            validate_timeout(MAX_TIMEOUT_SECS, Flag),
            Ok(MAX_TIMEOUT_SECS)
        );
        let cases: [(RawTimeout, &str); 9] = [
            (RawTimeout::Int(0), "0"),
            (RawTimeout::Int(-1), "-1"),
            ((MAX_TIMEOUT_SECS + 1).into(), "3601"),
            (i64::MAX.into(), "9223372036854775807"),
            (i64::MIN.into(), "-9223372036854775808"),
            (u64::MAX.into(), "18446744073709551615"),
            (
                "99999999999999999999999999999999999999999".into(),
                "timeout 99999999999999999999999999999999999999999:",
            ),
            (RawTimeout::Float(1.5), "1.5"),
            ("5s".into(), "\"5s\""),
        ];
        for (raw, shown) in cases {
            let err = raw.validate(HooksD).unwrap_err().to_string();
            assert!(err.starts_with("invalid hooks.d timeout "), "{err}");
            assert!(err.contains(shown), "{shown}: {err}");
            assert!(err.contains("from 1 to 3600"), "{err}");
        }
        assert_eq!(RawTimeout::from(" 42 ").validate(Flag), Ok(42));
        let err = RawTimeout::from("0")
            .validate(Flag)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid --timeout 0: a hook timeout must be a whole number of seconds from 1 to 3600"
        );
    }

    #[test]
    fn json_timeouts_of_any_size_reach_the_validator() {
        for (text, want) in [
            ("5", RawTimeout::Int(5)),
            ("-5", RawTimeout::Int(-5)),
            ("18446744073709551615", RawTimeout::Int(u64::MAX.into())),
            ("1e3", RawTimeout::Float(1000.0)),
            ("1.5", RawTimeout::Float(1.5)),
        ] {
            assert_eq!(
                serde_json::from_str::<RawTimeout>(text).unwrap(),
                want,
                "{text}"
            );
        }
        let big = serde_json::from_str::<RawTimeout>("184467440737095516150").unwrap();
        assert!(big.validate(TimeoutSource::HookSpec).is_err());
        assert!(serde_json::from_str::<RawTimeout>("\"5\"").is_err());
    }

    #[test]
    fn a_stored_spec_with_a_timeout_out_of_range_is_refused() {
        let spec = |timeout: &str| {
            format!(r#"{{"Kind":"native","Path":"/x","Args":[],"Env":[],"Timeout":{timeout}}}"#)
        };
        let ok: HookSpec = serde_json::from_str(&spec("3600")).unwrap();
        assert_eq!(ok.timeout, 3600);
        for bad in [
            "0",
            "-1",
            "3601",
            "9223372036854775807",
            "18446744073709551615",
            "1e300",
        ] {
            let err = serde_json::from_str::<HookSpec>(&spec(bad)).unwrap_err();
            assert!(
                err.to_string().contains("invalid stored timeout"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn summed_oci_timeouts_never_wrap() {
        let at_max = std::iter::repeat_n(MAX_TIMEOUT_SECS, 2000);
        let sum = oci_timeout_secs(at_max, 5);
        assert_eq!(sum, 2000 * MAX_TIMEOUT_SECS + 5);
        assert!(i32::try_from(sum).is_ok());
        let huge = oci_timeout_secs([u64::MAX, u64::MAX, 1], 5);
        assert_eq!(huge, MAX_OCI_TIMEOUT_SECS);
        assert!(i32::try_from(huge).is_ok_and(|t| t > 0));
        assert_eq!(oci_timeout_secs([], 0), 1);
    }
}
