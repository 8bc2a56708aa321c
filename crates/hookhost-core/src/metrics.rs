//! Numbers computed from the audit trail: Prometheus metrics (`hookhost metrics`, also as a
//! node_exporter textfile) and a per-hook, per-stage table for people (`hookhost stats`).
//!
//! Everything is derived from `events.jsonl` (both generations), so the numbers survive
//! restarts and need no daemon; they cover what the trail still holds (see `eventsMaxSize`).

use std::collections::BTreeMap;
use std::fmt::Write;

use crate::events::{Event, Failure};
use hookhost_hooks::hook::{HookKind, OnFailure, Stage};

/// Upper bounds (seconds) of the duration histogram's buckets; `+Inf` is implied.
pub const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What the metrics count, accumulated event by event.
#[derive(Debug, Default)]
pub struct Metrics {
    runs: BTreeMap<(String, Stage, &'static str, &'static str), u64>,
    durations: BTreeMap<(String, Stage), Histogram>,
    fuel: BTreeMap<(String, Stage), u64>,
    refusals: BTreeMap<&'static str, u64>,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Count per bucket of [`BUCKETS`] (not cumulative), then the overflow.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS.len() + 1];
        }
        let slot = BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(BUCKETS.len());
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

fn kind_label(kind: HookKind) -> &'static str {
    match kind {
        HookKind::Native => "native",
        HookKind::Wasm => "wasm",
    }
}

impl Metrics {
    /// Counts one hook run (a CDI record is none).
    pub fn add(&mut self, event: &Event) {
        // A shadow's run is counted by `hookhost stats`' agreement table, not as a hook run.
        if event.cdi.is_some() || event.shadow.is_some() {
            return;
        }
        // A refused precreate edit exited 0 but failed: it is counted as what it was.
        let result = match (event.verdict, &event.error) {
            (Some(verdict), _) => verdict.as_str(),
            (None, Some(_)) => "failure",
            (None, None) => "success",
        };
        let key = (event.hook.clone(), event.stage);
        let run = (key.0.clone(), key.1, kind_label(event.kind), result);
        *self.runs.entry(run).or_default() += 1;
        self.durations
            .entry(key.clone())
            .or_default()
            .observe(event.duration_ms / 1000.0);
        if let Some(fuel) = event.fuel_used {
            *self.fuel.entry(key).or_default() += fuel;
        }
        let policy = event.on_failure.unwrap_or(if event.stage.is_fatal() {
            OnFailure::Fail
        } else {
            OnFailure::Warn
        });
        if event.error.is_some() && policy == OnFailure::Fail {
            let reason = event.failure.unwrap_or(Failure::Error).as_str();
            *self.refusals.entry(reason).or_default() += 1;
        }
    }

    /// The Prometheus text exposition format (what node_exporter's textfile collector and
    /// `promtool check metrics` read).
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "hookhost_hook_runs_total",
            "counter",
            "Hook runs, by hook, stage, kind and result (success, failure, or refused: a \
             precreate edit outside the hook's grants).",
        );
        for ((hook, stage, kind, result), n) in &self.runs {
            let labels = labels(&[
                ("hook", hook),
                ("stage", stage.as_str()),
                ("kind", kind),
                ("result", result),
            ]);
            let _ = writeln!(out, "hookhost_hook_runs_total{{{labels}}} {n}");
        }
        self.render_durations(&mut out);
        header(
            &mut out,
            "hookhost_hook_fuel_used_total",
            "counter",
            "Fuel consumed by WebAssembly hooks, by hook and stage.",
        );
        for ((hook, stage), fuel) in &self.fuel {
            let labels = labels(&[("hook", hook), ("stage", stage.as_str())]);
            let _ = writeln!(out, "hookhost_hook_fuel_used_total{{{labels}}} {fuel}");
        }
        header(
            &mut out,
            "hookhost_container_refusals_total",
            "counter",
            "Containers stopped by a failing hook at a fatal stage, by kind of failure.",
        );
        for (reason, n) in &self.refusals {
            let labels = labels(&[("reason", reason)]);
            let _ = writeln!(out, "hookhost_container_refusals_total{{{labels}}} {n}");
        }
        out
    }

    fn render_durations(&self, out: &mut String) {
        let name = "hookhost_hook_duration_seconds";
        header(out, name, "histogram", "Hook run time, by hook and stage.");
        for ((hook, stage), histogram) in &self.durations {
            let base = [("hook", hook.as_str()), ("stage", stage.as_str())];
            let mut cumulative = 0;
            for (i, count) in histogram.counts.iter().enumerate() {
                cumulative += count;
                let le = BUCKETS.get(i).map_or("+Inf".to_string(), |b| b.to_string());
                let labels = labels(&[base[0], base[1], ("le", &le)]);
                let _ = writeln!(out, "{name}_bucket{{{labels}}} {cumulative}");
            }
            let labels = labels(&base);
            let _ = writeln!(out, "{name}_sum{{{labels}}} {}", histogram.sum);
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", histogram.count);
        }
    }
}

/// The node's generation and, when `apply --watch` runs, how its attempts go: gauges (and one
/// counter) for alerting on a node that is stuck on an old generation.
pub fn render_fleet(
    current: Option<&hookhost_hooks::generation::Record>,
    status: Option<&hookhost_hooks::fleet::Status>,
) -> String {
    let mut out = String::new();
    if let Some(record) = current {
        let name = "hookhost_generation";
        header(
            &mut out,
            name,
            "gauge",
            "The registry generation the node is on (its number; the labels name what was applied).",
        );
        let labels = labels(&[("id", &record.id), ("source", &record.source)]);
        let _ = writeln!(out, "{name}{{{labels}}} {}", record.number);
        gauge(
            &mut out,
            "hookhost_generation_applied_timestamp_seconds",
            "When the current generation was switched to (Unix time).",
            record.applied.timestamp(),
        );
    }
    let Some(status) = status else {
        return out;
    };
    let reference = labels(&[("reference", &status.reference)]);
    let with = |value: String| format!("{{{reference}}} {value}");
    let last_success = status.last_success.map_or(0, |t| t.timestamp());
    let rows = [
        (
            "hookhost_fleet_last_success_timestamp_seconds",
            "gauge",
            "When apply --watch last found the node on the watched set (Unix time; 0: never).",
            last_success.to_string(),
        ),
        (
            "hookhost_fleet_last_attempt_timestamp_seconds",
            "gauge",
            "When apply --watch last tried (Unix time).",
            status.last_attempt.timestamp().to_string(),
        ),
        (
            "hookhost_fleet_consecutive_failures",
            "gauge",
            "Failed apply --watch attempts since the last success.",
            status.consecutive_failures.to_string(),
        ),
        (
            "hookhost_fleet_verification_failures_total",
            "counter",
            "apply --watch attempts refused because a signature or a digest did not verify.",
            status.verification_failures.to_string(),
        ),
    ];
    for (name, kind, help, value) in rows {
        header(&mut out, name, kind, help);
        let _ = writeln!(out, "{name}{}", with(value));
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, value: i64) {
    header(out, name, "gauge", help);
    let _ = writeln!(out, "{name} {value}");
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// `k="v",…` with the exposition format's escapes, after the other control characters (which
/// the format passes through as they are, to the terminal of whoever prints the metrics) are
/// written as text (`\u{1b}`), as hook output is.
fn labels(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let v = hookhost_exec::printable(v)
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// One row of `hookhost stats`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub hook: String,
    pub stage: Stage,
    pub runs: u64,
    /// Failed runs, refused edits included.
    pub failures: u64,
    /// Precreate runs whose edit was refused (exited 0, outside the hook's grants).
    pub refused: u64,
    /// Milliseconds.
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

/// Runs, failures and duration percentiles per hook and stage.
#[derive(Debug, Default)]
pub struct Stats {
    groups: BTreeMap<(String, Stage), Group>,
}

#[derive(Debug, Default)]
struct Group {
    failures: u64,
    refused: u64,
    durations: Vec<f64>,
}

impl Stats {
    pub fn add(&mut self, event: &Event) {
        if event.cdi.is_some() || event.shadow.is_some() {
            return;
        }
        let group = self
            .groups
            .entry((event.hook.clone(), event.stage))
            .or_default();
        group.failures += u64::from(event.error.is_some());
        group.refused += u64::from(event.verdict.is_some());
        group.durations.push(event.duration_ms);
    }

    /// The rows, by hook then stage.
    pub fn rows(self) -> Vec<Row> {
        self.groups
            .into_iter()
            .map(|((hook, stage), group)| {
                let mut durations = group.durations;
                durations.sort_by(f64::total_cmp);
                Row {
                    hook,
                    stage,
                    runs: durations.len() as u64,
                    failures: group.failures,
                    refused: group.refused,
                    p50: percentile(&durations, 50),
                    p95: percentile(&durations, 95),
                    max: durations.last().copied().unwrap_or(0.0),
                }
            })
            .collect()
    }
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(hook: &str, stage: Stage, ms: f64, failure: Option<Failure>) -> Event {
        Event {
            id: String::new(),
            time: chrono::Utc::now(),
            container: "c".into(),
            stage,
            hook: hook.into(),
            kind: HookKind::Wasm,
            exit: Some(0),
            duration_ms: ms,
            error: failure.map(|f| f.as_str().to_string()),
            on_failure: failure.map(|_| {
                if stage.is_fatal() {
                    OnFailure::Fail
                } else {
                    OnFailure::Warn
                }
            }),
            failure,
            fuel_used: Some(10),
            pod: None,
            generation: None,
            name: None,
            verdict: None,
            needs: None,
            stderr: None,
            cdi: None,
            shadow: None,
        }
    }

    #[test]
    fn counts_runs_durations_fuel_and_refusals() {
        let mut m = Metrics::default();
        m.add(&event("a", Stage::Prestart, 2.0, None));
        m.add(&event("a", Stage::Prestart, 20.0, Some(Failure::Timeout)));
        m.add(&event("a\"b", Stage::Poststop, 0.5, Some(Failure::Exit)));
        m.add(&event("inline:/x\x1b[2J\nz", Stage::Poststop, 0.5, None));
        let text = m.render();
        assert!(!text.contains('\x1b'), "{text}");
        assert!(text.contains(r#"hook="inline:/x\\u{1b}[2J\nz""#), "{text}");
        assert!(text.contains(
            "hookhost_hook_runs_total{hook=\"a\",stage=\"prestart\",kind=\"wasm\",result=\"success\"} 1"
        ), "{text}");
        assert!(text.contains("hook=\"a\\\"b\""), "escaped: {text}");
        assert!(text.contains(
            "hookhost_hook_duration_seconds_bucket{hook=\"a\",stage=\"prestart\",le=\"0.0025\"} 1"
        ), "{text}");
        assert!(
            text.contains(
                "hookhost_hook_duration_seconds_bucket{hook=\"a\",stage=\"prestart\",le=\"+Inf\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains("hookhost_hook_fuel_used_total{hook=\"a\",stage=\"prestart\"} 20"));
        // Only the fatal stage's failure refused a container.
        assert!(text.contains("hookhost_container_refusals_total{reason=\"timeout\"} 1"));
        assert!(!text.contains("reason=\"exit\""), "{text}");
    }

    /// A refused precreate edit is a run with result `refused`, a refusal of its container,
    /// and a refused row in stats.
    #[test]
    fn a_refused_edit_counts_as_refused() {
        let mut refused = event("gpu", Stage::Precreate, 1.0, Some(Failure::Adjust));
        refused.verdict = Some(crate::events::Verdict::Refused);
        let mut m = Metrics::default();
        m.add(&refused);
        let text = m.render();
        assert!(
            text.contains(
                "hookhost_hook_runs_total{hook=\"gpu\",stage=\"precreate\",kind=\"wasm\",result=\"refused\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("hookhost_container_refusals_total{reason=\"adjust\"} 1"));
        let mut s = Stats::default();
        s.add(&refused);
        s.add(&event("gpu", Stage::Precreate, 1.0, None));
        let r = &s.rows()[0];
        assert_eq!((r.runs, r.failures, r.refused), (2, 1, 1));
    }

    #[test]
    fn percentiles_per_hook_and_stage() {
        let mut s = Stats::default();
        for ms in 1..=100 {
            let failure = (ms % 10 == 0).then_some(Failure::Exit);
            s.add(&event("h", Stage::Poststart, ms as f64, failure));
        }
        let rows = s.rows();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.runs, r.failures), (100, 10));
        assert_eq!((r.p50, r.p95, r.max), (50.0, 95.0, 100.0));
    }
}
