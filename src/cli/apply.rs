//! `apply`: converge the registry to a file of hooks, to a hook set in an OCI registry, or keep
//! converging on one (`--watch`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use hookhost_hooks::apply::{self, Action, Applied, Options};
use hookhost_hooks::fleet::Status;
use hookhost_hooks::paths::Paths;
use hookhost_oci::Quiet;
use hookhost_oci::fleet::{self, Attempt, Watch};

use super::oci::VerifyFlags;
use super::{Cli, parse};

/// Make the registry match a file of hooks (what `hookhost inspect` prints), or a hook set
/// published with `hookhost push --set`.
///
/// Hooks in the file are created or updated; hooks already as described are left alone, so a
/// second run changes nothing and says so. The new set of hooks is written whole beside the
/// current one and switched to in one step (a generation, named by the file's or the set's
/// digest): a container being created gets the old set or the new one, never a mix. Modules
/// are compiled as `create` compiles them, bounded by the config file's compileCpuTime and
/// compileMemory (default 10 s of CPU time, 512 MiB).
///
/// With --watch, the node converges on the set the reference names at start and every
/// interval (a DaemonSet's loop): a failed attempt keeps the node's generation and waits
/// longer (up to 8 intervals); each attempt is recorded in ROOT/fleet/status.json, which
/// `hookhost metrics` reports.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost inspect > hooks.json                         # on one node: every hook\n  \
    hookhost apply -f hooks.json                          # on the others\n  \
    hookhost apply -f hooks.json --prune --dry-run        # show what would change\n  \
    hookhost apply -f oci://registry.example.com/fleet/hooks:prod --verify-key cosign.pub\n  \
    hookhost apply --watch oci://registry.example.com/fleet/hooks:prod --interval 30s --prune")]
pub struct ApplyArgs {
    /// The file: a JSON array of hook objects with `hookhost inspect`'s keys (`Name`, `Path`,
    /// `Stages` or `Type`, `Args`, `Env`, `Timeout`, `Limits`, `Grants`, `When`, …); or
    /// oci://HOST/REPO:TAG, a hook set
    #[arg(
        long,
        short = 'f',
        value_name = "FILE",
        required_unless_present = "watch"
    )]
    file: Option<PathBuf>,
    /// Converge on the hook set oci://HOST/REPO:TAG now and every --interval
    #[arg(long, value_name = "REFERENCE", conflicts_with_all = ["file", "dry_run"])]
    watch: Option<String>,
    /// How long between --watch attempts (30s, 5m, 1h)
    #[arg(long, value_parser = parse::duration, default_value = "30s", requires = "watch")]
    interval: Duration,
    /// With --watch: one attempt, then exit (non-zero when it failed); for cron and CI
    #[arg(long, requires = "watch")]
    once: bool,
    /// With --watch: where to keep the status [default: ROOT/fleet/status.json]
    #[arg(long, value_name = "FILE", requires = "watch")]
    status_file: Option<PathBuf>,
    /// Also remove registered hooks the file does not list
    #[arg(long)]
    prune: bool,
    /// Print what would change; change nothing
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    verify: VerifyFlags,
}

pub fn apply(cli: &Cli, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let options = Options {
        prune: args.prune,
        dry_run: args.dry_run,
    };
    if let Some(reference) = &args.watch {
        return watch(cli, args, reference, options);
    }
    let file = args
        .file
        .as_ref()
        .expect("clap requires -f without --watch");
    let registry = cli.registry()?;
    let text = file.to_string_lossy();
    let applied = if hookhost_oci::is_reference(&text) {
        let oci = super::oci::options(cli, &args.verify, &Quiet, false);
        fleet::apply_set(&text, &registry, &oci, options)?
    } else {
        let fetch = |path: &std::path::Path| super::oci::fetch(cli, path);
        apply::apply(file, &registry, options, &fetch)?
    };
    print_applied(&applied, args.dry_run);
    Ok(ExitCode::SUCCESS)
}

fn print_applied(applied: &Applied, dry_run: bool) {
    let verb = |done: &'static str, would: &'static str| if dry_run { would } else { done };
    let mut changed = false;
    for change in &applied.changes {
        let line = match &change.action {
            Action::Create => format!("{} {}", verb("created", "would create"), change.name),
            Action::Update(keys) => {
                let what = verb("updated", "would update");
                format!("{what} {}: {}", change.name, keys.join("; "))
            }
            Action::Remove => format!("{} {}", verb("removed", "would remove"), change.name),
            Action::Unchanged => format!("unchanged {}", change.name),
        };
        changed |= change.action != Action::Unchanged;
        println!("{line}");
    }
    if !changed {
        println!("no changes");
    }
    if let Some(generation) = &applied.generation {
        println!("generation {} {}", generation.number, generation.id);
    }
}

/// `--watch`: attempts until killed (or one, `--once`), a line on stdout per attempt.
fn watch(
    cli: &Cli,
    args: &ApplyArgs,
    reference: &str,
    options: Options,
) -> anyhow::Result<ExitCode> {
    // Refused before the first attempt rather than reported at every one.
    hookhost_oci::set::check_reference(reference)?;
    let status_file = args
        .status_file
        .clone()
        .unwrap_or_else(|| Paths::new(cli.root()).fleet_status_file());
    let settings = Watch {
        reference,
        interval: args.interval,
        once: args.once,
        apply: options,
        status_file: &status_file,
    };
    let oci = super::oci::options(cli, &args.verify, &Quiet, false);
    let open = || {
        hookhost_hooks::registry::Registry::open(cli.root())
            .map(|r| r.with_compile_limits(cli.settings.compile_limits()))
    };
    let last = fleet::watch(&settings, &open, &oci, &mut print_attempt)?;
    Ok(match last.consecutive_failures {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}

fn print_attempt(status: &Status, attempt: &Attempt) {
    let now = status
        .last_attempt
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    match attempt {
        Attempt::Unchanged(g) => println!("{now} unchanged: generation {} {}", g.number, g.id),
        Attempt::Applied(applied) => {
            let changed = applied
                .changes
                .iter()
                .filter(|c| c.action != Action::Unchanged)
                .count();
            match &applied.generation {
                Some(g) => println!(
                    "{now} applied: generation {} {} ({changed} hooks changed)",
                    g.number, g.id
                ),
                None => println!("{now} applied: no changes"),
            }
        }
        Attempt::Failed { error, .. } => {
            let wait = (status.next_attempt - status.last_attempt).num_seconds();
            println!(
                "{now} failed ({} in a row; kept {}; next attempt in {wait}s): {}",
                status.consecutive_failures,
                status
                    .generation
                    .as_ref()
                    .map_or("no generation".to_string(), |g| format!(
                        "generation {} {}",
                        g.number, g.id
                    )),
                hookhost_core::error_chain(error)
            );
        }
    }
}
