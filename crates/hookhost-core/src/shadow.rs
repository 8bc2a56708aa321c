//! Shadow hooks at run time (their definitions: `hookhost_hooks::shadow`): after each run of
//! an enforced hook, each of its shadows runs on the same input, and its run is recorded in the
//! audit trail with how it agreed with the enforced run. A shadow never affects its container:
//!
//! - its verdict and its precreate edits are computed and recorded, never enforced or applied;
//! - a writable directory grant is a scratch copy of the directory, removed after the run; the
//!   bundle and the root filesystem are granted read-only;
//! - it runs at most its budget (the time left before the caller's deadline, when there is one,
//!   must cover the whole budget, else it is skipped); stopped at the budget, it is recorded as
//!   skipped, with the reason;
//! - failing to run it, or to record it, is a warning, never a refusal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use hookhost_exec::fs::sha256_hex;
use hookhost_exec::wasm::Stop;
use hookhost_exec::{Exit, Outcome};
use hookhost_hooks::diff::Change;
use hookhost_hooks::grants::{Access, Grants};
use hookhost_hooks::hook::{Hook, HookKind};
use hookhost_hooks::registry::Registry;

use crate::events::{self, Event};
use crate::plan::{ContainerPlan, PlannedHook};
use crate::run::{self, ExecError, RunContext};
use crate::stage::{Rejected, StageReport, Trail};

/// A shadow as a container's plan carries it, under the hook it shadows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedShadow {
    /// Its spec, with the enforced hook's grants and `--may-adjust`.
    #[serde(rename = "Hook")]
    pub hook: PlannedHook,
    /// How long it may delay the container.
    #[serde(rename = "BudgetMs")]
    pub budget_ms: u64,
}

/// Puts each shadow of `shadows` (registry entries) under the WASM hooks of `plan` it shadows,
/// with the grants and `--may-adjust` of the hook as planned, and the arguments its selection
/// appended (`NAME:["--strict"]`): the same inputs. Reads the registered entry of each hook
/// that has shadows (for its own arguments); none when there are no shadows.
pub fn attach(plan: &mut ContainerPlan, shadows: &[Hook], registry: Option<&Registry>) {
    if shadows.is_empty() {
        return;
    }
    for planned in plan.stages.values_mut().flatten() {
        if planned.spec.kind != HookKind::Wasm {
            continue;
        }
        let mine = shadows
            .iter()
            .filter_map(|s| Some((s, s.shadow.as_ref().filter(|o| o.of == planned.name)?)));
        let mut extra = None;
        for (shadow, of) in mine {
            let extra = extra.get_or_insert_with(|| selection_args(planned, registry));
            let mut hook = PlannedHook::registered(shadow, extra);
            hook.spec.grants = planned.spec.grants.clone();
            hook.spec.may_adjust = planned.spec.may_adjust.clone();
            hook.spec.on_failure = None;
            planned.shadows.push(PlannedShadow {
                hook,
                budget_ms: of.budget_ms(),
            });
        }
    }
}

/// The arguments a selection appended to `planned`'s registered ones.
fn selection_args(planned: &PlannedHook, registry: Option<&Registry>) -> Vec<String> {
    let registered = registry.and_then(|r| r.get(&planned.name).ok());
    match registered {
        Some(hook) if planned.spec.args.starts_with(&hook.spec.args) => {
            planned.spec.args[hook.spec.args.len()..].to_vec()
        }
        _ => Vec::new(),
    }
}

/// What a run decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// It exited 0 and what it returned was accepted.
    Accepted,
    /// It ran to its end and said no: a non-zero exit, or a precreate output that was refused.
    Refused,
    /// It could not run to its end (a trap, its fuel, memory or time, an error).
    Failed,
    /// A shadow that did not run, or was stopped at its budget.
    Skipped,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Refused => "refused",
            Verdict::Failed => "failed",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A shadow run, as its event records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShadowRecord {
    /// The enforced hook it shadows.
    pub of: String,
    pub verdict: Verdict,
    /// Why it refused, failed or was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Precreate: the edits it would have made (`added env (process.env) GPU`), never applied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub edits: Vec<String>,
    /// sha256 of its edits with their values, when it made any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edits_digest: Option<String>,
    pub enforced_verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforced_edits_digest: Option<String>,
    pub same_verdict: bool,
    pub same_edits: bool,
    pub budget_ms: u64,
}

impl ShadowRecord {
    /// Its part of an event's text line: ` shadow-of=HOOK verdict=… (enforced …)` and what
    /// differed, each field through [`events::text_field`].
    pub fn text(&self) -> String {
        let agreement = match (self.same_verdict, self.same_edits) {
            _ if self.verdict == Verdict::Skipped => "skipped",
            (true, true) => "agrees",
            _ => "differs",
        };
        let mut line = format!(
            " shadow-of={} shadow-verdict={} enforced-verdict={} {agreement}",
            events::text_field(&self.of),
            self.verdict.as_str(),
            self.enforced_verdict.as_str(),
        );
        if !self.edits.is_empty() {
            line.push_str(&format!(
                " shadow-edits={}",
                events::text_field(&self.edits.join("; "))
            ));
        }
        if let Some(reason) = &self.reason {
            line.push_str(&format!(" shadow-reason={}", events::text_field(reason)));
        }
        line
    }
}

/// What a run returned that a shadow's is compared on: its edits, if any.
pub(crate) trait Edits {
    /// The edits as shown, and their digest; none without edits.
    fn edits(&self) -> Option<(Vec<String>, String)>;
}

impl Edits for () {
    fn edits(&self) -> Option<(Vec<String>, String)> {
        None
    }
}

impl Edits for (Value, Vec<Change>) {
    fn edits(&self) -> Option<(Vec<String>, String)> {
        let (after, changes) = self;
        if changes.is_empty() {
            return None;
        }
        let shown = changes.iter().map(ToString::to_string).collect();
        // Each change with the value it leaves, in a fixed order: the same edits, however the
        // hook ordered its output, have the same digest.
        let mut lines: Vec<String> = changes.iter().map(|c| c.diff_line(after, after)).collect();
        lines.sort();
        Some((
            shown,
            format!("sha256:{}", sha256_hex(lines.join("\n").as_bytes())),
        ))
    }
}

/// The enforced run a shadow is compared with.
pub(crate) struct Seen {
    pub verdict: Verdict,
    pub edits: Option<String>,
}

/// The verdict of a run: `ok` when it succeeded and its output was accepted, `refused` when
/// its output was refused.
pub(crate) fn verdict_of(result: &Result<Outcome, ExecError>, ok: bool, refused: bool) -> Verdict {
    match result {
        _ if ok => Verdict::Accepted,
        _ if refused => Verdict::Refused,
        Ok(Outcome {
            exit: Exit::Code(_),
            ..
        }) => Verdict::Refused,
        _ => Verdict::Failed,
    }
}

/// Runs the shadows of `enforced` (which `seen` describes, and whose event is `template`) and
/// records their runs; `check` is what a successful run's output must pass, without effect.
pub(crate) fn run_all<T: Edits>(
    enforced: &PlannedHook,
    ctx: &RunContext,
    seen: &Seen,
    template: &Event,
    trail: &Trail,
    report: &mut StageReport,
    check: &dyn Fn(&PlannedHook, &Outcome) -> Result<T, Rejected>,
) {
    for shadow in &enforced.shadows {
        let started = Instant::now();
        let (result, mut record) = run_one(shadow, ctx, check);
        record.of = enforced.name.clone();
        record.same_verdict = record.verdict == seen.verdict;
        record.same_edits = record.verdict != Verdict::Skipped && record.edits_digest == seen.edits;
        record.enforced_verdict = seen.verdict;
        record.enforced_edits_digest = seen.edits.clone();
        let event = shadow_event(template, shadow, result.as_ref(), started.elapsed(), record);
        if let Err(e) = events::append(trail.file, &event, trail.max_size) {
            report.warnings.push(crate::error_chain(&e));
        }
    }
}

/// A reason as recorded: at most this many bytes.
const MAX_REASON_BYTES: usize = 2048;

fn record(shadow: &PlannedShadow, verdict: Verdict, reason: Option<String>) -> ShadowRecord {
    let reason = reason.map(|mut text| {
        if text.len() > MAX_REASON_BYTES {
            let mut end = MAX_REASON_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        text
    });
    ShadowRecord {
        of: String::new(),
        verdict,
        reason,
        edits: Vec::new(),
        edits_digest: None,
        enforced_verdict: Verdict::Skipped,
        enforced_edits_digest: None,
        same_verdict: false,
        same_edits: false,
        budget_ms: shadow.budget_ms,
    }
}

/// One shadow run within its budget: its result (none when it was skipped before running) and
/// its record (without the comparison).
fn run_one<T: Edits>(
    shadow: &PlannedShadow,
    ctx: &RunContext,
    check: &dyn Fn(&PlannedHook, &Outcome) -> Result<T, Rejected>,
) -> (Option<Result<Outcome, ExecError>>, ShadowRecord) {
    let budget = Duration::from_millis(shadow.budget_ms);
    let start = Instant::now();
    if let Some(deadline) = ctx.deadline {
        let left = deadline.saturating_duration_since(start);
        if left < budget {
            let reason = format!(
                "only {} ms were left before the caller's deadline, less than its budget of {} ms",
                left.as_millis(),
                shadow.budget_ms
            );
            return (None, record(shadow, Verdict::Skipped, Some(reason)));
        }
    }
    let scratch = match Scratch::make(&shadow.hook, ctx.stage) {
        Ok(scratch) => scratch,
        Err(reason) => return (None, record(shadow, Verdict::Failed, Some(reason))),
    };
    if start.elapsed() >= budget {
        let reason = format!(
            "copying its writable grants took longer than its budget of {} ms",
            shadow.budget_ms
        );
        return (None, record(shadow, Verdict::Skipped, Some(reason)));
    }
    let bounded = RunContext {
        deadline: Some(start + budget),
        ..*ctx
    };
    let result = run::run(&scratch.hook, &bounded);
    drop(scratch);
    let record = judge(shadow, &result, check);
    (Some(result), record)
}

/// What a shadow's run amounted to.
fn judge<T: Edits>(
    shadow: &PlannedShadow,
    result: &Result<Outcome, ExecError>,
    check: &dyn Fn(&PlannedHook, &Outcome) -> Result<T, Rejected>,
) -> ShadowRecord {
    let out = match result {
        Ok(out) if out.success() => out,
        Ok(out) => {
            let output = out.output_summary();
            let reason = match output.is_empty() {
                true => out.exit.to_string(),
                false => format!("{}: {output}", out.exit),
            };
            let verdict = verdict_of(result, false, false);
            return record(shadow, verdict, Some(reason));
        }
        Err(ExecError::WasmStopped {
            stop: Stop::Timeout { .. },
            ..
        })
        | Err(ExecError::CompileAtStage { .. }) => {
            let timeout = shadow.hook.spec.timeout;
            let limit = match timeout.saturating_mul(1000) < shadow.budget_ms {
                true => format!("its timeout of {timeout} s"),
                false => format!("its budget of {} ms", shadow.budget_ms),
            };
            let reason = format!(
                "stopped at {limit}: {}",
                crate::error_chain(result.as_ref().unwrap_err())
            );
            return record(shadow, Verdict::Skipped, Some(reason));
        }
        Err(e) => return record(shadow, Verdict::Failed, Some(crate::error_chain(e))),
    };
    match check(&shadow.hook, out) {
        Ok(value) => {
            let mut done = record(shadow, Verdict::Accepted, None);
            if let Some((edits, digest)) = value.edits() {
                done.edits = edits;
                done.edits_digest = Some(digest);
            }
            done
        }
        Err(rejected) => record(shadow, Verdict::Refused, Some(rejected.reason)),
    }
}

/// The event of a shadow run: the enforced run's (same container, stage, generation) with the
/// shadow's run, and nothing that would count as the container's failure.
fn shadow_event(
    template: &Event,
    shadow: &PlannedShadow,
    result: Option<&Result<Outcome, ExecError>>,
    took: Duration,
    record: ShadowRecord,
) -> Event {
    let out = result.and_then(|r| r.as_ref().ok());
    Event {
        // Its own id: an event id names one run (`hookhost replay` finds its record by it).
        id: events::new_id(),
        time: chrono::Utc::now(),
        hook: shadow.hook.name.clone(),
        kind: shadow.hook.spec.kind,
        exit: out.and_then(|o| match o.exit {
            Exit::Code(code) => Some(code),
            Exit::Signal(_) => None,
        }),
        duration_ms: took.as_secs_f64() * 1000.0,
        error: None,
        failure: None,
        fuel_used: out.and_then(|o| o.fuel_used),
        on_failure: None,
        verdict: None,
        needs: None,
        stderr: out.and_then(|o| events::stderr_tail(&o.stderr)),
        cdi: None,
        shadow: Some(record),
        ..template.clone()
    }
}

/// A shadow's hook with its writable directory grants moved to scratch copies (removed when
/// this is dropped) and the bundle and root filesystem read-only.
struct Scratch {
    hook: PlannedHook,
    _dir: Option<tempfile::TempDir>,
}

impl Scratch {
    fn make(hook: &PlannedHook, stage: hookhost_types::Stage) -> Result<Scratch, String> {
        let mut hook = hook.clone();
        let Some(grants) = hook.spec.grants.as_mut() else {
            return Ok(Scratch { hook, _dir: None });
        };
        let read_only = |access: &mut Option<Access>| {
            if access.is_some() {
                *access = Some(Access::ReadOnly);
            }
        };
        read_only(&mut grants.bundle);
        read_only(&mut grants.rootfs);
        let dir = match writable(grants) {
            true => Some(scratch_copies(grants).map_err(|e| {
                format!("cannot make scratch copies of its writable grants at {stage}: {e}")
            })?),
            false => None,
        };
        Ok(Scratch { hook, _dir: dir })
    }
}

fn writable(grants: &Grants) -> bool {
    grants.dirs.iter().any(|d| d.access.is_writable())
}

/// Copies each writable directory of `grants` into a new owner-only temp directory and grants
/// the copy instead.
fn scratch_copies(grants: &mut Grants) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("hookhost-shadow-")
        .tempdir()?;
    for (n, grant) in grants.dirs.iter_mut().enumerate() {
        if !grant.access.is_writable() {
            continue;
        }
        let copy = dir.path().join(n.to_string());
        copy_tree(&grant.host, &copy)?;
        grant.host = copy;
    }
    Ok(dir)
}

/// Copies a directory tree: directories, regular files (with their permissions) and symlinks
/// (as symlinks); other files are left out.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target: PathBuf = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &target)?;
        }
    }
    Ok(())
}

/// Agreement of one shadow with its enforced hook, from the audit trail (`hookhost stats`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Agreement {
    pub shadow: String,
    pub of: String,
    /// Runs recorded (skipped ones included).
    pub runs: u64,
    pub same_verdict: u64,
    pub same_edits: u64,
    /// Runs whose verdict or edits differed from the enforced run's.
    pub differing: u64,
    pub skipped: u64,
    /// Of the differing runs, those the shadow refused and the enforced hook did not.
    pub refused_more: u64,
}

/// Agreement per shadow, accumulated event by event.
#[derive(Debug, Default)]
pub struct AgreementStats {
    by_shadow: std::collections::BTreeMap<(String, String), Agreement>,
}

impl AgreementStats {
    /// Counts one event (nothing unless it is a shadow run).
    pub fn add(&mut self, event: &Event) {
        let Some(record) = &event.shadow else {
            return;
        };
        let key = (event.hook.clone(), record.of.clone());
        let row = self.by_shadow.entry(key).or_insert_with(|| Agreement {
            shadow: event.hook.clone(),
            of: record.of.clone(),
            ..Agreement::default()
        });
        row.runs += 1;
        if record.verdict == Verdict::Skipped {
            row.skipped += 1;
            return;
        }
        row.same_verdict += u64::from(record.same_verdict);
        row.same_edits += u64::from(record.same_edits);
        if !(record.same_verdict && record.same_edits) {
            row.differing += 1;
        }
        if record.verdict == Verdict::Refused && record.enforced_verdict != Verdict::Refused {
            row.refused_more += 1;
        }
    }

    /// One row per shadow and enforced hook, by name.
    pub fn rows(&self) -> Vec<Agreement> {
        self.by_shadow.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A registered WASM hook `name` with `extra` keys.
    fn registered(name: &str, extra: Value) -> Hook {
        let mut doc = serde_json::json!({
            "Name": name, "Stages": ["prestart"], "Kind": "wasm", "Path": "/m.wasm",
            "Args": [name], "Env": [], "Timeout": 5, "Digest": "ab",
            "Grants": {"env": ["HOME"]}, "Created": "2026-12-01T00:00:00Z",
        });
        for (key, value) in extra.as_object().unwrap() {
            doc[key] = value.clone();
        }
        serde_json::from_value(doc).unwrap()
    }

    #[test]
    fn a_shadow_is_planned_under_its_hook_with_its_grants_and_the_selections_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(dir.path()).unwrap();
        let policy = registered("policy", serde_json::json!({}));
        registry.create(&policy).unwrap();
        let shadow = registered(
            "v2",
            serde_json::json!({"Grants": {}, "Shadow": {"Of": "policy", "BudgetMs": 70}}),
        );
        let other = registered("other", serde_json::json!({"Shadow": {"Of": "nope"}}));
        let mut plan = ContainerPlan::default();
        plan.push_registered(&policy, &["--strict".to_string()]);
        attach(&mut plan, &[shadow, other], Some(&registry));
        let planned = &plan.stages[&hookhost_types::Stage::Prestart][0];
        let [shadow] = planned.shadows.as_slice() else {
            panic!("{planned:?}")
        };
        assert_eq!(shadow.budget_ms, 70);
        assert_eq!(shadow.hook.spec.args, ["v2", "--strict"]);
        assert_eq!(shadow.hook.spec.grants, policy.spec.grants);
        // The runtime waits for the budget too.
        let hooks = &plan.stages[&hookhost_types::Stage::Prestart];
        let slack = crate::bundle::TIMEOUT_SLACK_SECS;
        assert_eq!(crate::bundle::outer_timeout(hooks), Some(5 + 1 + slack));
        // The plan file carries it, and reads it back.
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(serde_json::from_value::<ContainerPlan>(json).unwrap(), plan);
    }

    #[test]
    fn the_same_edits_in_another_order_have_the_same_digest() {
        let before = serde_json::json!({"process": {"env": ["A=1"]}});
        let one = serde_json::json!({"process": {"env": ["A=1", "B=2", "C=3"]}});
        let other = serde_json::json!({"process": {"env": ["A=1", "C=3", "B=2"]}});
        let digest = |after: &Value| {
            let changes = hookhost_hooks::diff::diff(&before, after);
            (after.clone(), changes).edits().unwrap().1
        };
        assert_eq!(digest(&one), digest(&other));
        let third = serde_json::json!({"process": {"env": ["A=1", "B=3"]}});
        assert_ne!(digest(&one), digest(&third));
        assert_eq!(().edits(), None);
    }

    #[test]
    fn a_writable_grant_becomes_a_scratch_copy() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("data");
        std::fs::create_dir_all(granted.join("sub")).unwrap();
        std::fs::write(granted.join("sub/file"), "kept").unwrap();
        let mut grants = Grants {
            dirs: vec![hookhost_hooks::grants::DirGrant {
                host: granted.clone(),
                guest: "/data".into(),
                access: Access::ReadWrite,
            }],
            rootfs: Some(Access::ReadWrite),
            ..Grants::default()
        };
        let mut hook = PlannedHook::native("s".into(), "/x".into(), vec![], vec![], Some(1));
        hook.spec.grants = Some(grants.clone());
        let scratch = Scratch::make(&hook, hookhost_types::Stage::Prestart).unwrap();
        let moved = scratch.hook.spec.grants.as_ref().unwrap();
        assert_eq!(moved.rootfs, Some(Access::ReadOnly));
        assert_ne!(moved.dirs[0].host, granted);
        let copy = moved.dirs[0].host.join("sub/file");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "kept");
        drop(scratch);
        assert!(!copy.exists());
        grants.dirs[0].access = Access::ReadOnly;
        assert!(!writable(&grants));
    }
}
