//! `metrics` and `stats`: numbers from the audit trail.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, ValueEnum};

use hookhost_core::events::{self, Event, Filter};
use hookhost_core::metrics::{Metrics, Stats};
use hookhost_core::shadow::AgreementStats;
use hookhost_hooks::paths::Paths;

use super::{Cli, parse};

/// Prometheus metrics computed from the audit trail.
///
/// Runs by hook, stage, kind and result; a duration histogram per hook and stage; fuel used by
/// WebAssembly hooks; containers refused by a failing hook, by kind of failure; the registry
/// generation the node is on and how `apply --watch` fares (last success, consecutive
/// failures, verification failures). Printed on
/// stdout, or written atomically for node_exporter's textfile collector.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost metrics\n  \
    hookhost metrics --textfile /var/lib/node_exporter/textfile_collector/hookhost.prom")]
pub struct MetricsArgs {
    /// Write the metrics to FILE (atomically, mode 0644) instead of stdout
    #[arg(long, value_name = "FILE")]
    textfile: Option<PathBuf>,
    /// Only runs since this time (RFC 3339) or this long ago (30s, 10m, 2h, 1d)
    #[arg(long, value_parser = parse::since, value_name = "TIME")]
    since: Option<DateTime<Utc>>,
}

/// Runs, failures and durations per hook and stage, from the audit trail; and how each shadow
/// hook agreed with the hook it shadows.
///
/// The table ends with the shadows' agreement when the trail holds shadow runs: per shadow, its
/// runs, those with the enforced run's verdict, with its edits (precreate), those that differed
/// in either, those skipped (over its budget, or too close to the caller's deadline), and those
/// it refused that the enforced hook let through. `--shadows` shows only that, as a table or
/// JSON.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  hookhost stats\n  hookhost stats --since 1h\n  hookhost stats --shadows --format json"
)]
pub struct StatsArgs {
    /// Only the shadow hooks' agreement with the hooks they shadow
    #[arg(long)]
    shadows: bool,
    /// Only runs since this time (RFC 3339) or this long ago (30s, 10m, 2h, 1d)
    #[arg(long, value_parser = parse::since, value_name = "TIME")]
    since: Option<DateTime<Utc>>,
    /// Output format
    #[arg(long, value_enum, default_value = "table")]
    format: StatsFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum StatsFormat {
    Table,
    Json,
}

/// Feeds every event of the trail (both generations) since `since` to `add`.
fn each_event(
    cli: &Cli,
    since: Option<DateTime<Utc>>,
    mut add: impl FnMut(&Event),
) -> anyhow::Result<()> {
    let file = Paths::new(cli.root()).events_file();
    let filter = Filter {
        since,
        ..Filter::default()
    };
    events::read(&file, &filter, false, |event| {
        add(event);
        true
    })?;
    Ok(())
}

pub fn metrics(cli: &Cli, args: &MetricsArgs) -> anyhow::Result<ExitCode> {
    let mut metrics = Metrics::default();
    each_event(cli, args.since, |e| metrics.add(e))?;
    let paths = Paths::new(cli.root());
    let current = hookhost_hooks::generation::current(paths.root())?;
    let status = hookhost_hooks::fleet::Status::read(&paths.fleet_status_file())?;
    let text =
        metrics.render() + &hookhost_core::metrics::render_fleet(current.as_ref(), status.as_ref());
    match &args.textfile {
        Some(file) => hookhost_exec::fs::write_atomic(file, text.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", file.display()))?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn stats(cli: &Cli, args: &StatsArgs) -> anyhow::Result<ExitCode> {
    let mut stats = Stats::default();
    let mut agreement = AgreementStats::default();
    each_event(cli, args.since, |e| {
        stats.add(e);
        agreement.add(e);
    })?;
    let shadows = agreement.rows();
    if args.shadows {
        super::shadow::print_agreement(&shadows, matches!(args.format, StatsFormat::Json))?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows = stats.rows();
    match args.format {
        StatsFormat::Json => {
            let rows: Vec<_> = rows
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "Hook": r.hook, "Stage": r.stage, "Runs": r.runs,
                        "Failures": r.failures, "Refused": r.refused, "P50Ms": r.p50,
                        "P95Ms": r.p95, "MaxMs": r.max,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&rows)?);
        }
        StatsFormat::Table => {
            println!(
                "{:<24} {:<16} {:>8} {:>8} {:>8} {:>10} {:>10} {:>10}",
                "HOOK", "STAGE", "RUNS", "FAILED", "REFUSED", "P50", "P95", "MAX"
            );
            for r in &rows {
                println!(
                    "{:<24} {:<16} {:>8} {:>8} {:>8} {:>8.1}ms {:>8.1}ms {:>8.1}ms",
                    events::text_field(&r.hook),
                    r.stage.as_str(),
                    r.runs,
                    r.failures,
                    r.refused,
                    r.p50,
                    r.p95,
                    r.max
                );
            }
            if !shadows.is_empty() {
                println!();
                super::shadow::print_agreement(&shadows, false)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
