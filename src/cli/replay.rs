//! `hookhost replay`: run recorded WASM hook runs again, with their own module or a candidate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;

use hookhost_core::events::text_field;
use hookhost_core::replay::{self, Comparison, Module, Regression, Replayed};

use super::{Cli, parse};

/// Run a recorded WASM hook run again, and say whether it was identical.
///
/// Every WASM hook run is recorded next to its audit event (unless the config's `replay`
/// turns records off): what it was given, the clock values and random numbers it read, the
/// granted files it opened. `hookhost replay EVENT-ID` runs it again in a scratch sandbox (its
/// granted directories rebuilt from the record; the real files are never touched) and reports
/// `identical` (same exit, same output, same fuel used) or the differences. `--with` runs a
/// candidate module (a file, an `oci://` reference, or a registered hook's name) on the same
/// inputs instead.
///
/// With `--hook NAME`, every recorded run of NAME (since `--since`) is run with the candidate:
/// a table of agreements and the first runs whose verdict or edits differ.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost events --hook policy --format json | tail -1   # an event's \"id\"\n  \
    hookhost replay 0061a2f3b4c5d0012a300\n  \
    hookhost replay 0061a2f3b4c5d0012a300 --with ./policy-v2.wasm\n  \
    hookhost replay --hook policy --since 24h --with ./policy-v2.wasm --fail-on-difference")]
pub struct ReplayArgs {
    /// The event id of the run to replay (`hookhost events` shows it)
    #[arg(
        value_name = "EVENT-ID",
        required_unless_present = "hook",
        conflicts_with = "hook"
    )]
    id: Option<String>,
    /// Replay every recorded run of this hook (with --with: a candidate)
    #[arg(long, value_name = "NAME")]
    hook: Option<String>,
    /// With --hook: only runs since this time (RFC 3339) or this long ago (30s, 10m, 2h, 1d)
    #[arg(long, value_parser = parse::since, value_name = "TIME", requires = "hook")]
    since: Option<DateTime<Utc>>,
    /// The candidate module: a file (any path with a `/`), an oci://REF, or a registered
    /// hook's name
    #[arg(long = "with", value_name = "PATH|oci://REF|NAME")]
    with: Option<String>,
    /// Exit with status 1 when any run differs
    #[arg(long)]
    fail_on_difference: bool,
    /// With --hook: how many differing runs to show
    #[arg(long, default_value_t = 10, value_name = "N")]
    show: usize,
}

pub fn replay(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let root = cli.root();
    let module = match &args.with {
        Some(with) => Some(candidate(cli, &root, with)?),
        None => None,
    };
    let differ = match (&args.id, &args.hook) {
        (Some(id), _) => {
            let record = replay::find(&root, id)?;
            let replayed = replay::replay(&root, &record, module.as_ref())?;
            print_replayed(&replayed);
            !replayed.identical()
        }
        (None, Some(hook)) => {
            let regression = replay::regress(&root, hook, args.since, module.as_ref())?;
            print_regression(hook, &regression, args.show);
            regression.differing().next().is_some()
        }
        (None, None) => unreachable!("clap requires EVENT-ID or --hook"),
    };
    Ok(match differ && args.fail_on_difference {
        true => ExitCode::FAILURE,
        false => ExitCode::SUCCESS,
    })
}

/// `--with`: an `oci://` reference (pulled, and verified under the config file's signature
/// policy) or a module file, compiled into a scratch cache; or a registered hook's module.
fn candidate(cli: &Cli, root: &Path, with: &str) -> anyhow::Result<Module> {
    if let Some(fetched) = super::oci::fetch(cli, Path::new(with)) {
        let fetched = fetched
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("cannot pull the candidate {with}"))?;
        let limits = cli.settings.compile_limits();
        return Ok(Module::bytes(&fetched.bytes, Path::new(with), &limits)?);
    }
    if with.contains('/') {
        let limits = cli.settings.compile_limits();
        return Ok(Module::file(&PathBuf::from(with), &limits)?);
    }
    let hook = cli.registry()?.get(with)?;
    let digest = hook
        .spec
        .digest
        .with_context(|| format!("hook {with} is not a WASM hook: it has no module to replay"))?;
    Ok(Module::registered(root, &digest))
}

fn print_replayed(replayed: &Replayed) {
    let record = &replayed.record;
    println!(
        "event {} hook {} ({}) container {}",
        text_field(&record.id),
        text_field(&record.hook),
        record.stage,
        text_field(&record.container)
    );
    match replayed.identical() {
        true => println!(
            "identical (exit, output and fuel {})",
            replayed.ending.fuel_used
        ),
        false => {
            println!("different:");
            for difference in &replayed.differences {
                println!("  {difference}");
            }
        }
    }
    for reason in &replayed.inexact {
        println!("not exactly replayable: {reason}");
    }
}

fn print_regression(hook: &str, regression: &Regression, show: usize) {
    let runs = regression.runs.len();
    let differing: Vec<&Comparison> = regression.differing().collect();
    println!(
        "hook {}: {runs} recorded runs, {} agree, {} differ",
        text_field(hook),
        runs - differing.len(),
        differing.len()
    );
    if regression.corrupt > 0 {
        println!("{} record lines could not be read", regression.corrupt);
    }
    if differing.is_empty() {
        return;
    }
    println!("EVENT\tCONTAINER\tVERDICT BEFORE\tVERDICT AFTER\tEDITS BEFORE\tEDITS AFTER");
    for comparison in differing.iter().take(show) {
        let record = &comparison.replayed.record;
        let edits = |e: &[String]| match e.is_empty() {
            true => "-".to_string(),
            false => text_field(&e.join("; ")).into_owned(),
        };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            text_field(&record.id),
            text_field(&record.container),
            comparison.verdicts.0,
            comparison.verdicts.1,
            edits(&comparison.edits.0),
            edits(&comparison.edits.1),
        );
    }
    if differing.len() > show {
        println!("… and {} more", differing.len() - show);
    }
}
