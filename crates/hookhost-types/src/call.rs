//! How the runtime calls hookhost back at a stage: the `args` of hookhost's own entry in a
//! bundle's `config.json` (or in an exported hooks.d file). Encoded and decoded here only.
//!
//! ```text
//! hookhost stage STAGE --plan PLAN-FILE --sha256 HEX
//! ```
//!
//! The plan itself (which hooks run, with their environment) is not in argv, where the kernel
//! limits one argument to 128 KiB and every user of the host can read it in `/proc/PID/cmdline`:
//! it is a file readable only by its owner. A relative `PLAN-FILE` is resolved against the
//! bundle directory of the state on stdin; `HEX` is the plan's sha256, so a plan that was
//! changed or replaced after injection is refused rather than run.

use std::path::PathBuf;

use crate::Stage;

/// One stage call: which stage, and where its plan is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageCall {
    /// The stage the runtime is running.
    pub stage: Stage,
    /// The plan file: absolute, or relative to the container's bundle.
    pub plan: PathBuf,
    /// The plan file's sha256, lower-case hex.
    pub sha256: String,
}

/// The file name of hookhost's executable, and argv0 of its entries.
pub const HOOKHOST_EXECUTABLE: &str = "hookhost";

/// The file name of the stage executable, which entries name instead of hookhost's when it is
/// installed beside it: a small program that runs `hookhost stage` calls only
/// (crates/hookhost-stage). Its argv0 stays [`HOOKHOST_EXECUTABLE`].
pub const STAGE_EXECUTABLE: &str = "hookhost-stage";

/// The file name of the runc-compatible runtime wrapper that engines are given: hookhost
/// itself under this name, or the small static executable of that name installed beside it
/// (crates/hookhost-stage).
pub const RUNTIME_EXECUTABLE: &str = "hookhost-runtime";

const ARGV0: &str = HOOKHOST_EXECUTABLE;
const COMMAND: &str = "stage";
const PLAN_FLAG: &str = "--plan";
const SHA_FLAG: &str = "--sha256";

impl StageCall {
    /// The name of a plan file with this sha256 (hex): named by its content, so that a bundle
    /// injected again keeps the plan its created containers refer to.
    pub fn plan_file_name(sha256: &str) -> String {
        format!("hookhost-plan-{sha256}.json")
    }

    /// The call of `stage` for the plan with this sha256 in the container's bundle.
    pub fn bundle_plan(stage: Stage, sha256: &str) -> Self {
        StageCall {
            stage,
            plan: PathBuf::from(Self::plan_file_name(sha256)),
            sha256: sha256.to_string(),
        }
    }

    /// The OCI hook `args`: argv0 `hookhost`, then the call.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            ARGV0.into(),
            COMMAND.into(),
            self.stage.as_str().into(),
            PLAN_FLAG.into(),
            self.plan.to_string_lossy().into_owned(),
            SHA_FLAG.into(),
            self.sha256.clone(),
        ]
    }

    /// Reads a process's argv as [`to_args`](Self::to_args) wrote it (argv0 is not looked at,
    /// as the runtime may set it to anything); `None` for anything else.
    pub fn from_argv<S: AsRef<str>>(argv: &[S]) -> Option<Self> {
        let [_, command, stage, plan_flag, plan, sha_flag, sha256] = argv else {
            return None;
        };
        let well_formed = command.as_ref() == COMMAND
            && plan_flag.as_ref() == PLAN_FLAG
            && sha_flag.as_ref() == SHA_FLAG
            && !plan.as_ref().is_empty()
            && is_sha256_hex(sha256.as_ref());
        if !well_formed {
            return None;
        }
        Some(StageCall {
            stage: stage.as_ref().parse().ok()?,
            plan: PathBuf::from(plan.as_ref()),
            sha256: sha256.as_ref().to_string(),
        })
    }

    /// Whether an OCI hook's `args` are one of hookhost's own entries.
    pub fn from_hook_args<S: AsRef<str>>(args: &[S]) -> Option<Self> {
        if args.first()?.as_ref() != ARGV0 {
            return None;
        }
        Self::from_argv(args)
    }
}

/// The annotation the runtime wrapper sets at create for a container with hooks to run at the
/// engine's `start` call ([`Stage::runs_at_start`]): the runtime keeps annotations in its
/// state, where the wrapper finds them again at `start`.
pub const START_ANNOTATION: &str = "io.hookhost.start";

/// The value of [`START_ANNOTATION`]: `STAGE[,STAGE] SHA256`, the stages the wrapper runs at
/// `start` and the plan (in the bundle) they run from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartCalls {
    /// The stages, in run order.
    pub stages: Vec<Stage>,
    /// The plan file's sha256.
    pub sha256: String,
}

impl StartCalls {
    /// The annotation's value.
    pub fn encode(&self) -> String {
        let stages: Vec<&str> = self.stages.iter().map(|s| s.as_str()).collect();
        format!("{} {}", stages.join(","), self.sha256)
    }

    /// Reads a value [`encode`](Self::encode) wrote; `None` for anything else.
    pub fn decode(value: &str) -> Option<Self> {
        let (stages, sha256) = value.split_once(' ')?;
        let stages = stages
            .split(',')
            .map(|s| s.parse().ok().filter(|s: &Stage| s.runs_at_start()))
            .collect::<Option<Vec<Stage>>>()?;
        is_sha256_hex(sha256).then(|| StartCalls {
            stages,
            sha256: sha256.to_string(),
        })
    }

    /// The call of `stage` if it is one of these stages.
    pub fn call(&self, stage: Stage) -> Option<StageCall> {
        self.stages
            .contains(&stage)
            .then(|| StageCall::bundle_plan(stage, &self.sha256))
    }
}

fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_calls_round_trip_and_name_only_start_stages() {
        let calls = StartCalls {
            stages: vec![Stage::StartRuntime, Stage::Poststart],
            sha256: "b".repeat(64),
        };
        let value = calls.encode();
        assert_eq!(value, format!("startRuntime,poststart {}", "b".repeat(64)));
        assert_eq!(StartCalls::decode(&value), Some(calls.clone()));
        assert_eq!(
            calls.call(Stage::Poststart),
            Some(StageCall::bundle_plan(Stage::Poststart, &"b".repeat(64)))
        );
        assert_eq!(calls.call(Stage::Prestart), None);
        for bad in ["poststart", "prestart bbbb", "poststart,x bbbb", ""] {
            assert_eq!(StartCalls::decode(bad), None, "{bad}");
        }
        let prestart = format!("prestart {}", "b".repeat(64));
        assert_eq!(StartCalls::decode(&prestart), None);
    }

    #[test]
    fn round_trips_and_refuses_anything_else() {
        let call = StageCall::bundle_plan(Stage::Poststop, &"a".repeat(64));
        let args = call.to_args();
        assert_eq!(args[..3], ["hookhost", "stage", "poststop"]);
        assert_eq!(StageCall::from_hook_args(&args), Some(call.clone()));
        let mut other = args.clone();
        other[0] = "/usr/bin/hookhost".into();
        assert_eq!(StageCall::from_argv(&other), Some(call));
        assert_eq!(StageCall::from_hook_args(&other), None);
        for (at, bad) in [(2, "prestop"), (3, "--plan="), (6, "A"), (4, "")] {
            let mut broken = args.clone();
            broken[at] = bad.into();
            assert_eq!(StageCall::from_argv(&broken), None, "{bad}");
        }
        assert_eq!(StageCall::from_argv(&args[..6]), None);
    }
}
