//! `apply`: converge the registry to a file of hooks.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use hookhost_hooks::apply::{self, Action, Options};

use super::Cli;

/// Make the registry match a file of hooks (what `hookhost inspect` prints).
///
/// Hooks in the file are created or updated; hooks already as described are left alone, so a
/// second run changes nothing and says so. Run it on every node (from a DaemonSet or a
/// config-management run) to give a fleet the same hooks. Modules are compiled as `create`
/// compiles them, bounded by the config file's compileCpuTime and compileMemory (default
/// 10 s of CPU time, 512 MiB).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    hookhost inspect $(hookhost ls -q) > hooks.json      # on one node\n  \
    hookhost apply -f hooks.json                          # on the others\n  \
    hookhost apply -f hooks.json --prune --dry-run        # show what would change")]
pub struct ApplyArgs {
    /// The file: a JSON array of hook objects with `hookhost inspect`'s keys (`Name`, `Path`,
    /// `Stages` or `Type`, `Args`, `Env`, `Timeout`, `Limits`, `Grants`, `When`, …)
    #[arg(long, short = 'f', value_name = "FILE")]
    file: PathBuf,
    /// Also remove registered hooks the file does not list
    #[arg(long)]
    prune: bool,
    /// Print what would change; change nothing
    #[arg(long)]
    dry_run: bool,
}

pub fn apply(cli: &Cli, args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let registry = cli.registry()?;
    let options = Options {
        prune: args.prune,
        dry_run: args.dry_run,
    };
    let fetch = |path: &std::path::Path| super::oci::fetch(cli, path);
    let applied = apply::apply(&args.file, &registry, options, &fetch)?;
    let changes = applied.changes;
    let verb = |done: &'static str, would: &'static str| if args.dry_run { would } else { done };
    let mut changed = false;
    for change in &changes {
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
    Ok(ExitCode::SUCCESS)
}
